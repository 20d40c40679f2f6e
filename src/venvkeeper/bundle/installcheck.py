"""``venvkeeper install BUNDLE --env PATH --check``: what the install would do, with nothing written.

The bundle is checked whole, as install checks it (every hash, the signature when a key is given,
the manifest's fields, the target against the interpreter), but nothing is extracted: no state
directory, no lock file, no wheel store entry. The answer is install's own rule: the same bundle
already live (or installed in place) changes nothing; any other is installed. The packages that would
change are the bundle's ``pylock.toml`` for this interpreter's markers against what stands at --env.
"""

from __future__ import annotations

import hashlib
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path

from packaging.markers import InvalidMarker, Marker, UndefinedEnvironmentName

from venvkeeper.bundle import archive as bundle
from venvkeeper.bundle.install import already_installed, check_target, hooks_note, interpreter_for
from venvkeeper.core.errors import ConfigError, InterpreterError
from venvkeeper.core.lazy import lazy
from venvkeeper.core.names import canonicalize_name
from venvkeeper.gateways.uv import find_uv, throwaway_cache
from venvkeeper.generations import smoke
from venvkeeper.generations.layout import Layout, refuse_inside
from venvkeeper.generations.results import CheckResult
from venvkeeper.generations.transaction import packages_before, target_for
from venvkeeper.project import interpreters, plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from venvkeeper.core import signing
else:
    signing = lazy("venvkeeper.core.signing")

__all__ = ["check", "pylock_packages"]


def pylock_packages(pylock: bytes, markers: Mapping[str, str] | None, label: str) -> dict[str, str]:
    """The bundle's packages (PEP 751) that apply to ``markers``: name -> version (None: every
    package the bundle carries, whatever its marker: what ``audit`` looks at)."""
    errors = (UnicodeDecodeError, tomllib.TOMLDecodeError, InvalidMarker, UndefinedEnvironmentName, KeyError)
    found: dict[str, str] = {}
    try:
        for pkg in tomllib.loads(pylock.decode("utf-8")).get("packages", []):
            marker = pkg.get("marker")
            if not marker or markers is None or Marker(marker).evaluate(dict(markers)):
                found[canonicalize_name(pkg["name"])] = str(pkg.get("version", ""))
    except errors as exc:
        raise bundle.BundleError(
            f"{label}: {bundle.TOP}/{bundle.PYLOCK}: {exc}", hint="pack the bundle again with venvkeeper pack"
        ) from None
    return found


def check(
    bundle_path: Path,
    env: Path,
    *,
    python: str | None = None,
    public_key: Path | None = None,
    in_place: bool = False,
    hooks_dir: Path | None = None,
    run_hooks: bool = True,
    diff: bool = False,
) -> CheckResult:
    started = time.monotonic()
    if not bundle_path.is_file():
        raise ConfigError(f"{bundle_path}: no such bundle", hint="give the file `venvkeeper pack` wrote")
    key = signing.load_key_file(public_key, "public") if public_key is not None else None
    layout = Layout.for_env(env)
    if hooks_dir is not None:
        refuse_inside(layout.env, hooks_dir, "the --hooks-dir checkout")
    layout.preparable()
    target = target_for(layout, plan.Options(in_place=in_place), "install")
    checked = bundle.read_bundle(bundle_path, public_key=key)
    fields = checked.fields
    find_uv()  # install needs uv whatever --python says: a host without it is refused here too
    with throwaway_cache():  # uv python find would note the interpreters it saw in uv's cache
        interpreter = interpreter_for(python, fields.python)
    check_target(fields, interpreter, interpreters.probe(str(interpreter)))
    inputs = hashlib.sha256(checked.manifest_bytes).hexdigest()  # install's key for "the same bundle"
    result = CheckResult("install", env=str(layout.env), in_place=in_place, show_diff=diff)
    result.generation = result.previous = target.live_number
    same = already_installed(layout, target, inputs, in_place=in_place)
    if same is not None:
        result.reason = same
    else:
        markers = smoke.marker_environment(interpreter)
        if markers is None:
            raise InterpreterError(f"{interpreter}: does not run", hint="pass --python /path/to/python")
        after = pylock_packages(checked.pylock, markers, str(bundle_path))
        result.changed = True
        before = packages_before(layout, target, in_place=in_place, adopt=target.kind == "venv")
        result.packages = plan.diff_packages(before, after)
        would_run = hooks_dir is not None and run_hooks and not in_place
        result.planned_hooks = list(fields.post_deploy) if would_run else []
        where = "--env would be converged in place from" if in_place else "a new generation would install"
        note = "" if in_place else hooks_note(fields, hooks_dir, run_hooks)
        result.reason = f"{where} {bundle_path.name}{note}"
    result.duration_s = time.monotonic() - started
    return result
