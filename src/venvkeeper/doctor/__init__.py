"""``venvkeeper doctor`` and ``venvkeeper heal``: what is wrong with an environment, and the repair."""
