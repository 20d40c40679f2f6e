"""``venvkeeper heal``: carry out the repairs doctor proposes, then run doctor again.

The plan comes from :mod:`healplan` (pure). Here: finding the interpreter, the file changes
(each file backed up first and put back if the environment comes out worse), the rebuild of a
plain environment beside the old one (swapped in only when complete and passing doctor), and the
redeploy of an environment venvkeeper built (through :func:`venvkeeper.deploy.converge.deploy`).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from venvkeeper.core import envscan, pyvenvcfg
from venvkeeper.core import files as fsutil
from venvkeeper.core.errors import InterpreterError, VenvkeeperError
from venvkeeper.doctor import healplan
from venvkeeper.doctor.diagnosis import Problem, diagnose, requested_minor
from venvkeeper.doctor.envfacts import Facts, gather
from venvkeeper.doctor.result import Action, HealResult, Outcome
from venvkeeper.project import interpreters

__all__ = ["heal"]


def _sha256_record(data: bytes) -> str:
    import base64  # noqa: PLC0415

    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


# -- choosing the interpreter ----------------------------------------------------------------------


def _wanted_minor(facts: Facts) -> str | None:
    if facts.packages_python:
        return facts.packages_python
    values = facts.cfg.values if facts.cfg is not None else {}
    version = values.get("version_info") or values.get("version")
    if version:
        return ".".join(version.split(".")[:2])
    return facts.interpreter.minor if facts.interpreter is not None else None


def _hints(facts: Facts, minor: str) -> list[str]:
    values = facts.cfg.values if facts.cfg is not None else {}
    home = values.get("home")
    # home first: doctor's repair for a link to a foreign interpreter is "back to home's".
    hints = [f"{home}/python{minor}", f"{home}/python3", f"{home}/python"] if home else []
    hints += [facts.base_interpreter or "", values.get("executable", "")]
    hints += [script.interpreter for script in facts.scripts]
    return [h for h in dict.fromkeys(hints) if h]


def _search(facts: Facts, minor: str) -> interpreters.Interpreter | None:
    from venvkeeper.generations import engine  # noqa: PLC0415

    implementation = (facts.cfg.values.get("implementation", "CPython") if facts.cfg else "CPython").lower()
    found = interpreters.find(minor, _hints(facts, minor), implementation=implementation)
    if found is None:  # uv is asked last: it is a process of its own
        found = interpreters.find(
            minor, (), implementation=implementation, uv_python_dir=engine.python_install_dir()
        )
    return found


def _requested(facts: Facts, request: str) -> interpreters.Interpreter:
    """The interpreter --python names: a path that must run, or a version to look for."""
    if not healplan.is_version_request(request):
        found = interpreters.probe(os.path.abspath(request))
        if found is None:
            raise InterpreterError(
                f"--python {request}: does not run",
                hint="pass a working interpreter, e.g. /usr/bin/python3.12",
            )
        return found
    found = _search(facts, request)
    if found is None:
        raise InterpreterError(
            f"--python {request}: no CPython {request} found on PATH, under pyenv or among uv's Pythons",
            hint=f"install it (pyenv install {request}, uv python install {request}) or pass its path",
        )
    return found


def _choose_interpreter(
    facts: Facts, problems: list[Problem], request: str | None
) -> interpreters.Interpreter | None:
    """The interpreter heal needs, or None when the repairs need none (or none was found)."""
    codes = {p.code for p in problems if p.severity != "note"}
    if request:
        return _requested(facts, request)
    if "version-mismatch" in codes and facts.base_interpreter:
        return interpreters.probe(facts.base_interpreter)  # the new minor the environment now runs
    if not codes & (healplan.INTERPRETER_CODES | {"not-a-venv"}):
        return None
    minor = _wanted_minor(facts)
    if minor is not None:
        return _search(facts, minor)
    # A --target directory does not say which Python it is for: the one its scripts start, else python3.
    candidates = [*_hints(facts, "3"), shutil.which("python3") or ""]
    return next((found for c in candidates if c and (found := interpreters.probe(c))), None)


def _redeploy_check(facts: Facts, env: str) -> healplan.Redeploy | None:
    state = facts.state
    if state is None and facts.kind == "generation":
        return healplan.Redeploy(
            None,
            f"generation {facts.generation} has no readable record, and a sealed generation is never edited "
            f"in place: run `venvkeeper deploy PROJECT_DIR --env {env}`",
        )
    if state is not None and state.get("kind") == "install":
        bundle = state.get("options", {}).get("bundle", "BUNDLE")
        return healplan.Redeploy(
            None,
            f"generation {facts.generation} was installed from a bundle, and a sealed generation is never "
            f"edited in place: run `venvkeeper install {bundle} --env {env}` (with --python for another one)",
        )
    if state is None or state.get("kind") != "deploy":
        return None
    project = state.get("project")
    if project and not os.path.isfile(f"{project}/uv.lock"):
        project = _moved_along(facts, env, state, project) or project
    generation = f"generation {facts.generation}" if facts.generation is not None else "the environment"
    if not project or not os.path.isfile(f"{project}/uv.lock"):
        return healplan.Redeploy(
            project,
            f"{generation} was deployed from {project}, which has no uv.lock any more; "
            f"run `venvkeeper deploy PROJECT_DIR --env {env}`",
        )
    with open(f"{project}/uv.lock", "rb") as fh:
        current = hashlib.sha256(fh.read()).hexdigest()
    if current != state.get("lock_sha256"):
        changed = f"{project}/uv.lock"
    else:
        members = _changed_members(project, state)
        changed = f"{', '.join(members)} in {project}" if members else ""
    if not changed:
        return healplan.Redeploy(project, None)
    return healplan.Redeploy(
        project,
        f"{changed} changed since {generation} was built, and heal does not update: "
        f"run `venvkeeper deploy {project} --env {env}`",
    )


def _moved_along(facts: Facts, env: str, state: dict[str, Any], project: str) -> str | None:
    """The recorded project at its new place, when it moved together with the environment
    (``/srv/app/{src,.venv}`` moved as ``/srv/app``): the same path relative to --env's directory,
    holding the very uv.lock the generation was built from. None otherwise."""
    from venvkeeper.core import paths  # noqa: PLC0415

    old = paths.moved_from(state, facts.root, facts.generation)
    if old is None:
        return None
    # generations/NNNN lies in ENV.venvkeeper beside --env; an --in-place environment is --env.
    old_env = (
        old if facts.generation is None else os.path.dirname(os.path.dirname(old)).removesuffix(".venvkeeper")
    )
    # The recorded project is a resolved path: resolve --env's directories too (a symlinked /srv, say;
    # not --env itself, a link to its generation).
    relative = os.path.relpath(project, os.path.realpath(os.path.dirname(old_env)))
    candidate = os.path.normpath(
        os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(env))), relative)
    )
    try:
        with open(f"{candidate}/uv.lock", "rb") as fh:
            same = hashlib.sha256(fh.read()).hexdigest() == state.get("lock_sha256")
    except OSError:
        return None
    return candidate if same else None


def _changed_members(project: str, state: dict[str, Any]) -> list[str]:
    """Members whose files differ from what the generation was built from (heal rebuilds the same
    environment; new code is deploy's to bring). A project it cannot read is left to deploy's own
    error line."""
    from venvkeeper.project import plan  # noqa: PLC0415
    from venvkeeper.project.facts import ProjectFacts  # noqa: PLC0415
    from venvkeeper.project.workspace import LockedMember, load_workspace  # noqa: PLC0415

    recorded = [m for m in state.get("members") or [] if isinstance(m, dict)]
    try:
        workspace = load_workspace(Path(project))
        members = tuple(LockedMember(m["name"], m["path"], bool(m["package"])) for m in recorded)
        facts = ProjectFacts(workspace, members, plan.Options(), str(state.get("lock_sha256")))
    except (VenvkeeperError, OSError, KeyError, TypeError):
        return []
    # The files alone: a member's full hash also holds what a git version depends on (HEAD, tags,
    # the day of a dirty tree, override variables), which heal does not rebuild for.
    was = {m["name"]: m.get("files_sha256", m.get("sha256")) for m in recorded}
    now = {
        name: facts.file_hashes[name] if "files_sha256" in m else facts.member_hashes[name]
        for m in recorded
        if (name := m["name"]) in facts.member_hashes
    }
    return sorted(name for name, digest in now.items() if was.get(name) != digest)


# -- changing files, with a way back ---------------------------------------------------------------


class _Backup:
    """Copies of what heal changes, in a directory beside the environment, put back on request."""

    def __init__(self, root: str, *, enabled: bool = True) -> None:
        parent, name = os.path.split(root)
        self.root = root
        self.enabled = enabled  # False: for a directory heal built itself and throws away on failure
        self.dir = f"{parent}/.{name}.heal-backup-{os.getpid()}"
        self.saved: list[str] = []
        self.created: list[str] = []
        self.moved: list[tuple[str, str]] = []  # (where it was, where it is now)

    def save(self, rel: str) -> None:
        path = f"{self.root}/{rel}"
        if not self.enabled or rel in self.saved or rel in self.created:
            return
        if not os.path.lexists(path):
            self.created.append(rel)
            return
        dest = f"{self.dir}/{rel}"
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.islink(path):
            os.symlink(os.readlink(path), dest)
        else:
            shutil.copy2(path, dest)
        self.saved.append(rel)

    def put_back(self, rel: str) -> None:
        """Restore one saved file now (one that uv overwrote while converting)."""
        os.replace(f"{self.dir}/{rel}", f"{self.root}/{rel}")
        self.saved.remove(rel)

    def restore(self) -> None:
        for rel in self.created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.root}/{rel}")
        for rel in self.saved:
            os.replace(f"{self.dir}/{rel}", f"{self.root}/{rel}")
        self.discard()

    def discard(self) -> None:
        if self.enabled:
            fsutil.remove_tree(Path(self.dir))


def _replace_file(path: str, data: bytes) -> None:
    """Write through a new inode: an installed file may be a hard link into uv's cache."""
    mode = os.stat(path).st_mode & 0o7777
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.heal-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _boundary(old: str) -> re.Pattern[str]:
    return re.compile(re.escape(old) + r"(?=[/\"'\s]|$)", re.MULTILINE)


def _sh_quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


_TRAMPOLINE_END = b"' '''"


def _launcher(python: str) -> bytes:
    """The first line(s) of a script that starts ``python``.

    A ``#!`` line cannot hold a path with a space, and Linux cuts it at 127 bytes (BINPRM_BUF_SIZE
    before 5.1): then pip and uv write a /bin/sh trampoline instead, and so does heal.
    """
    if " " in python or len(python) > 125:
        exec_line = "'''exec' " + _sh_quote(python) + ' "$0" "$@"'
        return b"#!/bin/sh\n" + exec_line.encode("utf-8", "surrogateescape") + b"\n" + _TRAMPOLINE_END
    return f"#!{python}".encode("utf-8", "surrogateescape")


def _new_head(data: bytes, new: str) -> bytes:
    """``data`` (a script) starting ``new`` instead of the interpreter it names."""
    head, sep, rest = data.partition(b"\n")
    if head.startswith(b"#!/bin/sh"):  # a trampoline: the exec line, then the closing quote line
        _exec_line, sep, rest = rest.partition(b"\n")
        if rest.startswith(_TRAMPOLINE_END):
            return _launcher(new) + rest[len(_TRAMPOLINE_END) :]
        return _launcher(new) + b"\n" + rest
    args = head.decode("utf-8", "surrogateescape")[2:].strip().split(None, 1)[1:]
    if args:  # "#!/old/bin/python -E": keep the options
        return f"#!{new} {args[0]}".encode("utf-8", "surrogateescape") + sep + rest
    return _launcher(new) + sep + rest


def _rewrite_paths(root: str, action: Action, backup: _Backup) -> list[str]:
    changed: list[str] = []
    shebangs: dict[str, tuple[str, str]] = action.data["shebangs"]
    for rel, (_old, new) in shebangs.items():
        path = f"{root}/{rel}"
        with open(path, "rb") as fh:
            data = fh.read()
        backup.save(rel)
        _replace_file(path, _new_head(data, new))
        changed.append(rel)
    activates: dict[str, tuple[str, str]] = action.data["activates"]
    for rel, (old, new) in activates.items():
        path = f"{root}/{rel}"
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
        backup.save(rel)
        _replace_file(
            path, _boundary(old).sub(new.replace("\\", "\\\\"), text).encode("utf-8", "surrogateescape")
        )
        changed.append(rel)
    return changed


def _update_records(root: str, changed: list[str], backup: _Backup) -> None:
    """Give the rewritten files their new hash in whichever RECORD lists them (verify reads RECORD)."""
    if not changed:
        return
    wanted = set(changed)
    for dist in envscan.distributions_in(root, _site_dirs(root)):
        hits = wanted & set(dist.record)
        if not hits:
            continue
        record = f"{root}/{dist.dist_info}/RECORD"
        with open(record, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        site = os.path.dirname(dist.dist_info)
        for row in rows:
            if row and os.path.normpath(f"{site}/{row[0]}") in hits:
                with open(os.path.normpath(f"{root}/{site}/{row[0]}"), "rb") as fh:
                    data = fh.read()
                row[1:] = [_sha256_record(data), str(len(data))]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        backup.save(f"{dist.dist_info}/RECORD")
        _replace_file(record, out.getvalue().encode())


def _site_dirs(root: str) -> list[str]:
    try:
        names = os.listdir(f"{root}/lib")
    except OSError:
        return []
    return [f"lib/{n}/site-packages" for n in sorted(names) if n.startswith("python")]


def _apply_in_place(facts: Facts, action: Action, backup: _Backup) -> None:
    root = facts.root
    if action.action == "relink":
        rel = f"bin/{action.data['name']}"
        backup.save(rel)
        path = f"{root}/{rel}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        if "copy" in action.data:
            shutil.copy2(action.data["copy"], path)
        else:
            os.makedirs(f"{root}/bin", exist_ok=True)
            os.symlink(action.data["target"], path)
    elif action.action == "write-pyvenv-cfg":
        backup.save("pyvenv.cfg")
        text = pyvenvcfg.render_updated(facts.cfg_text or "", action.data["updates"], drop_bad=True)
        with open(f"{root}/pyvenv.cfg.heal-{os.getpid()}", "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(f"{root}/pyvenv.cfg.heal-{os.getpid()}", f"{root}/pyvenv.cfg")
    elif action.action == "create-lib64":
        backup.save("lib64")
        os.symlink("lib", f"{root}/lib64")
    elif action.action == "rewrite-paths":
        _update_records(root, _rewrite_paths(root, action, backup), backup)
    elif action.action == "reinstall":
        from venvkeeper.generations import engine  # noqa: PLC0415

        engine.install_requirements(
            Path(root) / "bin" / "python", [action.data["requirement"]], reinstall=[action.data["name"]]
        )


# -- converting a package directory ----------------------------------------------------------------


def _move_flat(facts: Facts, minor: str, backup: _Backup) -> None:
    """A pip --target directory: its distributions (by RECORD) go to lib/pythonX.Y/site-packages."""
    site = f"lib/python{minor}/site-packages"
    made_lib = not os.path.lexists(f"{facts.root}/lib")
    os.makedirs(f"{facts.root}/{site}", exist_ok=True)
    tops: set[str] = set()
    for name in facts.flat_dists:
        tops.add(name)
        with (
            contextlib.suppress(OSError),
            open(f"{facts.root}/{name}/RECORD", newline="", encoding="utf-8") as fh,
        ):
            for row in csv.reader(fh):
                if row and row[0] and not row[0].startswith(("/", "..")):
                    top = row[0].split("/", 1)[0]
                    if top not in ("bin", "lib", "__pycache__"):
                        tops.add(top)
    for top in sorted(tops):
        if os.path.lexists(f"{facts.root}/{top}"):
            os.rename(f"{facts.root}/{top}", f"{facts.root}/{site}/{top}")
            backup.moved.append((top, f"{site}/{top}"))
    if made_lib:
        backup.created.append("lib")
    # RECORD names the scripts relative to the --target directory (bin/tinyweb); from site-packages
    # they are ../../../bin/tinyweb, as in any venv.
    for name in facts.flat_dists:
        record = f"{site}/{name}/RECORD"
        try:
            with open(f"{facts.root}/{record}", newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
        except OSError:
            continue
        for row in rows:
            if row and row[0].startswith("bin/"):
                row[0] = f"../../../{row[0]}"
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        backup.save(record)
        _replace_file(f"{facts.root}/{record}", out.getvalue().encode())


# What `uv venv --allow-existing` writes besides the venv itself. In a user's package directory
# (~/.local, a platform's .pythonlibs) a CACHEDIR.TAG makes backup tools skip it and a .gitignore
# of "*" hides it from git: a user's own copy is put back, uv's is removed.
_UV_MARKERS = (".gitignore", "CACHEDIR.TAG", ".lock")


def _convert(facts: Facts, action: Action, backup: _Backup) -> list[str]:
    from venvkeeper.generations import engine  # noqa: PLC0415

    minor = str(action.data["minor"])
    if action.data["flat"]:
        _move_flat(facts, minor, backup)
    before = set(_listdir(facts.root)) | {f"bin/{n}" for n in _listdir(f"{facts.root}/bin")}
    # Whatever uv may overwrite is saved first.
    for rel in sorted(before):
        if rel in (*_UV_MARKERS, "pyvenv.cfg") or rel.startswith(("bin/activate", "bin/python", "bin/pydoc")):
            backup.save(rel)
    engine.create_venv(Path(facts.root), str(action.data["python"]), allow_existing=True)
    after = set(_listdir(facts.root)) | {f"bin/{n}" for n in _listdir(f"{facts.root}/bin")}
    backup.created += sorted(after - before)  # removed again if the heal is undone
    for rel in _UV_MARKERS:
        if rel in backup.saved:
            backup.put_back(rel)
        elif rel in after - before:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{facts.root}/{rel}")
            backup.created.remove(rel)
    shebangs = {
        f"bin/{s.name}": (s.interpreter, f"{facts.root}/bin/python")
        for s in facts.scripts
        if s.interpreter in facts.places
    }
    changed = _rewrite_paths(
        facts.root, Action("rewrite-paths", "bin", "", shebangs=shebangs, activates={}), backup
    )
    _update_records(facts.root, changed, backup)
    return changed


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _undo_convert(facts: Facts, backup: _Backup) -> None:
    """Saved files back first (some live inside moved directories), then the moves, then uv's files."""
    for rel in backup.saved:
        os.replace(f"{backup.dir}/{rel}", f"{facts.root}/{rel}")
    backup.saved.clear()
    for original, moved in reversed(backup.moved):
        os.rename(f"{facts.root}/{moved}", f"{facts.root}/{original}")
    backup.moved.clear()
    for rel in sorted(backup.created, reverse=True):
        fsutil.remove_tree(Path(facts.root) / rel)
    backup.created.clear()
    backup.discard()


# -- rebuilding a plain environment for another interpreter ----------------------------------------


def _requirements(facts: Facts) -> tuple[list[str], list[str]]:
    """What to install to get the same distributions back, and what cannot be (and why)."""
    minor = facts.packages_python
    sites = [f"lib/python{minor}/site-packages"] if minor else []
    wanted: list[str] = []
    problems: list[str] = []
    for dist in envscan.distributions_in(facts.root, sites):
        if dist.editable and dist.url and dist.url.startswith("file://"):
            wanted += ["--editable", dist.url.removeprefix("file://")]
        elif dist.source == "registry":
            wanted.append(f"{dist.name}=={dist.version}")
        elif dist.url and dist.source in ("url", "vcs"):
            vcs = (dist.direct_url or {}).get("vcs_info") or {}
            url = (
                f"{vcs.get('vcs', 'git')}+{dist.url}@{vcs['commit_id']}" if vcs.get("commit_id") else dist.url
            )
            wanted.append(f"{dist.name} @ {url}")
        elif dist.url and os.path.exists(dist.url.removeprefix("file://")):
            wanted.append(f"{dist.name} @ {dist.url}")
        else:
            problems.append(f"{dist.name} {dist.version} was installed from {dist.url}, which is gone")
    return wanted, problems


def _unowned(facts: Facts) -> int:
    """Files in the old environment that no distribution owns and no venv creator writes."""
    from venvkeeper.core.envscan import walk  # noqa: PLC0415
    from venvkeeper.verify.findings import is_venv_scaffolding  # noqa: PLC0415

    disk = walk(facts.root)
    owned: set[str] = set()
    for dist in envscan.read_distributions(facts.root, disk):
        owned |= set(dist.record)
        owned.add(f"{dist.dist_info}/RECORD")
    # What venv creators and uv write themselves (uv's .lock guards `uv pip` runs).
    ignorable = {"pyvenv.cfg", ".gitignore", "CACHEDIR.TAG", "lib64", ".lock"}
    return sum(
        1
        for path in disk
        if path not in owned
        and path not in ignorable
        and not is_venv_scaffolding(path)
        and "/__pycache__/" not in path
        and not path.endswith(".dist-info/INSTALLER")
        and not path.endswith(".dist-info/REQUESTED")
    )


def _rebuild(facts: Facts, action: Action) -> tuple[str | None, str | None]:
    """Build beside, swap in; returns (kept old directory or None, failure reason or None)."""
    from venvkeeper.generations import engine  # noqa: PLC0415

    wanted, impossible = _requirements(facts)
    if impossible:
        return None, "; ".join(
            impossible
        ) + ": heal cannot reinstall it, so the environment was left as it was"
    parent, name = os.path.split(facts.root)
    new = f"{parent}/.{name}.heal-new-{os.getpid()}"
    old = f"{parent}/.{name}.heal-old-{os.getpid()}"
    fsutil.remove_tree(Path(new))
    try:
        engine.create_venv(Path(new), str(action.data["python"]))
        if wanted:
            engine.install_requirements(Path(new) / "bin" / "python", wanted)
        # The new environment's scripts name where it was built: make them name where it will be.
        built = gather(new, probe_interpreter=False)
        shebangs = {
            f"bin/{s.name}": (s.interpreter, f"{facts.root}/bin/{os.path.basename(s.interpreter)}")
            for s in built.scripts
            if s.interpreter.startswith(f"{new}/")
        }
        activates = {f"bin/{n}": (built.activate_path or new, facts.root) for n in built.activates}
        scratch = _Backup(new, enabled=False)
        changed = _rewrite_paths(
            new, Action("rewrite-paths", "bin", "", shebangs=shebangs, activates=activates), scratch
        )
        _update_records(new, changed, scratch)
        scratch.discard()
    except VenvkeeperError as exc:
        fsutil.remove_tree(Path(new))
        return None, f"{exc.message}; the environment was left as it was"
    except BaseException:
        fsutil.remove_tree(Path(new))
        raise
    keep = _unowned(facts)
    os.rename(facts.root, old)
    os.rename(new, facts.root)
    failing = [p for p in diagnose(gather(facts.root)) if p.severity != "note"]
    if failing:
        os.rename(facts.root, new)
        os.rename(old, facts.root)
        fsutil.remove_tree(Path(new))
        return (
            None,
            f"the rebuilt environment did not pass doctor ({failing[0].code}: {failing[0].seen}); put back",
        )
    if keep:
        kept = f"{parent}/{name}.before-heal-{time.strftime('%Y%m%dT%H%M%S')}"
        os.rename(old, kept)
        return kept, None
    fsutil.remove_tree(Path(old))
    return None, None


# -- the command -----------------------------------------------------------------------------------


def _redeploy(env: str, action: Action, facts: Facts) -> tuple[int | None, str | None]:
    from venvkeeper.deploy.converge import DeployRequest, deploy  # noqa: PLC0415

    options = (facts.state or {}).get("options") or {}
    request = DeployRequest(
        project_dir=Path(str(action.data["project"])),
        env=Path(env),
        groups=tuple(options.get("groups") or ()),
        python=action.data["python"] or options.get("python"),
        in_place=facts.kind == "in-place",
        repair=True,
    )
    try:
        result = deploy(request)
    except VenvkeeperError as exc:
        return None, f"deploy failed: {exc.message}"
    return result.generation, None


def _outcomes(
    problems: list[Problem], plan: healplan.Plan, after: list[Problem] | None, failure: str | None
) -> list[Outcome]:
    still = {p.key: p for p in after or []}
    outcomes: list[Outcome] = []
    for problem in problems:
        if problem.severity == "note":
            continue
        if problem.key in plan.skipped:
            outcomes.append(Outcome(problem, "skipped", plan.skipped[problem.key]))
        elif problem.key not in plan.covers:
            outcomes.append(Outcome(problem, "skipped", "heal has no repair for it"))
        elif after is None:
            outcomes.append(Outcome(problem, "would-repair", plan.covers[problem.key].detail))
        elif failure is not None:
            outcomes.append(Outcome(problem, "still-broken", failure))
        elif problem.key in still:
            outcomes.append(
                Outcome(problem, "still-broken", f"doctor still sees it: {still[problem.key].seen}")
            )
        else:
            outcomes.append(Outcome(problem, "repaired"))
    before = {p.key for p in problems}
    for problem in after or []:
        if problem.key not in before and problem.severity != "note":
            outcomes.append(Outcome(problem, "still-broken", "found after the repair"))
    return outcomes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(env: str) -> str | None:
    """Finish what a heal killed half-way left beside ``env``; returns a directory kept, if any.

    A rebuild renames the old environment to ``.NAME.heal-old-PID`` and the new one into place; a
    file repair keeps the originals in ``.NAME.heal-backup-PID``. Killed in between, the old
    environment is put back (or, when the new one is already in place, kept beside it).
    """
    kept = None
    # The leftovers are named after the directory itself, which a symlinked --env leads to.
    for place in dict.fromkeys([os.path.abspath(env), os.path.realpath(env)]):
        kept = _recover_at(place) or kept
    return kept


def _recover_at(absolute: str) -> str | None:
    parent, name = os.path.split(absolute)
    if not os.path.isdir(parent):
        return None
    pattern = re.compile(rf"\.{re.escape(name)}\.heal-(old|new|backup)-(\d+)")
    kept = None
    for entry in sorted(os.listdir(parent)):
        match = pattern.fullmatch(entry)
        if match is None or _alive(int(match.group(2))):
            continue
        path = f"{parent}/{entry}"
        if match.group(1) == "new":
            fsutil.remove_tree(Path(path))
        elif match.group(1) == "old":
            if os.path.lexists(absolute):
                kept = f"{parent}/{name}.before-heal-{time.strftime('%Y%m%dT%H%M%S')}"
                os.rename(path, kept)
            else:
                os.rename(path, absolute)
        else:
            for directory, _dirs, files in os.walk(path):
                for file in files:
                    rel = os.path.relpath(f"{directory}/{file}", path)
                    os.replace(f"{directory}/{file}", f"{absolute}/{rel}")
            fsutil.remove_tree(Path(path))
    return kept


@contextlib.contextmanager
def _parent_locked(env: str) -> Iterator[None]:
    parent = os.path.dirname(os.path.abspath(env)) or "/"
    try:
        fd = os.open(parent, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _edit_in_place(facts: Facts, plan: healplan.Plan, problems: list[Problem]) -> str | None:
    """Carry out file repairs with backups; undo them all if one fails or doctor sees something new."""
    backup = _Backup(facts.root)
    failure = None
    try:
        for action in plan.actions:
            if action.action == "convert":
                _convert(facts, action, backup)
            else:
                _apply_in_place(facts, action, backup)
    except VenvkeeperError as exc:
        failure = f"{exc.message}; the changes were undone"
    except OSError as exc:
        failure = f"{exc.filename or facts.root}: {exc.strerror or exc}; the changes were undone"
    except BaseException:
        _undo(facts, plan, backup)
        raise
    if failure is None:
        before = {p.key for p in problems}
        worse = [p for p in diagnose(gather(facts.root)) if p.key not in before and p.severity != "note"]
        if worse:
            failure = f"it came out worse ({worse[0].code}: {worse[0].seen}); the changes were undone"
    if failure is not None:
        _undo(facts, plan, backup)
    else:
        backup.discard()
    return failure


def heal(env: str, *, python: str | None = None, dry_run: bool = False, force: bool = False) -> HealResult:
    started = time.monotonic()
    if dry_run:
        return _heal(env, python, force, started, dry_run=True, recovered=None)
    # One heal at a time, from the first look to the last: a second heal waits, then sees the healed
    # environment (facts read before the first one finished would rebuild from what is gone).
    try:
        with _parent_locked(os.path.realpath(env)):
            recovered = _recover(env)
            return _heal(env, python, force, started, dry_run=False, recovered=recovered)
    except OSError as exc:
        where = exc.filename or env
        raise VenvkeeperError(
            f"{where}: {exc.strerror or exc}",
            hint="heal needs to write the environment and its parent directory; run it as their owner",
        ) from None


def _heal(
    env: str, python: str | None, force: bool, started: float, *, dry_run: bool, recovered: str | None
) -> HealResult:
    facts = gather(env)
    problems = diagnose(facts)
    target = None
    if python and (force or not facts.managed_by) and not any(p.code == "version-mismatch" for p in problems):
        # --python naming another minor asks for a rebuild even of a healthy environment.
        target = _requested(facts, python)
        asked = requested_minor(facts, target.minor, target.path)
        problems += [asked] if asked is not None else []
    if target is None and any(p.severity != "note" for p in problems) and (force or not facts.managed_by):
        target = _choose_interpreter(facts, problems, python)
    plan = healplan.plan(facts, problems, target=target, redeploy=_redeploy_check(facts, env), force=force)
    generation: int | None = None
    kept: str | None = None
    failure: str | None = None
    after: list[Problem] | None = None
    if dry_run:
        pass
    elif not plan.actions:
        after = [p for p in problems if p.key in plan.skipped]
    else:
        first = plan.actions[0]
        if first.action == "redeploy":  # deploy takes the environment's own lock
            generation, failure = _redeploy(env, first, facts)
        elif first.action == "rebuild":
            kept, failure = _rebuild(facts, first)
        else:
            failure = _edit_in_place(facts, plan, problems)
        after = diagnose(gather(env))
    return HealResult(
        env=env,
        directory=facts.root,
        dry_run=dry_run,
        forced=force,
        interpreter=None if target is None else target.to_json(),
        actions=plan.actions,
        outcomes=_outcomes(problems, plan, after, failure),
        changed=bool(plan.actions) and not dry_run and failure is None,
        generation=generation,
        kept=kept or recovered,
        duration_s=time.monotonic() - started,
    )


def _undo(facts: Facts, plan: healplan.Plan, backup: _Backup) -> None:
    if any(a.action == "convert" for a in plan.actions):
        _undo_convert(facts, backup)
    else:
        backup.restore()
