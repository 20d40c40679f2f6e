"""Every command on real public uv projects, as their authors published them (``support.corpus``).

One test per (project, step), so that a failure names both. The steps of a project share one
:class:`Deployment` (module scope): the sdist is fetched and committed to git once, the read-only
deploy runs once, and the later steps use what it left. Each project is one xdist group
(``--dist loadgroup``; the group is read from the test id by ``support.corpus.group_scheduler``),
so its tests run on one worker, in the order written here, and no two workers build it.

The steps: deploy from a read-only bind mount (source byte-identical, ``.git`` included); the
installed set equals raw ``uv sync --frozen --all-packages --no-default-groups --no-editable`` on a
scratch clone (the selection rule: runtime dependencies only, uv's ``default-groups`` are not
deployed); a smoke command; an unchanged redeploy; verify with and without ``--project``; the
generation's SBOM (schema-valid, naming every installed distribution with its hash); pack twice
(identical) and install the bundle with no network (``unshare -n``); export as pylock and
requirements; heal after the interpreter's store moved; heal after the environment itself moved;
``update --dry-run`` against a bare remote.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uv
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.markers import Marker
from packaging.requirements import Requirement

from support.corpus import CORPUS, CorpusProject, checkout, fetch_sdist, generate_uv_build_app
from support.gitremote import add_remote
from support.interpreter import find_python
from support.process import run
from support.pythons import install_store_python
from vk import Outcome, snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A deploy of the larger projects installs ~80 packages and builds up to 16 members.
TIMEOUT = 900
PROBE = ".venvkeeper-write-probe"

# $0 is PROJECT_DIR; the rest is the command. The touch must fail (the mount is read-only) for the
# command to run at all.
_READ_ONLY = 'mount --bind -o ro "$0" "$0" && ! touch "$0/' + PROBE + '" 2>/dev/null && exec "$@"'

_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json, re\n"
    "print(json.dumps(sorted({(re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(), d.version)"
    " for d in m.distributions()})))"
)


# packaging.markers.default_environment(), for an interpreter that may not have packaging.
_MARKER_ENVIRONMENT = """
import json, os, platform, sys
def fmt(info):
    version = "%d.%d.%d" % (info.major, info.minor, info.micro)
    return version if info.releaselevel == "final" else version + info.releaselevel[0] + str(info.serial)
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def explain(outcome: Outcome) -> str:
    """What venvkeeper said: its ``error:`` line(s) and hint, or the repairs that did not take."""
    lines = [
        line.strip()
        for line in outcome.err.splitlines()
        if line.lstrip().startswith(("error:", "hint:", "cause:")) or line.startswith("  ")
    ][:12]
    payload: Any = None
    if outcome.out.lstrip().startswith("{"):
        try:
            payload = json.loads(outcome.out)
        except ValueError:
            payload = None
    if isinstance(payload, dict):
        if payload.get("error"):
            lines.append(f"json error: {json.dumps(payload['error'])}")
        if payload.get("ok") is False and payload.get("reason"):
            lines.append(f"{payload.get('outcome')}: {payload['reason']} (hint: {payload.get('hint')})")
        for value in payload.values():
            if isinstance(value, list):
                lines += [
                    f"{item.get('code')} {item.get('path') or ''} {item.get('outcome')}: {item.get('reason')}"
                    for item in value
                    if isinstance(item, dict) and item.get("outcome") not in (None, "repaired", "ok")
                ][:8]
    tail = "\n".join((outcome.err or outcome.out).splitlines()[-15:])
    return f"exit {outcome.code}: " + ("\n".join(lines) if lines else tail)


def source_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    return (
        [f"changed {k}" for k in changed] + [f"added {k}" for k in added] + [f"removed {k}" for k in removed]
    )


@dataclass
class Deployment:
    """One corpus project checked out in git, and what the steps have done with it so far."""

    project: CorpusProject
    work: Path
    source: Path
    python: Path
    environ: dict[str, str]
    env: Path = field(init=False)
    results: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = self.work / "srv" / ".venv"
        self.env.parent.mkdir(parents=True)

    # -- running things -------------------------------------------------------------------------
    def process(
        self, argv: list[str | Path], *, timeout: float = TIMEOUT, cwd: Path | None = None
    ) -> Outcome:
        proc = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=self.environ,
            cwd=cwd or self.work,
            stdin=subprocess.DEVNULL,
        )
        return Outcome(proc.returncode, proc.stdout, proc.stderr)

    def vk(self, *args: str | Path, read_only: bool = False, offline: bool = False) -> Outcome:
        command: list[str | Path] = [sys.executable, "-m", "venvkeeper", *args]
        if read_only:
            command = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                _READ_ONLY,
                self.source,
                *command,
            ]
        if offline:
            command = ["unshare", "--net", *command]
        return self.process(command)

    def once(self, name: str, action: Any) -> Any:
        """Run a step's action once per project; later tests get the same result."""
        if name not in self.results:
            self.results[name] = action()
        return self.results[name]

    # -- shared steps ---------------------------------------------------------------------------
    def deploy(self) -> tuple[Outcome, dict[str, str], dict[str, str]]:
        """The first, read-only deploy: (outcome, the source before, the source after)."""

        def action() -> tuple[Outcome, dict[str, str], dict[str, str]]:
            before = snapshot(self.source)
            outcome = self.vk(
                "deploy", self.source, "--env", self.env, "--python", self.python, "--json", read_only=True
            )
            return outcome, before, snapshot(self.source)

        result: tuple[Outcome, dict[str, str], dict[str, str]] = self.once("deploy", action)
        return result

    def require_deployed(self) -> None:
        outcome = self.deploy()[0]
        if outcome.code != 0:
            pytest.fail(f"needs the first deploy, which failed: {explain(outcome)}")

    def installed(self, env: Path) -> set[tuple[str, str]]:
        proc = self.process([env / "bin" / "python", "-c", _LIST_DISTRIBUTIONS], timeout=120)
        assert proc.code == 0, proc.err
        return {(name, version) for name, version in json.loads(proc.out)}

    def smoke(self, env: Path) -> subprocess.CompletedProcess[str]:
        program, *args = self.project.smoke
        if not (env / "bin" / program).exists():  # a dangling interpreter link, say
            return subprocess.CompletedProcess([program, *args], 127, "", f"{env}/bin/{program}: not found")
        try:
            return subprocess.run(
                [str(env / "bin" / program), *args],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
                env={**self.environ, **self.project.smoke_env},
                cwd=self.work,
                stdin=subprocess.DEVNULL,
            )
        except OSError as error:  # the script's interpreter (its shebang) does not exist
            return subprocess.CompletedProcess([program, *args], 127, "", str(error))

    def assert_smoke(self, env: Path) -> None:
        proc = self.smoke(env)
        assert proc.returncode == 0, (
            f"smoke `{' '.join(self.project.smoke[:2])}` exit {proc.returncode}:\n{proc.stderr[-3000:]}"
        )
        assert self.project.smoke_expects in proc.stdout, proc.stdout

    def assert_verify_clean(self, env: Path, *extra: str | Path) -> None:
        outcome = self.vk("verify", "--env", env, *extra, "--json")
        if outcome.code != 0:
            findings = []
            if outcome.out.lstrip().startswith("{"):
                payload = json.loads(outcome.out)
                findings = [
                    f"{f.get('category')} {f.get('distribution')} {f.get('path') or ''} "
                    f"expected {f.get('expected')} found {f.get('actual')}".strip()
                    for f in payload.get("findings", [])
                ]
            if findings:
                pytest.fail(
                    f"verify {' '.join(map(str, extra))}: exit {outcome.code}, {len(findings)} finding(s): "
                    + "; ".join(findings[:6])
                )
            pytest.fail(f"verify {' '.join(map(str, extra))}: {explain(outcome)}")

    def marker_environment(self) -> dict[str, str]:
        proc = self.process([self.python, "-c", _MARKER_ENVIRONMENT], timeout=60)
        assert proc.code == 0, proc.err
        environment: dict[str, str] = json.loads(proc.out)
        return environment

    def members(self) -> set[str]:
        lock = tomllib.loads((self.source / "uv.lock").read_text())
        return {
            _normalize(p["name"])
            for p in lock["package"]
            if {"editable", "virtual", "directory"} & set(p.get("source", {}))
        }


@pytest.fixture(scope="session")
def corpus_hosts(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless this host can make the private mount and network namespaces the steps need."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed: no read-only mount or network namespace")
    probe = tmp_path_factory.mktemp("ns-probe")
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind -o ro "$0" "$0"',
            probe,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0:
        pytest.skip(
            "cannot make a private mount and network namespace here "
            f"(unshare needs CAP_SYS_ADMIN): {proc.stderr.strip() or proc.returncode}"
        )


@pytest.fixture(
    scope="module",
    params=[pytest.param(p, id=p.key, marks=pytest.mark.xdist_group(f"corpus-{p.key}")) for p in CORPUS],
)
def corpus(request: pytest.FixtureRequest) -> CorpusProject:
    project: CorpusProject = request.param
    return project


@pytest.fixture(scope="module")
def deployment(
    corpus: CorpusProject,
    corpus_hosts: None,
    e2e_cache: Path,
    e2e_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Deployment:
    python = find_python(corpus.python) or pytest.skip(
        f"CPython {corpus.python} not found under pyenv or PATH"
    )
    work = tmp_path_factory.mktemp(f"corpus-{corpus.key}")
    dest = work / "src" / corpus.key
    if corpus.generated:
        dest.mkdir(parents=True)
        source = generate_uv_build_app(corpus, dest, e2e_env, Path(uv.find_uv_bin()), python)
    else:
        source = checkout(corpus, fetch_sdist(corpus, e2e_cache, e2e_env), dest, e2e_env)
    return Deployment(corpus, work, source, python, e2e_env)


# ---------------------------------------------------------------------------------------------------
# The steps, in the order they run for each project.


def test_deploy_from_read_only_source(deployment: Deployment) -> None:
    outcome, before, after = deployment.deploy()
    assert PROBE not in after
    assert outcome.code == 0, explain(outcome)
    assert outcome.json["changed"] is True
    assert outcome.json["generation"] == 1
    assert source_diff(before, after) == []


def test_installed_set_equals_raw_uv_sync(deployment: Deployment) -> None:
    deployment.require_deployed()
    # Raw uv, on a writable clone (never the source), the same selection: runtime dependencies,
    # no default groups, members built as real (non-editable) installs.
    clone = deployment.work / "raw" / deployment.project.key
    run(["git", "clone", "-q", deployment.source, clone], env=deployment.environ)
    raw_env = deployment.work / "raw-venv"
    uv_sync = _raw_sync(deployment, clone, raw_env)
    assert uv_sync.code == 0, f"raw uv sync failed (not venvkeeper): {uv_sync.err[-2000:]}"
    deployed, raw = deployment.installed(deployment.env), deployment.installed(raw_env)
    assert (sorted(deployed - raw), sorted(raw - deployed)) == ([], []), (
        f"deployed only ({len(deployed - raw)}): {sorted(deployed - raw)}; "
        f"raw uv only ({len(raw - deployed)}): {sorted(raw - deployed)}"
    )


def _raw_sync(deployment: Deployment, clone: Path, raw_env: Path) -> Outcome:
    environ = {**deployment.environ, "UV_PROJECT_ENVIRONMENT": str(raw_env)}
    proc = subprocess.run(
        [
            # Every workspace member, as venvkeeper deploys them (README: "What is installed").
            *(uv.find_uv_bin(), "sync", "--frozen", "--all-packages", "--no-default-groups", "--no-editable"),
            *("--python", str(deployment.python)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
        env=environ,
        cwd=clone,
        stdin=subprocess.DEVNULL,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def test_smoke_command(deployment: Deployment) -> None:
    deployment.require_deployed()
    deployment.assert_smoke(deployment.env)


def test_redeploy_is_unchanged(deployment: Deployment) -> None:
    deployment.require_deployed()
    before = snapshot(deployment.source)
    outcome = deployment.vk(
        "deploy",
        deployment.source,
        "--env",
        deployment.env,
        "--python",
        deployment.python,
        "--json",
        read_only=True,
    )
    assert outcome.code == 0, explain(outcome)
    assert (outcome.json["changed"], outcome.json["generation"]) == (False, 1), outcome.out
    assert source_diff(before, snapshot(deployment.source)) == []


def test_verify(deployment: Deployment) -> None:
    deployment.require_deployed()
    deployment.assert_verify_clean(deployment.env)


def test_verify_with_project(deployment: Deployment) -> None:
    deployment.require_deployed()
    before = snapshot(deployment.source)
    deployment.assert_verify_clean(deployment.env, "--project", deployment.source)
    assert source_diff(before, snapshot(deployment.source)) == []


def test_sbom(deployment: Deployment) -> None:
    deployment.require_deployed()
    outcome = deployment.vk("sbom", "--env", deployment.env)
    assert outcome.code == 0, explain(outcome)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(outcome.out)
    assert error is None, getattr(getattr(error, "data", None), "message", error)
    document = json.loads(outcome.out)
    components = {(_normalize(c["name"]), c.get("version", "")): c for c in document["components"]}
    # Every distribution installed, and nothing else; each with a purl and the lock's sha256 of what
    # was installed (a member: the hash of its sources), and the same bytes as the file written.
    assert sorted(components) == sorted(deployment.installed(deployment.env))
    for (name, _), component in components.items():
        properties = {p["name"]: p["value"] for p in component["properties"]}
        assert component["purl"].startswith("pkg:"), name
        assert properties["venvkeeper:hash-of"] != "none", name
        assert component["hashes"][0]["alg"] == "SHA-256", name
        if name in deployment.members():
            assert properties["venvkeeper:hash-of"] == "member-source", name
    assert deployment.vk("sbom", "--env", deployment.env).out == outcome.out


def _pack(deployment: Deployment) -> tuple[Outcome, Outcome, list[str]]:
    def action() -> tuple[Outcome, Outcome, list[str]]:
        before = snapshot(deployment.source)
        bundles = deployment.work / "bundles"
        bundles.mkdir()
        python = deployment.project.python
        first = deployment.vk(
            "pack", deployment.source, "-o", bundles / "a.tar.gz", "--python", python, "--json"
        )
        second = deployment.vk(
            "pack", deployment.source, "-o", bundles / "b.tar.gz", "--python", python, "--json"
        )
        return first, second, source_diff(before, snapshot(deployment.source))

    result: tuple[Outcome, Outcome, list[str]] = deployment.once("pack", action)
    return result


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pack_twice_is_identical(deployment: Deployment) -> None:
    first, second, written = _pack(deployment)
    assert first.code == 0, explain(first)
    assert second.code == 0, explain(second)
    bundles = deployment.work / "bundles"
    assert _digest(bundles / "a.tar.gz") == _digest(bundles / "b.tar.gz")
    assert written == []


def test_install_bundle_offline(deployment: Deployment) -> None:
    deployment.require_deployed()
    first = _pack(deployment)[0]
    if first.code != 0:
        pytest.fail(f"needs the bundle, which pack failed to make: {explain(first)}")
    env = deployment.work / "offline" / ".venv"
    env.parent.mkdir()
    outcome = deployment.vk(
        "install",
        deployment.work / "bundles" / "a.tar.gz",
        "--env",
        env,
        "--python",
        deployment.python,
        "--json",
        offline=True,
    )
    assert outcome.code == 0, explain(outcome)
    # The bundle carries what deploy installs: the same selection, the same versions.
    installed, deployed = deployment.installed(env), deployment.installed(deployment.env)
    assert (sorted(installed - deployed), sorted(deployed - installed)) == ([], []), (
        f"bundle only ({len(installed - deployed)}): {sorted(installed - deployed)}; "
        f"deploy only ({len(deployed - installed)}): {sorted(deployed - installed)}"
    )
    deployment.assert_smoke(env)
    deployment.assert_verify_clean(env)


@pytest.mark.parametrize("fmt", ["pylock", "requirements"])
def test_export(deployment: Deployment, fmt: str) -> None:
    deployment.require_deployed()
    out = deployment.work / "exports" / f"{fmt}.out"
    out.parent.mkdir(exist_ok=True)
    before = snapshot(deployment.source)
    # The interpreter deploy was given: uv's own discovery would follow a .python-version pin
    # (uv-build-app's 3.14) that no host of the suite has.
    outcome = deployment.vk(
        "export", deployment.source, "--format", fmt, "-o", out, "--python", deployment.python
    )
    assert outcome.code == 0, explain(outcome)
    assert source_diff(before, snapshot(deployment.source)) == []
    # The same selection as deploy: the deployed set without the workspace members (markers
    # evaluated for the deployed interpreter).
    environment = deployment.marker_environment()
    if fmt == "pylock":
        exported = {
            (_normalize(p["name"]), p["version"])
            for p in tomllib.loads(out.read_text())["packages"]
            if "marker" not in p
            or Marker(p["marker"]).evaluate(
                {**environment, "extras": frozenset(), "dependency_groups": frozenset()}, "lock_file"
            )
        }
    else:
        exported = set()
        for line in out.read_text().splitlines():
            if not line or line[0] in " #-":
                continue
            requirement = Requirement(line.rstrip("\\ "))
            if requirement.marker is None or requirement.marker.evaluate({**environment, "extra": ""}):
                (version,) = [spec.version for spec in requirement.specifier]
                exported.add((_normalize(requirement.name), version))
    deployed = {(n, v) for n, v in deployment.installed(deployment.env) if n not in deployment.members()}
    assert (sorted(exported - deployed), sorted(deployed - exported)) == ([], []), (
        f"exported only: {sorted(exported - deployed)}; deployed only: {sorted(deployed - exported)}"
    )


def test_update_dry_run_against_bare_remote(deployment: Deployment) -> None:
    deployment.require_deployed()
    remotes = deployment.work / "remotes"
    remotes.mkdir()
    add_remote(deployment.source, remotes)
    before = snapshot(deployment.source)
    live = deployment.env.readlink()
    outcome = deployment.vk(
        "update", deployment.source, "--env", deployment.env, "--dry-run", "--test-command", "true", "--json"
    )
    unreachable = deployment.project.unreachable_source
    if unreachable is None:
        assert outcome.code == 0, explain(outcome)
        assert outcome.json["outcome"] in ("no-updates", "would-update"), explain(outcome)
    else:
        # The host cannot reach that source: the run fails saying so, with uv's reason.
        assert outcome.code == 1, explain(outcome)
        assert outcome.json["outcome"] == "relock-failed", explain(outcome)
        assert unreachable in outcome.json["reason"], explain(outcome)
    assert source_diff(before, snapshot(deployment.source)) == []
    assert deployment.env.readlink() == live


def _store_env(deployment: Deployment) -> Path:
    """An environment deployed on a copy of CPython under ``store-a``, the store then moved to store-b."""

    def action() -> tuple[Outcome, Path]:
        store_python = install_store_python(deployment.work / "store-a", deployment.python)
        env = deployment.work / "healing" / ".venv"
        env.parent.mkdir()
        outcome = deployment.vk("deploy", deployment.source, "--env", env, "--python", store_python, "--json")
        return outcome, env

    outcome, env = deployment.once("store-deploy", action)
    if outcome.code != 0:
        pytest.fail(f"deploy on a store interpreter failed: {explain(outcome)}")
    return env  # type: ignore[no-any-return]


def test_heal_after_interpreter_moved(deployment: Deployment) -> None:
    deployment.require_deployed()
    env = _store_env(deployment)
    deployment.assert_smoke(env)
    (deployment.work / "store-a").rename(deployment.work / "store-b")
    broken = deployment.smoke(env)
    assert broken.returncode != 0  # the interpreter it names is gone
    moved_python = deployment.work / "store-b" / "bin" / deployment.python.name
    outcome = deployment.vk("heal", "--env", env, "--python", moved_python, "--json")
    assert outcome.code == 0, explain(outcome)
    deployment.assert_smoke(env)
    deployment.assert_verify_clean(env)


def test_heal_after_environment_moved(deployment: Deployment) -> None:
    deployment.require_deployed()
    old = deployment.work / "moving"
    env = old / ".venv"
    old.mkdir()
    outcome = deployment.vk(
        "deploy", deployment.source, "--env", env, "--python", deployment.python, "--json"
    )
    assert outcome.code == 0, f"deploy before the move: {explain(outcome)}"
    new = deployment.work / "moved"
    old.rename(new)
    env = new / ".venv"
    outcome = deployment.vk("heal", "--env", env, "--json")
    assert outcome.code == 0, explain(outcome)
    deployment.assert_smoke(env)
    deployment.assert_verify_clean(env)
    again = deployment.vk("deploy", deployment.source, "--env", env, "--python", deployment.python, "--json")
    assert again.code == 0, explain(again)


def test_member_change_deploys_as_a_clone(deployment: Deployment) -> None:
    """Issue 14: a member's code changed (in a git clone: the source is read-only) deploys as a hard-link
    clone of the live generation with only the changed members installed; it runs and verifies clean."""
    deployment.require_deployed()
    home = deployment.env.parent / f"{deployment.env.name}.venvkeeper" / "generations"
    live = int(deployment.env.readlink().name)
    state = json.loads((home / f"{live:04d}.json").read_text())
    member = next(m for m in state["members"] if m["package"])
    changed = deployment.work / "changed" / deployment.project.key
    run(["git", "clone", "-q", deployment.source, changed], env=deployment.environ)
    listed = run(["git", "ls-files", "--", member["path"]], cwd=changed, env=deployment.environ).stdout
    target = changed / next(p for p in listed.splitlines() if p.endswith(".py"))
    target.write_text(target.read_text() + "\n# changed by venvkeeper's e2e suite\n")
    run(["git", "commit", "-q", "-am", "a member changed"], cwd=changed, env=deployment.environ)

    outcome = deployment.vk(
        "deploy", changed, "--env", deployment.env, "--python", deployment.python, "--json"
    )

    assert outcome.code == 0, explain(outcome)
    assert outcome.json["changed"] is True, outcome.out
    built = json.loads((home / f"{outcome.json['generation']:04d}.json").read_text())["built"]
    assert (built["from"], built["source"], built["refused"]) == ("clone", live, {}), built
    assert member["name"] in built["installed"], built
    # Runs (a version from git tags is now a dev version of the new commit, so not the tag's).
    smoke = deployment.smoke(deployment.env)
    assert smoke.returncode == 0, smoke.stderr[-2000:]
    deployment.assert_verify_clean(deployment.env)
