"""The end-to-end corpus: real public uv projects, as their authors published them on PyPI.

Each entry pins one sdist by name, version and sha256. The sdists carry the project's whole tree
with its ``uv.lock`` (hatchling includes every file git does not ignore; flask's flit config and
pytest-asyncio's setuptools-scm file finder include it too). The suite downloads them at test time
with pip (:func:`fetch_sdist`) into a cache the runs share, unpacks one and commits it to a fresh
git repository (:func:`checkout`), tagged with its version where the project derives its version
from git tags. No third-party source is committed to this repository.

What the corpus covers, together (``covers`` of each entry says which):

- a workspace whose members depend on each other: mcp (``mcp`` pins ``mcp-types=={{ version }}``
  through uv-dynamic-versioning's metadata hook; 16 members, one of them setuptools);
- versions from git tags: hatch-vcs (attrs, copier), setuptools-scm (pytest-asyncio),
  uv-dynamic-versioning (mcp, both members);
- a ``.python-version``: posting (``3.11.7``), copier (``3.10``); the suite passes ``--python``
  for another minor, which is the case of a pin the host does not satisfy;
- ``default-groups`` beyond ``dev``: flask (dev, pre-commit, tests, typing), starlette and mcp
  (dev, docs);
- build backends: setuptools (pytest-asyncio, mcp's ``examples/snippets``), hatchling (most),
  uv_build (smart-home), flit-core (flask);
- a web app: flask (console script ``flask``, a WSGI app), starlette (an ASGI app driven
  through its ASGI callable), smart-home (an MCP server with a console script);
- a pure-Python dependency published only as an sdist: posting's ``pyperclip 1.9.0`` (runtime);
- 100 or more locked packages: flask (102), mcp (134);
- forked packages (one name locked at several versions): attrs, flask, starlette, copier.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .process import run

__all__ = ["CORPUS", "CorpusProject", "cache_root", "checkout", "fetch_sdist"]


@dataclass(frozen=True)
class CorpusProject:
    """One published project of the corpus and how the suite checks it."""

    key: str
    # The sdist on PyPI: pip requirement name, version, file name and its sha256.
    name: str
    version: str
    filename: str
    sha256: str
    # What the suite exercises with it (see the module docstring).
    covers: tuple[str, ...]
    # The smoke command, run in the deployed environment: argv[0] is a program in its bin/.
    smoke: tuple[str, ...]
    # A string the smoke command's stdout must contain (the version the members were built at).
    smoke_expects: str
    # The project inside the sdist ("" = the sdist's top directory).
    subdir: str = ""
    # The git tag the project's version is derived from (None: the version is not from git).
    tag: str | None = None
    # Extra environment for the smoke command (settings the app reads at import).
    smoke_env: dict[str, str] = field(default_factory=dict)
    # The CPython minor the suite deploys it with.
    python: str = "3.12"

    @property
    def top(self) -> str:
        """The sdist's top directory (``name-version``)."""
        return self.filename.removesuffix(".tar.gz")


_STARLETTE_ASGI = """
import asyncio, starlette
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("hello"))])
sent = []
async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}
async def send(message):
    sent.append(message)
scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
         "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"",
         "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
asyncio.run(app(scope, receive, send))
print(starlette.__version__, sent[0]["status"], sent[1]["body"].decode())
"""

_FLASK_WSGI = """
import flask, importlib.metadata
app = flask.Flask("corpus")
app.add_url_rule("/", "index", lambda: "hello")
response = app.test_client().get("/")
print(importlib.metadata.version("flask"), response.status_code, response.get_data(as_text=True))
"""

CORPUS: tuple[CorpusProject, ...] = (
    CorpusProject(
        key="flask",
        name="flask",
        version="3.1.3",
        filename="flask-3.1.3.tar.gz",
        sha256="0ef0e52b8a9cd932855379197dd8f94047b359ca0a78695144304cb45f87c9eb",
        covers=("flit-core", "default-groups beyond dev", "web app (WSGI, console script)", "102 locked"),
        smoke=("python", "-c", _FLASK_WSGI),
        smoke_expects="3.1.3 200 hello",
    ),
    CorpusProject(
        key="posting",
        name="posting",
        version="2.11.1",
        filename="posting-2.11.1.tar.gz",
        sha256="ffd2d59a96815ca942b81ce9715a277736fa816b00be844429c5bc6761dd6986",
        covers=(".python-version (3.11.7)", "sdist-only runtime dependency (pyperclip)", "console script"),
        smoke=("posting", "--help"),
        smoke_expects="Usage: posting",
    ),
    CorpusProject(
        key="pytest-asyncio",
        name="pytest-asyncio",
        version="1.5.0",
        filename="pytest_asyncio-1.5.0.tar.gz",
        sha256="92c8fa83ca419fd0d4bd6a34df6520dae435841d3733c319343249492adf37f7",
        covers=("setuptools", "setuptools-scm version from tag v1.5.0"),
        smoke=("python", "-c", "import pytest_asyncio; print(pytest_asyncio.__version__)"),
        smoke_expects="1.5.0",
        tag="v1.5.0",
    ),
    CorpusProject(
        key="attrs",
        name="attrs",
        version="26.1.0",
        filename="attrs-26.1.0.tar.gz",
        sha256="d03ceb89cb322a8fd706d4fb91940737b6642aa36998fe130a9bc96c985eff32",
        covers=("hatchling", "hatch-vcs version from tag 26.1.0", "forked packages", "no runtime deps"),
        smoke=("python", "-c", "import attrs; print(attrs.__version__)"),
        smoke_expects="26.1.0",
        tag="26.1.0",
    ),
    CorpusProject(
        key="mcp",
        name="mcp",
        version="2.3.0",
        filename="mcp-2.3.0.tar.gz",
        sha256="8b147a50441cf059dc88c684e0aeed3687f0aa0f39c6cde7b90330effd2b34d8",
        covers=(
            "workspace (16 members, mcp -> mcp-types)",
            "uv-dynamic-versioning version from tag v2.3.0",
            "setuptools member",
            "default-groups dev+docs",
            "134 locked",
        ),
        smoke=(
            "python",
            "-c",
            "import mcp, mcp_types, importlib.metadata as m; print(m.version('mcp'), m.version('mcp-types'))",
        ),
        smoke_expects="2.3.0 2.3.0",
        tag="v2.3.0",
    ),
    CorpusProject(
        key="starlette",
        name="starlette",
        version="1.10.0",
        filename="starlette-1.10.0.tar.gz",
        sha256="b8399098d4c1e3522734f7235dc79b1fc967f96cf139c81e0fa30479e0685f9b",
        covers=("hatchling (version from a file)", "ASGI app", "default-groups dev+docs", "forked packages"),
        smoke=("python", "-c", _STARLETTE_ASGI),
        smoke_expects="1.10.0 200 hello",
    ),
    CorpusProject(
        key="copier",
        name="copier",
        version="9.19.1",
        filename="copier-9.19.1.tar.gz",
        sha256="3fe48c38a290c90dfa67cfc7811bc3f576c03f59d3a1e6a09a8d46c2f0403988",
        covers=("hatch-vcs version from tag v9.19.1", ".python-version (3.10) not the deployed minor"),
        smoke=("copier", "--version"),
        smoke_expects="copier 9.19.1",
        tag="v9.19.1",
    ),
    CorpusProject(
        key="smart-home",
        name="fastmcp",
        version="4.2.3",
        filename="fastmcp-4.2.3.tar.gz",
        sha256="0c9d1739d59e89506489bea589dec6193d204ab86e9739333d6bb46c13476477",
        covers=("uv_build", "MCP server app with a console script", "requires-python >=3.12"),
        subdir="examples/smart_home",
        smoke=("python", "-c", "from smart_home.hub import hub_mcp; print(hub_mcp.name)"),
        smoke_expects="Smart home",
        smoke_env={"HUE_BRIDGE_IP": "127.0.0.1", "HUE_BRIDGE_USERNAME": "corpus"},
    ),
)


def cache_root() -> Path:
    """Where downloads are kept between runs: ``$VENVKEEPER_E2E_CACHE``, else ~/.cache/venvkeeper-e2e."""
    configured = os.environ.get("VENVKEEPER_E2E_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "venvkeeper-e2e"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_sdist(project: CorpusProject, cache: Path, environ: dict[str, str]) -> Path:
    """The project's sdist in ``cache/sdists``, downloaded with pip when missing; sha256 checked."""
    sdists = cache / "sdists"
    target = sdists / project.filename
    if not target.is_file():
        sdists.mkdir(parents=True, exist_ok=True)
        # Downloaded into a private directory first: two workers may fetch the same file.
        scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=sdists))
        try:
            run(
                [
                    *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"),
                    *(f"{project.name}=={project.version}", "-d", scratch),
                ],
                env=environ,
                timeout=600,
            )
            os.replace(scratch / project.filename, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    found = _sha256(target)
    if found != project.sha256:
        target.unlink()
        raise AssertionError(f"{target}: sha256 {found}, expected {project.sha256} (file removed)")
    return target


def checkout(project: CorpusProject, sdist: Path, dest: Path, environ: dict[str, str]) -> Path:
    """Unpack ``sdist`` and commit the project's tree to a fresh git repository at ``dest``."""
    unpacked = dest.parent / f"{dest.name}.unpacked"
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    shutil.move(unpacked / project.top / project.subdir, dest)
    shutil.rmtree(unpacked)
    run(["git", "init", "-q", "-b", "main"], cwd=dest, env=environ)
    # Ignored files (say a generated _version.py the sdist carries) stay untracked, as upstream.
    run(["git", "add", "-A"], cwd=dest, env=environ)
    run(["git", "commit", "-qm", f"{project.name} {project.version} from its sdist"], cwd=dest, env=environ)
    if project.tag is not None:
        run(["git", "tag", project.tag], cwd=dest, env=environ)
    # Refresh git's index now, so that no later `git status` has a reason to rewrite it.
    run(["git", "status", "--porcelain"], cwd=dest, env=environ)
    return dest
