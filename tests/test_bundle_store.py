"""``venvkeeper install`` unpacks each wheel once, into ``<env>.venvkeeper/wheels-store/<sha256>/``:
a second install of the same bundle neither extracts it again nor grows uv's cache, an altered
store entry is replaced (never installed), and pruning generations prunes the store."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import bundles
from support.wheels import make_wheel
from vk import vk_process


def _bundle(tmp: Path, version: str) -> Path:
    """goodpkg's wheel (the same bytes for every ``version``) in a bundle of project ``version``."""
    wheel = make_wheel(tmp / "wheels", "goodpkg", "1.0")
    data = wheel.read_bytes()
    files = {f"wheels/{wheel.name}": data}
    good = bundles.package("goodpkg", "1.0", wheels=f"[{bundles.wheel_entry(wheel.name, data)}]")
    files["pylock.toml"] = bundles.pylock([good])
    manifest = bundles.manifest_for(files, project={"name": "site", "version": version})
    out = tmp / f"site-{version}.tar.gz"
    out.write_bytes(bundles.bundle_bytes(files, manifest))
    return out


def _tree(root: Path) -> tuple[int, int]:
    """(files, bytes) under uv's cache ``root``, but for ``interpreter-v*``: uv records each new
    venv's interpreter there (a few hundred bytes a generation), whatever it installs."""
    count = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(root) and d.startswith("interpreter-v"))]
        for name in filenames:
            count += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return count, size


def _install(bundle: Path, env: Path, *more: str) -> None:
    result = vk_process("install", bundle, "--env", env, "--python", sys.executable, *more)
    assert result.code == 0, result.out + result.err


def _entries(env: Path) -> list[Path]:
    return sorted((env.parent / ".venv.venvkeeper" / "wheels-store").glob("*/*.whl"))


def _imports_goodpkg(env: Path) -> None:
    code = "import goodpkg, importlib.util as u; print(u.find_spec('evilpkg'))"
    ran = subprocess.run(
        [str(env / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert ran.stdout.strip() == "None", ran.stderr


def test_a_second_install_reuses_the_store_and_grows_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uv_cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    one, two = _bundle(tmp_path / "a", "1"), _bundle(tmp_path / "b", "2")
    env = tmp_path / "srv" / ".venv"
    _install(one, env)
    _install(two, env)  # the same wheel, another bundle: the store entry already serves it
    [stored] = _entries(env)
    before, cache_before = os.stat(stored), _tree(uv_cache)

    _install(one, env)  # the first bundle again, as a new generation (it is not the live one)

    after = os.stat(stored)
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    ), "the wheel was extracted again"
    assert _tree(uv_cache) == cache_before
    assert _entries(env) == [stored]
    assert not list((env.parent / ".venv.venvkeeper" / "tmp").iterdir())
    _imports_goodpkg(env)


def test_an_altered_store_entry_is_replaced_never_installed(tmp_path: Path) -> None:
    one, two = _bundle(tmp_path / "a", "1"), _bundle(tmp_path / "b", "2")
    env = tmp_path / "srv" / ".venv"
    _install(one, env)
    [stored] = _entries(env)
    good = hashlib.sha256(stored.read_bytes()).hexdigest()
    altered = bytearray(stored.read_bytes())
    altered[len(altered) // 2] ^= 0xFF  # the same size: only its hash can tell
    stored.write_bytes(bytes(altered))

    _install(two, env)

    assert _entries(env) == [stored]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == good == stored.parent.name
    _imports_goodpkg(env)


def test_pruned_generations_take_their_store_entries_with_them(tmp_path: Path) -> None:
    env = tmp_path / "srv" / ".venv"
    _install(_bundle(tmp_path / "a", "1"), env)
    [first] = _entries(env)
    other = make_wheel(tmp_path / "other" / "wheels", "otherpkg", "2.0")
    data = other.read_bytes()
    files = {f"wheels/{other.name}": data}
    files["pylock.toml"] = bundles.pylock(
        [bundles.package("otherpkg", "2.0", wheels=f"[{bundles.wheel_entry(other.name, data)}]")]
    )
    second = tmp_path / "other.tar.gz"
    second.write_bytes(bundles.bundle_bytes(files))

    _install(second, env, "--keep", "0")

    assert [p.name for p in _entries(env)] == [other.name]
    assert not first.parent.exists()
