"""``venvkeeper update``: the policies on real resolution, and what a passing, a failing and an empty
update leave behind (the lock's bytes, the git history here and at the remote, the live environment,
the mail that arrives).

Every test deploys the ``updatable`` project (tinydb and tinyweb directly, tinyutil through tinyweb)
with a bare remote, publishes newer releases on the local index and runs update on it. The project's
tests are ``check_deps.py``, which a test makes fail for one version with a refusal file.
"""

from __future__ import annotations

import json
import shutil
import socket
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from support.gitremote import Remote, add_remote, changed_files, commit_message, head, log
from support.process import run
from support.smtp import SmtpServer
from venvkeeper.gateways.uv import find_uv
from venvkeeper.generations import engine
from vk import Outcome, commit_all, run_in_env, snapshot, vk

PROJECT = "updatable"
FIRST_COMMIT = f"Add the {PROJECT} project"
# One release of each kind above the locked version, for tinydb (direct) and tinyutil (transitive).
RELEASES = {"tinydb": ("1.2.1", "1.3.0", "2.0.0"), "tinyutil": ("1.1.1", "1.2.0", "2.0.0")}


@dataclass
class Service:
    """The updatable project, its bare remote and the live environment deployed from it."""

    project: Path
    env: Path
    remote: Remote | None
    lock: bytes = field(init=False)
    head: str | None = field(init=False)
    live: tuple[str, dict[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.lock = self.lock_bytes()
        self.head = head(self.project) if self.remote is not None else None
        self.live = self.live_state()

    @property
    def state(self) -> Path:
        return self.env.parent / f"{self.env.name}.venvkeeper"

    def lock_bytes(self) -> bytes:
        return (self.project / "uv.lock").read_bytes()

    def live_state(self) -> tuple[str, dict[str, str]]:
        """The generation --env points at, and every file in it."""
        return str(self.env.readlink()), snapshot(self.env.resolve())

    def refuse(self, name: str, version: str, *, live: bool = False, hang: bool = False) -> None:
        """Make the project's tests (or, with ``live``, its post-deploy hook) fail on this version."""
        refusals = self.project / ("refuse-live.txt" if live else "refuse-tests.txt")
        with refusals.open("a") as out:
            out.write(f"{name} {version}{' hang' if hang else ''}\n")

    def imported_version(self, module: str) -> str:
        probe = run_in_env(self.env, "python", "-c", f"import {module}; print({module}.__version__)")
        assert probe.returncode == 0, probe.stderr
        return probe.stdout.strip()

    def history(self) -> list[dict[str, Any]]:
        lines = (self.state / "update" / "history.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def run_leftovers(self) -> list[str]:
        """What only a run in progress may have: its candidate environment and running.json."""
        update_dir = self.state / "update"
        return sorted(p.name for p in [*update_dir.glob("candidate-*"), *update_dir.glob("running.json")])

    def commit_and_push(self, message: str) -> None:
        """Commit the work tree as it is and push it: the new "before" of the test."""
        commit_all(self.project, message)
        run(["git", "push", "-q"], cwd=self.project)
        self.lock = self.lock_bytes()
        self.head = head(self.project)

    def assert_lock_and_live_untouched(self) -> None:
        """The lock is the committed one, nothing was committed or pushed, the live env is as it was."""
        assert self.lock_bytes() == self.lock
        if self.remote is not None:
            assert head(self.project) == self.head
            assert self.remote.head() == self.head
        assert self.live_state() == self.live


def deploy_service(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    config: str = "",
    git: bool = True,
    rejecting: bool = False,
) -> Service:
    """Make the project (``config`` appended to pyproject.toml), give it a remote, deploy it."""
    project = make_project(PROJECT, git=git)
    if config:
        pyproject = project / "pyproject.toml"
        pyproject.write_text(pyproject.read_text() + textwrap.dedent(config))
        commit_all(project, "configure the update")
    remote = add_remote(project, tmp_path, rejecting=rejecting) if git else None
    env = tmp_path / "srv" / ".venv"
    deployed = vk(capsys, "deploy", project, "--env", env)
    assert deployed.code == 0, deployed.err
    return Service(project, env, remote)


@pytest.fixture
def service(make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Service:
    return deploy_service(make_project, tmp_path, capsys)


def publish_releases(publish: Callable[..., Path]) -> None:
    for name, versions in RELEASES.items():
        for version in versions:
            publish(name, version)


def update(capsys: pytest.CaptureFixture[str], service: Service, *args: str) -> Outcome:
    return vk(capsys, "update", service.project, "--env", service.env, "--json", *args)


def use_mail(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """Point update's mail at 127.0.0.1:``port``, plain SMTP (the recipients are in the template)."""
    monkeypatch.setenv("VENVKEEPER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("VENVKEEPER_SMTP_PORT", str(port))
    monkeypatch.setenv("VENVKEEPER_SMTP_SECURITY", "none")


@pytest.fixture
def mail(smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    use_mail(monkeypatch, smtp.port)
    return smtp


def subject(report: dict[str, Any], outcome: str) -> str:
    return f"[venvkeeper] {report['host']} {PROJECT}: {outcome}"


def mentions(text: str, *words: str) -> bool:
    """Some line of ``text`` holds every word, in this order."""
    for line in text.splitlines():
        at = 0
        for word in words:
            at = line.find(word, at)
            if at < 0:
                break
            at += len(word)
        else:
            return True
    return False


def parts(message: EmailMessage) -> dict[str, str]:
    """The message's text/plain and text/html bodies, decoded."""
    found = {}
    for part in message.walk():
        if part.get_content_type() in {"text/plain", "text/html"} and not part.is_multipart():
            assert isinstance(part, EmailMessage)
            found[part.get_content_type()] = part.get_content()
    return found


def wire_lines(raw: bytes) -> list[bytes]:
    return raw.replace(b"\r\n", b"\n").split(b"\n")


def changes(report: dict[str, Any]) -> dict[str, tuple[str, str, str, bool]]:
    return {c["name"]: (c["old"], c["new"], c["kind"], c["direct"]) for c in report["changes"]}


def test_a_passing_update_is_committed_pushed_and_deployed(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    publish_releases(publish)

    result = update(capsys, service)

    assert result.code == 0, result.out + result.err
    report = result.json
    assert (report["outcome"], report["check"], report["ok"], report["policy"]) == (
        "updated",
        None,
        True,
        "patch",
    )
    # patch: the newest release of the locked major.minor, direct and transitive alike.
    assert changes(report) == {
        "tinydb": ("1.2.0", "1.2.1", "patch", True),
        "tinyutil": ("1.1.0", "1.1.1", "patch", False),
    }
    assert report["tests"]["baseline"]["ok"] is True
    assert report["tests"]["candidate"]["ok"] is True
    # The candidate had the dev group (the test groups) on top of what is deployed.
    tested = report["tests"]["candidate"]["output_tail"]
    assert "tinydb 1.2.1, tinyweb 1.0.0, tinyutil 1.1.1, tinyextra 1.0.0" in tested

    # The lock: committed alone, with the changes in the message, and pushed.
    lock = service.lock_bytes()
    assert b'name = "tinydb"\nversion = "1.2.1"' in lock
    assert b'name = "tinyutil"\nversion = "1.1.1"' in lock
    committed = head(service.project)
    assert report["lock"]["committed"] == committed
    assert report["lock"]["pushed"] is True
    assert log(service.project)[1:] == [FIRST_COMMIT]
    assert changed_files(service.project) == ["uv.lock"]
    message = commit_message(service.project)
    assert mentions(message, "tinydb", "1.2.0", "1.2.1"), message
    assert mentions(message, "tinyutil", "1.1.0", "1.1.1"), message
    assert run(["git", "status", "--porcelain"], cwd=service.project).stdout == ""
    assert service.remote is not None
    assert service.remote.head() == committed
    assert service.remote.show("uv.lock") == lock
    assert Path(report["lock"]["backup"]).read_bytes() == service.lock

    # The live environment: a new generation, clean, with the new versions.
    assert (report["live"]["changed"], report["live"]["generation"], report["live"]["previous"]) == (
        True,
        2,
        1,
    )
    assert str(service.env.readlink()).endswith("generations/0002")
    verify = vk(capsys, "verify", "--env", service.env, "--json")
    assert verify.json["clean"] is True, verify.out
    assert service.imported_version("tinydb") == "1.2.1"
    assert service.imported_version("tinyutil") == "1.1.1"
    assert service.run_leftovers() == []

    # The history, as `update --history` shows it.
    history = vk(capsys, "update", "--history", "--env", service.env, "--json")
    assert history.code == 0, history.err
    assert (history.json["command"], history.json["ok"]) == ("update-history", True)
    (entry,) = history.json["history"]
    assert (entry["outcome"], entry["exit_code"], entry["policy"]) == ("updated", 0, "patch")
    assert (entry["lock"]["committed"], entry["lock"]["pushed"]) == (committed, True)
    assert entry["live"]["generation"] == 2
    assert entry["tests"]["candidate"]["ok"] is True
    assert {c["name"]: c["new"] for c in entry["changes"]} == {"tinydb": "1.2.1", "tinyutil": "1.1.1"}


def test_a_passing_update_mails_the_changes(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], mail: SmtpServer
) -> None:
    publish_releases(publish)

    result = update(capsys, service, "--policy", "minor")

    assert result.code == 0, result.out + result.err
    report = result.json
    # minor: the newest release of the locked major.
    assert changes(report) == {
        "tinydb": ("1.2.0", "1.3.0", "minor", True),
        "tinyutil": ("1.1.0", "1.2.0", "minor", False),
    }
    assert report["host"] in {socket.gethostname(), socket.gethostname().split(".")[0]}
    assert report["notification"] == {
        "sent": True,
        "to": ["ops@updatable.invalid"],
        "error": None,
        "skipped": None,
    }
    (message,) = mail.messages
    assert message["Subject"] == subject(report, "updated 2 packages (minor)")
    assert message["To"] == "ops@updatable.invalid"
    bodies = parts(message)
    assert set(bodies) == {"text/plain", "text/html"}
    text, html = bodies["text/plain"], bodies["text/html"]
    assert mentions(text, "tinydb", "1.2.0", "1.3.0", "minor", "direct"), text
    assert mentions(text, "tinyutil", "1.1.0", "1.2.0", "minor", "transitive"), text
    # The unified diff of uv.lock.
    assert '-version = "1.2.0"' in text
    assert '+version = "1.3.0"' in text
    assert mentions(html, "<tr>", "tinydb", "1.2.0", "1.3.0", "minor", "direct", "</tr>"), html
    assert mentions(html, "<tr>", "tinyutil", "1.1.0", "1.2.0", "minor", "transitive", "</tr>"), html
    for part in message.iter_parts():
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    (raw,) = mail.raw
    assert max(len(line) for line in wire_lines(raw)) <= 998


@pytest.mark.parametrize(
    ("policy", "tinydb", "tinyutil"),
    [("patch", "1.2.1", "1.1.1"), ("minor", "1.3.0", "1.2.0"), ("major", "2.0.0", "2.0.0")],
)
def test_dry_run_reports_what_the_policy_takes_and_writes_nothing(
    service: Service,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    policy: str,
    tinydb: str,
    tinyutil: str,
) -> None:
    publish_releases(publish)

    result = update(capsys, service, "--policy", policy, "--dry-run")

    assert result.code == 0, result.out + result.err
    report = result.json
    assert (report["outcome"], report["dry_run"], report["policy"]) == ("would-update", True, policy)
    assert changes(report) == {
        "tinydb": ("1.2.0", tinydb, policy, True),
        "tinyutil": ("1.1.0", tinyutil, policy, False),
    }
    assert report["lock"]["committed"] is None
    assert report["live"]["changed"] is False
    service.assert_lock_and_live_untouched()
    assert sorted(p.name for p in (service.state / "update").iterdir()) == ["history.jsonl"]
    assert [entry["outcome"] for entry in service.history()] == ["would-update"]


def test_a_pyproject_constraint_holds_under_major(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
    uv_bin: Path,
) -> None:
    project = make_project(PROJECT)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"tinydb", ', '"tinydb<2", '))
    run([uv_bin, "lock"], cwd=project)
    commit_all(project, "tinydb 2 breaks the schema")
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    publish_releases(publish)

    report = vk(capsys, "update", project, "--env", env, "--policy", "major", "--dry-run", "--json").json

    assert report["outcome"] == "would-update", report
    assert changes(report)["tinydb"] == ("1.2.0", "1.3.0", "minor", True)
    assert changes(report)["tinyutil"] == ("1.1.0", "2.0.0", "major", False)


def test_a_patch_update_moves_a_forked_package_within_each_forks_range(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
    uv_bin: Path,
) -> None:
    # uv locks tinydb twice, forked by the markers: 1.2.x below Python 3.12, 1.3.x from 3.12 on.
    project = make_project(PROJECT)
    pyproject = project / "pyproject.toml"
    forked = "\"tinydb<1.3 ; python_version < '3.12'\", \"tinydb>=1.3 ; python_version >= '3.12'\", "
    pyproject.write_text(pyproject.read_text().replace('"tinydb", ', forked))
    publish("tinydb", "1.3.0")
    run([uv_bin, "lock"], cwd=project)
    assert (project / "uv.lock").read_text().count('name = "tinydb"\n') == 2
    commit_all(project, "tinydb forks by Python version")
    remote = add_remote(project, tmp_path)
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    service = Service(project, env, remote)
    # A patch release of the older fork, and releases no fork may take under patch.
    for version in ("1.2.1", "1.4.0", "2.0.0"):
        publish("tinydb", version)

    result = update(capsys, service, "--policy", "patch")

    assert result.code == 0, result.out + result.err
    report = result.json
    assert report["outcome"] == "updated", report
    assert changes(report) == {"tinydb": ("1.2.0, 1.3.0", "1.2.1, 1.3.0", "patch", True)}
    lock = service.lock_bytes()
    assert b'name = "tinydb"\nversion = "1.2.1"' in lock
    assert b'name = "tinydb"\nversion = "1.3.0"' in lock
    assert b'version = "1.2.0"' not in lock
    assert remote.show("uv.lock") == lock
    assert service.imported_version("tinydb") == "1.2.1"  # the environment runs Python 3.11


def test_per_package_overrides(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    service = deploy_service(
        make_project,
        tmp_path,
        capsys,
        config="""
            [tool.venvkeeper.update.packages]
            tinydb = "==1.2.1"
            tinyutil = "exclude"
            tinyweb = "minor"
        """,
    )
    publish_releases(publish)
    publish("tinyweb", "1.1.0")
    publish("tinyweb", "2.0.0")

    report = update(capsys, service, "--policy", "major", "--dry-run").json

    # Under major alone, all three would go to 2.0.0.
    assert report["outcome"] == "would-update", report
    assert changes(report) == {
        "tinydb": ("1.2.0", "1.2.1", "patch", True),
        "tinyweb": ("1.0.0", "1.1.0", "minor", True),
    }


def test_a_pin_that_needs_a_package_past_its_policy_fails_naming_it(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    service = deploy_service(
        make_project, tmp_path, capsys, config='[tool.venvkeeper.update.packages]\ntinyweb = "==1.0.1"\n'
    )
    # tinyweb 1.0.1 needs tinyutil 2, a major step that the patch policy does not allow for tinyutil.
    publish("tinyweb", "1.0.1", requires=("tinyutil>=2",))
    publish("tinyutil", "2.0.0")

    result = update(capsys, service)

    assert result.code == 1, result.out + result.err
    report = result.json
    assert report["outcome"] == "relock-failed"
    assert "tinyutil" in report["reason"], report["reason"]
    assert report["lock"]["committed"] is None
    assert report["live"]["changed"] is False
    service.assert_lock_and_live_untouched()


def test_no_updates_changes_nothing_and_mails_nobody(
    service: Service, capsys: pytest.CaptureFixture[str], mail: SmtpServer
) -> None:
    result = update(capsys, service)

    assert result.code == 0, result.out + result.err
    report = result.json
    assert (report["outcome"], report["ok"], report["changes"]) == ("no-updates", True, [])
    assert report["lock"]["changed"] is False
    assert report["lock"]["committed"] is None
    assert report["live"]["changed"] is False
    service.assert_lock_and_live_untouched()
    assert log(service.project) == [FIRST_COMMIT]
    assert mail.messages == []
    assert report["notification"]["sent"] is False
    assert [entry["outcome"] for entry in service.history()] == ["no-updates"]


def test_no_push_commits_locally_and_deploys(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    publish("tinydb", "1.2.1")

    result = update(capsys, service, "--no-push")

    assert result.code == 0, result.out + result.err
    report = result.json
    assert report["outcome"] == "updated"
    assert (report["lock"]["committed"], report["lock"]["pushed"]) == (head(service.project), False)
    assert len(log(service.project)) == 2
    assert service.remote is not None
    assert service.remote.head() == service.head
    assert service.remote.log() == [FIRST_COMMIT]
    assert report["live"]["generation"] == 2
    assert service.imported_version("tinydb") == "1.2.1"


def test_a_failing_candidate_is_not_applied(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], mail: SmtpServer
) -> None:
    publish("tinydb", "1.2.1")
    service.refuse("tinydb", "1.2.1")

    result = update(capsys, service)

    assert result.code == 1, result.out + result.err
    report = result.json
    assert (report["outcome"], report["ok"]) == ("tests-failed", False)
    assert report["tests"]["baseline"]["ok"] is True
    candidate = report["tests"]["candidate"]
    assert (candidate["ok"], candidate["exit_code"], candidate["timed_out"]) == (False, 1, False)
    assert "FAILED: tinydb 1.2.1 is refused by refuse-tests.txt" in candidate["output_tail"]
    assert report["lock"]["committed"] is None
    assert (report["live"]["changed"], report["live"]["verified"]) == (False, True)
    service.assert_lock_and_live_untouched()
    assert service.remote is not None
    assert service.remote.log() == [FIRST_COMMIT]
    assert vk(capsys, "verify", "--env", service.env).code == 0
    assert service.run_leftovers() == []

    assert len(mail.messages) == 1, report["notification"]
    (message,) = mail.messages
    assert message["Subject"] == subject(report, "tests failed, update NOT applied")
    text = parts(message)["text/plain"]
    assert "NOT applied" in text
    assert mentions(text, "tinydb", "1.2.0", "1.2.1"), text
    assert "FAILED: tinydb 1.2.1 is refused by refuse-tests.txt" in text
    # The test output has a 3,000-character line; on the wire it is folded.
    assert "tinydb==1.2.1 tinydb==1.2.1" in text
    (raw,) = mail.raw
    assert max(len(line) for line in wire_lines(raw)) <= 998


def test_a_post_deploy_hook_failure_reverts_the_update(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    publish("tinydb", "1.2.1")
    service.refuse("tinydb", "1.2.1", live=True)

    result = update(capsys, service)

    assert result.code == 1, result.out + result.err
    report = result.json
    assert report["outcome"] == "deploy-failed"
    assert report["tests"]["candidate"]["ok"] is True
    # The live environment: the generation it was before, and clean.
    assert (report["live"]["changed"], report["live"]["generation"]) == (False, 1)
    assert service.live_state() == service.live
    assert vk(capsys, "verify", "--env", service.env).code == 0
    assert service.imported_version("tinydb") == "1.2.0"
    # The branch names the lock that is live: the update, then its revert, here and at the remote.
    assert service.lock_bytes() == service.lock
    history = log(service.project)
    assert len(history) == 3
    assert history[0].startswith("Revert")
    assert history[2] == FIRST_COMMIT
    assert report["lock"]["reverted"] == head(service.project)
    assert report["lock"]["committed"] == head(service.project, "HEAD~1")
    assert run(["git", "status", "--porcelain"], cwd=service.project).stdout == ""
    assert service.remote is not None
    assert service.remote.head() == head(service.project)
    assert service.remote.show("uv.lock") == service.lock


def test_the_candidate_takes_the_members_wheels_from_the_generation_engines_cache(
    make_project: Callable[..., Path],
    tmp_path: Path,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deploy built the member's wheel into the member wheel cache. An update builds the member
    once: the baseline is a clone of the live generation (the member is in it already), and the next
    generation builds it because the root member's tree holds uv.lock, which the update changed; the
    candidate's tests run on that generation, and ship switches to it instead of building again."""
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
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    service = Service(project, env, remote)
    cache = service.state / "wheels"
    assert [p.parent.parent.name for p in cache.rglob("*.whl")] == [PROJECT]

    built: list[str] = []
    build_wheel = engine.build_wheel

    def counting(stage: Path, name: str, *args: Any, **kwargs: Any) -> Path:
        built.append(name)
        return build_wheel(stage, name, *args, **kwargs)

    monkeypatch.setattr("venvkeeper.generations.engine.build_wheel", counting)
    publish_releases(publish)

    result = update(capsys, service)

    assert result.code == 0, result.out + result.err
    assert (result.json["outcome"], result.json["tests"]["candidate"]["ok"]) == ("updated", True)
    assert built == [PROJECT]  # by the next generation only
    # Into the member wheel cache, named by the record as a deploy's is (the next deploy reuses it).
    record = json.loads((service.state / "generations" / "0002.json").read_text())
    (member,) = record["members"]
    assert Path(member["wheel"]).is_file()
    assert Path(member["wheel"]).is_relative_to(cache)
    # With the cache emptied, the baseline still needs no build (the member is in the live
    # generation); the next generation builds it once again.
    shutil.rmtree(cache)
    publish("tinydb", "1.2.2")

    again = update(capsys, service)

    assert (again.code, again.json["outcome"]) == (0, "updated"), again.out + again.err
    assert built == [PROJECT] * 2
