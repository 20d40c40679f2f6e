"""A uv project as venvkeeper reads it: workspace, lock, group selection, member hashes, interpreters."""
