"""Generations beside --env: layout, records, sealed manifests, and the transaction that builds and switches."""
