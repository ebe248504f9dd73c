"""voxserve packs layer (see docs/architecture in README)."""
