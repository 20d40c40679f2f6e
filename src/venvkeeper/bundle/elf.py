"""What an ELF file needs from the dynamic linker: its machine, ``DT_NEEDED``, ``DT_RPATH``, ``DT_RUNPATH``.

``pack --with-python`` must know whether an interpreter tree can move to another path and another
machine (:mod:`venvkeeper.bundle.carried`). That is in each ELF file's dynamic section, read here
from the section headers with :mod:`struct` (32 and 64 bit, either byte order), so no ``readelf``
(binutils) need be installed and no process is started. A file that is not ELF is ``None``; a static
one has no dynamic section and needs nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["Dynamic", "ElfError", "read_dynamic"]

_MAGIC = b"\x7fELF"
_SHT_DYNAMIC = 6
_DT_NEEDED, _DT_RPATH, _DT_RUNPATH = 1, 15, 29
_MAX_TABLE = 64 * 1024 * 1024  # a section header table or string table larger than this is not a real one
# e_machine -> the name in a platform tag (manylinux_2_17_x86_64): the machines python-build-standalone builds
MACHINES = {3: "i686", 62: "x86_64", 40: "armv7l", 183: "aarch64", 21: "ppc64le", 22: "s390x", 243: "riscv64"}


class ElfError(Exception):
    """An ELF file whose headers do not hold together; the text says what."""


@dataclass(frozen=True)
class Dynamic:
    machine: str  # MACHINES' name, or "e_machine N"
    needed: tuple[str, ...]
    rpath: tuple[str, ...]  # DT_RPATH and DT_RUNPATH entries, in order (the loader's two lists)


def read_dynamic(path: Path) -> Dynamic | None:
    """The dynamic needs of ``path``, or None when it is not an ELF file. Raises ElfError or OSError."""
    with path.open("rb") as fh:
        ident = fh.read(64)
        if len(ident) < 52 or ident[:4] != _MAGIC:
            return None
        wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ElfError("an ELF header of unknown class or byte order")
        (e_machine,) = struct.unpack_from(order + "H", ident, 18)
        if wide:
            (shoff,) = struct.unpack_from(order + "Q", ident, 0x28)
            entsize, count = struct.unpack_from(order + "HH", ident, 0x3A)
        else:
            (shoff,) = struct.unpack_from(order + "I", ident, 0x20)
            entsize, count = struct.unpack_from(order + "HH", ident, 0x2E)
        machine = MACHINES.get(e_machine, f"e_machine {e_machine}")
        sections = _sections(fh, order, wide, shoff, entsize, count)
        needed: list[str] = []
        rpath: list[str] = []
        for kind, offset, size, link in sections:
            if kind != _SHT_DYNAMIC:
                continue
            if link >= len(sections):
                raise ElfError("the dynamic section names no string table")
            strings = _read(fh, sections[link][1], sections[link][2])
            step, fmt = (16, order + "qQ") if wide else (8, order + "iI")
            table = _read(fh, offset, size)
            for start in range(0, len(table) - step + 1, step):
                tag, value = struct.unpack_from(fmt, table, start)
                if tag == 0:
                    break
                if tag in (_DT_NEEDED, _DT_RPATH, _DT_RUNPATH):
                    text = _string(strings, value)
                    if tag == _DT_NEEDED:
                        needed.append(text)
                    else:
                        rpath.extend(entry for entry in text.split(":") if entry)
        return Dynamic(machine, tuple(needed), tuple(rpath))


def _sections(
    fh: BinaryIO, order: str, wide: bool, shoff: int, entsize: int, count: int
) -> list[tuple[int, int, int, int]]:
    """(sh_type, sh_offset, sh_size, sh_link) of each section header."""
    fmt = order + ("IIQQQQIIQQ" if wide else "IIIIIIIIII")
    if count == 0:
        return []
    if entsize < struct.calcsize(fmt) or entsize * count > _MAX_TABLE:
        raise ElfError("section headers of an impossible size")
    table = _read(fh, shoff, entsize * count)
    found = []
    for index in range(count):
        fields = struct.unpack_from(fmt, table, index * entsize)
        found.append((fields[1], fields[4], fields[5], fields[6]))
    return found


def _read(fh: BinaryIO, offset: int, size: int) -> bytes:
    if size > _MAX_TABLE:
        raise ElfError(f"a table of {size} bytes")
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise ElfError("a table past the end of the file")
    return data


def _string(strings: bytes, offset: int) -> str:
    end = strings.find(b"\0", offset)
    if offset >= len(strings) or end < 0:
        raise ElfError("a name outside the string table")
    return strings[offset:end].decode("utf-8", "replace")
