"""Signed receipts (issue 16): ``venvkeeper receipt`` signs an in-toto statement of the live generation
in a DSSE envelope (Ed25519), and ``verify --receipt`` proves the running environment still matches."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vk import commit_all, site_packages, vk


def _pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding, written from the spec (not from the code under test)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def _deployed(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path, Path]:
    project = make_project("workspace")
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    (tmp_path / "keys").mkdir()
    key = tmp_path / "keys" / "receipts"
    assert vk(capsys, "keygen", key).code == 0
    return project, env, key


def _statement(envelope: dict[str, Any]) -> dict[str, Any]:
    statement: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return statement


def test_a_receipt_is_a_signed_in_toto_statement_of_the_live_generation(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env, key = _deployed(make_project, tmp_path, capsys)
    receipt = tmp_path / "host-a.receipt.json"

    signed = vk(capsys, "receipt", "--env", env, "--key", key, "-o", receipt)

    assert signed.code == 0, signed.err
    assert signed.out.startswith(f"{env} (generation 1): receipt signed (key ")
    envelope = json.loads(receipt.read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = _statement(envelope)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    home = tmp_path / "srv" / ".venv.venvkeeper" / "generations"
    manifest = hashlib.sha256((home / "0001.manifest.json").read_bytes()).hexdigest()
    record = json.loads((home / "0001.json").read_text())
    assert statement["subject"] == [{"name": str(home / "0001"), "digest": {"sha256": manifest}}]
    predicate = statement["predicate"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    )
    assert (predicate["generation"], predicate["lock_sha256"]) == (1, record["lock_sha256"])
    assert predicate["git_commit"] == head.stdout.strip() == record["git_commit"]
    assert predicate["packages"]["tinyweb"] == "1.0.0"
    # Checked as a standard DSSE verifier checks it: Ed25519 over the PAE of the payload.
    public = serialization.load_pem_public_key(Path(f"{key}.pub").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    [signature] = envelope["signatures"]
    public.verify(
        base64.b64decode(signature["sig"]),
        _pae(envelope["payloadType"], base64.b64decode(envelope["payload"])),
    )

    proved = vk(capsys, "verify", "--env", env, "--receipt", receipt, "--public-key", f"{key}.pub", "--json")
    assert proved.code == 0, proved.out
    assert {"check": "receipt", "status": "ok"}.items() <= next(
        c for c in proved.json["checks"] if c["check"] == "receipt"
    ).items()
    text = vk(capsys, "verify", "--env", env, "--receipt", receipt, "--public-key", f"{key}.pub")
    assert f"  receipt ok: signature verified with {key}.pub; made " in text.out


def test_a_receipt_is_refused_when_altered_or_signed_by_another_key(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, env, key = _deployed(make_project, tmp_path, capsys)
    receipt = tmp_path / "r.json"
    assert vk(capsys, "receipt", "--env", env, "--key", key, "-o", receipt).code == 0
    envelope = json.loads(receipt.read_text())
    statement = _statement(envelope)
    statement["predicate"]["generation"] = 7
    forged = tmp_path / "forged.json"
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    forged.write_text(json.dumps({**envelope, "payload": payload}))
    other = tmp_path / "keys" / "other"
    assert vk(capsys, "keygen", other).code == 0

    altered = vk(capsys, "verify", "--env", env, "--receipt", forged, "--public-key", f"{key}.pub")
    wrong_key = vk(capsys, "verify", "--env", env, "--receipt", receipt, "--public-key", f"{other}.pub")
    no_key = vk(capsys, "verify", "--env", env, "--receipt", receipt)

    assert altered.code == 2 and "its signature does not verify with the public key" in altered.error_line
    assert wrong_key.code == 2 and "its signature does not verify" in wrong_key.error_line
    assert no_key.code == 2 and "--receipt needs --public-key" in no_key.error_line


def test_a_receipt_no_longer_matches_after_a_new_generation_or_drift(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env, key = _deployed(make_project, tmp_path, capsys)
    receipt = tmp_path / "r.json"
    assert vk(capsys, "receipt", "--env", env, "--key", key, "-o", receipt).code == 0

    init = project / "packages" / "webapp" / "src" / "webapp" / "__init__.py"
    init.write_text(init.read_text() + "\n# changed\n")
    commit_all(project, "a member change")
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    moved = vk(capsys, "verify", "--env", env, "--receipt", receipt, "--public-key", f"{key}.pub", "--json")
    assert moved.code == 1
    named = {
        f["path"]: (f["expected"], f["actual"]) for f in moved.json["findings"] if f["category"] == "receipt"
    }
    assert named["generation"] == ("1", "2")
    assert set(named) == {"generation", "manifest_sha256"}  # the lock did not change

    # A drifted environment gets no receipt at all.
    target = site_packages(env) / "tinyweb" / "__init__.py"
    edited = target.read_text() + "\n# edited in place\n"
    target.unlink()  # a hard link into the session's uv cache: written in place, it would damage that too
    target.write_text(edited)
    refused = vk(capsys, "receipt", "--env", env, "--key", key, "-o", tmp_path / "r2.json")
    assert refused.code == 1 and "no receipt is signed" in refused.error_line
    assert not (tmp_path / "r2.json").exists()

    # Nor does a plain venv, which has no seal.
    plain = tmp_path / "plain"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(plain)], check=True)
    unsealed = vk(capsys, "receipt", "--env", plain, "--key", key)
    assert unsealed.code == 2 and "a receipt names a sealed generation" in unsealed.error_line
