"""``venvkeeper verify``: prove an installed environment is what its lock says, file by file."""
