"""voxserve engine layer (see docs/architecture in README)."""
