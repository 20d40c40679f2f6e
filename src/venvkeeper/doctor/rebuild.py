"""Rebuilding a plain environment for another interpreter, beside the old one, swapped in when sound.

The same distributions are installed into a new venv (``.NAME.heal-new-PID``), its scripts are made to
name the old place, and only then do the two directories change places; if doctor does not pass the
result, they change back. Files no distribution owns keep the old environment as ``NAME.before-heal-*``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from venvkeeper.core import envscan
from venvkeeper.core import files as fsutil
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.lazy import lazy
from venvkeeper.doctor.backup import Backup
from venvkeeper.doctor.diagnosis import diagnose
from venvkeeper.doctor.envfacts import Facts, gather
from venvkeeper.doctor.result import Action
from venvkeeper.doctor.rewrite import rewrite_paths, update_records
from venvkeeper.generations.findings import is_venv_scaffolding

if TYPE_CHECKING:
    from venvkeeper.generations import engine
else:  # uv's gateway: not loaded by a heal that rebuilds nothing
    engine = lazy("venvkeeper.generations.engine")

__all__ = ["rebuild"]


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
    disk = envscan.walk(facts.root)
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


def _build_beside(facts: Facts, action: Action, new: str, wanted: list[str]) -> None:
    """The new environment at ``new``, its scripts already naming ``facts.root``."""
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
    scratch = Backup(new, enabled=False)
    changed = rewrite_paths(
        new, Action("rewrite-paths", "bin", "", shebangs=shebangs, activates=activates), scratch
    )
    update_records(new, changed, scratch)
    scratch.discard()


def rebuild(facts: Facts, action: Action) -> tuple[str | None, str | None]:
    """Build beside, swap in; returns (kept old directory or None, failure reason or None)."""
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
        _build_beside(facts, action, new, wanted)
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
