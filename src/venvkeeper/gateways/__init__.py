"""The only places that start processes: uv, git, the user's shell commands (and later SMTP)."""
