"""Every test runs hermetically: against a local index, in fresh homes, without machine config.

Session: one pypiserver on 127.0.0.1 serving the fake distributions and the repacked build
backends (``index_server``), one uv cache, the fixture projects locked once each.
Each test: the environment of :func:`support.environment.hermetic_environ`, and the index
put back as it was (files, and running) when the test ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uv

from support.environment import hermetic_environ
from support.index import LocalIndex
from support.packages import fake_wheel, session_wheels
from support.projects import ProjectFactory

# Read before any fixture changes it: what a test changes cannot leak into the next one.
_MACHINE_ENVIRON = dict(os.environ)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """--dist loadgroup keeps each e2e corpus project's steps on one worker (support.corpus)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from support.corpus import group_scheduler

    return group_scheduler(config, log)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session", numbered=False)


@pytest.fixture(scope="session")
def uv_bin() -> Path:
    return Path(uv.find_uv_bin())


@pytest.fixture(scope="session")
def session_uv_cache(session_dir: Path) -> Path:
    return session_dir / "uv-cache"


@pytest.fixture(scope="session")
def index_server(session_dir: Path) -> Iterator[LocalIndex]:
    """The session's index, with every wheel of ``support.packages`` published."""
    index = LocalIndex(session_dir / "index")
    for wheel in session_wheels(session_dir / "wheels"):
        index.publish(wheel)
    with index:
        yield index


@pytest.fixture
def index(index_server: LocalIndex) -> Iterator[LocalIndex]:
    """The local index; whatever a test publishes, unpublishes or stops is undone after it."""
    snapshot = index_server.snapshot()
    yield index_server
    index_server.restore(snapshot)
    index_server.start()


@pytest.fixture
def hermetic(
    index: LocalIndex, session_uv_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The hermetic environment as a dict (HOME is a fresh directory per test)."""
    home = tmp_path_factory.mktemp("home")
    return hermetic_environ(_MACHINE_ENVIRON, index_url=index.url, home=home, uv_cache_dir=session_uv_cache)


@pytest.fixture(autouse=True)
def _hermetic_environ(hermetic: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in set(os.environ) - set(hermetic):
        monkeypatch.delenv(name)
    for name, value in hermetic.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def fresh_uv_cache(
    _hermetic_environ: None,
    hermetic: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """An empty uv cache for this test alone (set as UV_CACHE_DIR)."""
    cache = tmp_path_factory.mktemp("uv-cache")
    hermetic["UV_CACHE_DIR"] = str(cache)
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def publish(index: LocalIndex, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``publish("tinyweb", "1.2.1")``: build a catalog distribution and serve it (for this test)."""
    wheels = tmp_path_factory.mktemp("published")

    def publish(
        name: str,
        version: str,
        *,
        requires: tuple[str, ...] | None = None,
        requires_python: str | None = None,
    ) -> Path:
        wheel = fake_wheel(wheels, name, version, requires=requires, requires_python=requires_python)
        return index.publish(wheel)

    return publish


@pytest.fixture(scope="session")
def project_factory(
    session_dir: Path, uv_bin: Path, index_server: LocalIndex, session_uv_cache: Path
) -> ProjectFactory:
    environ = hermetic_environ(
        _MACHINE_ENVIRON, index_url=index_server.url, home=session_dir / "home", uv_cache_dir=session_uv_cache
    )
    return ProjectFactory(session_dir / "projects", uv=uv_bin, index_url=index_server.url, environ=environ)


@pytest.fixture
def make_project(
    project_factory: ProjectFactory, tmp_path: Path, _hermetic_environ: None
) -> Callable[..., Path]:
    """``make_project("workspace")``: a locked, committed copy of ``tests/projects/workspace``."""

    def make_project(name: str, *, lock: bool = True, git: bool = True, **options: str) -> Path:
        dest = tmp_path / name
        copies = 1
        while dest.exists():
            copies += 1
            dest = tmp_path / f"{name}-{copies}"
        return project_factory.create(dest, name, lock=lock, git=git, **options)

    return make_project


@pytest.fixture
def smtp() -> Iterator[object]:
    """A plain :class:`support.smtp.SmtpServer` on 127.0.0.1 for this test (stopped after it)."""
    # Imported here: only the mail tests need aiosmtpd and trustme, the others start without them.
    from support.smtp import SmtpServer

    with SmtpServer() as server:
        yield server
