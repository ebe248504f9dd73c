"""Training: the synthetic corpus (``corpus``) and the trainer."""
