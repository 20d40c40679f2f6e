"""Generations: complete environments kept beside --env, which is a symlink to one of them.

Layout, for ``--env /var/lib/app/.venv``::

    /var/lib/app/.venv -> .venv.venvkeeper/generations/0003
    /var/lib/app/.venv.venvkeeper/
        deploy.lock                 one venvkeeper at a time
        generations/0003/           a virtual environment (never renamed: its scripts name it)
        generations/0003.manifest.json  every file as built (size, sha256), sealed before the switch
        generations/0003.sbom.cdx.json  its CycloneDX SBOM (venvkeeper.sbom), sha256 in the record
        generations/0003.json       what it was built from; written last, so no JSON = incomplete
        wheels/<member>/<digest>/   built workspace members, by content
        wheels-store/<sha256>/      bundle wheels install unpacked, by content (bundle/store.py)
        tmp/                        staging copies, removed when done (or by the next run)
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from venvkeeper.core import files as fsutil
from venvkeeper.core import paths
from venvkeeper.core.errors import EnvironmentPathError
from venvkeeper.core.names import canonicalize_name

__all__ = [
    "STATE_SCHEMA",
    "GenerationState",
    "Layout",
    "inside",
    "read_packages",
    "read_state_file",
    "refuse_inside",
]

STATE_SCHEMA = paths.STATE_SCHEMA


@dataclass
class GenerationState:
    """What one generation was built from. Serialised as ``generations/NNNN.json``."""

    number: int
    kind: str  # "deploy" (built by venvkeeper) or "adopted" (a plain venv that stood at --env)
    created: str
    packages: dict[str, str]
    project: str | None = None
    # Where it was built (the generation's directory, or --env in place): uv wrote this path into
    # its scripts, so the environment only works there (paths.moved_from).
    directory: str | None = None
    lock_sha256: str | None = None
    export_sha256: str | None = None
    inputs_sha256: str | None = None
    lock_inputs_sha256: str | None = None
    effective_sha256: str | None = None
    members: list[dict[str, Any]] = field(default_factory=list)
    interpreter: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    uv_version: str | None = None
    uv_cache_dir: str | None = None
    uv_cache_why: str | None = None  # why uv's cache was there (uvcmd.uv_cache)
    manifest_sha256: str | None = None
    venvkeeper_version: str | None = None
    duration_s: float | None = None
    # How it was built: {"from": "clone", "source": N, "linked": …} or {"from": "nothing", "why": …}.
    built: dict[str, Any] | None = None
    # The project's commit (HEAD) it was deployed from, or the bundle's built_from.git_commit; None
    # outside git. What a receipt names (verify.receipt).
    git_commit: str | None = None
    # The sha256 of its SBOM (generations/NNNN.sbom.cdx.json); None for one made before SBOMs.
    sbom_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["schema"] = STATE_SCHEMA
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationState:
        if data.get("schema") != STATE_SCHEMA:
            raise ValueError(f"state schema {data.get('schema')!r}, expected {STATE_SCHEMA}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Layout:
    env: Path  # absolute, not resolved: it is the symlink

    @classmethod
    def for_env(cls, env: Path) -> Layout:
        env = Path(os.path.abspath(env))
        if env.name in ("", ".", ".."):
            raise EnvironmentPathError(
                f"{env}: not a usable --env path", hint="name the environment's directory"
            )
        return cls(env)

    @property
    def home(self) -> Path:
        return Path(paths.home(str(self.env)))

    @property
    def generations(self) -> Path:
        return self.home / "generations"

    @property
    def tmp(self) -> Path:
        return self.home / "tmp"

    @property
    def wheels(self) -> Path:
        return self.home / "wheels"

    @property
    def lock_file(self) -> Path:
        return self.home / "deploy.lock"

    @property
    def inplace_state(self) -> Path:
        return self.home / "in-place.json"

    @property
    def inplace_manifest(self) -> Path:
        return self.home / "in-place.manifest.json"

    def gen_dir(self, number: int) -> Path:
        return Path(paths.gen_dir(str(self.home), number))

    def state_file(self, number: int) -> Path:
        return Path(paths.state_file(str(self.home), number))

    def manifest_file(self, number: int) -> Path:
        return Path(paths.manifest_file(str(self.home), number))

    def sbom_file(self, number: int) -> Path:
        """Its CycloneDX SBOM, beside the manifest (venvkeeper.sbom.generation)."""
        return self.generations / f"{number:04d}.sbom.cdx.json"

    def ctimes_file(self, number: int) -> Path:
        """The ctimes venvkeeper's own unlinks moved in generation ``number`` (generations.identity)."""
        return self.home / "ctimes" / f"{number:04d}.json"

    def link_target(self, number: int) -> str:
        # Relative, so the link stays right when the parent directory is bind-mounted elsewhere.
        return f"{self.home.name}/generations/{number:04d}"

    # -- preparing ---------------------------------------------------------------------------

    def prepare(self) -> list[Path]:
        """Create the state directory; fail with a clear line when --env's parent is unusable.

        Returns the directories it created (--env's missing parents, the state directory), for
        :meth:`remove_unused` to take away again when a first deploy fails.
        """
        parent = self.env.parent
        created = [p for p in (parent, *parent.parents) if not os.path.lexists(p)]
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentPathError(
                f"cannot create {parent}: {exc.strerror}",
                hint="create the directory (or choose another --env) as a user who may write there",
            ) from exc
        self.preparable()
        if not os.path.lexists(self.home):
            created.insert(0, self.home)
        for directory in (self.home, self.generations, self.tmp, self.wheels):
            directory.mkdir(exist_ok=True)
        return created

    def preparable(self) -> None:
        """The refusals of :meth:`prepare`, writing nothing (``--check`` asks them): the nearest
        existing directory on --env's way must be writable, and --env a venv, a generation or nothing."""
        probe = self.env.parent
        while not os.path.lexists(probe) and probe != probe.parent:
            probe = probe.parent
        if not os.access(probe, os.W_OK | os.X_OK):
            raise EnvironmentPathError(
                f"{probe} is not writable, so {self.env} cannot be deployed",
                hint="run as the directory's owner, chown it, or choose an --env whose parent you can write",
            )
        if self.env_kind() == "other":
            raise EnvironmentPathError(
                f"{self.env} exists and is not a virtual environment venvkeeper can adopt",
                hint="move it away or choose another --env",
            )

    def remove_unused(self, created: list[Path], env_was: str) -> list[Path]:
        """After a failed deploy: take away what :meth:`prepare` created (and --env, when the run
        made it from nothing), unless a generation or an in-place record now lives there.

        A failed first deploy leaves nothing behind: no state directory, no --env, no parent made
        for it. Called with the lock held; returns what was removed.
        """
        kept = os.listdir(self.generations) if self.generations.is_dir() else []
        if kept or self.inplace_state.exists():
            return []
        removed: list[Path] = []
        if env_was == "missing" and os.path.lexists(self.env):
            fsutil.remove_tree(self.env)  # an --in-place deploy into a missing --env, cut short
            removed.append(self.env)
        elif env_was == "empty" and not os.path.lexists(self.env):
            self.env.mkdir()  # it was an empty directory the run took away to put its own there
        if self.home in created:
            fsutil.remove_tree(self.home)
            removed.append(self.home)
        for directory in (p for p in created if p != self.home):  # deepest first
            try:
                directory.rmdir()
            except OSError:
                break  # not empty: someone else put something there meanwhile
            removed.append(directory)
        return removed

    def env_kind(self) -> str:
        """'missing', 'generation' (our symlink), 'venv' (a plain venv to adopt), 'empty' or 'other'."""
        env = self.env
        if env.is_symlink():
            return "generation" if self.current_number() is not None else "other"
        if not env.exists():
            return "missing"
        if env.is_dir():
            if (env / "pyvenv.cfg").is_file():
                return "venv"
            if not any(env.iterdir()):
                return "empty"
        return "other"

    # -- reading -------------------------------------------------------------------------------

    def current_number(self) -> int | None:
        return paths.current_number(str(self.env))

    def read_state(self, number: int) -> GenerationState | None:
        return read_state_file(self.state_file(number))

    def numbers(self) -> list[int]:
        """Numbers of complete generations (those whose state file exists), ascending."""
        if not self.generations.is_dir():
            return []
        found = []
        for entry in self.generations.iterdir():
            if entry.suffix == ".json" and entry.stem.isdigit() and self.gen_dir(int(entry.stem)).is_dir():
                found.append(int(entry.stem))
        return sorted(found)

    def next_number(self) -> int:
        used = [
            int(p.name.split(".")[0]) for p in self.generations.iterdir() if p.name.split(".")[0].isdigit()
        ]
        return max(used, default=0) + 1

    # -- changing (callers hold the lock) -----------------------------------------------------

    def sweep(self) -> list[str]:
        """Remove what an interrupted run left: incomplete generations and staging directories."""
        removed: list[str] = []
        current = self.current_number()
        if self.generations.is_dir():
            for entry in sorted(self.generations.iterdir()):
                stem = entry.name.split(".")[0]
                if not stem.isdigit() or int(stem) == current:
                    continue
                number = int(stem)
                complete = (
                    self.state_file(number).is_file()
                    and self.gen_dir(number).is_dir()
                    and not (self.gen_dir(number).is_symlink())
                )
                if not complete:
                    fsutil.remove_tree(entry)
                    removed.append(entry.name)
        if self.tmp.is_dir():
            for entry in self.tmp.iterdir():
                fsutil.remove_tree(entry)
                removed.append(f"tmp/{entry.name}")
        # atomic_write_json's temporary files (".NNNN.json.XXXX.tmp"), from a run killed mid-write.
        for directory in (self.home, self.generations):
            for entry in directory.glob(".*.tmp") if directory.is_dir() else []:
                fsutil.remove_tree(entry)
                removed.append(entry.name)
        return removed

    def switch_to(self, number: int) -> None:
        """Point --env at generation ``number`` atomically (adopting a plain venv is handled apart)."""
        fsutil.replace_symlink(self.env, self.link_target(number), scratch=self.tmp)

    def adopt(self, number: int) -> None:
        """Swap the plain venv at --env into ``generations/NNNN`` and --env into a symlink, in one step.

        The symlink is made at the generation's own path first, then the two are exchanged, so
        --env never stops existing and a crash leaves either the old venv or the new link in place.
        """
        slot = self.gen_dir(number)
        with contextlib.suppress(FileNotFoundError):
            slot.unlink()
        os.symlink(self.link_target(number + 1), slot)
        if not fsutil.exchange(slot, self.env):
            # No renameat2 (not Linux, or an old kernel): two renames, with a moment without --env.
            slot.unlink()
            os.rename(self.env, slot)
            os.symlink(self.link_target(number + 1), self.env)

    def restore_adopted(self, number: int) -> None:
        """Put an adopted venv back at --env (the reverse of ``adopt``)."""
        slot = self.gen_dir(number)
        if not fsutil.exchange(slot, self.env):
            os.unlink(self.env)
            os.rename(slot, self.env)
        else:
            os.unlink(slot)  # now the symlink that stood at --env
        with contextlib.suppress(FileNotFoundError):
            self.state_file(number).unlink()

    def remove_generation(self, number: int) -> None:
        # The record first: without it the rest is an incomplete generation that sweep removes.
        for path in (self.state_file(number), self.manifest_file(number), self.sbom_file(number)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        fsutil.remove_tree(self.gen_dir(number))
        with contextlib.suppress(FileNotFoundError):
            self.ctimes_file(number).unlink()

    def doomed(self, keep: int) -> list[int]:
        """What a prune removes: all but the current generation and the ``keep`` newest others."""
        current = self.current_number()
        others = [n for n in self.numbers() if n != current]
        return others[: max(0, len(others) - keep)]

    def prune(self, keep: int) -> list[int]:
        """Keep the current generation and the ``keep`` newest others; remove the rest."""
        doomed = self.doomed(keep)
        for number in doomed:
            self.remove_generation(number)
        return doomed


def inside(env: str | Path, source: str | Path) -> bool:
    """Whether --env (and so its state directory beside it) lies in ``source`` or is ``source``,
    after symlinks and ``..``; --env itself is not followed (it is venvkeeper's own symlink)."""
    absolute = os.path.abspath(env)
    place = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    root = os.path.realpath(source)
    return place == root or place.startswith(root.rstrip("/") + "/")


def refuse_inside(env: Path, source: Path, what: str = "the project") -> None:
    """EnvironmentPathError (exit 2) when --env lies inside the source tree, which venvkeeper never
    writes: the state directory, the generations and the staging copies would all land there."""
    if inside(env, source):
        root = os.path.realpath(source)
        beside = f"{os.path.dirname(root).rstrip('/')}/{os.path.basename(root)}-env/.venv"
        raise EnvironmentPathError(
            f"--env {env} is inside {what} {root}, and venvkeeper never writes into the source tree",
            hint=f"choose an --env outside {root}, e.g. --env {beside}",
        )


def read_state_file(path: Path) -> GenerationState | None:
    """A generation's record (or the --in-place record); None when missing or unreadable."""
    try:
        return GenerationState.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_packages(env_dir: Path) -> dict[str, str]:
    """Distributions installed in a venv, {canonical name: version}, from the dist-info directory names."""
    packages: dict[str, str] = {}
    # PyPy's venv has lib/pypy3.X/site-packages.
    for site in sorted(
        [*env_dir.glob("lib/python3*/site-packages"), *env_dir.glob("lib/pypy3*/site-packages")]
    ):
        for entry in site.iterdir():
            if entry.suffix == ".dist-info" and "-" in entry.stem:
                name, _, version = entry.stem.partition("-")
                packages[canonicalize_name(name)] = version
    return packages
