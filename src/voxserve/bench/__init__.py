"""voxserve bench layer (see docs/architecture in README)."""
