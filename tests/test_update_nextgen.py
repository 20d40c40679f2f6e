"""A passing update makes live the generation its tests ran on (issue 14): no second build.

The candidate's tests run in a hard-link clone of the next generation with the test groups added; ship
switches to that generation. These tests look at what an operator can see: the inode of the module the
tests imported against the live generation's, the record's ``built``, the next deploy (a no-op),
verify and rollback; and that a deploy between the build and the switch (which sweeps the unrecorded
generation) makes update build the committed lock again instead of switching to something gone.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.gitremote import add_remote
from support.process import run
from test_update import PROJECT, Service, deploy_service, publish_releases, update
from venvkeeper.gateways.uv import find_uv
from venvkeeper.generations.clone import CloneRefusedError
from vk import commit_all, vk

# The project's tests, then the inode of the tinydb module they imported.
INODE_TESTS = (
    "python check_deps.py && python -c "
    "\"import os, tinydb; print('INODE', os.stat(tinydb.__file__).st_ino, tinydb.__file__)\""
)


def _tested_module(report: dict[str, Any]) -> tuple[int, str]:
    for line in report["tests"]["candidate"]["output_tail"].splitlines():
        if line.startswith("INODE "):
            _, ino, path = line.split(" ", 2)
            return int(ino), path
    raise AssertionError(report["tests"]["candidate"]["output_tail"])


@pytest.fixture
def service(make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Service:
    return deploy_service(make_project, tmp_path, capsys)


def _no_deploy(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("update deployed (built) the tested lock again")


def _record(service: Service, number: int) -> dict[str, Any]:
    return json.loads((service.state / "generations" / f"{number:04d}.json").read_text())


def test_the_generation_the_tests_ran_on_goes_live_without_a_second_build(
    service: Service,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish_releases(publish)
    deploys: list[Any] = []

    def no_deploy(*args: Any, **kwargs: Any) -> Any:
        deploys.append(args)
        raise AssertionError("update deployed (built) the tested lock again")

    monkeypatch.setattr("venvkeeper.deploy.converge.deploy", no_deploy)

    result = update(capsys, service, "--test-command", INODE_TESTS)

    report = result.json
    assert (result.code, report["outcome"]) == (0, "updated"), result.out + result.err
    assert deploys == []
    assert (report["live"]["generation"], report["live"]["previous"]) == (2, 1)
    # The module the candidate's tests imported is the very file (inode) the live generation runs.
    ino, tested_path = _tested_module(report)
    assert "/update/test-0002/" in tested_path
    live_path = service.env.resolve() / tested_path.split("/update/test-0002/", 1)[1]
    assert os.stat(live_path).st_ino == ino
    assert service.imported_version("tinydb") == "1.2.1"
    # The record says how it was built: a clone of generation 1, tested in that environment.
    built = _record(service, 2)["built"]
    assert (built["from"], built["source"]) == ("clone", 1)
    # The baseline's clone of generation 1 moved its files' ctimes; its links explain them, so the
    # next generation's clone linked every file without hashing it again.
    assert (built["hashed"], built["refused"]) == (0, {})
    assert built["tested_in"] == str(service.state / "update" / "test-0002")
    assert not Path(built["tested_in"]).exists()  # removed after the run
    # The test groups were where the tests ran, not in what went live.
    assert "tinyextra" in report["tests"]["candidate"]["output_tail"]
    assert not list(service.env.resolve().glob("lib/python3*/site-packages/tinyextra*"))
    monkeypatch.undo()

    # The record is the one a deploy of the committed project writes (here: into another --env).
    other = service.env.parent / "other" / ".venv"
    fresh = vk(capsys, "deploy", service.project, "--env", other, "--json")
    assert fresh.code == 0, fresh.err
    ours = _record(service, 2)
    theirs = json.loads((other.parent / ".venv.venvkeeper" / "generations" / "0001.json").read_text())
    assert sorted(ours) == sorted(theirs)
    same = ("lock_sha256", "export_sha256", "inputs_sha256", "lock_inputs_sha256", "effective_sha256")
    assert {k: ours[k] for k in same} == {k: theirs[k] for k in same}
    assert ours["git_commit"] == theirs["git_commit"] is not None
    assert (ours["packages"], ours["options"], ours["members"]) == (
        theirs["packages"],
        theirs["options"],
        theirs["members"],
    )
    # The same interpreter (its identity); the path it was named by is the live record's here, where
    # a deploy into a new --env has uv find one.
    assert {**ours["interpreter"], "path": None} == {**theirs["interpreter"], "path": None}
    # ...and so is its SBOM, byte for byte (the same lock, members and commit: the same document).
    sboms = [
        g / "generations" / f"{n:04d}.sbom.cdx.json"
        for g, n in ((service.state, 2), (other.parent / ".venv.venvkeeper", 1))
    ]
    assert sboms[0].read_bytes() == sboms[1].read_bytes()

    # A deploy of the committed project finds nothing to do, verify is clean, rollback works.
    again = vk(capsys, "deploy", service.project, "--env", service.env, "--json")
    assert again.code == 0, again.err
    assert (again.json["changed"], again.json["generation"]) == (False, 2)
    assert again.json["reason"] == "nothing changed since the live environment was built"
    verify = vk(capsys, "verify", "--env", service.env, "--json")
    assert verify.json["clean"] is True, verify.out
    back = vk(capsys, "rollback", "--env", service.env, "--json")
    assert back.code == 0, back.err
    assert str(service.env.readlink()).endswith("generations/0001")
    assert service.imported_version("tinydb") == "1.2.0"


def test_a_deploy_while_the_tests_run_makes_update_build_the_committed_lock(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The tests themselves deploy (the current lock: nothing changes, but the deploy sweeps the
    unrecorded generation update built). Update must not switch to a generation that is gone: it
    deploys the committed lock, and the live generation says it was not the tested one."""
    publish_releases(publish)
    deploy = f"{sys.executable} -m venvkeeper deploy {service.project} --env {service.env}"
    tests = f'python check_deps.py && if [ "$VENVKEEPER_UPDATE" = candidate ]; then {deploy}; fi'

    result = update(capsys, service, "--test-command", tests)

    report = result.json
    assert (result.code, report["outcome"]) == (0, "updated"), result.out + result.err
    assert report["live"]["changed"] is True
    assert service.imported_version("tinydb") == "1.2.1"
    built = _record(service, report["live"]["generation"])["built"]
    assert "tested_in" not in built  # built by the deploy, after the tests
    verify = vk(capsys, "verify", "--env", service.env, "--json")
    assert verify.json["clean"] is True, verify.out
    assert sorted(p.name for p in (service.state / "generations").iterdir() if p.is_dir()) == [
        "0001",
        f"{report['live']['generation']:04d}",
    ]


def test_the_next_deploy_clones_the_updated_generation_without_hashing_it(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The test environments were hard links to the generation that went live; making and removing
    them moved its files' ctimes. Update explains those moves (generations.identity), so the next
    deploy's clone links every file without hashing it."""
    publish_releases(publish)
    assert update(capsys, service).json["outcome"] == "updated"

    deployed = vk(capsys, "deploy", service.project, "--env", service.env, "--group", "dev", "--json")

    assert (deployed.code, deployed.json["changed"]) == (0, True), deployed.out + deployed.err
    built = _record(service, deployed.json["generation"])["built"]
    assert (built["from"], built["source"], built["refused"]) == ("clone", 2, {})
    assert built["hashed"] == 0
    verify = vk(capsys, "verify", "--env", service.env, "--json")
    assert verify.json["clean"] is True, verify.out


def test_a_live_generation_that_cannot_be_cloned_is_built_from_nothing_and_still_tested(
    service: Service,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A live generation the clone refuses (a manifest from before schema 2): the baseline's
    environment and the next generation are built from nothing, and the tests still run on a clone of
    the generation that goes live."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise CloneRefusedError("its manifest predates recorded identities (schema 1)")

    monkeypatch.setattr("venvkeeper.generations.delta.start", refuse)
    publish_releases(publish)

    result = update(capsys, service, "--test-command", INODE_TESTS)

    report = result.json
    assert (result.code, report["outcome"]) == (0, "updated"), result.out + result.err
    built = _record(service, 2)["built"]
    assert built["from"] == "nothing"
    assert "schema 1" in built["why"]
    assert built["tested_in"] == str(service.state / "update" / "test-0002")
    ino, tested_path = _tested_module(report)
    live_path = service.env.resolve() / tested_path.split("/update/test-0002/", 1)[1]
    assert os.stat(live_path).st_ino == ino
    assert service.imported_version("tinydb") == "1.2.1"
    verify = vk(capsys, "verify", "--env", service.env, "--json")
    assert verify.json["clean"] is True, verify.out


def test_a_packaged_member_in_an_env_inside_another_work_tree_goes_live_as_tested(
    make_project: Callable[..., Path],
    tmp_path: Path,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service is a built package (its tree holds uv.lock, so the update changes its hash), and
    --env lies inside another git work tree (as /srv in a configuration repository): the next
    generation hashes the member as the committed project will, and goes live without a deploy."""
    project = make_project(PROJECT, lock=False)
    pyproject = project / "pyproject.toml"
    backend = '[build-system]\nrequires = ["setuptools>=70"]\nbuild-backend = "setuptools.build_meta"\n\n'
    pyproject.write_text(backend + pyproject.read_text())
    package = project / "src" / PROJECT
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""The service itself: now a package that is built."""\n')
    run([find_uv(), "lock", "--quiet"], cwd=project)
    commit_all(project, "the service is a package")
    remote = add_remote(project, tmp_path)
    srv = tmp_path / "srv"
    srv.mkdir()
    run(["git", "init", "-q"], cwd=srv)
    env = srv / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    service = Service(project, env, remote)
    publish_releases(publish)
    monkeypatch.setattr("venvkeeper.deploy.converge.deploy", _no_deploy)

    result = update(capsys, service)

    assert (result.code, result.json["outcome"]) == (0, "updated"), result.out + result.err
    record = _record(service, 2)
    assert record["built"]["tested_in"] == str(service.state / "update" / "test-0002")
    assert [m["name"] for m in record["members"]] == [PROJECT]
    monkeypatch.undo()
    again = vk(capsys, "deploy", service.project, "--env", service.env, "--json")
    assert (again.code, again.json["changed"]) == (0, False), again.out + again.err
    verify = vk(capsys, "verify", "--env", service.env, "--project", service.project, "--json")
    assert verify.json["clean"] is True, verify.out
