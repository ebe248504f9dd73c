"""voxserve models layer (see docs/architecture in README)."""
