"""``venvkeeper install`` on hostile bundles, as a real process: exit 2, one error line naming the
bundle and what is wrong, no traceback, and the live environment untouched.

Each bundle is written by hand (:mod:`support.bundles`) around a real wheel, so everything but the
one hostile part is what pack writes. The ``live`` fixture installs the same bundle without it
first: the refusal must leave that generation exactly as it was, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support import bundles
from support.environment import hermetic_environ
from support.index import LocalIndex
from support.wheels import make_wheel
from venvkeeper.bundle import archive as bundle
from venvkeeper.bundle import check as bundlecheck
from venvkeeper.core import signing
from vk import Outcome, snapshot, vk_process

Case = Callable[[Path], tuple[bytes, str]]  # tmp dir -> (bundle bytes, what the error line says)
# The scratch directory is ENV_PARENT/.venv.venvkeeper/tmp/bundle-XXXX, four levels below tmp:
# this relative path, resolved from the extracted pylock.toml, is the wheel outside the bundle.
_UP = "../../../../outside/"


def _good_files(tmp: Path, *extra_packages: str) -> dict[str, bytes]:
    """A real wheel, and a pylock.toml naming it (and ``extra_packages``, the hostile part)."""
    wheel = make_wheel(tmp / "wheels", "goodpkg", "1.0")
    data = wheel.read_bytes()
    files = {f"wheels/{wheel.name}": data}
    good = bundles.package("goodpkg", "1.0", wheels=f"[{bundles.wheel_entry(wheel.name, data)}]")
    files["pylock.toml"] = bundles.pylock([good, *extra_packages])
    return files


def _evil(tmp: Path) -> tuple[Path, str]:
    """A real wheel outside the bundle, where a hostile lock points, and its sha256 as TOML."""
    wheel = make_wheel(tmp / "outside", "evilpkg", "6.6.6")
    return wheel, bundles.toml_string(hashlib.sha256(wheel.read_bytes()).hexdigest())


def _artifact(name: str, where: str, sha: str) -> str:
    return f"{{ name = {bundles.toml_string(name)}, {where}, hashes = {{ sha256 = {sha} }} }}"


def _lock_case(kind: str) -> Case:
    def case(tmp: Path) -> tuple[bytes, str]:
        evil, sha = _evil(tmp)
        rel = _UP + evil.name
        path, url = f"path = {bundles.toml_string(rel)}", f"url = {bundles.toml_string(evil.as_uri())}"
        absolute = f"path = {bundles.toml_string(str(evil))}"
        at = "packages[1] ('evilpkg')"
        key, value, expected = {
            "wheel-relative-path": (
                "wheels",
                f"[{_artifact(evil.name, path, sha)}]",
                f"{at}.wheels[0].path: {rel!r} is not a file in the bundle's wheels/ listed in its manifest",
            ),
            "wheel-absolute-path": (
                "wheels",
                f"[{_artifact(evil.name, absolute, sha)}]",
                f"{at}.wheels[0].path: {str(evil)[:60]!r}",
            ),
            "wheel-file-url": (
                "wheels",
                f"[{_artifact(evil.name, url, sha)}]",
                f"{at}.wheels[0].url: {evil.as_uri()[:60]!r}",
            ),
            "sdist-outside": (
                "sdist",
                _artifact("evilpkg-6.6.6.tar.gz", path, sha),
                f"{at}.sdist.path: {rel!r} is not a file in the bundle's wheels/",
            ),
            "archive-url": (
                "archive",
                f'{{ url = "https://example.invalid/evil.zip", hashes = {{ sha256 = {sha} }} }}',
                f"{at}.archive.url: 'https://example.invalid/evil.zip': a URL is not a file in the bundle",
            ),
            "archive-path": (
                "archive",
                f"{{ {absolute}, hashes = {{ sha256 = {sha} }} }}",
                f"{at}.archive.path: {str(evil)[:60]!r}",
            ),
            "directory": (
                "directory",
                f"{{ path = {bundles.toml_string(str(evil.parent))} }}",
                f"{at}.directory: a local directory is not a file in the bundle",
            ),
            "vcs": (
                "vcs",
                '{ type = "git", url = "https://example.invalid/evil.git", commit-id = "0123abcd" }',
                f"{at}.vcs: a VCS checkout is not a file in the bundle",
            ),
        }[kind]
        files = _good_files(tmp, bundles.package("evilpkg", "6.6.6", **{key: value}))
        return bundles.bundle_bytes(files), f"venvkeeper-bundle/pylock.toml: {expected}"

    return case


def _manifest_case(kind: str) -> Case:
    def case(tmp: Path) -> tuple[bytes, str]:
        files = _good_files(tmp)
        manifest = bundles.manifest_for(files)
        raw = bundles.manifest_json(manifest)
        if kind == "nested-100000-deep":
            raw = raw.replace(b'"groups": []', b'"groups": ' + b"[" * 100_000 + b"]" * 100_000)
            expected = f"manifest.json: is nested more than {bundlecheck.MAX_DEPTH} deep"
        elif kind == "integer-of-5000-digits":
            raw = raw.replace(b'"timeout": 900', b'"timeout": ' + b"9" * 5000)
            expected = "manifest.json: has a number of 5000 digits (at most 20)"
        elif kind == "a-list":
            raw, expected = b"[]", "manifest.json: is a list of 0, not a JSON object"
        elif kind == "files-entry-a-list":
            manifest["files"][0] = []
            raw, expected = (
                bundles.manifest_json(manifest),
                "manifest.json: files[0]: is a list of 0, not an object",
            )
        else:  # a list where an object belongs, or an object where a list does
            field = kind.removesuffix("-a-list").removesuffix("-an-object").replace("-", "_")
            manifest[field] = {"x": 1} if kind.endswith("-an-object") else []
            wanted = "a list" if kind.endswith("-an-object") else "an object"
            shown = "an object" if kind.endswith("-an-object") else "a list of 0"
            raw, expected = (
                bundles.manifest_json(manifest),
                f"manifest.json: {field}: is {shown}, not {wanted}",
            )
        return bundles.bundle_bytes(files, raw), f"venvkeeper-bundle/{expected}"

    return case


def _tail_case(kind: str) -> Case:
    def case(tmp: Path) -> tuple[bytes, str]:
        files = _good_files(tmp)
        if kind == "a-mebibyte-of-zeros":
            tail, expected = b"\0" * (1 << 20), "more than 10752 zero bytes after the end of the archive"
        else:
            tail, expected = b"\0" * 4096 + b"x", "data after the end of the archive"
        return bundles.bundle_bytes(files, tail=tail), expected

    return case


_MANIFEST_CASES = (
    "nested-100000-deep",
    "integer-of-5000-digits",
    "a-list",
    "files-entry-a-list",
    "target-a-list",
    "hooks-a-list",
    "project-a-list",
    "built-from-a-list",
    "members-an-object",
    "groups-an-object",
)
_LOCK_CASES = (
    "wheel-relative-path",
    "wheel-absolute-path",
    "wheel-file-url",
    "sdist-outside",
    "archive-url",
    "archive-path",
    "directory",
    "vcs",
)
CASES: dict[str, Case] = {
    **{f"manifest-{kind}": _manifest_case(kind) for kind in _MANIFEST_CASES},
    **{f"pylock-{kind}": _lock_case(kind) for kind in _LOCK_CASES},
    **{f"after-the-end-{kind}": _tail_case(kind) for kind in ("a-mebibyte-of-zeros", "data")},
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, index_server: LocalIndex, session_uv_cache: Path) -> Path:
    """An environment with one generation, installed from the hand-written bundle with nothing
    hostile; once for the module: every test leaves it as it found it, or fails."""
    root = tmp_path_factory.mktemp("live")
    good = root / "good.tar.gz"
    good.write_bytes(bundles.bundle_bytes(_good_files(root / "good")))
    env = root / "srv" / ".venv"
    environ = hermetic_environ(
        os.environ, index_url=index_server.url, home=root / "home", uv_cache_dir=session_uv_cache
    )
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "venvkeeper",
            "install",
            str(good),
            "--env",
            str(env),
            "--python",
            sys.executable,
        ],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    return env


def _one_error_line(result: Outcome) -> str:
    assert "Traceback" not in result.err, result.err
    assert [line.partition(":")[0] for line in result.err.splitlines()] == ["error", "hint"], result.err
    return result.error_line


def _runs_goodpkg_only(env: Path) -> None:
    code = "import goodpkg, importlib.util as u; print(u.find_spec('evilpkg'))"
    ran = subprocess.run(
        [str(env / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert ran.stdout.strip() == "None", ran.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_hostile_bundle_is_one_error_line_and_the_live_environment_is_untouched(
    name: str, tmp_path: Path, live: Path
) -> None:
    data, expected = CASES[name](tmp_path)
    hostile = tmp_path / "hostile.tar.gz"
    hostile.write_bytes(data)
    before = snapshot(live.parent)

    result = vk_process("install", hostile, "--env", live, "--python", sys.executable)

    assert result.code == 2, result.out + result.err
    line = _one_error_line(result)
    assert line.startswith(f"error: {hostile}: "), line
    assert expected in line, line
    assert snapshot(live.parent) == before
    _runs_goodpkg_only(live)


def test_a_signed_bundle_whose_lock_names_a_file_outside_it_is_refused_too(
    tmp_path: Path, live: Path
) -> None:
    private, public = signing.generate_keypair()
    (tmp_path / "key.pub").write_bytes(public)
    evil, sha = _evil(tmp_path)
    evil_package = bundles.package(
        "evilpkg",
        "6.6.6",
        wheels=f"[{_artifact(evil.name, f'path = {bundles.toml_string(str(evil))}', sha)}]",
    )
    files = _good_files(tmp_path, evil_package)
    raw = bundles.manifest_json(bundles.manifest_for(files))
    hostile = tmp_path / "signed.tar.gz"
    # The signature is an entry the manifest does not list (it cannot list its own signature).
    hostile.write_bytes(
        bundles.gz(bundles.tar_bytes({**files, bundle.SIGNATURE: signing.sign(private, raw)}, raw))
    )
    before = snapshot(live.parent)

    result = vk_process(
        "install", hostile, "--env", live, "--python", sys.executable, "--public-key", tmp_path / "key.pub"
    )

    assert result.code == 2, result.out + result.err
    assert f"venvkeeper-bundle/pylock.toml: packages[1] ('evilpkg').wheels[0].path: {str(evil)[:60]!r}" in (
        _one_error_line(result)
    )
    assert snapshot(live.parent) == before
    _runs_goodpkg_only(live)
