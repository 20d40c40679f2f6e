"""What ``venvkeeper audit`` looks at, built where capabilities meet (they never import each other):
a project's lock (deploy's selection rule, via :mod:`venvkeeper.bundle.locked`), an environment's
live record, or a bundle's ``pylock.toml``. The project's own members are left out: they are not on
PyPI, and a PyPI project of the same name would be someone else's advisories."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from venvkeeper.audit.run import Subject
from venvkeeper.bundle import archive, installcheck
from venvkeeper.bundle.locked import runtime_packages
from venvkeeper.core.errors import CannotVerifyError
from venvkeeper.core.names import canonicalize_name
from venvkeeper.core.signing import load_key_file
from venvkeeper.generations.layout import Layout, read_packages, read_state_file
from venvkeeper.project import pylock, selection
from venvkeeper.project.workspace import Workspace, parse_lock

__all__ = ["bundle_subject", "env_subject", "lock_subject", "pylock_subject"]


def lock_subject(workspace: Workspace, groups: tuple[str, ...] | None) -> Subject:
    """What a deploy of the lock installs on this host: the runtime set plus the selected groups."""
    chosen = selection.chosen(groups, workspace.config.groups)
    pins = runtime_packages(parse_lock(workspace), chosen)
    packages = dict(pin.split("==", 1) for pin in pins)
    named = f" with {', '.join(chosen)}" if chosen else ""
    return Subject(f"{workspace.lock_path}{named}", packages)


def env_subject(env: Path) -> Subject:
    """The live generation's (or in-place environment's) record; a plain venv as it stands."""
    layout = Layout.for_env(env)
    number = layout.current_number()
    state = layout.read_state(number) if number is not None else read_state_file(layout.inplace_state)
    if state is not None:
        members = {canonicalize_name(str(m.get("name", ""))) for m in state.members}
        packages = {n: v for n, v in state.packages.items() if canonicalize_name(n) not in members}
        where = f"generation {number}" if number is not None else "in place"
        return Subject(f"{layout.env} ({where})", packages)
    if not (layout.env / "pyvenv.cfg").is_file():
        raise CannotVerifyError(
            f"{layout.env}: not an environment venvkeeper built, nor a virtual environment",
            hint="give the --env of a deploy or install, or a venv's directory",
        )
    return Subject(f"{layout.env} (a plain virtual environment)", read_packages(layout.env))


def bundle_subject(bundle: Path, public_key: Path | None) -> Subject:
    """Every package the bundle carries (checked whole first, the signature too when a key is given)."""
    key = load_key_file(public_key, "public") if public_key is not None else None
    checked = archive.read_bundle(bundle, public_key=key)
    members = set()
    for wheel in checked.fields.members:
        try:
            members.add(canonicalize_name(parse_wheel_filename(wheel)[0]))
        except InvalidWheelFilename:
            continue
    packages = installcheck.pylock_packages(checked.pylock, None, str(bundle))
    return Subject(f"bundle {bundle}", {n: v for n, v in packages.items() if n not in members})


def pylock_subject(path: Path) -> Subject:
    """Every package a PEP 751 lock names, whatever its marker (as for a bundle)."""
    lock = pylock.load(path)
    return Subject(str(path), {str(p.name): str(p.version or "") for p in lock.packages})
