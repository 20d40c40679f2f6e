"""ansible-core from the registry, for the tests of the collection ``venvkeeper.venvkeeper``.

ansible-core is not one of the project's dependencies: the collection's users bring their own, and
its controller needs CPython 3.12 or newer while venvkeeper's own environment may be 3.11. So the
tests install a pinned ansible-core into a virtual environment of its own, kept between runs under
``<e2e cache>/ansible/`` (outside the repository; the cache of :func:`support.corpus.cache_root`),
one per ansible-core version and Python.

ansible-test must run from a collection root under ``ansible_collections/NAMESPACE/NAME`` and lists
the collection's files with git: :func:`collection_checkout` copies the collection into such a tree
with a git repository of its own.

ansible-test bootstraps pip into each virtual environment it makes with a ``get-pip.py`` that it
downloads from a host this machine cannot reach, unless ``~/.ansible/test/cache/get_pip_<X_Y>.py``
is there already (ansible_test/_util/target/setup/requirements.py, ``bootstrap``): we write one that
installs the interpreter's own pip (ensurepip) and then runs ``pip install`` with the arguments
ansible-test gives.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .corpus import cache_root
from .interpreter import find_python
from .process import run

__all__ = [
    "ANSIBLE_CORE",
    "COLLECTION",
    "AnsibleCore",
    "PlayOutcome",
    "collection_checkout",
    "controller_python",
    "ensure_ansible_core",
    "target_pythons",
]

# Pinned: sanity's rules change between ansible-core releases, and a test run must not change with
# the day it runs on. Its controller supports CPython 3.12-3.14 (ansible_test/_util/target/common/
# constants.py, CONTROLLER_PYTHON_VERSIONS).
ANSIBLE_CORE = "2.21.5"
CONTROLLER_PYTHONS = ("3.13", "3.12", "3.14")
# The Pythons a module may run on, on a managed host (REMOTE_ONLY_PYTHON_VERSIONS and the above).
TARGET_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "venvkeeper" / "venvkeeper"
# The tests' stdout callback (one JSON report; ansible-core has no json callback of its own).
CALLBACKS = Path(__file__).resolve().parent / "ansible_callback"

# Read at import, before the hermetic fixture replaces HOME and drops PIP_CERT: pip reaches the
# registry through the machine's CA bundle (a TLS-inspecting proxy here).
_MACHINE_ENVIRON = dict(os.environ)
# Whatever would make the new environment's pip or Python look elsewhere.
_DROPPED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYENV_VERSION")

_GET_PIP = '''\
"""Stand-in for get-pip.py, written by venvkeeper's tests (tests/support/ansible.py).

Installs the running interpreter's own pip (ensurepip, no download), then `pip install ARGS`.
"""
import subprocess
import sys

# In a process of its own: ensurepip.bootstrap() in this one would leave PIP_CONFIG_FILE=/dev/null
# set for the pip below, which would then miss the machine's pip.conf (its CA bundle).
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
# get-pip.py's own options, which `pip install` does not know.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
'''


def controller_python() -> Path | None:
    """A CPython that ansible-core's controller supports (``None`` when this machine has none)."""
    for minor in CONTROLLER_PYTHONS:
        found = find_python(minor)
        if found is not None:
            return found
    return None


def machine_environ(**extra: str) -> dict[str, str]:
    """The machine's environment (registry access, PATH) without an active venv or Python settings."""
    environ = {name: value for name, value in _MACHINE_ENVIRON.items() if name not in _DROPPED}
    # ansible-core refuses to start under a locale that is not UTF-8.
    environ.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}, **extra)
    return environ


@dataclass(frozen=True)
class PlayOutcome:
    """One ansible-playbook run, read from its JSON report (ansible_callback/json_report.py)."""

    code: int
    report: dict[str, Any]
    stderr: str

    def result(self, task: str, host: str = "localhost") -> dict[str, Any]:
        """The result of the task named ``task`` on ``host``."""
        for play in self.report["plays"]:
            for entry in play["tasks"]:
                if entry["task"]["name"] == task:
                    found: dict[str, Any] = entry["hosts"][host]
                    return found
        names = [entry["task"]["name"] for play in self.report["plays"] for entry in play["tasks"]]
        raise KeyError(f"no task {task!r} in the play's report; it has {names}")

    @property
    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.report["stats"]
        return stats


@dataclass(frozen=True)
class AnsibleCore:
    """An ansible-core installed in its own virtual environment."""

    venv: Path
    home: Path  # HOME for ansible-test: its sanity virtual environments are kept there between runs

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def pip_bootstrap_version(self) -> str:
        """The pip version ansible-test bootstraps (``pip=`` in python_requirements.get_venv_packages)."""
        pattern = "lib/python3.*/site-packages/ansible_test/_internal/python_requirements.py"
        sources = list(self.venv.glob(pattern))
        if len(sources) != 1:
            raise AssertionError(f"{self.venv}: expected one {pattern}, found {sources}")
        match = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", sources[0].read_text())
        if match is None:
            raise AssertionError(f"{sources[0]}: no default pip version (ansible-test changed its layout)")
        return match.group(1)

    def prepare_test_home(self) -> Path:
        """Our get-pip.py where ansible-test looks before downloading one, and pip's CA bundle.

        ansible-test runs pip with only PATH, HOME and the locale of our environment
        (ansible_test/_internal/util.py, common_environment), so the machine's PIP_CERT reaches
        it through a pip.conf in that HOME.
        """
        version = self.pip_bootstrap_version()
        path = self.home / ".ansible" / "test" / "cache" / f"get_pip_{version.replace('.', '_')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_GET_PIP)
        pip_conf = self.home / ".config" / "pip" / "pip.conf"
        if "PIP_CERT" in _MACHINE_ENVIRON:
            pip_conf.parent.mkdir(parents=True, exist_ok=True)
            pip_conf.write_text(f"[global]\ncert = {_MACHINE_ENVIRON['PIP_CERT']}\n")
        return path

    def playbook(
        self, playbook: Path, *args: str, environ: Mapping[str, str], cwd: Path, timeout: float = 600
    ) -> PlayOutcome:
        """Run ansible-playbook with the json_report callback, the collection found in this repository."""
        env = dict(environ)
        env.update(
            {
                "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
                "ANSIBLE_STDOUT_CALLBACK": "json_report",
                "ANSIBLE_COLLECTIONS_PATH": str(REPO),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCAL_TEMP": str(cwd / ".ansible-local"),
                "ANSIBLE_REMOTE_TEMP": str(cwd / ".ansible-remote"),
                "LC_ALL": "C.UTF-8",
                "LANG": "C.UTF-8",
            }
        )
        proc = subprocess.run(
            [str(self.bin / "ansible-playbook"), str(playbook), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(
                f"ansible-playbook {playbook.name} printed no JSON report (exit {proc.returncode})\n"
                f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}"
            ) from None
        return PlayOutcome(proc.returncode, report, proc.stderr)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``: two pytest workers must not build the same environment at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_ansible_core(python: Path, version: str = ANSIBLE_CORE) -> AnsibleCore:
    """ansible-core ``version`` in a virtual environment of ``python``, made once and kept (cached).

    A marker written last tells a finished environment from an interrupted install, which is
    made again.
    """
    minor = re.sub(r"^python", "", python.name) or "3"
    root = cache_root(_MACHINE_ENVIRON) / "ansible" / f"ansible-core-{version}-py{minor}"
    core = AnsibleCore(venv=root / "venv", home=root / "home")
    done = root / "installed"
    with _locked(root.parent / f"{root.name}.lock"):
        if done.is_file():
            return core
        shutil.rmtree(core.venv, ignore_errors=True)
        environ = machine_environ()
        run([python, "-m", "venv", core.venv], env=environ)
        run([core.python, "-m", "pip", "install", "-q", f"ansible-core=={version}"], env=environ, timeout=600)
        core.home.mkdir(parents=True, exist_ok=True)
        done.write_text(f"ansible-core=={version}\n")
    return core


def target_pythons(bin_dir: Path) -> tuple[list[str], str]:
    """``bin_dir/pythonX.Y`` for each Python ansible-core supports on a managed host that is here.

    Returns the versions found and a PATH on which ansible-test finds exactly those: pyenv's
    shims are left out, since a shim for a version that is not selected is found but fails.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    found = []
    for minor in TARGET_PYTHONS:
        python = find_python(minor)
        if python is not None:
            (bin_dir / f"python{minor}").symlink_to(python)
            found.append(minor)
    entries = _MACHINE_ENVIRON.get("PATH", os.defpath).split(os.pathsep)
    path = os.pathsep.join([str(bin_dir), *(entry for entry in entries if "pyenv" not in entry)])
    return found, path


def collection_checkout(dest: Path) -> Path:
    """A copy of the collection at ``dest/ansible_collections/venvkeeper/venvkeeper``, committed to git."""
    root = dest / "ansible_collections" / "venvkeeper" / "venvkeeper"
    shutil.copytree(COLLECTION, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests/output"))
    git = ["git", "-c", "user.name=venvkeeper tests", "-c", "user.email=tests@venvkeeper.invalid"]
    run([*git, "init", "-q"], cwd=root)
    run([*git, "add", "-A"], cwd=root)
    run([*git, "commit", "-q", "-m", "the collection under test"], cwd=root)
    return root
