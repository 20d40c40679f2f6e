"""Hermetic test infrastructure: real wheels, a real local index, real fixture projects.

Nothing here reaches the network: uv and pip are pointed at :class:`~.index.LocalIndex` on
127.0.0.1, which serves fake distributions (:mod:`.packages`) and the build backends repacked
from the running interpreter (:mod:`.wheels`).
"""
