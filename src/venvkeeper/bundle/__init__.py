"""Bundles: the format, pack, install, executables, signatures, and export of the lock."""
