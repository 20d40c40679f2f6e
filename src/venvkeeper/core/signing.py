"""Ed25519 keys and signatures, with ``cryptography`` (never hand-rolled): a bundle's manifest
signature (:mod:`venvkeeper.bundle`), and the key a receipt is signed with (:mod:`venvkeeper.verify.receipt`).

Keys travel as PEM: the private key PKCS#8 and unencrypted (``keygen`` writes it 0600; a passphrase
would need a prompt on every unattended ``pack``), the public key SubjectPublicKeyInfo. A signature is
the raw 64 bytes Ed25519 produces (:data:`venvkeeper.bundle.archive.SIGNATURE_SIZE`).

``cryptography`` takes about 30 ms to import, so the modules that a command may load without using
a key (keys, pack, archive, install) declare this one with :func:`venvkeeper.core.lazy.lazy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from venvkeeper.core.errors import ConfigError

__all__ = ["generate_keypair", "load_key_file", "private_key", "public_key", "sign", "verify"]

# A PEM Ed25519 key is about 120 bytes; reading at most this much keeps `--public-key /dev/zero` finite.
_MAX_KEY_FILE = 64 * 1024
_HINT = "Make a key pair with `venvkeeper keygen`: sign with the private key, check with the public key."


def generate_keypair() -> tuple[bytes, bytes]:
    """A new key pair: (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def private_key(private_pem: bytes) -> Ed25519PrivateKey:
    """The key of PEM bytes (:func:`load_key_file` checked them); another kind is a ValueError."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        # ValueError, as cryptography's own loaders raise for a key they cannot use.
        raise ValueError(f"not an Ed25519 private key: {type(key).__name__}")  # noqa: TRY004
    return key


def public_key(public_pem: bytes) -> Ed25519PublicKey:
    """The key of PEM bytes (:func:`load_key_file` checked them); another kind is a ValueError."""
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key: {type(key).__name__}")  # noqa: TRY004
    return key


def sign(private_pem: bytes, data: bytes) -> bytes:
    """The raw 64-byte signature of ``data``. A key that is not Ed25519 private PEM is a ValueError."""
    return private_key(private_pem).sign(data)


def verify(public_pem: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the key's signature of ``data``.

    A bad signature is False (the caller refuses the bundle); a key that is not Ed25519 public PEM is
    a ValueError, because that is the caller's mistake (:func:`load_key_file` checks key files first).
    """
    key = public_key(public_pem)
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def load_key_file(path: Path, kind: Literal["private", "public"]) -> bytes:
    """The PEM bytes of a key file, checked to be an Ed25519 key of ``kind``.

    Every problem is one ConfigError line naming the file.
    """
    try:
        with path.open("rb") as fh:
            pem = fh.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such {kind} key file", hint=_HINT) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {kind} key file ({exc.strerror})", hint=_HINT) from exc
    not_a_key = ConfigError(f"{path}: not an Ed25519 {kind} key in PEM form", hint=_HINT)
    if len(pem) > _MAX_KEY_FILE:
        raise not_a_key
    try:
        (private_key if kind == "private" else public_key)(pem)
    except TypeError as exc:
        # cryptography raises TypeError for an encrypted private key loaded without a password.
        raise ConfigError(
            f"{path}: the private key is encrypted; venvkeeper reads unencrypted keys only", hint=_HINT
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise not_a_key from exc
    return pem
