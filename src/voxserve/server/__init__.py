"""voxserve server layer (see docs/architecture in README)."""
