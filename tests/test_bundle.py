"""Bundles: packed byte for byte reproducibly, and refused, before anything is written, when damaged.

The bad bundles are written with tarfile by hand (``hand_tar``): what a broken or hostile packer
could produce. Each refusal is checked the way install meets it: read_bundle, then extract into a
fresh directory, which must never be reached.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from venvkeeper import signing
from venvkeeper.bundle import (
    MANIFEST,
    SIGNATURE,
    TOP,
    BundleError,
    CheckedBundle,
    describe,
    extract,
    manifest_bytes,
    read_bundle,
    write_bundle,
)
from venvkeeper.errors import ConfigError
from venvkeeper.exitcodes import ExitCode

WHEEL = "wheels/tiny-1.0-py3-none-any.whl"
FILES: dict[str, bytes] = {
    "pylock.toml": b'lock-version = "1.0"\ncreated-by = "venvkeeper"\n',
    WHEEL: b"PK\x03\x04 the wheel's bytes; read_bundle only hashes them\n",
    "uv/uv": b"#!/bin/sh\necho uv\n",
}
MTIME = 1_700_000_000


def manifest_for(files: Mapping[str, bytes | Path]) -> dict[str, Any]:
    return {
        "format": TOP,
        "format_version": 1,
        "project": {"name": "example-site", "version": "0.0.0"},
        "target": {"python": "3.11", "implementation": "cp", "platforms": ["linux_x86_64"], "abi3": True},
        "groups": [],
        "built_from": {"lock_sha256": "0" * 64, "git_commit": None, "venvkeeper": "0.1.0", "uv": "0.9.0"},
        "files": describe(files),
    }


def pack(
    path: Path,
    files: Mapping[str, bytes | Path] = FILES,
    *,
    mtime: int = MTIME,
    private_key: bytes | None = None,
) -> Path:
    manifest = manifest_for(files)
    signature = signing.sign(private_key, manifest_bytes(manifest)) if private_key else None
    with path.open("wb") as out:
        write_bundle(out, files, manifest, mtime=mtime, signature=signature)
    return path


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    """A header with no content: a link, a device, or a regular file claiming 3 GiB."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind == tarfile.REGTYPE:
        info.size = 3 << 30
    return info, b""


def good_members(
    files: Mapping[str, bytes] = FILES, *, manifest: bytes | None = None, signature: bytes | None = None
) -> list[tuple[tarfile.TarInfo, bytes]]:
    """A correct bundle's entries (manifest describing ``files``) to add a bad entry to."""
    raw = manifest if manifest is not None else manifest_bytes(manifest_for(files))
    members = [regular(f"{TOP}/{MANIFEST}", raw)]
    if signature is not None:
        members.append(regular(f"{TOP}/{SIGNATURE}", signature))
    return members + [regular(f"{TOP}/{rel}", data) for rel, data in sorted(files.items())]


def hand_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], *, pax: bool = False) -> Path:
    """Headers and contents written one by one, as any packer could (even a 3 GiB size and no content)."""
    with gzip.open(path, "wb") as gz:
        for info, data in members:
            gz.write(
                info.tobuf(tarfile.PAX_FORMAT if pax else tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
            )
            gz.write(data + b"\0" * (-len(data) % tarfile.BLOCKSIZE))
        gz.write(b"\0" * 2 * tarfile.BLOCKSIZE)
    return path


def refused(bundle: Path, tmp_path: Path, *, public_key: bytes | None = None) -> str:
    """install's two passes over ``bundle``: the first must refuse it, and nothing be written."""
    dest = tmp_path / "dest"
    dest.mkdir()
    accepted: list[CheckedBundle] = []
    with pytest.raises(BundleError) as caught:
        checked = read_bundle(bundle, public_key=public_key)
        accepted.append(checked)
        extract(bundle, checked, dest)
    assert accepted == [], "read_bundle accepted the bundle; extract ran"
    assert list(dest.iterdir()) == []
    assert caught.value.code == "bundle"
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "\n" not in caught.value.message
    return caught.value.message


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return signing.generate_keypair()


# --- packing ---------------------------------------------------------------------------------------


def test_packing_twice_gives_identical_bytes_and_the_mtime_changes_them(tmp_path: Path) -> None:
    wheel = tmp_path / "tiny-1.0-py3-none-any.whl"
    wheel.write_bytes(FILES[WHEEL])
    files: dict[str, bytes | Path] = {**FILES, WHEEL: wheel}  # a Path and bytes pack the same

    first = pack(tmp_path / "first.tar.gz", files)
    second = pack(tmp_path / "second.tar.gz", FILES)
    later = pack(tmp_path / "later.tar.gz", files, mtime=MTIME + 1)

    assert sha256(first) == sha256(second)
    assert sha256(later) != sha256(first)
    raw = first.read_bytes()
    assert raw[3] == 0, "gzip flags: no file name"
    assert raw[4:8] == b"\0\0\0\0", "gzip mtime 0"
    with tarfile.open(first, "r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [f"{TOP}/{rel}" for rel in ["manifest.json", *sorted(FILES)]]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", MTIME)}
    assert {m.name: m.mode for m in members}[f"{TOP}/uv/uv"] == 0o755
    assert {m.mode for m in members if not m.name.endswith("uv/uv")} == {0o644}


def test_write_refuses_a_file_changed_since_it_was_described(tmp_path: Path) -> None:
    wheel = tmp_path / "tiny.whl"
    wheel.write_bytes(b"original")
    manifest = manifest_for({WHEEL: wheel})
    wheel.write_bytes(b"replaced")  # same size, other bytes

    with (tmp_path / "b.tar.gz").open("wb") as out, pytest.raises(BundleError) as caught:
        write_bundle(out, {WHEEL: wheel}, manifest, mtime=0)

    assert caught.value.message == f"{WHEEL}: changed while it was packed: its sha256 is not the manifest's"


def test_write_refuses_files_the_manifest_does_not_describe(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"differ: \['extra'\]"):
        write_bundle(io.BytesIO(), {**FILES, "extra": b"x"}, manifest_for(FILES), mtime=0)
    with pytest.raises(ValueError, match=r"\.\./x: has '\.\.' in its name"):
        write_bundle(io.BytesIO(), {"../x": b"x"}, manifest_for({"../x": b"x"}), mtime=0)


# --- reading and extracting --------------------------------------------------------------------------


def test_round_trip_extracts_the_same_bytes(tmp_path: Path) -> None:
    bundle = pack(tmp_path / "b.tar.gz")
    dest = tmp_path / "dest"
    dest.mkdir()

    checked = read_bundle(bundle, public_key=None)
    extract(bundle, checked, dest)

    assert checked.signed is False
    assert checked.manifest == manifest_for(FILES)
    assert checked.manifest_bytes == manifest_bytes(manifest_for(FILES))
    assert set(checked.files) == {MANIFEST, *FILES}
    for rel, data in FILES.items():
        assert (dest / rel).read_bytes() == data
        assert checked.files[rel] == (len(data), hashlib.sha256(data).hexdigest())
    assert (dest / MANIFEST).read_bytes() == checked.manifest_bytes
    assert stat.S_IMODE((dest / "uv/uv").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / WHEEL).stat().st_mode) == 0o644


def test_a_signed_bundle_verifies_with_its_key(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    bundle = pack(tmp_path / "b.tar.gz", private_key=private)
    dest = tmp_path / "dest"
    dest.mkdir()

    checked = read_bundle(bundle, public_key=public)
    extract(bundle, checked, dest)

    assert checked.signed is True
    assert (dest / SIGNATURE).stat().st_size == 64
    assert (dest / WHEEL).read_bytes() == FILES[WHEEL]


def test_extract_refuses_a_bundle_replaced_after_it_was_checked(tmp_path: Path) -> None:
    bundle = pack(tmp_path / "b.tar.gz")
    checked = read_bundle(bundle, public_key=None)
    # Same manifest, other wheel bytes of the same size: only a hash can tell.
    swapped = good_members(manifest=checked.manifest_bytes, files={**FILES, WHEEL: FILES[WHEEL].upper()})
    hand_tar(bundle, swapped)
    dest = tmp_path / "dest"
    dest.mkdir()

    with pytest.raises(BundleError) as caught:
        extract(bundle, checked, dest)

    assert caught.value.message == f"{bundle}: {TOP}/{WHEEL}: changed since the bundle was checked"


def test_extract_never_follows_a_link_in_the_destination(tmp_path: Path) -> None:
    bundle = pack(tmp_path / "b.tar.gz")
    checked = read_bundle(bundle, public_key=None)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "wheels").symlink_to(outside)

    with pytest.raises(OSError, match="wheels"):
        extract(bundle, checked, dest)

    assert list(outside.iterdir()) == []


# --- refused: the archive ------------------------------------------------------------------------------


def test_a_truncated_bundle_is_refused(tmp_path: Path) -> None:
    bundle = pack(tmp_path / "b.tar.gz")
    raw = bundle.read_bytes()
    bundle.write_bytes(raw[: len(raw) // 2])

    message = refused(bundle, tmp_path)

    assert message.startswith(f"{bundle}: ")
    assert "truncated or corrupt (the gzip stream ends early)" in message


def test_a_flipped_byte_in_the_gzip_stream_is_refused(tmp_path: Path) -> None:
    bundle = pack(tmp_path / "b.tar.gz")
    raw = bytearray(bundle.read_bytes())
    raw[-8] ^= 0xFF  # the CRC-32 of the content: only reading to the end finds it
    bundle.write_bytes(raw)

    assert "truncated or corrupt (Error -3 while decompressing data: incorrect data check)" in refused(
        bundle, tmp_path
    )


def test_every_flipped_byte_is_refused(tmp_path: Path) -> None:
    bundle = pack(tmp_path / "b.tar.gz")
    raw = bundle.read_bytes()
    # Bytes 4-9 of the gzip header (mtime, compression hint, OS) describe nothing of the content.
    for offset in [*range(4), *range(10, len(raw))]:
        damaged = bytearray(raw)
        damaged[offset] ^= 0xFF
        bundle.write_bytes(damaged)
        with pytest.raises(BundleError):
            read_bundle(bundle, public_key=None)


def test_data_after_the_end_of_the_archive_is_refused(tmp_path: Path) -> None:
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as writer:
        for info, data in good_members():
            writer.addfile(info, io.BytesIO(data))
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(gzip.compress(tar.getvalue() + b"hidden"))

    assert refused(bundle, tmp_path) == f"{bundle}: data after the end of the archive"


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(b"PK\x03\x04 a zip file")

    message = refused(bundle, tmp_path)

    assert message == (
        f"{bundle}: the first entry: not a gzip file (a bundle is the .tar.gz venvkeeper pack writes)"
    )


# --- refused: the entries ------------------------------------------------------------------------------

BAD_ENTRIES: dict[str, tuple[Callable[[], list[tuple[tarfile.TarInfo, bytes]]], str]] = {
    "dotdot": (
        lambda: [*good_members(), regular(f"{TOP}/../../etc/x", b"x")],
        f"{TOP}/../../etc/x: has '..' in its name",
    ),
    "absolute": (lambda: [regular("/etc/x", b"x"), *good_members()], "/etc/x: has an absolute name"),
    "outside-top": (lambda: [*good_members(), regular("etc/x", b"x")], f"etc/x: has a name outside {TOP}/"),
    "symlink": (
        lambda: [*good_members(), special(f"{TOP}/wheels/x", tarfile.SYMTYPE, "/etc/passwd")],
        f"{TOP}/wheels/x: is a symbolic link to '/etc/passwd', not a regular file",
    ),
    "hardlink": (
        lambda: [*good_members(), special(f"{TOP}/wheels/x", tarfile.LNKTYPE, f"{TOP}/pylock.toml")],
        f"{TOP}/wheels/x: is a hard link to '{TOP}/pylock.toml', not a regular file",
    ),
    "device": (
        lambda: [*good_members(), special(f"{TOP}/wheels/x", tarfile.CHRTYPE)],
        f"{TOP}/wheels/x: is a character device, not a regular file",
    ),
    "fifo": (
        lambda: [*good_members(), special(f"{TOP}/wheels/x", tarfile.FIFOTYPE)],
        f"{TOP}/wheels/x: is a FIFO, not a regular file",
    ),
    "directory": (
        lambda: [special(f"{TOP}/wheels", tarfile.DIRTYPE), *good_members()],
        f"{TOP}/wheels: is a directory, not a regular file",
    ),
    "duplicate": (
        lambda: [*good_members(), regular(f"{TOP}/pylock.toml", b"again")],
        f"{TOP}/pylock.toml: appears twice",
    ),
    "not-in-manifest": (
        lambda: [*good_members(), regular(f"{TOP}/wheels/extra-1.0-py3-none-any.whl", b"extra")],
        f"{TOP}/wheels/extra-1.0-py3-none-any.whl: is in the bundle but not in its manifest",
    ),
    "manifest-file-missing": (
        lambda: [m for m in good_members() if m[0].name != f"{TOP}/{WHEEL}"],
        f"{TOP}/{WHEEL}: is in the manifest but missing from the bundle",
    ),
    "no-manifest": (
        lambda: good_members()[1:],
        f"has no {TOP}/{MANIFEST}: this is not a venvkeeper bundle",
    ),
    "wrong-size": (
        lambda: good_members(manifest=manifest_bytes(manifest_for(FILES)), files={**FILES, WHEEL: b"short"}),
        f"{TOP}/{WHEEL}: size 5 is not the manifest's {len(FILES[WHEEL])}",
    ),
    "too-large": (
        # Only the header: the size alone refuses it, before any content is read.
        lambda: [*good_members(), special(f"{TOP}/wheels/huge.whl", tarfile.REGTYPE)],
        f"{TOP}/wheels/huge.whl: its size, {3 << 30} bytes, is not between 0 and the limit {2 << 30}",
    ),
    "short-signature": (
        lambda: good_members(signature=b"x" * 63),
        f"{TOP}/{SIGNATURE}: is 63 bytes; an Ed25519 signature is 64",
    ),
    "file-and-directory": (
        lambda: [*good_members(), regular(f"{TOP}/wheels", b"x")],
        f"{TOP}/wheels: is both a file and a directory",
    ),
    "newer-format": (
        lambda: good_members(manifest=manifest_bytes({**manifest_for(FILES), "format_version": 2})),
        f"{TOP}/{MANIFEST}: format_version is the number 2, not 1, the one this venvkeeper reads",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_a_bad_entry_is_refused_before_anything_is_written(case: str, tmp_path: Path) -> None:
    members, expected = BAD_ENTRIES[case]
    bundle = hand_tar(tmp_path / "b.tar.gz", members())

    message = refused(bundle, tmp_path)

    assert message.startswith(f"{bundle}: {expected}")


def test_a_flipped_wheel_byte_names_both_hashes(tmp_path: Path) -> None:
    flipped = b"Q" + FILES[WHEEL][1:]
    members = good_members(manifest=manifest_bytes(manifest_for(FILES)), files={**FILES, WHEEL: flipped})
    bundle = hand_tar(tmp_path / "b.tar.gz", members)

    message = refused(bundle, tmp_path)

    found, expected = hashlib.sha256(flipped).hexdigest(), hashlib.sha256(FILES[WHEEL]).hexdigest()
    assert message == f"{bundle}: {TOP}/{WHEEL}: sha256 {found} is not the manifest's {expected}"


def test_a_long_wheel_name_round_trips_through_a_pax_path(tmp_path: Path) -> None:
    long = f"wheels/{'x' * 120}-1.0-py3-none-any.whl"  # over ustar's 100: tarfile adds a pax path
    files = {**FILES, long: b"long"}
    bundle = tmp_path / "b.tar.gz"
    with bundle.open("wb") as out:
        write_bundle(out, files, manifest_for(files), mtime=0)

    checked = read_bundle(bundle, public_key=None)
    extract(bundle, checked, (dest := tmp_path / "dest").mkdir() or dest)

    assert (dest / long).read_bytes() == b"long"


def test_a_pax_header_with_more_than_a_path_is_refused(tmp_path: Path) -> None:
    info, data = regular(f"{TOP}/wheels/x.whl", b"x")
    info.pax_headers = {"linkpath": "/etc/passwd"}  # tarfile writes it as a pax record
    bundle = hand_tar(tmp_path / "b.tar.gz", [*good_members(), (info, data)], pax=True)

    message = refused(bundle, tmp_path)

    assert message.endswith("a pax header with linkpath: only a long path is allowed")


# --- refused: signatures -------------------------------------------------------------------------------


def test_a_signed_bundle_without_the_key_is_refused(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    bundle = pack(tmp_path / "b.tar.gz", private_key=keypair[0])

    message = refused(bundle, tmp_path)

    assert message == f"{bundle}: is signed ({TOP}/{SIGNATURE}): pass --public-key to check its signature"


def test_an_unsigned_bundle_with_a_key_is_refused(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    bundle = pack(tmp_path / "b.tar.gz")

    message = refused(bundle, tmp_path, public_key=keypair[1])

    assert message == f"{bundle}: is not signed (no {TOP}/{SIGNATURE}), but --public-key was given"


def test_a_wrong_key_is_refused(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    bundle = pack(tmp_path / "b.tar.gz", private_key=keypair[0])
    _, other_public = signing.generate_keypair()

    message = refused(bundle, tmp_path, public_key=other_public)

    assert message == f"{bundle}: {TOP}/{SIGNATURE}: the signature does not verify with the public key"


def test_an_altered_signature_is_refused(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    signature = bytearray(signing.sign(private, manifest_bytes(manifest_for(FILES))))
    signature[10] ^= 0x01
    bundle = hand_tar(tmp_path / "b.tar.gz", good_members(signature=bytes(signature)))

    message = refused(bundle, tmp_path, public_key=public)

    assert message == f"{bundle}: {TOP}/{SIGNATURE}: the signature does not verify with the public key"


def test_an_altered_manifest_with_the_original_signature_is_refused(
    tmp_path: Path, keypair: tuple[bytes, bytes]
) -> None:
    private, public = keypair
    manifest = manifest_for(FILES)
    signature = signing.sign(private, manifest_bytes(manifest))
    manifest["target"]["platforms"] = ["any"]  # still valid JSON, and every file still matches it
    bundle = hand_tar(
        tmp_path / "b.tar.gz", good_members(manifest=manifest_bytes(manifest), signature=signature)
    )

    message = refused(bundle, tmp_path, public_key=public)

    assert message == f"{bundle}: {TOP}/{SIGNATURE}: the signature does not verify with the public key"
    # Without the check, this bundle would pass: the signature is the only thing that tells.
    assert read_bundle(
        hand_tar(tmp_path / "unsigned.tar.gz", good_members(manifest=manifest_bytes(manifest))),
        public_key=None,
    ).manifest["target"]["platforms"] == ["any"]


# --- signing -----------------------------------------------------------------------------------------


def test_sign_and_verify(keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    signature = signing.sign(private, b"data")

    assert len(signature) == 64
    assert signing.verify(public, b"data", signature)
    assert not signing.verify(public, b"datA", signature)
    assert not signing.verify(public, b"data", signature[:-1])
    assert private.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_load_key_file(tmp_path: Path, keypair: tuple[bytes, bytes]) -> None:
    private, public = keypair
    (tmp_path / "key").write_bytes(private)
    (tmp_path / "key.pub").write_bytes(public)

    assert signing.load_key_file(tmp_path / "key", "private") == private
    assert signing.load_key_file(tmp_path / "key.pub", "public") == public


def _ec_public_key(_: tuple[bytes, bytes]) -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.mark.parametrize(
    ("content", "kind", "expected"),
    [
        (None, "public", "no such public key file"),
        (lambda _: b"not a key\n", "public", "not an Ed25519 public key in PEM form"),
        (lambda keys: keys[1], "private", "not an Ed25519 private key in PEM form"),
        (lambda keys: keys[0], "public", "not an Ed25519 public key in PEM form"),
        (_ec_public_key, "public", "not an Ed25519 public key in PEM form"),
        (lambda _: b"x" * 70_000, "private", "not an Ed25519 private key in PEM form"),
    ],
    ids=["missing", "garbage", "public-as-private", "private-as-public", "ec-key", "huge"],
)
def test_a_bad_key_file_is_one_line_naming_it(
    content: Callable[[tuple[bytes, bytes]], bytes] | None,
    kind: Literal["private", "public"],
    expected: str,
    tmp_path: Path,
    keypair: tuple[bytes, bytes],
) -> None:
    path = tmp_path / "key.pem"
    if content is not None:
        path.write_bytes(content(keypair))

    with pytest.raises(ConfigError) as caught:
        signing.load_key_file(path, kind)

    assert caught.value.message == f"{path}: {expected}"
    assert "venvkeeper keygen" in caught.value.hint


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        signing.load_key_file(tmp_path, "public")  # a directory

    assert caught.value.message == f"{tmp_path}: cannot read the public key file (Is a directory)"


def test_json_manifest_is_sorted_and_indented() -> None:
    raw = manifest_bytes({"b": 1, "a": [1]})

    assert raw == b'{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'
    assert json.loads(raw) == {"a": [1], "b": 1}


def test_write_refuses_a_file_that_shrank_since_it_was_described(tmp_path: Path) -> None:
    wheel = tmp_path / "tiny.whl"
    wheel.write_bytes(b"original")
    manifest = manifest_for({WHEEL: wheel})
    wheel.write_bytes(b"orig")

    with (tmp_path / "b.tar.gz").open("wb") as out, pytest.raises(BundleError) as caught:
        write_bundle(out, {WHEEL: wheel}, manifest, mtime=0)

    assert caught.value.message.startswith(f"{WHEEL}: became shorter while it was packed")
