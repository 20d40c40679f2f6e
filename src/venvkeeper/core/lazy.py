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

On the timed paths themselves (the no-op deploy, verify, doctor), where importing :mod:`typing` is
a cost of its own, write ``TYPE_CHECKING = False`` instead of importing it: mypy treats that constant
like typing's. mypy reads the real import; at run time ``uv`` is a stand-in that imports the module
the first time an attribute is read. So the whole dependency graph stays visible at the top of every module
(``tests/test_architecture.py`` reads both forms and refuses cycles), and no import hides in a function.

Why not :class:`importlib.util.LazyLoader`: it puts a half-made module in ``sys.modules``, and its
first-use load was not thread-safe until CPython fixed gh-114763 in 2024 (after 3.11, which venvkeeper
supports); deploy reads modules from a thread pool. The stand-in here never enters ``sys.modules``: it
imports with ``__import__`` (which takes the import lock) the first time, then keeps that module and
reads every attribute from it, so a test that patches ``venvkeeper.gateways.uv.find_uv`` by its dotted
name is seen through a stand-in for ``venvkeeper.gateways.uv`` too.
"""

from __future__ import annotations

import sys

# Not ``from typing import ...``: this module is on every timed path, and importing typing costs more
# than the rest of it (mypy treats a module-level TYPE_CHECKING = False as typing's).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any
else:
    ModuleType = type(sys)  # types.ModuleType, without importing types


class _Deferred(ModuleType):
    """A named module that is imported when an attribute is first read; every read goes to that module."""

    def _module(self) -> ModuleType:
        module: ModuleType | None = self.__dict__.get("_deferred_module")
        if module is None:
            # Two threads may both get here: __import__ holds the import lock, so both get one module.
            __import__(self.__name__)  # importlib.import_module's work, without importing importlib
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
