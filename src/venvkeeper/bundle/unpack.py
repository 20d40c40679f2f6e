"""Install's one pass: the wheels the wheel store lacks, written while the first pass checks them.

Without it, install read the bundle twice: :func:`archive.read_bundle` checked everything and wrote
nothing, then :func:`archive.extract` gunzipped and hashed it all again to write the wheels the
store lacked (40-60 ms for examples/webapp's 7 MiB bundle, the same for a bundle whose one changed
wheel is all the store lacks). :class:`Unpack` is the first pass's :class:`archive.Sink` instead.

What it writes, and when, keeps install's rule that nothing is installed before the whole bundle is
checked: it writes into a scratch directory only, and only a ``wheels/<file>`` entry

- read after manifest.json, and with a key after its signature, verified (pack writes them first;
  a bundle repacked in another order leaves the wheels before them to the second pass);
- that the manifest lists with this size (so no more is written than the manifest declares, and
  with a key, than the key's holder signed), and that ``wanted`` asks for (the store lacks it).

A manifest that does not parse, or a signature that does not verify, writes nothing: the pass then
refuses the bundle with its own message. A written wheel counts (:attr:`Unpack.unpacked`) only when
it hashed to the manifest's size and sha256; the caller renames those into the store only after
:func:`archive.read_bundle` returned, and removes the scratch directory whatever happened.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from venvkeeper.bundle import archive
from venvkeeper.bundle import check as bundlecheck
from venvkeeper.core.lazy import lazy

if TYPE_CHECKING:
    from venvkeeper.core import signing
else:
    signing = lazy("venvkeeper.core.signing")  # cryptography: only a --public-key check needs it

__all__ = ["Unpack"]


class Unpack:
    """An :class:`archive.Sink` writing the wanted wheels under ``dest`` (an existing directory).

    ``wanted(rel, size, sha256)``: whether to write this wheel (the manifest's size and sha256);
    ``skip(manifest_bytes)``: true when nothing is to be written at all (the bundle is live already).
    Used as a context manager, which holds ``dest`` open so that no link swapped in is followed.
    """

    def __init__(
        self,
        dest: Path,
        wanted: Callable[[str, int, str], bool],
        *,
        public_key: bytes | None,
        skip: Callable[[bytes], bool] = lambda raw: False,
    ) -> None:
        self.dest, self.wanted, self.public_key, self.skip = dest, wanted, public_key, skip
        self.unpacked: set[str] = set()  # written, and hashed to the manifest's size and sha256
        self.declined: set[str] = set()  # listed, but not wanted (the store holds them intact)
        self._listed: Mapping[str, tuple[int, str]] | None = None  # None: the manifest not read yet
        self._fd: int | None = None

    def __enter__(self) -> Unpack:
        self._fd = os.open(self.dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def start(self, rel: str, size: int, kept: Mapping[str, bytes]) -> BinaryIO | None:
        # Only a file right under wheels/: two written files can then never clash (one the other's
        # directory), which the pass refuses with its own message.
        if self._fd is None or not rel.startswith("wheels/") or "/" in rel.removeprefix("wheels/"):
            return None
        listed = self.listed(kept).get(rel)
        if listed is None or listed[0] != size:
            return None
        if not self.wanted(rel, size, listed[1]):
            self.declined.add(rel)
            return None
        return os.fdopen(archive.create_under(self._fd, rel), "wb")

    def done(self, rel: str, found: tuple[int, str]) -> None:
        if self._listed and self._listed.get(rel) == found:
            self.unpacked.add(rel)

    def listed(self, kept: Mapping[str, bytes]) -> Mapping[str, tuple[int, str]]:
        """The manifest's files once it (and with a key, its verified signature) has been read; empty
        before, and for good when it does not parse or verify, or ``skip`` says so."""
        if self._listed is not None:
            return self._listed
        if archive.MANIFEST not in kept or (self.public_key is not None and archive.SIGNATURE not in kept):
            return {}
        raw, self._listed = kept[archive.MANIFEST], {}
        with contextlib.suppress(archive.BundleError, bundlecheck.Malformed):
            if self.public_key is not None and not signing.verify(
                self.public_key, raw, kept[archive.SIGNATURE]
            ):
                return self._listed
            if not self.skip(raw):
                self._listed = archive.manifest_files(bundlecheck.parse_json(raw), "")
        return self._listed
