"""The one way venvkeeper defers an import: a module name bound now, loaded on first use.

Start-up time is measured (the no-op deploy answers in tens of milliseconds, verify and doctor too), and
most of venvkeeper is not needed on those paths: click, rich, cryptography, packaging, uv's gateway. A
module that needs one of them on a slow path only declares it at the top, next to its other imports::

    from typing import TYPE_CHECKING

    from venvkeeper.core.lazy import lazy

    if TYPE_CHECKING:
        from venvkeeper.gateways import uv
    else:
        uv = lazy("venvkeeper.gateways.uv")

mypy reads the real import; at run time ``uv`` is a stand-in that imports the module the first time an
attribute is read. So the whole dependency graph stays visible at the top of every module
(``tests/test_architecture.py`` reads both forms and refuses cycles), and no import hides in a function.

Why not :class:`importlib.util.LazyLoader`: it puts a half-made module in ``sys.modules``, and its
first-use load was not thread-safe before CPython 3.13 (gh-114763); deploy reads modules from a thread
pool. The stand-in here never enters ``sys.modules``: the first time, it imports the module with the
``import`` statement's own machinery (:func:`__import__`, which takes the import lock, and which
``python -X importtime`` reports, as it does not report :func:`importlib.import_module`), then keeps that
module and reads every attribute from it, so a test that patches ``venvkeeper.gateways.uv.run_uv`` by its
dotted name is seen through it too.

Each read through the stand-in costs about a microsecond more than a plain module attribute: a module
read once per file in a loop (``hashlib`` while hashing thousands of files) is imported at the top.
"""

from __future__ import annotations

import sys
from types import ModuleType

TYPE_CHECKING = False  # typing is not imported at run time: this module is on every timed path
if TYPE_CHECKING:
    from typing import Any


class _Deferred(ModuleType):
    """A named module that is imported when an attribute is first read; every read goes to that module."""

    def _module(self) -> ModuleType:
        module: ModuleType | None = self.__dict__.get("_deferred_module")
        if module is None:
            # Two threads may both get here: the import holds the module's lock, so both get one module.
            __import__(self.__name__)
            module = sys.modules[self.__name__]
            self.__dict__["_deferred_module"] = module
        return module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._module(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._module(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._module(), attr)

    def __repr__(self) -> str:
        return f"<deferred module {self.__name__!r}>"


def lazy(name: str) -> ModuleType:
    """``name`` (a dotted module name) as a module that is imported on first use."""
    return _Deferred(name)
