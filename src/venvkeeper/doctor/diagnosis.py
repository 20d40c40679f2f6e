"""What is wrong with an environment, decided from :class:`venvkeeper.doctor.envfacts.Facts` alone.

Pure: no file is read here, so every case (a dangling store path, a minor upgrade, a copied
environment) is decided the same way for doctor, for heal's plan and for heal's check afterwards.
"""

from __future__ import annotations

import os
import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.doctor.envfacts import Facts, Link

__all__ = [
    "SEVERITIES",
    "Problem",
    "diagnose",
    "expects_lib64",
    "is_failing",
    "requested_minor",
    "versioned_component",
]

SEVERITIES = ("error", "warning", "note")
# A store path's component that names one patch release: <hash>-python3-3.10.13 (Nix),
# <hash>-python-3.10.7 (Guix). Such a directory is replaced, not upgraded in place, and the old one is
# collected. A pyenv or uv directory (3.11.7, cpython-3.12.1-linux-x86_64-gnu) stays until removed by hand.
_STORE_ENTRY = re.compile(r"[0-9a-z]{20,}-[^/]*?(?<![\d.])3\.\d+\.\d+(?![\d.])[^/]*")


class Problem:
    """One doctor finding."""

    __slots__ = ("code", "distribution", "path", "repair", "seen", "severity")

    def __init__(
        self,
        code: str,
        severity: str,
        path: str,
        seen: str,
        repair: str | None,
        distribution: str | None = None,
    ) -> None:
        self.code = code
        self.severity = severity
        self.path = path  # relative to the environment
        self.seen = seen
        self.repair = repair
        self.distribution = distribution

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.path)

    def to_json(self) -> dict[str, str | None]:
        data: dict[str, str | None] = {
            "code": self.code,
            "severity": self.severity,
            "path": self.path,
            "seen": self.seen,
        }
        if self.distribution is not None:
            data["distribution"] = self.distribution
        data["repair"] = self.repair
        return data


def is_failing(problems: list[Problem]) -> bool:
    """Findings that make the environment unhealthy (a ``note`` does not)."""
    return any(p.severity != "note" for p in problems)


def expects_lib64() -> bool:
    # CPython's venv (and uv, and virtualenv) add lib64 -> lib on 64-bit POSIX other than macOS.
    return os.name == "posix" and sys.maxsize > 2**32 and sys.platform != "darwin"


def _package_dir(facts: Facts) -> list[Problem]:
    minor = facts.packages_python
    if facts.kind == "target-dir":
        seen = (
            f"{len(facts.flat_dists)} *.dist-info at the top level (a pip --target directory), no pyvenv.cfg"
        )
        repair = (
            "move them into lib/pythonX.Y/site-packages and make the directory a venv, keeping its packages"
        )
    else:
        seen = (
            f"lib/python{minor}/site-packages and bin/ but no pyvenv.cfg (a --prefix or user-site directory)"
        )
        repair = f"make it a venv in place for Python {minor}, keeping its packages"
    found = [Problem("not-a-venv", "error", ".", seen, repair)]
    for script in facts.scripts:
        if script.interpreter in facts.places:
            found.append(
                Problem(
                    "stale-shebang",
                    "error",
                    f"bin/{script.name}",
                    f"starts {script.interpreter}, which cannot see this directory's packages",
                    "start this environment's bin/python once it is a venv",
                )
            )
    return found


def _through_dangling_link(facts: Facts, path: str) -> bool:
    """Whether ``path`` is named through the platform's dangling ``DIR/pythonX.Y`` link (its one cause)."""
    return facts.interpreter_link is not None and path.startswith(facts.interpreter_link[0] + "/")


def _end_of(facts: Facts, link: Link) -> str | None:
    """The absolute path ``link``'s chain in bin/ ends at (``python -> python3 -> /abs``)."""
    by_name = {each.name: each for each in facts.links}
    for _ in range(8):
        if link.target is None or link.target.startswith("/"):
            return link.target
        if link.target not in by_name:
            return None
        link = by_name[link.target]
    return None


def _interpreter_link(facts: Facts) -> list[Problem]:
    """The platform's stable link (``heal --link-root``'s ``DIR/python3.11``) dangles: its store entry was
    collected. One finding naming the link and both fixes, instead of home-missing and a dangling
    bin/python that send the reader to the environment when the platform's link is what broke."""
    if facts.interpreter_link is None:
        return []
    link, points = facts.interpreter_link
    named = facts.base_interpreter or os.path.join(link, "bin", os.path.basename(link))
    inside = os.path.relpath(named, link) if named.startswith(link + "/") else f"bin/{os.path.basename(link)}"
    through = [
        f"bin/{each.name}"
        for each in facts.links
        if _through_dangling_link(facts, _end_of(facts, each) or "")
    ]
    home = facts.cfg.values.get("home", "") if facts.cfg is not None else ""
    through += ["pyvenv.cfg's home"] if _through_dangling_link(facts, home) else []
    names = ", ".join(through[:-1]) + f" and {through[-1]}" if len(through) > 1 else "".join(through)
    heal = f"venvkeeper heal --env {facts.env}"
    heal += f" --link-root {os.path.dirname(link)}" if facts.kind == "venv" else ""
    return [
        Problem(
            "interpreter-link-dangling",
            "error",
            "bin/python",
            f"{link} -> {points}, which does not exist (the store entry was removed or moved); "
            f"{names} go through it"
            if names
            else "the interpreter is named through it",
            f"re-point the platform's link: ln -sfn NEW_STORE_ENTRY {link} (every environment on it "
            f"follows), or {heal} --python NEW_STORE_ENTRY/{inside}",
        )
    ]


def _config(facts: Facts) -> list[Problem]:
    cfg = facts.cfg
    if cfg is None:
        return []
    found: list[Problem] = []
    if cfg.bad_lines:
        found.append(
            Problem(
                "pyvenv-cfg-unparsable",
                "error",
                "pyvenv.cfg",
                f"{len(cfg.bad_lines)} line(s) that are not `key = value`, "
                f"the first: {cfg.bad_lines[0].strip()[:80]!r}",
                "rewrite pyvenv.cfg without them, with home naming a working interpreter",
            )
        )
    home = cfg.values.get("home")
    if not home:
        found.append(
            Problem(
                "pyvenv-cfg-missing-key",
                "error",
                "pyvenv.cfg",
                "no `home` key: Python cannot tell which interpreter the environment belongs to",
                "add home, naming the directory of a working interpreter of the right version",
            )
        )
    elif not facts.home_exists and not _through_dangling_link(facts, home):
        found.append(
            Problem(
                "home-missing",
                "error",
                "pyvenv.cfg",
                f"home = {home}, which does not exist (the interpreter was moved, upgraded or removed)",
                "point home at an interpreter of the same minor version",
            )
        )
    return found


def _links(facts: Facts, minor: str | None) -> list[Problem]:
    want = f"Python {minor}" if minor else "the environment's Python version"
    if not facts.links:
        return [
            Problem(
                "interpreter-dangling",
                "error",
                "bin/python",
                "no bin/python at all",
                f"link bin/python, python3 and python{minor or '3.X'} to an interpreter of {want}",
            )
        ]
    dangling = [link for link in facts.links if link.resolved is None]
    # A link that dangles only because the platform's DIR/pythonX.Y does is interpreter-link-dangling's.
    dangling = [link for link in dangling if not _through_dangling_link(facts, _end_of(facts, link) or "")]
    if facts.interpreter_link is not None and not dangling:
        return []
    if dangling:
        first = next((link for link in dangling if link.target and link.target.startswith("/")), dangling[0])
        others = [f"bin/{link.name}" for link in dangling if link is not first]
        seen = f"bin/{first.name} -> {first.target}, which does not exist"
        if others:
            seen += f" (also dangling: {', '.join(others)})"
        return [
            Problem(
                "interpreter-dangling",
                "error",
                f"bin/{first.name}",
                seen,
                f"re-point the interpreter links and pyvenv.cfg at an interpreter of {want}",
            )
        ]
    if not facts.home_exists or not facts.home_interpreters:
        return []
    # A --copies venv's bin/python is its own file: its version is judged by version-mismatch instead.
    wrong = [
        link
        for link in facts.links
        if link.target is not None and link.resolved not in facts.home_interpreters
    ]
    if not wrong:
        return []
    home = facts.cfg.values.get("home") if facts.cfg is not None else "?"
    first = wrong[0]
    return [
        Problem(
            "interpreter-mismatch",
            "error",
            f"bin/{first.name}",
            f"bin/{first.name} runs {first.resolved}, not an interpreter in home ({home})",
            f"re-point bin/{first.name} at home's interpreter",
        )
    ]


def _version(facts: Facts) -> list[Problem]:
    interpreter, minor = facts.interpreter, facts.packages_python
    if interpreter is None or minor is None or interpreter.minor == minor:
        return []
    count = "its distributions are" if facts.lib_versions.get(minor) else "it was made"
    return [
        Problem(
            "version-mismatch",
            "error",
            f"lib/python{minor}",
            f"the interpreter is {interpreter.describe()}, but {count} for Python {minor} "
            f"(lib/python{minor}): Python cannot see them",
            f"rebuild it for Python {interpreter.minor} with the same distributions and versions",
        )
    ]


def _abi(facts: Facts) -> list[Problem]:
    if facts.interpreter is None:
        return []
    by_owner: dict[str, list[str]] = {}
    for path, owner in sorted(facts.foreign_extensions.items()):
        by_owner.setdefault(owner, []).append(path)
    found = []
    for owner, files in by_owner.items():
        name = owner.split(" ")[0] if owner else None
        suffix = files[0].rsplit("/", 1)[-1].split(".", 1)[1]
        more = f" ({len(files)} files)" if len(files) > 1 else ""
        found.append(
            Problem(
                "abi-mismatch",
                "error",
                files[0],
                f"built for .{suffix}{more}; {facts.interpreter.describe()} loads "
                f"{' '.join(s for s in facts.interpreter.extension_suffixes if s != '.so')}",
                f"reinstall {owner} for this interpreter" if owner else "no distribution owns it: remove it",
                name,
            )
        )
    return found


def _sealed(facts: Facts) -> str | None:
    """heal's repair for a stale path in an environment venvkeeper built (see healplan.plan)."""
    kind = (facts.state or {}).get("kind")
    if kind == "deploy":
        return "deploy a new generation here from the recorded project (a sealed generation is not edited)"
    if kind == "install":
        return "install the bundle again here (a sealed generation is not edited)"
    if kind == "pylock":
        return "deploy the recorded pylock.toml here again with --lock (a sealed generation is not edited)"
    if kind is not None and kind != "adopted":
        return "deploy a new generation here (a sealed generation is not edited)"
    return None


def _paths(facts: Facts) -> list[Problem]:
    found = []
    sealed = _sealed(facts)
    for script in facts.scripts:
        place = facts.places.get(script.interpreter)
        if place is None:
            continue
        where = os.path.dirname(os.path.dirname(script.interpreter))
        why = {
            "missing": f"{where} does not exist (the environment was moved)",
            "environment": f"{where} is another environment (this one is a copy)",
            "interpreter": "an interpreter outside this environment",
        }[place]
        found.append(
            Problem(
                "stale-shebang",
                "error",
                f"bin/{script.name}",
                f"starts {script.interpreter}: {why}",
                sealed or f"rewrite it to start {facts.root}/bin/{os.path.basename(script.interpreter)}",
            )
        )
    old = facts.activate_path
    if old and facts.activate_real != facts.root:
        why = (
            "another environment (a copy)" if facts.activate_exists else "a path that does not exist (moved)"
        )
        for name in facts.activates:
            found.append(
                Problem(
                    "stale-activate",
                    "warning",
                    f"bin/{name}",
                    f"VIRTUAL_ENV is {old}: {why}",
                    sealed or f"rewrite it to {facts.root}",
                )
            )
    return found


def versioned_component(path: str) -> str | None:
    """The store entry in ``path`` naming one patch release (``<hash>-python3-3.10.13``), or None."""
    for part in path.split("/"):
        if _STORE_ENTRY.fullmatch(part):
            return part
    return None


def _versioned(facts: Facts) -> list[Problem]:
    """A note: the environment names its interpreter by a versioned store path (docs/doctor.md)."""
    home = facts.cfg.values.get("home", "") if facts.cfg is not None else ""
    named = facts.base_interpreter or home
    part = versioned_component(named) if named else None
    if part is None:
        return []
    return [
        Problem(
            "versioned-interpreter",
            "note",
            "bin/python",
            f"links straight into {named} ({part} names one patch release: an upgrade breaks the link)",
            "heal --link-root DIR: name it through DIR/python3.X, a link the platform re-points",
        )
    ]


def diagnose(facts: Facts, *, lib64: bool | None = None) -> list[Problem]:
    """Every finding, most fundamental first; ``lib64`` None means "as on this platform"."""
    found: list[Problem] = []
    if facts.managed_by:
        found.append(
            Problem(
                "user-managed",
                "note",
                ".",
                facts.managed_by,
                "none: heal leaves a user-managed environment alone unless --force",
            )
        )
    if not facts.is_venv:
        return found + _package_dir(facts)
    minor = facts.packages_python
    cfg_version = (
        facts.cfg.values.get("version_info") or facts.cfg.values.get("version") if facts.cfg else None
    )
    if minor is None and cfg_version:
        minor = ".".join(cfg_version.split(".")[:2])
    found += _interpreter_link(facts)
    found += _config(facts)
    links = _links(facts, minor)
    found += links
    if (expects_lib64() if lib64 is None else lib64) and not facts.lib64:
        found.append(
            Problem(
                "lib64-missing",
                "warning",
                "lib64",
                "no lib64 -> lib link (venv creates one on 64-bit Linux; tools that look there find nothing)",
                "create lib64 -> lib",
            )
        )
    # What bin/python runs says nothing about the environment when the link itself is wrong: the
    # version and ABI are judged once it points at the environment's interpreter again.
    if not links:
        version = _version(facts)
        found += version
        found += [] if version else _abi(facts)
    found += _paths(facts)
    return found + _versioned(facts)


def requested_minor(facts: Facts, minor: str, interpreter: str) -> Problem | None:
    """``heal --python`` naming another minor than the packages': a version-mismatch asked for."""
    current = facts.packages_python
    if current is None or current == minor or not facts.is_venv:
        return None
    return Problem(
        "version-mismatch",
        "error",
        f"lib/python{current}",
        f"the distributions are for Python {current}; --python asks for {interpreter} (Python {minor})",
        f"rebuild it for Python {minor} with the same distributions and versions",
    )
