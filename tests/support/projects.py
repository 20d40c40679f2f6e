"""Fixture projects: one folder per template under ``tests/projects/``.

A template is copied, its ``{{NAME}}`` placeholders filled, locked with uv against the local
index once per session, then copied for each test and committed to a fresh git repository.
Adding a template is adding a folder.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from .environment import GIT_EMAIL, GIT_NAME
from .process import run

__all__ = [
    "TEMPLATES_DIR",
    "ProjectFactory",
    "ProjectTemplateError",
    "git_commit_all",
    "render_template",
    "template_names",
]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "projects"
_PLACEHOLDER = re.compile(r"\{\{([A-Z][A-Z0-9_]*)\}\}")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "*.egg-info", "build", "dist")


class ProjectTemplateError(Exception):
    """A template is missing, or its placeholders and the values given do not match."""


def template_names(templates_dir: Path = TEMPLATES_DIR) -> list[str]:
    return sorted(path.name for path in templates_dir.iterdir() if (path / "pyproject.toml").is_file())


def render_template(
    name: str, dest: Path, values: Mapping[str, str], *, templates_dir: Path = TEMPLATES_DIR
) -> Path:
    """Copy template ``name`` to ``dest`` (which must not exist), filling ``{{NAME}}`` from ``values``.

    Every placeholder needs a value and every value but ``INDEX_URL`` a placeholder, so a
    typo in a test or a template fails loudly.
    """
    source = templates_dir / name
    if not (source / "pyproject.toml").is_file():
        raise ProjectTemplateError(
            f"no fixture project {name!r} in {templates_dir}; there are {template_names(templates_dir)}"
        )
    shutil.copytree(source, dest, ignore=_IGNORED)
    try:
        _fill_placeholders(source, dest, values)
    except BaseException:
        shutil.rmtree(dest)
        raise
    return dest


def _fill_placeholders(source: Path, dest: Path, values: Mapping[str, str]) -> None:
    used: set[str] = set()
    for path in sorted(dest.rglob("*")):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if "{{" not in text:
            continue
        relative = path.relative_to(dest)
        missing = sorted({key for key in _PLACEHOLDER.findall(text) if key not in values})
        if missing:
            raise ProjectTemplateError(f"{source / relative} needs a value for {missing}")
        used.update(_PLACEHOLDER.findall(text))
        path.write_text(_PLACEHOLDER.sub(lambda match: values[match.group(1)], text), encoding="utf-8")
    unused = sorted(set(values) - used - {"INDEX_URL"})
    if unused:
        raise ProjectTemplateError(f"{source} has no placeholder for {unused}")


def git_commit_all(root: Path, message: str) -> str:
    """Stage everything under ``root`` and commit it; returns the commit id."""
    run(["git", "add", "-A"], cwd=root)
    run(["git", "commit", "-q", "--no-verify", "-m", message], cwd=root)
    return run(["git", "rev-parse", "HEAD"], cwd=root).stdout.strip()


class ProjectFactory:
    """Locked templates, cached for the session, copied on demand.

    ``environ`` is the environment uv locks in (the session's hermetic one), so a test that
    swapped its own uv cache in does not make the session cache cold.
    """

    def __init__(self, cache_dir: Path, *, uv: Path, index_url: str, environ: Mapping[str, str]) -> None:
        self.cache_dir = cache_dir
        self.uv = uv
        self.index_url = index_url
        self.environ = dict(environ)
        self._locked: dict[tuple[str, tuple[tuple[str, str], ...], bool], Path] = {}
        self._serial = itertools.count(1)

    def _prepared(self, name: str, values: Mapping[str, str], *, lock: bool) -> Path:
        key = (name, tuple(sorted(values.items())), lock)
        if key not in self._locked:
            prepared = render_template(name, self.cache_dir / f"{name}-{next(self._serial)}", values)
            if lock:
                run([self.uv, "lock", "--index-url", self.index_url], cwd=prepared, env=self.environ)
            self._locked[key] = prepared
        return self._locked[key]

    def create(self, dest: Path, name: str, *, lock: bool = True, git: bool = True, **options: str) -> Path:
        """Make project ``name`` at ``dest`` and return ``dest``.

        ``options`` fill placeholders: ``python_version="3.12"`` fills ``{{PYTHON_VERSION}}``.
        ``{{INDEX_URL}}`` is always filled. With ``git``, ``dest`` is a repository on branch
        ``main`` with one commit holding every file (``uv.lock`` too, with ``lock``).
        """
        values = {"INDEX_URL": self.index_url, **{key.upper(): value for key, value in options.items()}}
        shutil.copytree(self._prepared(name, values, lock=lock), dest)
        if git:
            run(["git", "init", "-q", "-b", "main"], cwd=dest)
            run(["git", "config", "user.name", GIT_NAME], cwd=dest)
            run(["git", "config", "user.email", GIT_EMAIL], cwd=dest)
            git_commit_all(dest, f"Add the {name} project")
        return dest
