"""A signed executable (``pack --executable --sign KEY``) and ``venvkeeper run-executable``.

The signature is Ed25519 (:mod:`venvkeeper.core.signing`, ``cryptography``) over the whole file,
detached in ``FILE.sig`` (the raw 64 bytes), so any Ed25519 verifier checks it without venvkeeper:
``openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in FILE -sigfile FILE.sig``. It cannot be
mistaken for a bundle's signature: that one signs a ``manifest.json``, and an executable starts
with ``#!/bin/sh``.

``run-executable`` reads the file once, into memory, checks the signature over those bytes, and
only then writes them to a private directory (0700) and runs that copy with ``/bin/sh`` (its ``#!``
line, checked; so a ``noexec`` temporary directory does not stop it): what runs is what was
checked, whatever happens to ``FILE`` meanwhile, and nothing of it is unpacked or run before.
A missing or bad signature is refused in one line, never warned about.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from venvkeeper.bundle.archive import BundleError
from venvkeeper.core import files as fsutil
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.lazy import lazy
from venvkeeper.core.results import Result

if TYPE_CHECKING:
    from venvkeeper.core import signing
else:
    signing = lazy("venvkeeper.core.signing")

__all__ = ["SUFFIX", "RanResult", "VerifiedResult", "sign_file", "verified_copy", "verify_file"]

SUFFIX = ".sig"
_SIGNATURE_SIZE = 64  # Ed25519's
_MAX_FILE = 4 << 30  # read whole into memory to be checked: a carried-Python executable is ~20-80 MB
_COMMAND = "run-executable"
_SH = b"#!/bin/sh\n"  # every pack --executable file starts so


@dataclass
class VerifiedResult(Result):
    file: str
    signature: str
    public_key: str
    sha256: str
    size: int
    command: str = _COMMAND

    def payload(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "signature": self.signature,
            "public_key": self.public_key,
            "verified": True,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass
class RanResult(Result):
    """The program ran (its own output was its own); ``code`` is its exit status, the command's."""

    file: str
    code: int
    command: str = _COMMAND

    def payload(self) -> dict[str, Any]:
        return {"file": self.file, "program_exit_code": self.code}


def sign_file(path: Path, private_pem: bytes) -> Path:
    """Write ``path.sig``: the Ed25519 signature of the whole file (replaced atomically)."""
    signature = signing.sign(private_pem, _read(path))
    out = path.with_name(path.name + SUFFIX)
    fsutil.atomic_write_bytes(out, signature)
    return out


def verify_file(file: Path, public_key: Path, signature: Path | None) -> VerifiedResult:
    """``--verify-only``: the file checked against its signature and the key, or a BundleError."""
    result, _ = _verified(file, public_key, signature)
    return result


@contextlib.contextmanager
def verified_copy(file: Path, public_key: Path, signature: Path | None) -> Iterator[Path]:
    """A private copy of the checked bytes of ``file`` (same name, mode 0700), removed afterwards."""
    _, data = _verified(file, public_key, signature)
    if not data.startswith(_SH):
        raise BundleError(
            f"{file}: signed, but not a pack --executable file (it does not start with #!/bin/sh)",
            hint="run-executable runs the files pack --executable writes",
        )
    with tempfile.TemporaryDirectory(prefix="venvkeeper-run-") as private:  # mkdtemp: mode 0700
        copy = Path(private) / file.name
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        del data
        yield copy


def _verified(file: Path, public_key: Path, signature: Path | None) -> tuple[VerifiedResult, bytes]:
    pem = signing.load_key_file(public_key, "public")  # a bad key file: one line naming it
    sig_path = signature if signature is not None else file.with_name(file.name + SUFFIX)
    try:
        with sig_path.open("rb") as fh:
            sig = fh.read(_SIGNATURE_SIZE + 1)
    except OSError as exc:
        raise BundleError(
            f"{sig_path}: cannot read the signature ({exc.strerror}): {file} is refused, nothing was run",
            hint=f"get {sig_path.name} from where {file.name} came from, or pass --signature FILE",
        ) from exc
    if len(sig) != _SIGNATURE_SIZE:
        raise BundleError(
            f"{sig_path}: not an Ed25519 signature ({len(sig)} bytes, not 64):"
            f" {file} is refused, nothing was run",
            hint=f"get {sig_path.name} again from where {file.name} came from",
        )
    data = _read(file)
    if not signing.verify(pem, data, sig):
        raise BundleError(
            f"{file}: the signature {sig_path} is not {public_key}'s: refused, nothing was run or unpacked",
            hint="get the file and its .sig again from the publisher, and check the public key is theirs",
        )
    digest = hashlib.sha256(data).hexdigest()
    return VerifiedResult(str(file), str(sig_path), str(public_key), digest, len(data)), data


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})", hint="check the path") from exc
    if len(data) > _MAX_FILE:
        raise BundleError(f"{path}: larger than 4 GiB, too large to check in memory", hint="check the file")
    return data
