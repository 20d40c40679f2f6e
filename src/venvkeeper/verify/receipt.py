"""Signed receipts: a statement of what the live generation is, that someone else can check.

``venvkeeper receipt --env PATH --key KEY`` verifies the environment in full first (a drifted
environment gets no receipt), then signs an in-toto Statement v1 (https://in-toto.io/Statement/v1)
about it in a DSSE envelope (https://github.com/secure-systems-lab/dsse), Ed25519, with
securesystemslib, so that standard DSSE and in-toto tooling can check the signature. The statement's
subject is the generation's sealed manifest, by its sha256 (the manifest names every file's hash);
its predicate the lock's hash, the commit, the interpreter, the packages, the host and the time.

``venvkeeper verify --env PATH --receipt FILE --public-key KEY`` checks the signature before reading
anything the envelope says (a bad one is refused, never warned about), then that the live generation
is the one the receipt names (generation, manifest, lock), then verifies every file as ``verify``
does. Hosts of a fleet can compare their receipts' subjects: the same digest is the same files.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from venvkeeper import __version__
from venvkeeper.core import files as fsutil
from venvkeeper.core import signing
from venvkeeper.core.errors import CannotVerifyError, VenvkeeperError
from venvkeeper.generations.findings import Finding
from venvkeeper.generations.inspection import Check, Subject, inspect, repair_command, sealed_subject
from venvkeeper.sbom import read as sbomread
from venvkeeper.verify.result import ReceiptResult

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "check_receipt", "sign_receipt"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# venvkeeper's own predicate (its fields: _predicate below); versioned, so a later one can differ.
PREDICATE_TYPE = "https://example.org/venvkeeper/receipt/v1"
_MAX_RECEIPT = 16 * 1024 * 1024  # a receipt is a few kB; bounded so a hostile file cannot exhaust memory


class DriftError(VenvkeeperError):
    """The environment differs from its seal: no receipt is signed for it."""

    code = "drift"


_NAMES = "a receipt names a sealed generation"  # why an environment without a seal gets no receipt


def _statement(subject: Subject, manifest_sha256: str, files: int) -> dict[str, Any]:
    # The SBOM written with the generation (checked against its record); None for one made before.
    sbom_sha256 = sbomread.live_sbom_sha256(subject)
    state = subject.state or {}
    interpreter = state.get("interpreter") or {}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject.directory, "digest": {"sha256": manifest_sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "env": os.path.abspath(subject.env),
            "generation": subject.generation,
            "kind": subject.kind,
            "lock_sha256": state.get("lock_sha256"),
            "git_commit": state.get("git_commit"),
            "manifest_sha256": manifest_sha256,
            "sbom_sha256": sbom_sha256,
            "interpreter": {k: interpreter.get(k) for k in ("path", "realpath", "version", "implementation")},
            "packages": dict(sorted((state.get("packages") or {}).items())),
            "host": socket.gethostname(),
            "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "venvkeeper": __version__,
            "verified_files": files,
        },
    }


def _manifest_sha256(subject: Subject) -> str:
    """The record's seal of the manifest: what verify holds the manifest file to (inspect refuses a
    manifest that differs from it), so the receipt names the very files verify checked."""
    recorded = (subject.state or {}).get("manifest_sha256")
    if isinstance(recorded, str) and recorded:
        return recorded
    assert subject.manifest_path is not None  # noqa: S101 - _subject_of made sure
    with open(subject.manifest_path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _read_bounded(path: Path) -> bytes:
    """At most _MAX_RECEIPT bytes: `--receipt /dev/zero` must not exhaust memory."""
    with open(path, "rb") as fh:
        return fh.read(_MAX_RECEIPT)


def sign_receipt(env: str, key_path: Path, output: Path | None) -> ReceiptResult:
    """Verify ``env`` in full, then sign the statement of what it is (written to ``output`` if given)."""
    private = signing.private_key(signing.load_key_file(key_path, "private"))
    subject = sealed_subject(env, _NAMES)
    inspected = inspect(subject)
    if inspected.findings:
        found = len(inspected.findings)
        raise DriftError(
            f"{env}: verify found {found} difference(s) from its seal: no receipt is signed",
            hint=f"`venvkeeper verify --env {env}` shows them; `{repair_command(subject.state)}` rebuilds",
        )
    statement = _statement(subject, _manifest_sha256(subject), inspected.files)
    public = SSlibKey.from_crypto(private.public_key())
    envelope = Envelope(
        payload=json.dumps(statement, sort_keys=True).encode(), payload_type=PAYLOAD_TYPE, signatures={}
    )
    envelope.sign(CryptoSigner(private, public))
    document = envelope.to_dict()
    if output is not None:
        fsutil.atomic_write_bytes(output, json.dumps(document, indent=2).encode() + b"\n")
    return ReceiptResult(
        command="receipt",
        env=env,
        output=None if output is None else str(output),
        keyid=public.keyid,
        statement=statement,
        envelope=document,
    )


def _envelope(receipt: Path, public: Ed25519PublicKey) -> dict[str, Any]:
    """The statement, once the signature has verified (nothing else is read before that)."""
    try:
        envelope = Envelope.from_dict(json.loads(_read_bounded(receipt)))
    except OSError as exc:
        raise CannotVerifyError(
            f"{receipt}: cannot be read: {exc.strerror}", hint="give the receipt file"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise CannotVerifyError(
            f"{receipt}: not a DSSE envelope", hint="give the file `venvkeeper receipt` wrote"
        ) from None
    try:
        envelope.verify([SSlibKey.from_crypto(public)], 1)
    except VerificationError:
        raise CannotVerifyError(
            f"{receipt}: its signature does not verify with the public key",
            hint="the receipt was altered after signing, or signed with another key: it proves nothing",
        ) from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise CannotVerifyError(f"{receipt}: payload type {envelope.payload_type!r}, not in-toto", hint="")
    try:
        statement: dict[str, Any] = json.loads(envelope.payload)
    except ValueError:
        raise CannotVerifyError(f"{receipt}: the signed payload is not JSON", hint="") from None
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        raise CannotVerifyError(
            f"{receipt}: not a venvkeeper receipt ({statement.get('predicateType')!r})",
            hint="give the file `venvkeeper receipt` wrote",
        )
    return statement


def check_receipt(env: str, receipt: Path, public_key: Path) -> tuple[list[Finding], list[Check]]:
    """What differs between the live environment and the receipt (after its signature verified)."""
    public = signing.public_key(signing.load_key_file(public_key, "public"))
    statement = _envelope(receipt, public)
    subject = sealed_subject(env, _NAMES)
    predicate = statement.get("predicate") or {}
    digests = [s.get("digest", {}).get("sha256") for s in statement.get("subject") or []]
    state = subject.state or {}
    now = {
        "generation": subject.generation,
        "manifest_sha256": _manifest_sha256(subject),
        "lock_sha256": state.get("lock_sha256"),
    }
    said = {
        "generation": predicate.get("generation"),
        "manifest_sha256": digests[0] if digests else None,
        "lock_sha256": predicate.get("lock_sha256"),
    }
    findings = [
        Finding("receipt", None, name, expected=str(said[name]), actual=str(now[name]), reference="receipt")
        for name in ("generation", "manifest_sha256", "lock_sha256")
        if said[name] != now[name]
    ]
    made = f"signature verified with {public_key}; made {predicate.get('time')} on {predicate.get('host')}"
    return findings, [Check("receipt", "findings" if findings else "ok", made)]
