"""``venvkeeper deploy``: converge an environment on a committed lock."""
