"""What a built wheel provides: its top-level import names and its console scripts."""

from __future__ import annotations

import configparser
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WheelInfo", "inspect_wheel"]

_EXTENSION_SUFFIXES = (".py", ".so", ".pyd")


@dataclass(frozen=True)
class WheelInfo:
    top_level: tuple[str, ...]
    scripts: tuple[str, ...]


def inspect_wheel(path: Path) -> WheelInfo:
    top: set[str] = set()
    scripts: list[str] = []
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        for name in names:
            first, _, rest = name.partition("/")
            if first.endswith((".dist-info", ".data")):
                continue
            if rest:
                # A directory counts when it is a package (regular or namespace with modules inside).
                if first.isidentifier() and rest.endswith(_EXTENSION_SUFFIXES):
                    top.add(first)
            elif first.endswith(_EXTENSION_SUFFIXES):
                module = first.split(".")[0]
                if module.isidentifier():
                    top.add(module)
        entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        if entry_points:
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep case
            parser.read_string(zf.read(entry_points).decode())
            for section in ("console_scripts", "gui_scripts"):
                if parser.has_section(section):
                    scripts.extend(parser.options(section))
    return WheelInfo(tuple(sorted(top)), tuple(sorted(scripts)))
