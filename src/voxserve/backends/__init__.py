"""voxserve backends layer (see docs/architecture in README)."""
