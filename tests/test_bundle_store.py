"""``venvkeeper install`` unpacks each wheel once, into ``<env>.venvkeeper/wheels-store/<sha256>/``:
a second install of the same bundle neither extracts it again nor grows uv's cache, an altered
store entry is replaced (never installed), and pruning generations prunes the store. A newer bundle
whose wheel changed but not its version is what runs afterwards, in place too."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import bundles
from support.wheels import make_wheel
from venvkeeper.bundle import store
from venvkeeper.generations.layout import Layout
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


def _bundle_of(tmp: Path, code: str) -> Path:
    """goodpkg 1.0 whose module says ``code``: the same name and version, other bytes, per ``code``."""
    wheel = make_wheel(tmp / code, "goodpkg", "1.0", files={"goodpkg/__init__.py": f"CODE = {code!r}\n"})
    data = wheel.read_bytes()
    files = {f"wheels/{wheel.name}": data}
    good = bundles.package("goodpkg", "1.0", wheels=f"[{bundles.wheel_entry(wheel.name, data)}]")
    files["pylock.toml"] = bundles.pylock([good])
    manifest = bundles.manifest_for(files, project={"name": "site", "version": code})
    out = tmp / f"site-{code}.tar.gz"
    out.write_bytes(bundles.bundle_bytes(files, manifest))
    return out


@pytest.mark.parametrize("mode", [(), ("--in-place",)], ids=["generation", "in-place"])
def test_a_newer_bundle_whose_wheel_changed_but_not_its_version_is_what_runs(
    mode: tuple[str, ...], tmp_path: Path
) -> None:
    # uv keeps an installed distribution of the same name and version (astral-sh/uv#4412): in place,
    # the sync alone left "old" running and sealed it as the newer bundle's.
    env = tmp_path / "srv" / ".venv"
    _install(_bundle_of(tmp_path, "old"), env, *mode)

    _install(_bundle_of(tmp_path, "new"), env, *mode)

    ran = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import goodpkg; print(goodpkg.CODE)"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert ran.stdout.strip() == "new", ran.stderr
    verified = vk_process("verify", "--env", env)
    assert verified.code == 0, verified.out + verified.err
    if not mode:  # a newer bundle into a kept --env: a hard-link clone of the live generation, synced
        record = json.loads((env.parent / ".venv.venvkeeper" / "generations" / "0002.json").read_text())
        assert record["built"]["from"] == "clone" and record["built"]["source"] == 1, record["built"]


def test_kept_by_uv_names_only_same_version_packages_from_another_wheel(tmp_path: Path) -> None:
    layout = Layout.for_env(tmp_path / ".venv")
    one, two = b"PK one", b"PK two"
    pkg = bundles.package(
        "Good.Pkg", "1.0", wheels=f"[{bundles.wheel_entry('good_pkg-1.0-py3-none-any.whl', one)}]"
    )
    both = bundles.package(
        "other",
        "2.0",
        wheels="["
        + ", ".join(
            bundles.wheel_entry(f"other-2.0-{tag}.whl", data)
            for tag, data in (("py2-none-any", one), ("py3-none-any", two))
        )
        + "]",
    )
    lock = bundles.pylock([pkg])
    sha = hashlib.sha256(one).hexdigest()

    assert store.kept_by_uv(lock, layout, {"good-pkg": "1.0"}, []) == {
        "good-pkg": store.entry(layout, sha, "good_pkg-1.0-py3-none-any.whl")
    }
    assert store.kept_by_uv(lock, layout, {"good-pkg": "1.0"}, [sha]) == {}  # installed from this wheel
    assert store.kept_by_uv(lock, layout, {"good-pkg": "0.9"}, []) == {}  # the sync replaces another version
    assert store.kept_by_uv(lock, layout, {}, []) == {}  # the sync installs it
    with pytest.raises(ValueError, match=r"other 2\.0 is installed from another wheel, and the bundle has 2"):
        store.kept_by_uv(bundles.pylock([both]), layout, {"other": "2.0"}, [])
