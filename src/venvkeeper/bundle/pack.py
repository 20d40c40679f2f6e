"""``venvkeeper pack``: a locked project as one deterministic, optionally signed, offline bundle.

What the target installs and which of the lock's files that is are decided first (:mod:`target`,
:mod:`locked`). The lock's wheels for the target come from the lock's own URLs, checked against its
sha256 (:mod:`fetch`), because uv has no command that downloads a lock's files. A package locked as an sdist
alone is fetched the same way and built into a wheel here (:mod:`sdistbuild`). The members are built
as wheels from a staging copy, never in the source tree. The bundle's ``pylock.toml`` (:mod:`pylockgen`)
names exactly the bundled files, and the manifest lists every file's path, size and sha256. The
archive is byte-identical for the same inputs (:mod:`writer`); with ``--executable`` it is wrapped
into one runnable file (:mod:`executable`), carrying its interpreter with ``--with-python``
(:mod:`carried`), signed whole with ``--sign`` (:mod:`exesign`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import parse_wheel_filename

from venvkeeper import __version__
from venvkeeper.bundle import carried as carried_python
from venvkeeper.bundle import exesign, fetch, locked, pylockgen, sbomfile, sdistbuild
from venvkeeper.bundle.archive import FORMAT_VERSION, SBOM, BundleError
from venvkeeper.bundle.executable import default_script, make_executable
from venvkeeper.bundle.locked import Artifact
from venvkeeper.bundle.target import Target, target_for
from venvkeeper.bundle.writer import describe, manifest_bytes, write_bundle
from venvkeeper.core import progress
from venvkeeper.core.errors import ConfigError, InterpreterError
from venvkeeper.core.lazy import lazy
from venvkeeper.core.results import Result
from venvkeeper.gateways import git as gitcmd
from venvkeeper.generations import engine
from venvkeeper.generations.wheels import normalize
from venvkeeper.project import selection, staging
from venvkeeper.project.workspace import (
    LockedMember,
    Workspace,
    load_lock_members,
    load_workspace,
    parse_lock,
    stale_member,
)

if TYPE_CHECKING:
    import uv as uv_package

    from venvkeeper.core import signing
else:
    signing = lazy("venvkeeper.core.signing")  # cryptography: only --sign needs it
    # The uv package is optional at run time (a uv on PATH serves every other command): only
    # --with-uv needs it, for the binary it ships.
    uv_package = lazy("uv")

__all__ = ["PackResult", "pack"]


@dataclass
class PackResult(Result):
    output: str
    sha256: str
    size: int
    wheels: int
    wheels_size: int
    target: dict[str, Any]
    signed: bool
    with_uv: bool
    duration_s: float
    members: list[str] = field(default_factory=list)
    built_from_sdists: list[str] = field(default_factory=list)
    executable: bool = False
    signature: str = ""  # an executable's detached signature file
    python: dict[str, Any] | None = None  # the interpreter an executable carries
    command: str = "pack"

    def payload(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "sha256": self.sha256,
            "size": self.size,
            "wheels": self.wheels,
            "wheels_size": self.wheels_size,
            "members": self.members,
            "built_from_sdists": self.built_from_sdists,
            "target": self.target,
            "signed": self.signed,
            "with_uv": self.with_uv,
            "executable": self.executable,
            "signature": self.signature or None,
            "python": self.python,
            "duration_s": round(self.duration_s, 3),
        }


def _mtime(root: Path) -> int:
    """SOURCE_DATE_EPOCH (reproducible-builds.org), else the time of the lock's last commit, else 0."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not epoch.isdigit():
            raise ConfigError(
                f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds", hint="unset it or fix it"
            )
        return int(epoch)
    proc = gitcmd.run_git(["log", "-1", "--format=%ct", "--", "uv.lock"], cwd=root, check=False)
    text = proc.stdout.decode().strip()
    return int(text) if proc.returncode == 0 and text.isdigit() else 0


def _uv_binary(target: Target) -> Path:
    """The uv binary of the ``uv`` wheel installed beside venvkeeper: this platform's only."""
    if target.platforms != Target.current().platforms:
        raise ConfigError(
            f"--with-uv for {target.label}: only this machine's uv can be bundled",
            hint="pack on a machine of the target platform, or leave out --with-uv",
        )
    return Path(uv_package.find_uv_bin())


@dataclass(frozen=True)
class _Plan:
    """What the bundle holds, decided from the lock before anything is fetched or built."""

    workspace: Workspace
    lock: dict[str, Any]
    members: tuple[LockedMember, ...]
    groups: tuple[str, ...]
    target: Target
    wheels: list[Artifact]  # the lock's wheels for the target
    sdists: list[Artifact]  # the lock's sdists of the packages with no such wheel, built here


@dataclass
class _Contents:
    """The bundle's files (path in the bundle -> bytes or a file) and what they were made of."""

    files: dict[str, bytes | Path]
    from_sdists: list[tuple[Artifact, Path]]
    member_wheels: list[Path]
    mtime: int


def pack(
    project_dir: Path,
    output: Path,
    *,
    platforms: tuple[str, ...] = (),
    python: str | None = None,
    groups: tuple[str, ...] | None = None,
    with_uv: bool = False,
    sign_key: Path | None = None,
    executable: bool = False,
    script: str | None = None,
    with_python: bool = False,
    python_archive: Path | None = None,
) -> PackResult:
    started = time.monotonic()
    _check_options(executable=executable, script=script, carries=with_python or python_archive is not None)
    if with_python and python_archive is not None:
        raise ConfigError(
            "--with-python and --python-archive: each names the interpreter to carry",
            hint="give one: --with-python for this host's, --python-archive FILE for that archive's",
        )
    with_uv = with_uv or executable
    private = signing.load_key_file(sign_key, "private") if sign_key is not None else None
    plan = _plan(project_dir, platforms, python, groups)
    out = Path(os.path.abspath(output))
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent}: no such directory", hint="create it, or give another -o path")
    sig: Path | None = None
    with tempfile.TemporaryDirectory(prefix="venvkeeper-pack-") as scratch:
        # The interpreter is checked first: a tree that cannot move fails before anything is fetched.
        carried = _carried(with_python, python_archive, Path(scratch), _mtime(plan.workspace.root))
        contents = _contents(plan, Path(scratch), with_uv=with_uv)
        manifest = _manifest(plan, contents)
        # An executable is signed whole (below): the bootstrap inside could not check a manifest's signature.
        signature = signing.sign(private, manifest_bytes(manifest)) if private and not executable else None
        written = Path(scratch) / "bundle.tar.gz" if executable else out
        with progress.step(f"writing {out.name}"):
            _write_atomically(written, contents.files, manifest, contents.mtime, signature)
            if executable:
                make_executable(written, out, script=script or default_script(written), carried=carried)
                sig = exesign.sign_file(out, private) if private is not None else None
    raw = out.read_bytes()
    return PackResult(
        output=str(out),
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        wheels=sum(1 for name in contents.files if name.startswith("wheels/")),
        wheels_size=sum(f["size"] for f in manifest["files"] if f["path"].startswith("wheels/")),
        members=manifest["members"],
        built_from_sdists=sorted(a.filename for a, _ in contents.from_sdists),
        target=manifest["target"],
        signed=signature is not None or (executable and private is not None),
        with_uv=with_uv,
        executable=executable,
        signature=str(sig) if executable and sig is not None else "",
        python=carried.to_json() if carried is not None else None,
        duration_s=time.monotonic() - started,
    )


def _check_options(*, executable: bool, script: str | None, carries: bool) -> None:
    if script is not None and not executable:
        raise ConfigError("--script is for --executable", hint="add --executable, or leave out --script")
    if carries and not executable:
        raise ConfigError(
            "--with-python and --python-archive are for --executable",
            hint="add --executable, or leave them out",
        )


def _carried(
    with_python: bool, python_archive: Path | None, scratch: Path, mtime: int
) -> carried_python.CarriedPython | None:
    """The interpreter the executable carries: the archive given, else this host's tree, checked."""
    if python_archive is not None:
        with progress.step(f"checking {python_archive.name}"):
            unpacked = scratch / "carried"
            unpacked.mkdir()
            return carried_python.from_archive(python_archive, unpacked)
    if not with_python:
        return None
    prefix, version = carried_python.host_prefix()
    with progress.step(f"packing the interpreter {prefix}"):
        return carried_python.from_tree(prefix, version, scratch / "python.tar.gz", mtime=mtime)


def _plan(
    project_dir: Path, platforms: tuple[str, ...], python: str | None, groups: tuple[str, ...] | None
) -> _Plan:
    """The workspace and its lock read, the target named, and the lock's files for it chosen."""
    workspace = load_workspace(project_dir)
    lock = parse_lock(workspace)
    members = load_lock_members(workspace, lock)
    wanted = selection.chosen(groups, workspace.config.groups)
    target = target_for(python, platforms)
    pins = locked.runtime_packages(lock, wanted, target.marker_environment())
    wheels, without_wheel = locked.select_wheels(lock, pins, target, root=workspace.root)
    sdists, missing = locked.select_sdists(lock, without_wheel, root=workspace.root)
    if missing:
        raise BundleError(
            f"no wheel or sdist of {missing[0]} for {target.label}"
            + (f" (and {len(missing) - 1} more: {', '.join(missing[1:4])})" if len(missing) > 1 else ""),
            hint="pack for a target the lock has wheels for (--python, --platform), or build on such a host",
        )
    return _Plan(workspace, lock, members, wanted, target, wheels, sdists)


def _contents(plan: _Plan, scratch: Path, *, with_uv: bool) -> _Contents:
    """Every file of the bundle but its manifest: fetched, built from sdists, the members built."""
    workspace, members, target = plan.workspace, plan.members, plan.target
    stage = scratch / "stage"
    stage.mkdir()
    git = staging.wants_git(workspace.root, members)
    stage = staging.populate(
        workspace.root, gitcmd.list_files(workspace.root), stage, git=git, members=members
    )
    builder, native = _build_python(stage, target)
    with progress.step("checking the lock"):
        engine.check_lock(stage, workspace.lock_path, stale_member(workspace, plan.lock, members), builder)
    files: dict[str, bytes | Path] = {}
    # Reported as a step with a count (shown only when the command line installed a display).
    fetched = fetch.download([*plan.wheels, *plan.sdists], fetch.default_cache_dir(), progress=True)
    for artifact in plan.wheels:
        files[f"wheels/{artifact.filename}"] = fetched[artifact.filename]
    mtime = _mtime(workspace.root)
    from_sdists = sdistbuild.build_sdists(
        plan.sdists,
        fetched,
        stage=stage,
        scratch=scratch / "sdists",
        target=target,
        python=builder,
        native=native,
        mtime=mtime,
    )
    for artifact, path in from_sdists:
        files[f"wheels/{artifact.filename}"] = path
    member_wheels = _build_members(stage, members, plan.lock, target, scratch / "built", mtime, builder)
    for wheel in member_wheels:
        files[f"wheels/{wheel.name}"] = wheel
    files[SBOM] = _sbom(plan, [a for a, _ in from_sdists], member_wheels, mtime)
    files["pylock.toml"] = pylockgen.pylock_for(
        [*plan.wheels, *(a for a, _ in from_sdists), *(_member_artifact(w) for w in member_wheels)],
        {name.removeprefix("wheels/"): name for name in files if name.startswith("wheels/")},
        requires_python=workspace.pyproject.get("project", {}).get("requires-python"),
    ).encode()
    if with_uv:
        files["uv/uv"] = _uv_binary(target)
    return _Contents(files, from_sdists, member_wheels, mtime)


def _manifest(plan: _Plan, contents: _Contents) -> dict[str, Any]:
    workspace, hooks = plan.workspace, plan.workspace.config.hooks
    return {
        "format": "venvkeeper-bundle",
        "format_version": FORMAT_VERSION,
        "project": {
            "name": workspace.root_name or workspace.root.name,
            "version": str(workspace.pyproject.get("project", {}).get("version", "")),
        },
        "target": plan.target.to_json(),
        "groups": list(plan.groups),
        "members": sorted(w.name for w in contents.member_wheels),
        "hooks": {"post-deploy": list(hooks.post_deploy), "timeout": hooks.timeout},
        "built_from": {
            "lock_sha256": hashlib.sha256(workspace.lock_bytes).hexdigest(),
            "git_commit": gitcmd.commit_of(workspace.root),
            "venvkeeper": __version__,
        },
        "files": describe(contents.files),
    }


def _sbom(plan: _Plan, from_sdists: list[Artifact], member_wheels: list[Path], mtime: int) -> bytes:
    """The bundle's CycloneDX SBOM (docs/supply-chain.md): what it carries, by the lock's purls and hashes."""
    workspace = plan.workspace
    return sbomfile.pack_sbom(
        plan.lock,
        plan.wheels,
        from_sdists,
        [(w, hashlib.sha256(w.read_bytes()).hexdigest()) for w in member_wheels],
        project=workspace.root_name or workspace.root.name,
        project_version=str(workspace.pyproject.get("project", {}).get("version", "")),
        commit=gitcmd.commit_of(workspace.root),
        mtime=mtime,
    )


def _build_python(stage: Path, target: Target) -> tuple[Path, bool]:
    """The interpreter that builds members and sdists, and whether a compiled wheel it builds runs on
    the target (it is of the target's Python, on a host of the target's platform)."""
    here = Target.current()
    try:
        python = engine.find_python(stage, target.python)
        of_target = True
    except InterpreterError as exc:
        if exc.cause == "interpreter-unsupported":
            raise
        # No interpreter of the target's version here: build on this one. A pure-Python wheel
        # (py3-none-any) is the same either way; a compiled one is refused after the build.
        python, of_target = Path(sys.executable), target.python == here.python
    return python, of_target and target.platforms == here.platforms


def _build_members(
    stage: Path,
    members: tuple[LockedMember, ...],
    lock: dict[str, Any],
    target: Target,
    out_dir: Path,
    mtime: int,
    python: Path,
) -> list[Path]:
    """Each package member's wheel, built from the staging copy on ``python``."""
    in_workspace = "manifest" in lock or len(members) > 1
    accepted = set(target.tags())
    wheels = []
    for member in members:
        if not member.package:
            continue
        out = out_dir / member.name
        out.mkdir(parents=True)
        with progress.step(f"building {member.name}"):
            built = engine.build_wheel(
                stage,
                member.name,
                member.path,
                out,
                python,
                in_workspace=in_workspace,
                source_date_epoch=mtime,
            )
        normalize(built, mtime)
        if not set(parse_wheel_filename(built.name)[3]) & accepted:
            raise BundleError(
                f"member {member.name}: its wheel {built.name} does not run on {target.label}",
                hint=f"pack on a host with Python {target.python} for that platform (it has compiled code)",
            )
        wheels.append(built)
    return wheels


def _member_artifact(wheel: Path) -> Artifact:
    name, version, _, _ = parse_wheel_filename(wheel.name)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return Artifact(str(name), str(version), wheel.name, "", digest, wheel.stat().st_size, "wheel")


def _write_atomically(
    out: Path, files: dict[str, bytes | Path], manifest: dict[str, Any], mtime: int, signature: bytes | None
) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write_bundle(fh, files, manifest, mtime=mtime, signature=signature)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
