"""The command line: the fast argv paths, the click commands and the renderers."""
