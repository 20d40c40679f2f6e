"""The shared core: errors, exit codes, results, files, locks, paths, config, names. Imports no other part."""
