"""``venvkeeper keygen``: an Ed25519 key pair for signing bundles (the crypto is in :mod:`signing`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from venvkeeper.core.errors import ConfigError
from venvkeeper.core.lazy import lazy
from venvkeeper.core.results import Result

if TYPE_CHECKING:
    from venvkeeper.core import signing
else:
    signing = lazy("venvkeeper.core.signing")  # cryptography: loaded by keygen, not by the command line

__all__ = ["KeygenResult", "keygen"]


@dataclass
class KeygenResult(Result):
    private_key: str
    public_key: str
    command: str = "keygen"

    def payload(self) -> dict[str, Any]:
        return {"private_key": self.private_key, "public_key": self.public_key}


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: an existing key is never overwritten (a lost private key cannot be had back).
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConfigError(f"{path}: already exists", hint="choose another name, or remove it first") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be written: {exc.strerror}", hint="check the directory") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def keygen(private_key: Path) -> KeygenResult:
    public_key = private_key.with_name(private_key.name + ".pub")
    if public_key.exists():
        raise ConfigError(f"{public_key}: already exists", hint="choose another name, or remove it first")
    private_pem, public_pem = signing.generate_keypair()
    _write_new(private_key, private_pem, 0o600)
    _write_new(public_key, public_pem, 0o644)
    return KeygenResult(str(private_key), str(public_key))
