"""The interpreter and platform a bundle is for: its wheel tags and the marker environment of its lock.

``pack --python X.Y --platform TAG`` names another machine than this one. :func:`target_for` turns
those options into a :class:`Target`: the platform tags that machine runs, best first
(:func:`expand_platform`), the wheel tags it accepts (packaging.tags) and the PEP 508 environment
uv.lock's markers are evaluated in for it. Pure: no uv, no network.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging import tags
from packaging.markers import default_environment

from venvkeeper.core.errors import ConfigError

__all__ = ["Target", "expand_platform", "target_for"]


@dataclass(frozen=True)
class Target:
    """The interpreter and platform a bundle is for: ``python`` is ``X.Y``, ``implementation`` ``cp``."""

    python: str
    implementation: str
    platforms: tuple[str, ...]  # most specific first, as packaging.tags.platform_tags() gives them

    @classmethod
    def current(cls) -> Target:
        """This interpreter: its tags are exactly ``packaging.tags.sys_tags()`` (on CPython)."""
        return _current_target()

    @property
    def label(self) -> str:
        """``cp311-manylinux_2_36_x86_64``: the interpreter and its newest portable platform, for messages."""
        # packaging puts this machine's own linux_<arch> first; a manylinux tag says more to a reader.
        platform = next((p for p in self.platforms if not p.startswith("linux_")), self.platforms[0])
        return f"{self.implementation}{self.python.replace('.', '')}-{platform}"

    def to_json(self) -> dict[str, Any]:
        # cpython_tags() accepts abi3 wheels: every CPython since 3.2 loads them.
        abi3 = self.implementation == "cp"
        return {
            "python": self.python,
            "implementation": self.implementation,
            "platforms": list(self.platforms),
            "abi3": abi3,
        }

    def tags(self) -> list[tags.Tag]:
        """The wheel tags this target accepts, best first."""
        major, minor = self.python.split(".")
        version = (int(major), int(minor))
        interpreter = f"{self.implementation}{major}{minor}"
        if self.implementation == "cp":
            # This interpreter's own ABIs (a debug build's "d") only when the target is this Python.
            abis = None if version == sys.version_info[:2] else [interpreter]
            found = list(tags.cpython_tags(python_version=version, abis=abis, platforms=self.platforms))
        else:
            found = list(tags.generic_tags(interpreter=interpreter, platforms=self.platforms))
        found += tags.compatible_tags(
            python_version=version, interpreter=interpreter, platforms=self.platforms
        )
        return found

    def marker_environment(self) -> dict[str, str]:
        """The PEP 508 environment the lock's markers are evaluated in for this target."""
        current = _current_target()
        env = {key: str(value) for key, value in default_environment().items()}
        if self.platforms != current.platforms:
            env.update(_platform_markers(self.platforms[0]))
        if (self.python, self.implementation) != (current.python, current.implementation):
            # Another Python's patch release is not known: X.Y.0 (uv's markers bound X.Y).
            full = f"{self.python}.0"
            name, python_name = {"cp": ("cpython", "CPython"), "pp": ("pypy", "PyPy")}.get(
                self.implementation, (self.implementation, "")
            )
            env.update(
                python_version=self.python,
                python_full_version=full,
                implementation_version=full,
                implementation_name=name,
                platform_python_implementation=python_name,
            )
        return env


@functools.cache
def _current_target() -> Target:
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return Target(python, tags.interpreter_name(), tuple(tags.platform_tags()))


_LINUX = re.compile(
    r"(?:manylinux_\d+_\d+|manylinux1|manylinux2010|manylinux2014|musllinux_\d+_\d+|linux)_(\w+)"
)
_MAC = re.compile(r"macosx_(\d+)_(\d+)_(\w+)")
_MAC_ARCH = {"intel": "x86_64", "universal2": "arm64", "universal": "x86_64", "fat64": "x86_64"}
_WINDOWS = {"win32": "x86", "win_amd64": "AMD64", "win_arm64": "ARM64"}
_OS_MARKERS = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
    "mac": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"},
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
}


def _platform_markers(platform: str) -> dict[str, str]:
    if match := _LINUX.fullmatch(platform):
        system, machine = "linux", match.group(1)
    elif match := _MAC.fullmatch(platform):
        system, machine = "mac", _MAC_ARCH.get(match.group(3), match.group(3))
    elif platform in _WINDOWS:
        system, machine = "windows", _WINDOWS[platform]
    else:
        raise ConfigError(
            f"platform tag {platform}: venvkeeper cannot tell which operating system it is",
            hint="give a manylinux_*, musllinux_*, linux_*, macosx_* or win_* platform tag",
        )
    # platform_release and platform_version describe one kernel build: unknown for another host.
    return {
        **_OS_MARKERS[system],
        "platform_machine": machine,
        "platform_release": "",
        "platform_version": "",
    }


_MANYLINUX = re.compile(r"manylinux_2_(\d+)_(\w+)")
_MUSLLINUX = re.compile(r"musllinux_1_(\d+)_(\w+)")
_LEGACY_MANYLINUX = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}


def expand_platform(platform: str) -> tuple[str, ...]:
    """Every platform tag a host of ``platform`` also runs, best first.

    ``manylinux_2_17_x86_64`` runs every older glibc's wheels, under the new names and the legacy
    aliases (manylinux2014, manylinux2010, manylinux1), then ``linux_x86_64``: last, where packaging
    puts a machine's own first, because on another host a portable wheel is the safer choice.
    """
    for legacy, glibc in _LEGACY_MANYLINUX.items():
        if platform.startswith(legacy + "_"):
            platform = f"manylinux_2_{glibc}_{platform.removeprefix(legacy + '_')}"
    if match := _MANYLINUX.fullmatch(platform):
        newest, arch = int(match.group(1)), match.group(2)
        x86 = arch in ("x86_64", "i686")  # glibc 2.17 is the oldest manylinux of every other architecture
        expanded: list[str] = []
        for glibc in range(newest, 4 if x86 else 16, -1):
            expanded.append(f"manylinux_2_{glibc}_{arch}")
            expanded += (
                f"{name}_{arch}" for name, g in _LEGACY_MANYLINUX.items() if g == glibc and (x86 or g == 17)
            )
        return (*expanded, f"linux_{arch}")
    if match := _MUSLLINUX.fullmatch(platform):
        newest, arch = int(match.group(1)), match.group(2)
        return (*(f"musllinux_1_{minor}_{arch}" for minor in range(newest, -1, -1)), f"linux_{arch}")
    if match := _MAC.fullmatch(platform):
        return tuple(tags.mac_platforms((int(match.group(1)), int(match.group(2))), match.group(3)))
    return (platform,)


def target_for(python: str | None = None, platforms: Sequence[str] = ()) -> Target:
    """The target of ``--python X.Y`` and ``--platform TAG``...: this machine's for what is not given."""
    current = _current_target()
    if python is not None and not re.fullmatch(r"3\.\d+", python):
        raise ConfigError(f"--python {python}: not a Python version", hint="give major.minor, e.g. 3.11")
    expanded: list[str] = []
    for platform in platforms:
        if not re.fullmatch(r"[a-z0-9_]+", platform):
            raise ConfigError(
                f"--platform {platform}: not a platform tag",
                hint="e.g. manylinux_2_17_x86_64, macosx_11_0_arm64 or win_amd64",
            )
        # One kind of machine (and one venvkeeper can name): the lock's markers are evaluated once.
        machine = _platform_markers(platform)
        if expanded and machine != _platform_markers(expanded[0]):
            raise ConfigError(
                f"--platform {platform}: not the same system and machine as --platform {platforms[0]}",
                hint="pack one bundle per kind of machine",
            )
        expanded += (tag for tag in expand_platform(platform) if tag not in expanded)
    return Target(python or current.python, current.implementation, tuple(expanded) or current.platforms)
