"""What a built wheel provides (its top-level import names and console scripts), and a wheel made
reproducible."""

from __future__ import annotations

import configparser
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WheelInfo", "inspect_wheel", "normalize"]

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


def normalize(path: Path, mtime: int) -> None:
    """Rewrite ``path`` so that its bytes depend on its contents only: every entry stamped ``mtime``,
    in the order the backend wrote them, deflated at one level.

    Build backends honour SOURCE_DATE_EPOCH for some entries but not all (setuptools stamps the
    dist-info files with the time of the build), so the same member built twice would differ.
    The files and their RECORD hashes are unchanged: only zip metadata is.
    """
    stamp = time.gmtime(max(mtime, 315532800))[:6]  # a zip cannot say anything before 1980
    tmp = path.with_name(path.name + ".normalizing")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w") as target:
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=stamp)
            info.external_attr = entry.external_attr
            info.create_system = 3  # unix, whatever built it
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, source.read(entry), compresslevel=9)
    os.replace(tmp, path)
