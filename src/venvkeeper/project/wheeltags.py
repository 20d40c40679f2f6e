"""The wheel tags an interpreter accepts, built from what that interpreter says about itself.

``packaging.tags.sys_tags()`` describes the running interpreter: venvkeeper's own. The one a
generation runs may be another minor, PyPy, or a free-threaded (3.13t) or debug build of the same
minor, each taking other wheels. So that interpreter is asked, once and beside its environment
markers, for what packaging.tags would read from ``sys`` and ``sysconfig`` in it
(:data:`venvkeeper.generations.smoke.TAG_FACTS_SNIPPET`: standard library only, since it need not
have packaging), and the tags are built here with packaging.tags' own functions (``cpython_tags``,
``generic_tags``, ``compatible_tags``) from the :class:`TagFacts`, in sys_tags()' order.

The platform tags: when the interpreter's platform facts are venvkeeper's own (same machine, word
size and C library, the common case), packaging's ``platform_tags()`` exactly (it also checks the
executable's ELF ABI, and finds musl's version); otherwise they are derived from the facts (the
manylinux tags from its glibc version). Pure: no process, no network.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging import tags as packaging_tags

__all__ = ["TagFacts", "own_platform", "platforms", "summary", "tags_for"]

# glibc versions the legacy manylinux names stand for (PEP 600).
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class TagFacts:
    """What packaging.tags reads from a running interpreter, as another interpreter answered it."""

    implementation: str  # sys.implementation.name: cpython, pypy, graalpy...
    version: tuple[int, int]
    py_version_nodot: str | None
    py_debug: int | None  # sysconfig's Py_DEBUG (None: not set)
    gettotalrefcount: bool  # a debug build's sys.gettotalrefcount
    gil_disabled: int | None  # Py_GIL_DISABLED: a free-threaded build (3.13t)
    with_pymalloc: int | None  # WITH_PYMALLOC: the "m" of a 3.7 ABI
    ext_suffix: str | None  # EXT_SUFFIX: the ABI of a PyPy or GraalPy
    platform: str  # sysconfig.get_platform(): linux-x86_64, macosx-11.0-arm64
    system: str  # platform.system()
    machine: str
    is_32bit: bool
    glibc: str | None  # "glibc 2.36"; None: another C library (musl)
    mac_version: str = ""

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TagFacts:
        major, minor = (int(part) for part in raw["version"][:2])
        return cls(
            implementation=str(raw["implementation"]),
            version=(major, minor),
            py_version_nodot=_text(raw.get("py_version_nodot")),
            py_debug=_flag(raw.get("py_debug")),
            gettotalrefcount=bool(raw.get("gettotalrefcount")),
            gil_disabled=_flag(raw.get("gil_disabled")),
            with_pymalloc=_flag(raw.get("with_pymalloc")),
            ext_suffix=_text(raw.get("ext_suffix")),
            platform=str(raw["platform"]),
            system=str(raw.get("system", "")),
            machine=str(raw.get("machine", "")),
            is_32bit=bool(raw.get("is_32bit")),
            glibc=_text(raw.get("glibc")),
            mac_version=str(raw.get("mac_version") or ""),
        )

    @property
    def platform_key(self) -> tuple[str, str, bool, str | None, str]:
        """What decides its platform tags besides the executable itself (see :func:`own_platform`)."""
        return (self.platform, self.system, self.is_32bit, self.glibc, self.mac_version)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _flag(value: Any) -> int | None:
    return None if value is None else int(value)


def own_platform() -> tuple[str, str, bool, str | None, str]:
    """venvkeeper's own :attr:`TagFacts.platform_key`, read as TAG_FACTS_SNIPPET reads it."""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or None
    except (AttributeError, OSError, ValueError):
        glibc = None
    return (sysconfig.get_platform(), platform.system(), sys.maxsize <= 2**32, glibc, platform.mac_ver()[0])


@functools.cache
def _host_platforms() -> tuple[str, ...]:
    return tuple(packaging_tags.platform_tags())


def platforms(facts: TagFacts) -> tuple[str, ...]:
    """The platform tags the interpreter accepts, best first (as ``platform_tags()`` orders them)."""
    if facts.platform_key == own_platform():
        return _host_platforms()
    name = facts.platform.replace("-", "_").replace(".", "_").lower()
    if facts.system == "Darwin" and facts.mac_version:
        major, minor, *_ = (*(int(p) for p in facts.mac_version.split(".")[:2]), 0)
        return tuple(packaging_tags.mac_platforms((major, minor), facts.machine or name.rsplit("_", 1)[-1]))
    if not name.startswith("linux_"):
        return (name,)
    arch = name.removeprefix("linux_")
    if facts.is_32bit:
        arch = {"x86_64": "i686", "aarch64": "armv8l"}.get(arch, arch)
    archs = ["armv8l", "armv7l"] if arch == "armv8l" else [arch]
    found = [f"linux_{a}" for a in archs]
    if facts.glibc is not None and facts.glibc.startswith("glibc "):
        found += _manylinux(facts.glibc.removeprefix("glibc "), archs)
    # Another C library than venvkeeper's (musl under glibc): its version is not asked, so no musllinux.
    return tuple(found)


def _manylinux(version: str, archs: Sequence[str]) -> list[str]:
    """``manylinux_2_N_ARCH`` down to the oldest glibc of the architecture, with the legacy names."""
    try:
        major, newest = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return []
    if major != 2:
        return []
    oldest = 5 if set(archs) & {"x86_64", "i686"} else 17
    found: list[str] = []
    for arch in archs:
        for minor in range(newest, oldest - 1, -1):
            found.append(f"manylinux_2_{minor}_{arch}")
            if minor in _LEGACY_MANYLINUX:
                found.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
    return found


def _cpython_abis(facts: TagFacts) -> list[str]:
    """packaging.tags' CPython ABIs (``_cpython_abis``) for the interpreter the facts describe."""
    version = "".join(map(str, facts.version))
    debug = "d" if facts.py_debug or (facts.py_debug is None and facts.gettotalrefcount) else ""
    threading = "t" if facts.version >= (3, 13) and facts.gil_disabled else ""
    pymalloc = "m" if facts.version < (3, 8) and facts.with_pymalloc != 0 else ""
    abis = [f"cp{version}{threading}{debug}{pymalloc}"]
    if debug and facts.version >= (3, 8):
        abis.append(f"cp{version}{threading}")  # a debug build loads the normal extension modules too
    return abis


def _generic_abi(facts: TagFacts) -> list[str]:
    """packaging.tags' ``_generic_abi``: the ABI in EXT_SUFFIX (``.pypy39-pp73-x86_64-linux-gnu.so``)."""
    parts = (facts.ext_suffix or "").split(".")
    if len(parts) < 3:
        return []
    soabi = parts[1]
    if soabi.startswith("cpython") and "-" in soabi:
        abi = "cp" + soabi.split("-")[1]
    elif soabi.startswith("cp"):
        abi = soabi.split("-")[0]
    elif soabi.startswith("pypy"):
        abi = "-".join(soabi.split("-")[:2])
    elif soabi.startswith("graalpy"):
        abi = "-".join(soabi.split("-")[:3])
    else:
        abi = soabi
    return [abi.replace("-", "_").replace(".", "_").lower()] if abi else []


def tags_for(facts: TagFacts) -> list[packaging_tags.Tag]:
    """The wheel tags the interpreter accepts, best first: what ``sys_tags()`` says when run in it."""
    name = packaging_tags.INTERPRETER_SHORT_NAMES.get(facts.implementation) or facts.implementation
    nodot = facts.py_version_nodot or "".join(map(str, facts.version))
    accepted = platforms(facts)
    if name == "cp":
        found = list(packaging_tags.cpython_tags(facts.version, _cpython_abis(facts), accepted))
    else:
        found = list(packaging_tags.generic_tags(f"{name}{nodot}", _generic_abi(facts), accepted))
    interpreter = "pp3" if name == "pp" else f"cp{nodot}" if name == "cp" else None
    found += packaging_tags.compatible_tags(facts.version, interpreter, accepted)
    return found


def summary(tags: Sequence[packaging_tags.Tag]) -> str:
    """The tags in one line for a message: ``cp313-cp313t, cp313-none, py313-none, … on linux_x86_64, …``."""
    pairs = list(dict.fromkeys(f"{t.interpreter}-{t.abi}" for t in tags))
    places = list(dict.fromkeys(t.platform for t in tags if t.platform != "any"))
    more = ", …" if len(pairs) > 3 else ""
    where = f" on {', '.join(places[:2])}{', …' if len(places) > 2 else ''}" if places else ""
    return f"{', '.join(pairs[:3])}{more}{where}"
