"""A gzip file's content, read so that any damage, and anything but a little padding after it, is refused.

The gzip layer of :mod:`archive`'s reader is zlib's own, not :class:`gzip.GzipFile`, which skips
any amount of zero bytes after the stream, one ``read(1)`` at a time: what may follow the
archive's end is bounded here (docs/bundle.md, "Limits"). Standard library only.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

__all__ = ["Gunzip", "StreamError"]

# Bytes of the file after the archive's end: the compressed trailer, the gzip trailers of its
# members and, as gzip(1) and Python's gzip allow, zero bytes after the last member.
_MAX_RAW_TAIL = 64 * 1024
_CHUNK = 1024 * 1024


class StreamError(Exception):
    """The gzip stream is damaged, or more follows it than may: the message says which."""


class Gunzip:
    """A gzip file's content, member after member, decompressed by zlib, which checks each
    member's header, CRC-32 and length (wbits 31: a gzip wrapper).

    Zero bytes may follow the last member (gzip(1) and Python's gzip accept such padding);
    once :meth:`limit_tail` is called at the archive's end, at most ``_MAX_RAW_TAIL`` more bytes
    of the file may be read, whatever they decompress to.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._z = zlib.decompressobj(wbits=31)
        self._input = b""  # read from the file, not yet given to zlib
        self._raw = 0  # bytes read from the file
        self._limit: int | None = None
        self._end = False
        self._started = False

    def _consumed(self) -> int:
        return self._raw - len(self._input) - len(self._z.unconsumed_tail) - len(self._z.unused_data)

    def _check_limit(self) -> None:
        if self._limit is not None and self._consumed() > self._limit:
            raise StreamError(f"more than {_MAX_RAW_TAIL} bytes of the file after the end of the archive")

    def _take(self) -> bytes:
        if self._input:
            data, self._input = self._input, b""
            return data
        data = self._fh.read(_CHUNK)
        self._raw += len(data)
        return data

    def limit_tail(self) -> None:
        """From here on, at most ``_MAX_RAW_TAIL`` bytes of the file may be read."""
        self._limit = self._consumed() + _MAX_RAW_TAIL

    def read(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of the last member."""
        if not self._started:
            self._started = True
            self._input = self._take()
            if self._input[:2] != b"\x1f\x8b":
                raise StreamError("not a gzip file (a bundle is the .tar.gz venvkeeper pack writes)")
        out = bytearray()
        while len(out) < size and not self._end:
            if self._z.eof:
                self._next_member()
                continue
            data = self._z.unconsumed_tail or self._take()
            if not data:
                raise StreamError("truncated or corrupt (the gzip stream ends early)")
            out += self._z.decompress(data, size - len(out))
            self._check_limit()
        return bytes(out)

    def _next_member(self) -> None:
        """After a member: another member, zero padding to the end of the file, or the end."""
        self._input = self._z.unused_data + self._input
        self._z = zlib.decompressobj(wbits=31)
        data = self._take()
        if data[:1] not in (b"", b"\0"):  # another member (zlib checks its header)
            self._input = data
            return
        padding = 0
        while data:
            padding += len(data)
            if data.strip(b"\0"):
                raise StreamError("data after the end of the gzip stream")
            if padding > _MAX_RAW_TAIL:
                raise StreamError(f"more than {_MAX_RAW_TAIL} zero bytes after the end of the gzip stream")
            data = self._take()
        self._check_limit()
        self._end = True
