"""The only places that start processes: uv, git, interpreters, the user's shell commands, and SMTP."""
