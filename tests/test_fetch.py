"""The lock's wheels for a target: which packages, which files, fetched into the cache, and pylock.toml."""

from __future__ import annotations

import hashlib
import sys
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.pylock import Pylock
from packaging.tags import Tag, sys_tags

from support.index import LocalIndex
from support.process import run
from venvkeeper.bundle.fetch import FetchError, cache_path, default_cache_dir, download
from venvkeeper.bundle.locked import Artifact, runtime_packages, select_sdists, select_wheels
from venvkeeper.bundle.pylockgen import pylock_for
from venvkeeper.bundle.target import Target, target_for
from venvkeeper.core.errors import ConfigError, LockError
from venvkeeper.generations.engine import export_requirements

LINUX_311 = target_for("3.11", ["manylinux_2_17_x86_64"])
WINDOWS_312 = target_for("3.12", ["win_amd64"])
REGISTRY = {"registry": "https://pypi.invalid/simple"}


def _lock(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "uv.lock").read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wheel(filename: str) -> dict[str, str]:
    return {
        "url": f"https://files.invalid/{filename}",
        "hash": "sha256:" + hashlib.sha256(filename.encode()).hexdigest(),
    }


# -- the target --------------------------------------------------------------------------------------


def test_this_machine_is_the_default_target_and_accepts_exactly_sys_tags() -> None:
    assert target_for() == Target.current()
    assert Target.current().tags() == list(sys_tags())


def test_a_platform_tag_brings_the_older_ones_its_host_runs() -> None:
    target = target_for("3.12", ["manylinux_2_17_x86_64"])
    assert target.platforms[:3] == ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_16_x86_64")
    assert target.platforms[-2:] == ("manylinux1_x86_64", "linux_x86_64")
    assert target.label == "cp312-manylinux_2_17_x86_64"
    accepted = target.tags()
    assert accepted[0] == Tag("cp312", "cp312", "manylinux_2_17_x86_64")
    assert Tag("cp38", "abi3", "manylinux1_x86_64") in accepted
    assert Tag("py3", "none", "any") in accepted
    assert Tag("cp311", "cp311", "manylinux_2_17_x86_64") not in accepted
    env = target.marker_environment()
    assert (env["sys_platform"], env["platform_machine"], env["python_version"]) == (
        "linux",
        "x86_64",
        "3.12",
    )
    assert env["python_full_version"] == "3.12.0"
    assert WINDOWS_312.marker_environment()["sys_platform"] == "win32"
    assert target_for(None, ["macosx_11_0_arm64"]).marker_environment()["platform_machine"] == "arm64"


@pytest.mark.parametrize(
    ("python", "platforms", "message"),
    [
        ("3", [], "--python 3: not a Python version"),
        (None, ["Linux x86_64"], "--platform Linux x86_64: not a platform tag"),
        (None, ["freebsd_14_0_amd64"], "platform tag freebsd_14_0_amd64: venvkeeper cannot tell"),
        (
            None,
            ["manylinux_2_28_x86_64", "win_amd64"],
            "--platform win_amd64: not the same system and machine as --platform manylinux_2_28_x86_64",
        ),
    ],
)
def test_a_target_venvkeeper_cannot_name_is_refused(
    python: str | None, platforms: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        target_for(python, platforms)
    assert caught.value.message.startswith(message)


# -- which packages ----------------------------------------------------------------------------------


def test_the_runtime_set_is_every_members_dependencies_without_the_members(
    make_project: Callable[..., Path],
) -> None:
    lock = _lock(make_project("workspace"))
    env = Target.current().marker_environment()
    # webapp-deploy -> webapp -> core (members), tinydb, tinyweb -> tinyutil; tinyextra only in dev.
    assert runtime_packages(lock, [], env) == ["tinydb==1.2.0", "tinyutil==1.1.0", "tinyweb==1.0.0"]
    assert "tinyextra==1.0.0" in runtime_packages(lock, ["dev"], env)
    assert runtime_packages(_lock(make_project("single")), [], env) == ["tinyutil==1.1.0"]
    with pytest.raises(ConfigError) as caught:
        runtime_packages(lock, ["docs"], env)
    assert caught.value.message == "--group docs: no workspace member defines it in uv.lock"
    assert caught.value.hint == "the lock's groups: dev"


MARKERS_PYPROJECT = """\
[project]
name = "markers"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["tinyweb; sys_platform == 'linux'", "tinydb; sys_platform == 'win32'",
                "tinyutil; python_version >= '3.12'"]

[project.optional-dependencies]
speed = ["tinyextra"]

[dependency-groups]
dev = ["tinyextra"]
lint = ["tinydb; python_version < '3.12'"]
"""


@pytest.mark.parametrize("groups", [[], ["dev"], ["lint"], ["dev", "lint"]])
def test_the_walk_installs_what_uv_export_says_for_each_target(
    groups: list[str], tmp_path: Path, uv_bin: Path, index: LocalIndex
) -> None:
    project = tmp_path / "markers"
    project.mkdir()
    (project / "pyproject.toml").write_text(MARKERS_PYPROJECT)
    run([uv_bin, "lock", "--quiet"], cwd=project)
    lock = _lock(project)
    exported = [
        line.partition(" ; ")
        for line in export_requirements(project, groups, Path(sys.executable)).splitlines()
    ]
    for target in (
        LINUX_311,
        target_for("3.12", ["manylinux_2_17_x86_64"]),
        WINDOWS_312,
        target_for("3.11", ["win32"]),
    ):
        env = target.marker_environment()
        expected = sorted(pin for pin, _, marker in exported if not marker or Marker(marker).evaluate(env))
        assert runtime_packages(lock, groups, env) == expected, target.label


FORKED_LOCK: dict[str, Any] = {
    "version": 1,
    "package": [
        {
            "name": "app",
            "version": "0.1.0",
            "source": {"virtual": "."},
            "dependencies": [
                {"name": "winonly", "marker": "sys_platform == 'win32'"},
                {
                    "name": "fork",
                    "version": "1.0",
                    "source": REGISTRY,
                    "marker": "python_full_version < '3.12'",
                },
                {
                    "name": "fork",
                    "version": "2.0",
                    "source": REGISTRY,
                    "marker": "python_full_version >= '3.12'",
                },
                {"name": "web", "extra": ["speed"]},
                {"name": "localthing"},
            ],
            "optional-dependencies": {"cli": [{"name": "clicky"}]},
            "dev-dependencies": {"test": [{"name": "testy"}]},
        },
        {"name": "winonly", "version": "1.0", "source": REGISTRY},
        {"name": "fork", "version": "1.0", "source": REGISTRY},
        {"name": "fork", "version": "2.0", "source": REGISTRY},
        {
            "name": "web",
            "version": "3.0",
            "source": REGISTRY,
            "optional-dependencies": {
                "speed": [{"name": "fastjson", "marker": "platform_machine == 'x86_64'"}]
            },
        },
        {"name": "fastjson", "version": "1.0", "source": REGISTRY},
        {"name": "clicky", "version": "1.0", "source": REGISTRY},
        {"name": "testy", "version": "1.0", "source": REGISTRY},
        {"name": "localthing", "version": "0.1", "source": {"directory": "../localthing"}},
    ],
}


def test_markers_forks_extras_and_groups_are_followed_for_the_target() -> None:
    linux = LINUX_311.marker_environment()
    assert runtime_packages(FORKED_LOCK, [], linux) == [
        "fastjson==1.0",
        "fork==1.0",
        "localthing==0.1",
        "web==3.0",
    ]
    # On Windows: winonly comes in, and platform_machine is AMD64, so web[speed] needs nothing.
    assert runtime_packages(FORKED_LOCK, [], WINDOWS_312.marker_environment()) == [
        "fork==2.0",
        "localthing==0.1",
        "web==3.0",
        "winonly==1.0",
    ]
    more = runtime_packages(FORKED_LOCK, ["test"], linux, extras=["CLI"])
    assert {"clicky==1.0", "testy==1.0"} <= set(more)
    # A local package outside the workspace stays in the set: it has no wheel, and that is said.
    assert select_wheels(FORKED_LOCK, ["localthing==0.1"], LINUX_311) == ([], ["localthing==0.1"])


def test_conflicting_extras_are_refused_when_asked_for() -> None:
    lock = {
        **FORKED_LOCK,
        "conflicts": [[{"package": "app", "group": "test"}, {"package": "app", "extra": "cli"}]],
    }
    assert "testy==1.0" not in runtime_packages(lock, [], LINUX_311.marker_environment())
    with pytest.raises(ConfigError, match=r"^test: in \[tool.uv.conflicts\]"):
        runtime_packages(lock, ["test"], LINUX_311.marker_environment())


# -- which files -------------------------------------------------------------------------------------


def test_this_machine_gets_the_locked_wheels_from_the_locked_urls(
    make_project: Callable[..., Path], index: LocalIndex
) -> None:
    lock = _lock(make_project("workspace"))
    wheels, missing = select_wheels(lock, runtime_packages(lock), Target.current())
    assert missing == []
    assert [w.filename for w in wheels] == [
        "tinydb-1.2.0-py3-none-any.whl",
        "tinyutil-1.1.0-py3-none-any.whl",
        "tinyweb-1.0.0-py3-none-any.whl",
    ]
    by_name = {p["name"]: p for p in lock["package"]}
    for wheel in wheels:
        assert wheel.url == f"{index.base_url}/packages/{wheel.filename}"
        assert by_name[wheel.name]["wheels"][0]["hash"] == f"sha256:{wheel.sha256}"
        assert wheel.version == by_name[wheel.name]["version"]
        assert wheel.kind == "wheel"


BINARY_LOCK: dict[str, Any] = {
    "version": 1,
    "package": [
        {
            "name": "fast",
            "version": "1.0",
            "source": REGISTRY,
            "wheels": [
                _wheel("fast-1.0-py3-none-any.whl"),
                _wheel("fast-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
                _wheel("fast-1.0-cp311-cp311-win_amd64.whl"),
            ],
        },
        {
            "name": "stable",
            "version": "2.0",
            "source": REGISTRY,
            "artifact-base": "https://files.invalid/stable/",
            "wheels": [
                {
                    "url": "stable-2.0-cp39-abi3-manylinux2014_x86_64.whl",
                    "hash": "sha256:" + "a" * 64,
                    "size": 7,
                }
            ],
        },
        {
            "name": "winonly",
            "version": "1.0",
            "source": REGISTRY,
            "wheels": [_wheel("winonly-1.0-py3-none-win_amd64.whl")],
        },
        {"name": "sdistonly", "version": "1.0", "source": REGISTRY, "sdist": _wheel("sdistonly-1.0.tar.gz")},
    ],
}


def test_the_best_wheel_for_the_target_wins_and_packages_without_one_are_named() -> None:
    names = ["fast", "stable", "winonly", "sdistonly"]
    wheels, missing = select_wheels(BINARY_LOCK, names, LINUX_311)
    assert [w.filename for w in wheels] == [
        "fast-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "stable-2.0-cp39-abi3-manylinux2014_x86_64.whl",
    ]
    assert wheels[1].url == "https://files.invalid/stable/stable-2.0-cp39-abi3-manylinux2014_x86_64.whl"
    assert wheels[1].size == 7
    assert missing == ["sdistonly==1.0", "winonly==1.0"]

    wheels, missing = select_wheels(BINARY_LOCK, names, WINDOWS_312)
    # cp311 wheels do not load in 3.12: the pure-Python wheel it is.
    assert [w.filename for w in wheels] == ["fast-1.0-py3-none-any.whl", "winonly-1.0-py3-none-win_amd64.whl"]
    assert missing == ["sdistonly==1.0", "stable==2.0"]


def test_a_package_without_a_wheel_for_the_target_falls_back_to_its_locked_sdist() -> None:
    _, without_wheel = select_wheels(BINARY_LOCK, ["fast", "winonly", "sdistonly"], LINUX_311)
    sdists, missing = select_sdists(BINARY_LOCK, without_wheel)
    (sdist,) = sdists
    assert (sdist.name, sdist.version, sdist.filename, sdist.kind) == (
        "sdistonly",
        "1.0",
        "sdistonly-1.0.tar.gz",
        "sdist",
    )
    assert sdist.url == "https://files.invalid/sdistonly-1.0.tar.gz"
    assert sdist.sha256 == hashlib.sha256(b"sdistonly-1.0.tar.gz").hexdigest()
    assert missing == ["winonly==1.0"]  # a wheel for Windows only, and no sdist


def test_an_sdist_referenced_directly_is_the_source_itself(tmp_path: Path) -> None:
    # `tiny @ file:///...tar.gz` and `tiny @ https://...tar.gz`: uv.lock gives the sdist a hash alone.
    digest = "sha256:" + "e" * 64
    x = "https://x.in"
    sdist = {"hash": digest}
    lock = {
        "version": 1,
        "package": [
            {"name": "local", "version": "1.0", "source": {"path": "dist/local-1.0.tar.gz"}, "sdist": sdist},
            {"name": "remote", "version": "2.0", "source": {"url": f"{x}/remote-2.0.tar.gz"}, "sdist": sdist},
            {"name": "sub", "version": "3.0", "source": {"url": f"{x}/a.tgz", "subdirectory": "s"}},
        ],
    }
    lock["package"][2]["sdist"] = sdist
    sdists, missing = select_sdists(lock, ["local", "remote", "sub"], root=tmp_path)
    assert [(a.filename, a.url) for a in sdists] == [
        ("local-1.0.tar.gz", (tmp_path / "dist" / "local-1.0.tar.gz").as_uri()),
        ("remote-2.0.tar.gz", "https://x.in/remote-2.0.tar.gz"),
    ]
    assert missing == ["sub==3.0"]  # a project inside an archive: not an sdist to build as it is


def test_a_name_locked_at_several_versions_needs_its_version() -> None:
    lock = {"version": 1, "package": [
        {"name": "fork", "version": v, "source": REGISTRY, "wheels": [_wheel(f"fork-{v}-py3-none-any.whl")]}
        for v in ("1.0", "2.0")
    ]}  # fmt: skip
    with pytest.raises(LockError, match=r"fork: 2 locked packages match \(1.0, 2.0\)"):
        select_wheels(lock, ["fork"], LINUX_311)
    wheels, _ = select_wheels(lock, ["fork==2.0"], LINUX_311)
    assert [w.filename for w in wheels] == ["fork-2.0-py3-none-any.whl"]


# -- fetching ----------------------------------------------------------------------------------------


@pytest.fixture
def locked_wheels(make_project: Callable[..., Path]) -> list[Artifact]:
    lock = _lock(make_project("workspace"))
    wheels, _ = select_wheels(lock, runtime_packages(lock), Target.current())
    return wheels


def test_wheels_are_fetched_once_then_come_from_the_cache_without_the_index(
    locked_wheels: list[Artifact], index: LocalIndex, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = download(locked_wheels, cache, progress=False)
    assert first == {w.filename: cache / w.sha256[:2] / w.sha256 / w.filename for w in locked_wheels}
    assert all(_sha256(first[w.filename]) == w.sha256 for w in locked_wheels)

    index.stop()
    assert download(locked_wheels, cache, progress=True) == first
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == sorted(first)  # no temporary files


def test_a_damaged_cached_file_is_fetched_again(
    locked_wheels: list[Artifact], index: LocalIndex, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    paths = download(locked_wheels, cache, progress=False)
    damaged = paths[locked_wheels[0].filename]
    damaged.write_bytes(b"not a wheel")
    assert download(locked_wheels, cache, progress=False) == paths
    assert _sha256(damaged) == locked_wheels[0].sha256


def test_a_file_that_differs_from_the_lock_is_refused_and_not_cached(
    make_project: Callable[..., Path], index: LocalIndex, tmp_path: Path
) -> None:
    project = make_project("single")
    text = (project / "uv.lock").read_text()
    good = _lock(project)["package"][1]["wheels"][0]["hash"].removeprefix("sha256:")
    wrong = hashlib.sha256(b"another file").hexdigest()
    (project / "uv.lock").write_text(text.replace(good, wrong))
    wheels, _ = select_wheels(_lock(project), ["tinyutil"], Target.current())

    with pytest.raises(FetchError) as caught:
        download(wheels, tmp_path / "cache", progress=False)
    url = f"{index.base_url}/packages/tinyutil-1.1.0-py3-none-any.whl"
    assert caught.value.message == (
        f"tinyutil-1.1.0-py3-none-any.whl: downloaded from {url}, sha256 {good}, not uv.lock's {wrong}"
    )
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_an_unreachable_index_with_a_cold_cache_names_the_url(
    locked_wheels: list[Artifact], index: LocalIndex, tmp_path: Path
) -> None:
    index.stop()
    with pytest.raises(FetchError) as caught:
        download(locked_wheels, tmp_path / "cache", progress=False)
    first = locked_wheels[0]
    assert caught.value.message.startswith(
        f"{first.filename}: cannot download {first.url}: the index is unreachable"
    )


def test_a_file_gone_from_the_index_is_named_with_the_http_status(
    locked_wheels: list[Artifact], index: LocalIndex, tmp_path: Path
) -> None:
    index.unpublish("tinyutil", "1.1.0")
    tinyutil = next(w for w in locked_wheels if w.name == "tinyutil")
    with pytest.raises(FetchError) as caught:
        download([tinyutil], tmp_path / "cache", progress=False)
    assert caught.value.message.startswith(
        f"tinyutil-1.1.0-py3-none-any.whl: {tinyutil.url} answered HTTP 404"
    )


def test_file_urls_are_fetched_and_checked_too(locked_wheels: list[Artifact], tmp_path: Path) -> None:
    source = download(locked_wheels, tmp_path / "first", progress=False)
    local = [replace(w, url=source[w.filename].as_uri()) for w in locked_wheels]
    again = download(local, tmp_path / "second", jobs=1, progress=False)
    assert all(_sha256(again[w.filename]) == w.sha256 for w in locked_wheels)
    with pytest.raises(FetchError, match="sha256"):
        download([replace(local[0], sha256="0" * 64)], tmp_path / "third", progress=False)


def test_the_cache_is_under_xdg_cache_home_or_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "venvkeeper" / "wheels"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "venvkeeper" / "wheels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "venvkeeper" / "wheels"


def test_a_file_name_that_would_leave_the_cache_is_refused(tmp_path: Path) -> None:
    evil = Artifact("x", "1", "../x-1-py3-none-any.whl", "https://files.invalid/x", "a" * 64, None, "wheel")
    with pytest.raises(FetchError, match="not a file venvkeeper can cache"):
        download([evil], tmp_path / "cache", progress=False)
    assert cache_path(tmp_path, replace(evil, filename="x.whl")) == tmp_path / "aa" / ("a" * 64) / "x.whl"


# -- pylock.toml -------------------------------------------------------------------------------------


def test_pylock_is_valid_and_installs_exactly_the_given_wheels(locked_wheels: list[Artifact]) -> None:
    member = Artifact("webapp", "0.1.0", "webapp-0.1.0-py3-none-any.whl", "", "b" * 64, 1234, "wheel")
    artifacts = [*locked_wheels, member]
    paths = {a.filename: f"wheels/{a.filename}" for a in artifacts}
    text = pylock_for(artifacts, paths, requires_python=">=3.11", environments=["sys_platform == 'linux'"])

    pylock = Pylock.from_dict(tomllib.loads(text))
    assert pylock.created_by == "venvkeeper"
    assert str(pylock.requires_python) == ">=3.11"
    listed = {
        (p.name, str(p.version), w.filename, w.path, w.hashes["sha256"])
        for p in pylock.packages
        for w in p.wheels or []
    }
    assert listed == {(a.name, a.version, a.filename, f"wheels/{a.filename}", a.sha256) for a in artifacts}
    assert all(w.url is None for p in pylock.packages for w in p.wheels or [])
    assert next(w.size for p in pylock.packages for w in p.wheels or [] if p.name == "webapp") == 1234
    # An installer reading it for this machine takes every file in it, and nothing else.
    selected = {w.filename for _, w in pylock.select(tags=list(sys_tags()))}  # type: ignore[union-attr]
    assert selected == set(paths)

    shuffled = [artifacts[2], member, *artifacts[:2]]
    assert (
        pylock_for(shuffled, paths, requires_python=">=3.11", environments=["sys_platform == 'linux'"])
        == text
    )


def test_pylock_names_the_sdist_a_wheel_was_built_from() -> None:
    url = "https://x.invalid/t.tar.gz"
    sdist = Artifact("tinysrc", "1.0.0", "tinysrc-1.0.0.tar.gz", url, "c" * 64, 9, "sdist")
    built = Artifact("tinysrc", "1.0.0", "tinysrc-1.0.0-py3-none-any.whl", "", "d" * 64, 99, "wheel", sdist)
    text = pylock_for([built], {built.filename: f"wheels/{built.filename}"}, requires_python=None)

    (package,) = Pylock.from_dict(tomllib.loads(text)).packages
    assert [(w.filename, w.path, w.hashes["sha256"]) for w in package.wheels or []] == [
        (built.filename, f"wheels/{built.filename}", "d" * 64)
    ]
    # Not bundled, so not an sdist an installer could reach for; named as where the wheel came from.
    assert package.sdist is None
    assert package.tool == {
        "venvkeeper": {"built-from-sdist": {"name": "tinysrc-1.0.0.tar.gz", "hashes": {"sha256": "c" * 64}}}
    }
    assert "https://x.invalid" not in text


def test_pylock_strings_are_escaped_as_toml_wants() -> None:
    odd = 'ven"v\\keeper\n\t\x7f\x01 é 🐍'
    text = pylock_for([], {}, requires_python=None, created_by=odd)
    assert tomllib.loads(text) == {"lock-version": "1.0", "created-by": odd, "packages": []}
    assert Pylock.from_dict(tomllib.loads(text)).packages == []


def test_pylock_refuses_a_file_with_no_place_in_the_bundle(locked_wheels: list[Artifact]) -> None:
    with pytest.raises(ValueError, match=r"^tinydb-1.2.0-py3-none-any.whl: no path in the bundle$"):
        pylock_for(locked_wheels, {}, requires_python=None)
