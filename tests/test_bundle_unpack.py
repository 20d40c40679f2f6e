"""install reads a bundle once: the first pass writes the wheels the store lacks as it checks them
(:mod:`venvkeeper.bundle.unpack`), but only after the manifest, and with a key its signature, has
been read and verified, and only what the manifest lists; a bundle in another order still installs
(its early wheels by a second pass)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from support import bundles
from support.wheels import make_wheel
from venvkeeper.bundle import archive
from venvkeeper.bundle.unpack import Unpack
from venvkeeper.core import signing
from vk import vk_process

A, B = "wheels/a-1.0-py3-none-any.whl", "wheels/b-1.0-py3-none-any.whl"
FILES = {A: b"PK\x03\x04 a's bytes\n", B: b"PK\x03\x04 b's bytes, longer\n", "pylock.toml": b""}


def _files() -> dict[str, bytes]:
    files = dict(FILES)
    entries = ", ".join(bundles.wheel_entry(rel.removeprefix("wheels/"), files[rel]) for rel in (A, B))
    files["pylock.toml"] = bundles.pylock([bundles.package("a", "1.0", wheels=f"[{entries}]")])
    return files


def _written(dest: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dest)): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}


def test_the_first_pass_writes_the_wanted_wheels_as_it_checks_them(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(bundles.bundle_bytes(_files()))
    dest = tmp_path / "scratch"
    dest.mkdir()
    asked: list[tuple[str, int, str]] = []

    def wanted(rel: str, size: int, sha256: str) -> bool:
        asked.append((rel, size, sha256))
        return rel == A

    with Unpack(dest, wanted, public_key=None) as sink:
        checked = archive.read_bundle(bundle, public_key=None, sink=sink)

    assert _written(dest) == {A: FILES[A]}
    assert (sink.unpacked, sink.declined) == ({A}, {B})
    assert asked == [(rel, *checked.files[rel]) for rel in (A, B)]


def test_nothing_is_written_unless_the_signature_verifies(tmp_path: Path) -> None:
    private, public = signing.generate_keypair()
    _, other = signing.generate_keypair()
    files = _files()
    raw = bundles.manifest_json(bundles.manifest_for(files))
    bundle = tmp_path / "signed.tar.gz"
    bundle.write_bytes(
        bundles.gz(bundles.tar_bytes({**files, archive.SIGNATURE: signing.sign(private, raw)}, raw))
    )
    for key, name in ((other, "wrong"), (public, "right")):
        dest = tmp_path / name
        dest.mkdir()
        with Unpack(dest, lambda *_: True, public_key=key) as sink:
            if key is other:
                with pytest.raises(archive.BundleError, match="does not verify"):
                    archive.read_bundle(bundle, public_key=key, sink=sink)
            else:
                archive.read_bundle(bundle, public_key=key, sink=sink)
        expected = {} if key is other else {A: FILES[A], B: FILES[B]}
        assert _written(dest) == expected, name


def _refused(tmp_path: Path, name: str, content: dict[str, bytes]) -> tuple[Unpack, dict[str, bytes]]:
    """The first pass over ``content`` with _files()'s manifest: refused; the sink and what it wrote."""
    bundle = tmp_path / f"{name}.tar.gz"
    bundle.write_bytes(bundles.bundle_bytes(content, bundles.manifest_for(_files())))
    dest = tmp_path / name
    dest.mkdir()
    with Unpack(dest, lambda *_: True, public_key=None) as sink, pytest.raises(archive.BundleError):
        archive.read_bundle(bundle, public_key=None, sink=sink)
    return sink, _written(dest)


def test_a_wheel_of_the_manifests_size_but_other_bytes_is_never_counted(tmp_path: Path) -> None:
    sink, written = _refused(tmp_path, "altered", {**_files(), A: FILES[A][:-2] + b"!\n"})
    assert A in written  # written as it was read: the pass refuses it, the caller removes it
    assert sink.unpacked == {B}


def test_a_wheel_of_another_size_than_the_manifests_is_not_written(tmp_path: Path) -> None:
    sink, written = _refused(tmp_path, "longer", {**_files(), B: FILES[B] + b"more"})
    assert B not in written
    assert sink.unpacked == {A}


def test_a_manifest_that_says_the_bundle_is_live_writes_nothing(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(bundles.bundle_bytes(_files()))
    dest = tmp_path / "scratch"
    dest.mkdir()
    with Unpack(dest, lambda *_: True, public_key=None, skip=lambda raw: True) as sink:
        archive.read_bundle(bundle, public_key=None, sink=sink)
    assert _written(dest) == {}
    assert (sink.unpacked, sink.declined) == (set(), set())


def test_a_bundle_with_its_wheel_before_the_manifest_still_installs(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "goodpkg", "1.0")
    data = wheel.read_bytes()
    files = {f"wheels/{wheel.name}": data}
    good = bundles.package("goodpkg", "1.0", wheels=f"[{bundles.wheel_entry(wheel.name, data)}]")
    files["pylock.toml"] = bundles.pylock([good])
    raw = bundles.manifest_json(bundles.manifest_for(files))
    out = bytearray()
    # The wheel first, then pylock.toml and manifest.json: as `tar -czf` of a reordered tree writes.
    for rel, content in [*sorted(files.items(), reverse=True), ("manifest.json", raw)]:
        out += bundles.header(rel, len(content)) + content + b"\0" * (-len(content) % bundles.BLOCK)
    bundle = tmp_path / "reordered.tar.gz"
    bundle.write_bytes(bundles.gz(bytes(out + b"\0" * 2 * bundles.BLOCK)))
    env = tmp_path / "srv" / ".venv"

    result = vk_process("install", bundle, "--env", env, "--python", sys.executable)

    assert result.code == 0, result.out + result.err
    [stored] = (env.parent / ".venv.venvkeeper" / "wheels-store").glob("*/*.whl")
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == stored.parent.name
    ran = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import goodpkg"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
