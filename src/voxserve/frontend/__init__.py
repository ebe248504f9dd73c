"""voxserve frontend layer (see docs/architecture in README)."""
