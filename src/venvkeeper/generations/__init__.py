"""Generations beside --env: layout, records, sealed manifests, and the one build-and-switch transaction."""
