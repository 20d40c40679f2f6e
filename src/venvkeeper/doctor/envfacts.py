"""What doctor looks at in an environment, read once and never written.

:func:`gather` collects plain facts (links, ``pyvenv.cfg``, shebangs, activate scripts, the
``lib/pythonX.Y`` directories, compiled extensions, what the interpreter says it is);
:mod:`venvkeeper.doctor.diagnosis` decides what they mean. doctor is timed (150 ms on a 1,000-file
environment, start-up included), so this reads names and first lines, not whole trees of content.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import sys

from venvkeeper.core import paths, pyvenvcfg
from venvkeeper.core.errors import CannotInspectError
from venvkeeper.core.lazy import lazy
from venvkeeper.project.interpreters import Interpreter, probe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from venvkeeper.core import envscan
else:  # read only when an environment holds extensions its interpreter cannot load
    envscan = lazy("venvkeeper.core.envscan")

__all__ = ["Facts", "Link", "Script", "gather", "is_python_link", "tagged_extension"]

_PYTHON_NAME = re.compile(r"python(\d(\.\d+)?)?t?")
_LIB_PYTHON = re.compile(r"python(\d+\.\d+)t?")
# A compiled extension whose file name says which interpreter it was built for (PEP 3149):
# foo.cpython-311-x86_64-linux-gnu.so, foo.cpython-313t-darwin.so, foo.pypy39-pp73-x86_64-linux-gnu.so,
# foo.cp311-win_amd64.pyd. Plain foo.so and foo.abi3.so say nothing about the minor version.
_TAGGED_EXTENSION = re.compile(
    r"[^.]+(\.(?:cpython-\d+[a-z]*|cp\d+[a-z]*|pypy\d*-pp\d+)(?:-[^.]+)?\.(?:so|pyd))"
)
# How venv creators write VIRTUAL_ENV into bin/activate (CPython's venv, virtualenv, uv).
_ACTIVATE_PATH = re.compile(
    r"""(?:VIRTUAL_ENV=|VIRTUAL_ENV |virtual_env = )(?:\$\(cygpath )?(["']?)(/[^"'\n]*)\1"""
)


def is_python_link(name: str) -> bool:
    return bool(_PYTHON_NAME.fullmatch(name))


def tagged_extension(name: str) -> str | None:
    """The ABI-tagged suffix of an extension module's file name, or None."""
    match = _TAGGED_EXTENSION.fullmatch(name)
    return match.group(1) if match else None


class Link:
    """One ``bin/python*`` entry."""

    def __init__(self, name: str, target: str | None, resolved: str | None) -> None:
        self.name = name
        self.target = target  # what readlink says; None for a regular file (a --copies venv)
        self.resolved = resolved  # the real path it ends at, None when that does not exist


class Script:
    """A file in ``bin/`` whose first line starts a Python interpreter by absolute path."""

    def __init__(self, name: str, interpreter: str, line: str) -> None:
        self.name = name
        self.interpreter = interpreter  # e.g. /old/place/.venv/bin/python
        self.line = line  # the line that names it (the #! line, or uv/pip's '''exec' line)


class Facts:
    def __init__(self, env: str, root: str, kind: str) -> None:
        self.env = env  # as given
        self.root = root  # the directory inspected (the live generation behind venvkeeper's symlink)
        self.kind = kind  # venv, generation, in-place, package-dir, target-dir
        self.generation: int | None = None
        self.state: dict[str, Any] | None = None  # the generation's record, when venvkeeper built it
        self.cfg_text: str | None = None
        self.cfg: pyvenvcfg.PyvenvCfg | None = None
        self.links: list[Link] = []
        self.interpreter: Interpreter | None = None  # what bin/python runs, if it runs
        self.lib_versions: dict[str, bool] = {}  # "3.11" -> whether its site-packages holds distributions
        self.lib64: bool = False
        self.flat_dists: list[str] = []  # *.dist-info at the top (a pip --target directory)
        self.scripts: list[Script] = []
        self.activate_path: str | None = None  # VIRTUAL_ENV as the activate scripts have it
        self.activates: list[str] = []  # bin/activate* files that contain activate_path
        self.extensions: list[str] = []  # ABI-tagged extension files, relative to root
        self.managed_by: str | None = None
        # Read for diagnosis, so that diagnosis itself does no I/O:
        self.home_exists = False
        self.home_interpreters: set[str] = set()  # real paths of home's python* files
        self.base_interpreter: str | None = None  # the absolute path bin/python's links end at
        # (DIR/pythonX.Y, where it points) when the interpreter is named through that link and it dangles:
        # the platform's stable link (heal --link-root) whose store entry was collected.
        self.interpreter_link: tuple[str, str] | None = None
        self.places: dict[
            str, str
        ] = {}  # a script's interpreter -> "missing", "environment" or "interpreter"
        self.activate_exists = False
        self.activate_real: str | None = None
        self.foreign_extensions: dict[str, str] = {}  # extension path -> owning "name version" (or "")

    @property
    def packages_python(self) -> str | None:
        """The minor version the distributions were installed for (``lib/python3.11``)."""
        with_packages = [v for v, has in self.lib_versions.items() if has]
        chosen = with_packages or list(self.lib_versions)
        return max(chosen, key=lambda v: tuple(int(x) for x in v.split("."))) if chosen else None

    @property
    def is_venv(self) -> bool:
        return self.kind not in ("package-dir", "target-dir")

    def site_packages(self, minor: str) -> str:
        return f"{self.root}/lib/python{minor}/site-packages"


def _unreadable(path: str, exc: OSError) -> CannotInspectError:
    return CannotInspectError(
        f"{path}: cannot be read: {exc.strerror}", hint="run doctor as a user who can read the environment"
    )


def _listdir(path: str) -> list[str]:
    """The names in ``path``; none when it does not exist. Unreadable is an error, not "empty":
    a bin/ that cannot be listed must not read as "no bin/python" (and be re-pointed by heal)."""
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _locate(env: str) -> Facts:
    absolute = os.path.abspath(env)
    if not os.path.lexists(absolute):
        raise CannotInspectError(f"{absolute}: no such environment", hint="check the --env path")
    root, number, state = paths.locate(absolute)
    if number is not None:
        facts = Facts(env, root, "generation")
        facts.generation = number
        facts.state = state
        return facts
    if not os.path.isdir(root):
        raise CannotInspectError(
            f"{absolute}: not a directory" if os.path.exists(root) else f"{absolute}: a symlink to nothing",
            hint="point --env at a virtual environment or a package directory",
        )
    names = _listdir(root)
    if "pyvenv.cfg" in names:
        facts = Facts(env, root, "in-place" if state else "venv")
        facts.state = state
        return facts
    if any(_LIB_PYTHON.fullmatch(n) for n in _listdir(f"{root}/lib")):
        return Facts(env, root, "package-dir")
    if any(n.endswith(".dist-info") for n in names):
        return Facts(env, root, "target-dir")
    raise CannotInspectError(
        f"{absolute}: neither a virtual environment (no pyvenv.cfg) nor a package directory "
        "(no lib/pythonX.Y, no *.dist-info)",
        hint="point --env at a virtual environment or a package directory",
    )


def _read_links(facts: Facts) -> None:
    bindir = f"{facts.root}/bin"
    for name in _listdir(bindir):
        if not is_python_link(name):
            continue
        path = f"{bindir}/{name}"
        target = os.readlink(path) if os.path.islink(path) else None
        real = os.path.realpath(path)
        facts.links.append(Link(name, target, real if os.path.exists(real) else None))


def _first_line_interpreter(head: bytes) -> tuple[str, str] | None:
    """The absolute interpreter a script starts and the line naming it, for Python scripts only."""
    lines = head.split(b"\n", 3)
    first = lines[0].decode("utf-8", "replace")
    if not first.startswith("#!"):
        return None
    command = first[2:].strip()
    # pip and uv write a /bin/sh trampoline when the path is too long or has spaces for a #! line:
    #   #!/bin/sh
    #   '''exec' "/path/to/python" "$0" "$@"
    if command == "/bin/sh" and len(lines) > 1:
        second = lines[1].decode("utf-8", "replace")
        # uv single-quotes the path (a ' inside written as '"'"'), pip double-quotes it: shell words.
        try:
            words = shlex.split(second)
        except ValueError:
            return None
        if len(words) == 4 and words[0] == "exec" and words[2:] == ["$0", "$@"]:
            return words[1], second
        return None
    interpreter = command.split()[0] if command else ""
    if interpreter.startswith("/") and is_python_link(os.path.basename(interpreter)):
        return interpreter, first
    return None


def _read_bin(facts: Facts) -> None:
    bindir = f"{facts.root}/bin"
    activates: list[str] = []
    for name in _listdir(bindir):
        path = f"{bindir}/{name}"
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        if name.startswith("activate") or name == "Activate.ps1":
            activates.append(name)
            continue
        try:
            with open(path, "rb") as fh:
                head = fh.read(1024)
        except OSError:
            continue
        found = _first_line_interpreter(head)
        if found is not None:
            facts.scripts.append(Script(name, found[0], found[1]))
    texts: dict[str, str] = {}
    for name in activates:
        try:
            with open(f"{bindir}/{name}", encoding="utf-8", errors="replace") as fh:
                texts[name] = fh.read()
        except OSError:
            continue
    for name in ("activate", "activate.csh", "activate.fish", "activate.nu"):
        match = _ACTIVATE_PATH.search(texts.get(name, ""))
        if match:
            facts.activate_path = match.group(2)
            break
    if facts.activate_path:
        pattern = re.compile(re.escape(facts.activate_path) + r"(?=[/\"'\s]|$)", re.MULTILINE)
        facts.activates = [name for name, text in texts.items() if pattern.search(text)]


def _read_libs(facts: Facts) -> None:
    for name in _listdir(f"{facts.root}/lib"):
        match = _LIB_PYTHON.fullmatch(name)
        if match:
            site = f"{facts.root}/lib/{name}/site-packages"
            facts.lib_versions[match.group(1)] = any(n.endswith(".dist-info") for n in _listdir(site))
    facts.lib64 = os.path.lexists(f"{facts.root}/lib64")
    if facts.kind == "target-dir":
        facts.flat_dists = [n for n in _listdir(facts.root) if n.endswith(".dist-info")]


def _read_extensions(facts: Facts, top: str) -> None:
    """ABI-tagged extension modules under ``top`` (a site-packages, or a --target directory)."""
    found: list[str] = []
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__" and not entry.name.endswith(".dist-info"):
                    stack.append(entry.path)
            elif entry.name.endswith((".so", ".pyd")) and tagged_extension(entry.name):
                found.append(os.path.relpath(entry.path, facts.root))
    facts.extensions = sorted(found)


def _managed_by(facts: Facts) -> str | None:
    active = os.environ.get("VIRTUAL_ENV", "")
    if active:
        real = os.path.realpath(active)
        # venvkeeper's own environment, activated to run it, says nothing about who manages this one.
        if real not in (facts.root, os.path.realpath(facts.env), os.path.realpath(sys.prefix)):
            return f"VIRTUAL_ENV names {active}, a different environment"
    try:
        with open(f"{facts.root}/.managed-by", encoding="utf-8", errors="replace") as fh:
            who = fh.readline().strip()
    except FileNotFoundError:
        who = None
    except OSError:
        return ".managed-by is present (unreadable)"
    if who is not None:
        return f".managed-by says it is managed by {who or 'someone else'}"
    if os.path.isdir(f"{facts.root}/conda-meta"):
        return "conda-meta/ says conda manages it"
    return None


def _read_home(facts: Facts) -> None:
    home = facts.cfg.values.get("home") if facts.cfg is not None else None
    if home:
        facts.home_exists = _is_dir(home)
        for name in _listdir(home):
            if is_python_link(name) and os.path.exists(f"{home}/{name}"):
                facts.home_interpreters.add(os.path.realpath(f"{home}/{name}"))
    by_name = {link.name: link for link in facts.links}
    link = by_name.get("python") or next(iter(by_name.values()), None)
    hops = 0
    while link is not None and link.target is not None and hops < 8:
        if link.target.startswith("/"):
            facts.base_interpreter = link.target
            break
        link = by_name.get(link.target)
        hops += 1
    named = facts.base_interpreter or home
    if named and named.startswith("/") and not os.path.exists(named):
        facts.interpreter_link = _dangling_minor_link(named)


def _dangling_minor_link(path: str) -> tuple[str, str] | None:
    """(the link, where it points) when a directory of ``path`` is a ``pythonX.Y`` symlink that dangles:
    the shape of ``heal --link-root``'s ``DIR/python3.11 -> /nix/store/<hash>-python3-3.11.7``."""
    parts = path.split("/")
    for end in range(2, len(parts)):
        prefix = "/".join(parts[:end])
        if not os.path.islink(prefix):
            if not os.path.isdir(prefix):
                return None  # missing for another reason (moved): not a link's doing
            continue
        if os.path.exists(prefix):
            continue
        if not _LIB_PYTHON.fullmatch(parts[end - 1]):
            return None
        target = os.readlink(prefix)
        return prefix, os.path.normpath(os.path.join(os.path.dirname(prefix), target))
    return None


def _place(interpreter: str) -> str:
    bindir = os.path.dirname(interpreter)
    if not os.path.isdir(bindir):
        return "missing"
    return "environment" if os.path.isfile(f"{os.path.dirname(bindir)}/pyvenv.cfg") else "interpreter"


def _read_places(facts: Facts) -> None:
    mine = os.path.realpath(f"{facts.root}/bin")
    for script in facts.scripts:
        where = os.path.dirname(script.interpreter)
        if script.interpreter not in facts.places and os.path.realpath(where) != mine:
            facts.places[script.interpreter] = _place(script.interpreter)
    if facts.activate_path:
        facts.activate_exists = os.path.isdir(facts.activate_path)
        facts.activate_real = os.path.realpath(facts.activate_path)


def _read_foreign_extensions(facts: Facts) -> None:
    if facts.interpreter is None or not facts.extensions:
        return
    loads = set(facts.interpreter.extension_suffixes)
    foreign = [p for p in facts.extensions if tagged_extension(os.path.basename(p)) not in loads]
    if not foreign:
        return
    owners: dict[str, str] = {}
    minor = facts.packages_python
    if minor is not None:
        for dist in envscan.distributions_in(facts.root, [f"lib/python{minor}/site-packages"]):
            for path in dist.record:
                owners[path] = f"{dist.name} {dist.version}"
    facts.foreign_extensions = {path: owners.get(path, "") for path in foreign}


def gather(env: str, *, probe_interpreter: bool = True) -> Facts:
    """Everything doctor needs to know about ``env``; raises CannotInspectError when it cannot look."""
    facts = _locate(env)
    if facts.is_venv:
        try:
            with open(f"{facts.root}/pyvenv.cfg", encoding="utf-8", errors="replace") as fh:
                facts.cfg_text = fh.read()
            facts.cfg = pyvenvcfg.parse(facts.cfg_text)
        except OSError as exc:
            if facts.kind == "generation" and not os.path.isdir(facts.root):
                raise CannotInspectError(
                    f"{env}: its live generation {facts.root} is missing",
                    hint="run `venvkeeper rollback` or `venvkeeper deploy`",
                ) from None
            raise CannotInspectError(
                f"{facts.root}/pyvenv.cfg: cannot be read: {exc.strerror}",
                hint="run doctor as a user who can read the environment",
            ) from None
    _read_links(facts)
    _read_bin(facts)
    _read_libs(facts)
    _read_home(facts)
    _read_places(facts)
    facts.managed_by = _managed_by(facts)
    if probe_interpreter:
        runnable = [link for link in facts.links if link.resolved]
        preferred = sorted(runnable, key=lambda link: (link.name != "python", link.name))
        if preferred:
            facts.interpreter = probe(f"{facts.root}/bin/{preferred[0].name}")
    minor = facts.packages_python
    if facts.kind == "target-dir":
        _read_extensions(facts, facts.root)
    elif minor is not None:
        _read_extensions(facts, facts.site_packages(minor))
    _read_foreign_extensions(facts)
    return facts
