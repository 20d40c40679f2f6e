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
import shutil
import stat
import subprocess
import tarfile
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support import bundles
from venvkeeper.bundle import archive as bundle_module
from venvkeeper.bundle.archive import (
    MANIFEST,
    MAX_TRAILER,
    SIGNATURE,
    TOP,
    BundleError,
    CheckedBundle,
    extract,
    read_bundle,
)
from venvkeeper.bundle.writer import describe, manifest_bytes, write_bundle
from venvkeeper.core import signing
from venvkeeper.core.errors import ConfigError
from venvkeeper.core.exitcodes import ExitCode

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


def test_a_pax_key_with_a_newline_is_shown_on_one_line(tmp_path: Path) -> None:
    info, data = regular(f"{TOP}/wheels/x.whl", b"x")
    info.pax_headers = {"a\nb": "1"}  # a damaged key (test_bundle_fuzz found one by flipping a byte)
    bundle = hand_tar(tmp_path / "b.tar.gz", [*good_members(), (info, data)], pax=True)

    message = refused(bundle, tmp_path)

    assert message.endswith("a pax header with 'a\\nb': only a long path is allowed")
    assert "\n" not in message


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


# --- what may follow the archive's end ---------------------------------------------------------------


def _tree(root: Path, files: Mapping[str, bytes]) -> list[str]:
    """The bundle's files written under ``root``, as the sorted names a tar command is given."""
    raw = manifest_bytes(manifest_for(files))
    names = []
    for rel, data in {MANIFEST: raw, **files}.items():
        (root / TOP / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / TOP / rel).write_bytes(data)
        names.append(f"{TOP}/{rel}")
    return sorted(names)


def _tarfile_gz(root: Path, names: list[str], out: Path) -> None:
    with tarfile.open(out, "w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            tar.add(root / name, arcname=name)


WRITERS: dict[str, Callable[[Path, list[str], Path], None]] = {
    "tarfile": _tarfile_gz,
    "gnu-tar": lambda root, names, out: _run_tar("tar", root, names, out),
    "bsdtar": lambda root, names, out: _run_tar("bsdtar", root, names, out),
}


def _run_tar(program: str, root: Path, names: list[str], out: Path) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (bsdtar: Debian's libarchive-tools)")
    subprocess.run(
        [program, "--format=ustar", "-czf", str(out), "-C", str(root), *names],
        check=True,
        capture_output=True,
    )


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_bundle_repacked_by_a_tar_writer_is_accepted_at_every_record_offset(
    writer: str, tmp_path: Path
) -> None:
    trailers: set[int] = set()
    for blocks in range(tarfile.RECORDSIZE // tarfile.BLOCKSIZE):  # every offset in a 20-block record
        root = tmp_path / str(blocks)
        files = {**FILES, "wheels/pad.whl": b"p" * (blocks * tarfile.BLOCKSIZE)}
        out = root / "b.tar.gz"
        names = _tree(root, files)
        WRITERS[writer](root, names, out)

        checked = read_bundle(out, public_key=None)

        assert set(checked.files) == {MANIFEST, *files}
        trailers.add(_trailer(gzip.decompress(out.read_bytes())))
    # tarfile and GNU tar pad to a whole record, up to the bound; bsdtar writes the 2 end blocks.
    assert max(trailers) == (2 * tarfile.BLOCKSIZE if writer == "bsdtar" else MAX_TRAILER)


def _trailer(raw: bytes) -> int:
    """How many bytes follow the last entry's content (its padding to a block included)."""
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        last = tar.getmembers()[-1]
    return len(raw) - (last.offset_data + last.size + -last.size % tarfile.BLOCKSIZE)


def _tar(files: Mapping[str, bytes] = FILES) -> bytes:
    """The archive of ``files`` ending in its two zero blocks, no record padding."""
    return bundles.tar_bytes(files, manifest_bytes(manifest_for(files)))


def test_zero_blocks_up_to_a_tar_record_after_the_end_are_accepted_and_more_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    most = MAX_TRAILER - 2 * tarfile.BLOCKSIZE  # beyond the two end blocks tar_bytes writes

    bundle.write_bytes(bundles.gz(_tar() + b"\0" * most))
    read_bundle(bundle, public_key=None)
    bundle.write_bytes(bundles.gz(_tar() + b"\0" * (most + 1)))
    message = refused(bundle, tmp_path)

    assert message == (
        f"{bundle}: more than {MAX_TRAILER} zero bytes after the end of the archive"
        " (tar pads it with at most 21 blocks)"
    )


def test_a_gigabyte_of_zeros_after_the_end_is_refused_without_reading_it(tmp_path: Path) -> None:
    compress = zlib.compressobj(9, zlib.DEFLATED, 31)
    start = compress.compress(_tar()) + compress.flush(zlib.Z_FULL_FLUSH)
    # A full flush resets the window: each copy of this MiB of zeros stands on its own.
    mebibyte = compress.compress(b"\0" * (1 << 20)) + compress.flush(zlib.Z_FULL_FLUSH)
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(start + mebibyte * 1024)  # no gzip trailer: reading to the end would say so
    started = time.monotonic()

    message = refused(bundle, tmp_path)

    assert message.startswith(f"{bundle}: more than {MAX_TRAILER} zero bytes after the end of the archive")
    assert time.monotonic() - started < 5


def test_a_second_gzip_member_is_read_as_the_same_stream(tmp_path: Path) -> None:
    tar = _tar()
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(bundles.gz(tar[:3000]) + bundles.gz(tar[3000:]))  # as pigz -i or bgzip write

    assert set(read_bundle(bundle, public_key=None).files) == {MANIFEST, *FILES}


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b"\0" * 1000, None),  # gzip(1) and Python's gzip accept zero padding after the stream
        (b"\0" * (65 * 1024), "more than 65536 zero bytes after the end of the gzip stream"),
        (b"\0" * 100 + b"\1", "data after the end of the gzip stream"),
        (
            gzip.compress(b"", mtime=0) * 4000,
            "more than 65536 bytes of the file after the end of the archive",
        ),
        (b"PK\3\4", "truncated or corrupt (Error -3 while decompressing data: incorrect header check)"),
    ],
    ids=["some-zeros", "too-many-zeros", "not-zeros", "empty-members", "garbage"],
)
def test_what_follows_the_gzip_stream_is_bounded(tail: bytes, expected: str | None, tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(bundles.gz(_tar()) + tail)

    if expected is None:
        assert set(read_bundle(bundle, public_key=None).files) == {MANIFEST, *FILES}
    else:
        assert refused(bundle, tmp_path) == f"{bundle}: {expected}"


# --- refused: the manifest's fields --------------------------------------------------------------------


def _with_manifest(raw: bytes, files: Mapping[str, bytes] = FILES) -> list[tuple[tarfile.TarInfo, bytes]]:
    return good_members(files, manifest=raw)


def _edited(**fields: Any) -> bytes:
    manifest = manifest_for(FILES)
    for dotted, value in fields.items():
        *parents, key = dotted.split("__")
        target = manifest
        for parent in parents:
            target = target[parent]
        target[key] = value
    return manifest_bytes(manifest)


BAD_MANIFESTS: dict[str, tuple[bytes, str]] = {
    "not-utf8": (manifest_bytes(manifest_for(FILES)).decode().encode("utf-16"), "is not UTF-8"),
    "nan": (_edited(hooks={"timeout": 1}).replace(b'"timeout": 1', b'"timeout": NaN'), "has NaN"),
    "too-large-float": (
        _edited(hooks={"timeout": 1}).replace(b'"timeout": 1', b'"timeout": 1e999'),
        "has a number too large",
    ),
    "duplicate-key": (
        manifest_bytes(manifest_for(FILES)).replace(b"{", b'{"format": 1, ', 1),
        "has the key 'format' twice",
    ),
    "trailing-garbage": (manifest_bytes(manifest_for(FILES)) + b"]", "is not valid JSON (Extra data"),
    "format-a-list": (_edited(format=[1]), "format is a list of 1, not 'venvkeeper-bundle'"),
    "version-a-string": (_edited(format_version="1"), "format_version is the string '1', not 1"),
    "files-null": (_edited(files=None), "files is null, not a list"),
    "file-path-newline": (
        _edited(files=[{"path": "a\nb", "size": 1, "sha256": "0" * 64}]),
        r"files[0].path: is the string 'a\nb', with control characters in its name",
    ),
    "file-size-negative": (
        _edited(files=[{**d, "size": -1} for d in describe(FILES)]),
        "files[0].size: is the number -1, not a size up to",
    ),
    "target-missing": (_edited(target=None), "target: is null, not an object"),
    "python-not-x-y": (_edited(target__python="3"), "target.python: is the string '3', not a Python X.Y"),
    "platform-with-space": (
        _edited(target__platforms=["linux x86_64"]),
        "target.platforms[0]: is the string 'linux x86_64', not a platform tag",
    ),
    "abi3-a-string": (_edited(target__abi3="yes"), "target.abi3: is the string 'yes', not true or false"),
    "member-outside-wheels": (
        _edited(members=["pylock.toml"]),
        "members[0]: 'pylock.toml' is not a file in the bundle's wheels/",
    ),
    "group-a-number": (_edited(groups=[7]), "groups[0]: is the number 7, not a dependency group's name"),
    "hook-with-nul": (
        _edited(hooks={"post-deploy": ["a\0b"]}),
        "hooks.post-deploy[0]: is the string 'a\\x00b', not a shell command",
    ),
    "hook-surrogate": (
        _edited(hooks={"post-deploy": ["\ud800"]}),
        "hooks.post-deploy[0]: is the string '\\ud800', not a shell command",
    ),
    "timeout-zero": (
        _edited(hooks={"timeout": 0}),
        "hooks.timeout: is the number 0, not a number of seconds over 0",
    ),
    "timeout-true": (_edited(hooks={"timeout": True}), "hooks.timeout: is true, not a number of seconds"),
    "timeout-too-long": (_edited(hooks={"timeout": 1e10}), "hooks.timeout: is the number 10000000000.0, not"),
    "lock-sha256-short": (
        _edited(built_from__lock_sha256="abc"),
        "built_from.lock_sha256: is the string 'abc', not a sha256",
    ),
    "commit-not-hex": (
        _edited(built_from__git_commit="HEAD"),
        "built_from.git_commit: is the string 'HEAD', not a git commit in hex",
    ),
    "name-too-long": (_edited(project={"name": "x" * 300}), "project.name: is the string 'xxxx"),
}


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_a_malformed_manifest_is_one_line_naming_the_field(case: str, tmp_path: Path) -> None:
    raw, expected = BAD_MANIFESTS[case]
    bundle = hand_tar(tmp_path / "b.tar.gz", _with_manifest(raw))

    message = refused(bundle, tmp_path)

    assert message.startswith(f"{bundle}: {TOP}/{MANIFEST}: {expected}"), message


def test_unknown_manifest_keys_are_ignored_and_the_fields_read(tmp_path: Path) -> None:
    wheel = "wheels/tiny-1.0-py3-none-any.whl"
    manifest = manifest_for(FILES)
    manifest.update(
        members=[wheel.removeprefix("wheels/")], later={"x": [1, 2]}, hooks={"post-deploy": ["x"]}
    )
    bundle = hand_tar(tmp_path / "b.tar.gz", _with_manifest(manifest_bytes(manifest)))

    fields = read_bundle(bundle, public_key=None).fields

    assert (fields.python, fields.platforms, fields.members) == ("3.11", ("linux_x86_64",), (wheel[7:],))
    assert (fields.post_deploy, fields.hook_timeout, fields.lock_sha256) == (("x",), 900.0, "0" * 64)


# --- refused: pylock.toml entries outside the bundle ----------------------------------------------------


def _lock(*packages: str) -> dict[str, bytes]:
    return {**FILES, "pylock.toml": bundles.pylock(list(packages))}


_WHEEL_NAME = WHEEL.removeprefix("wheels/")
_GOOD = bundles.wheel_entry(_WHEEL_NAME, FILES[WHEEL])
_SHA = hashlib.sha256(FILES[WHEEL]).hexdigest()


def _inline(**table: object) -> str:
    """A TOML inline table of strings, integers and tables (``hashes={"sha256": ...}``)."""

    def value(v: object) -> str:
        if isinstance(v, dict):
            return _inline(**v)
        return bundles.toml_string(v) if isinstance(v, str) else str(v)

    return "{ " + ", ".join(f"{key} = {value(v)}" for key, v in table.items()) + " }"


def _wheel(**table: object) -> str:
    return bundles.package("tiny", "1.0", wheels=f"[{_inline(**table)}]")


_HASHES = {"sha256": _SHA}
BAD_LOCKS: dict[str, tuple[str, str]] = {
    "parent-path": (
        _wheel(name=_WHEEL_NAME, path="../x.whl", hashes=_HASHES),
        "wheels[0].path: '../x.whl' is not a file in the bundle's wheels/ listed in its manifest",
    ),
    "dot-dot-inside": (
        _wheel(name=_WHEEL_NAME, path=f"wheels/../{WHEEL}", hashes=_HASHES),
        "wheels[0].path: 'wheels/../wheels/tiny",
    ),
    "listed-but-not-a-wheel": (
        _wheel(name="uv", path="uv/uv", hashes={"sha256": hashlib.sha256(FILES["uv/uv"]).hexdigest()}),
        "wheels[0].path: 'uv/uv' is not a file in the bundle's wheels/",
    ),
    "url-and-path": (
        _wheel(url="https://example.invalid/t.whl", path=WHEEL, hashes=_HASHES),
        "wheels[0].url: 'https://example.invalid/t.whl': a URL is not a file in the bundle",
    ),
    "no-path": (_wheel(name="t.whl"), "wheels[0].path: is null, not a path"),
    "other-sha256": (
        _wheel(path=WHEEL, hashes={"sha256": "1" * 64}),
        f"wheels[0].hashes.sha256: is the string '{'1' * 60}'..., not the manifest's {_SHA}",
    ),
    "no-hashes": (_wheel(path=WHEEL), "wheels[0].hashes.sha256: is null"),
    "other-size": (
        _wheel(path=WHEEL, size=1, hashes=_HASHES),
        "wheels[0].size: is the number 1, not the manifest's",
    ),
    "other-name": (
        _wheel(name="evil-1.0-py3-none-any.whl", path=WHEEL, hashes=_HASHES),
        "wheels[0].name: is the string 'evil-1.0-py3-none-any.whl', not the name of its path",
    ),
    "no-artifact": (bundles.package("tiny", "1.0"), ": names no wheel, sdist or archive of the bundle"),
    "wheels-a-table": (
        bundles.package("tiny", "1.0", wheels=_GOOD),
        "wheels: is an object, not a list of tables",
    ),
    "vcs-and-wheel": (
        bundles.package("tiny", "1.0", wheels=f"[{_GOOD}]", vcs=_inline(type="git", url="x")),
        "vcs: a VCS checkout",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LOCKS))
def test_a_lock_entry_that_is_not_a_listed_wheel_of_the_bundle_is_refused(case: str, tmp_path: Path) -> None:
    package, expected = BAD_LOCKS[case]
    bundle = hand_tar(tmp_path / "b.tar.gz", good_members(_lock(package)))

    message = refused(bundle, tmp_path)

    where = "packages[0] ('tiny')" + ("" if expected.startswith(":") else ".")
    assert message.startswith(f"{bundle}: {TOP}/pylock.toml: {where}{expected}"), message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"packages = " + b"[" * 5000 + b"]" * 5000, "is nested too deep to read"),
        (
            b"packages = [{ size = " + b"9" * 5000 + b" }]",
            "is not valid TOML (Exceeds the limit (4300 digits)",
        ),
        (b"packages = {}", "packages: is an object, not a list of tables"),
        (b"lock-version = 1.0\nlock-version = 2", "is not valid TOML"),
        (b"\xff", "is not UTF-8"),
        (b"packages = [[]]", "packages[0]: is a list of 0, not a table"),
    ],
    ids=["deep", "huge-int", "packages-a-table", "duplicate", "not-utf8", "package-a-list"],
)
def test_a_malformed_lock_is_one_line(text: bytes, expected: str, tmp_path: Path) -> None:
    bundle = hand_tar(tmp_path / "b.tar.gz", good_members({**FILES, "pylock.toml": text}))

    assert refused(bundle, tmp_path).startswith(f"{bundle}: {TOP}/pylock.toml: {expected}")


def test_a_lock_of_the_bundles_own_wheel_and_sdist_is_accepted(tmp_path: Path) -> None:
    sdist = "wheels/tiny-1.0.tar.gz"
    files = {**FILES, sdist: b"an sdist"}
    lock = bundles.package(
        "tiny",
        "1.0",
        sdist=bundles.wheel_entry("tiny-1.0.tar.gz", files[sdist]),
        wheels=f"[{_GOOD}]",
    )
    bundle = hand_tar(tmp_path / "b.tar.gz", good_members({**files, "pylock.toml": bundles.pylock([lock])}))

    assert read_bundle(bundle, public_key=None).files[sdist] == (8, hashlib.sha256(b"an sdist").hexdigest())


def test_a_bundle_without_a_lock_is_refused(tmp_path: Path) -> None:
    files = {k: v for k, v in FILES.items() if k != "pylock.toml"}
    bundle = hand_tar(tmp_path / "b.tar.gz", good_members(files))

    assert refused(bundle, tmp_path) == f"{bundle}: has no {TOP}/pylock.toml: there is nothing to install"


def test_more_entries_than_the_limit_are_refused_at_the_first_one_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_module, "MAX_ENTRIES", len(FILES) + 1)  # the manifest and FILES fit
    fits = hand_tar(tmp_path / "fits.tar.gz", good_members())
    over = hand_tar(tmp_path / "over.tar.gz", [*good_members(), regular(f"{TOP}/wheels/x.whl", b"x")])

    assert set(read_bundle(fits, public_key=None).files) == {MANIFEST, *FILES}
    assert refused(over, tmp_path) == f"{over}: {TOP}/wheels/x.whl: more than {len(FILES) + 1} entries"
