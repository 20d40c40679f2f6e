"""Generations beside --env: layout, records, sealed manifests, uv's operations (engine), the build steps
and the member wheel cache, the no-op stamp, and the one transaction (build, smoke, seal, switch, hooks,
undo, prune) that deploy, install, heal and update share."""
