"""Heal's file repairs, carried out in the environment itself with a way back.

Links, ``pyvenv.cfg``, ``lib64``, the paths scripts name, one distribution reinstalled, or a package
directory converted: each file is backed up first, and everything is put back if one repair fails or
doctor, looking again, sees something it did not see before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from venvkeeper.core import pyvenvcfg
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.lazy import lazy
from venvkeeper.doctor.backup import Backup
from venvkeeper.doctor.convert import convert, undo_convert
from venvkeeper.doctor.diagnosis import Problem, diagnose
from venvkeeper.doctor.envfacts import Facts, gather
from venvkeeper.doctor.healplan import Plan
from venvkeeper.doctor.result import Action
from venvkeeper.doctor.rewrite import rewrite_paths, update_records

if TYPE_CHECKING:
    from venvkeeper.generations import engine
else:  # uv's gateway: only a reinstall needs it
    engine = lazy("venvkeeper.generations.engine")

__all__ = ["edit_in_place"]


def _apply(facts: Facts, action: Action, backup: Backup) -> None:
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
        update_records(root, rewrite_paths(root, action, backup), backup)
    elif action.action == "reinstall":
        engine.install_requirements(
            Path(root) / "bin" / "python", [action.data["requirement"]], reinstall=[action.data["name"]]
        )


def edit_in_place(facts: Facts, plan: Plan, problems: list[Problem]) -> str | None:
    """Carry out file repairs with backups; undo them all if one fails or doctor sees something new.

    Returns why the repairs were undone, or None when they stand.
    """
    backup = Backup(facts.root)
    failure = None
    try:
        for action in plan.actions:
            if action.action == "convert":
                convert(facts, action, backup)
            else:
                _apply(facts, action, backup)
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


def _undo(facts: Facts, plan: Plan, backup: Backup) -> None:
    if any(a.action == "convert" for a in plan.actions):
        undo_convert(facts, backup)
    else:
        backup.restore()
