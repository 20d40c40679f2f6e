"""The e2e corpus suite's environment (the public registry, not the hermetic index) and its results file.

The suite's tests run venvkeeper, uv, pip and git as processes with :func:`e2e_environ`: the
machine's environment without its uv/pip/git configuration (as the hermetic suite does), the
default index (PyPI), one uv cache shared by every run (``<cache>/uv``) and a fresh HOME.

Every corpus test's outcome is appended to ``<cache>/results/<run>.jsonl`` (one JSON object a line:
project, step, outcome, the first error line, duration); ``<cache>/results/latest.jsonl`` links to
the newest run. ``<cache>`` is ``$VENVKEEPER_E2E_CACHE``, else ``~/.cache/venvkeeper-e2e``.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.corpus import cache_root
from support.environment import hermetic_environ

# Read at import, before any fixture changes the process environment.
_MACHINE_ENVIRON = dict(os.environ)
# The registry is reached through the machine's CA bundle (a TLS-inspecting proxy here).
_KEPT = ("PIP_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR")


def e2e_environ(home: Path, uv_cache: Path) -> dict[str, str]:
    environ = hermetic_environ(
        _MACHINE_ENVIRON, index_url="https://pypi.org/simple", home=home, uv_cache_dir=uv_cache
    )
    # The projects' own indexes and uv's default (PyPI) apply; uv retries as it does for a user.
    for name in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "PIP_INDEX_URL", "UV_HTTP_RETRIES"):
        environ.pop(name, None)
    environ.update({name: _MACHINE_ENVIRON[name] for name in _KEPT if name in _MACHINE_ENVIRON})
    return environ


@pytest.fixture(scope="session")
def e2e_cache() -> Path:
    root = cache_root(_MACHINE_ENVIRON)
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def e2e_env(e2e_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("e2e-home")
    return e2e_environ(home, e2e_cache / "uv")


@pytest.fixture(autouse=True)
def _hermetic_environ(e2e_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaces the hermetic suite's fixture: no local index here, the public registry instead."""
    for name in set(os.environ) - set(e2e_env):
        monkeypatch.delenv(name)
    for name, value in e2e_env.items():
        monkeypatch.setenv(name, value)


def _run_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput["testrunuid"])
    if not hasattr(config, "_corpus_run_id"):
        config._corpus_run_id = uuid.uuid4().hex  # type: ignore[attr-defined]
    return str(config._corpus_run_id)  # type: ignore[attr-defined]


def results_path(config: pytest.Config) -> Path:
    return cache_root(_MACHINE_ENVIRON) / "results" / f"{_run_id(config)}.jsonl"


def _step(item: pytest.Item, params: dict[str, object]) -> str:
    name = item.originalname if isinstance(item, pytest.Function) else item.name
    others = [str(value) for key, value in params.items() if key != "corpus"]
    return f"{name}[{'-'.join(others)}]" if others else name


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if line.startswith(("error:", "E  ")):
            return line.removeprefix("E").strip()
    return next((line for line in text.splitlines() if line.strip()), "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    if callspec is None or "corpus" not in callspec.params:
        return
    if report.when != "call" and not (report.when == "setup" and not report.passed):
        return
    project = callspec.params["corpus"]
    record = {
        "project": getattr(project, "key", str(project)),
        "step": _step(item, callspec.params),
        "outcome": report.outcome,
        "when": report.when,
        "error": "" if report.passed else _first_error_line(report.longreprtext),
        "duration_s": round(report.duration, 1),
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
    }
    path = results_path(item.config)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One short line per write with O_APPEND: the workers' lines do not interleave.
    with path.open("a") as stream:
        stream.write(json.dumps(record) + "\n")
    latest = path.parent / "latest.jsonl"
    with contextlib.suppress(OSError):
        tmp = path.parent / f".latest-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(path.name)
        tmp.replace(latest)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    path = results_path(config)
    latest = path.parent / "latest.jsonl"
    shown = path if path.exists() else latest
    if shown.exists():
        terminalreporter.write_line(f"e2e corpus results (project x step, JSON lines): {shown}")
