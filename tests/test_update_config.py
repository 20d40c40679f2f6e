"""``[tool.venvkeeper.update]`` at work: group permissions, the hosts rule, exports, the history."""

from __future__ import annotations

import grp
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from support.gitremote import changed_files
from support.smtp import SmtpServer
from test_update import Service, deploy_service, publish_releases, update, use_mail
from vk import vk


def configure(service: Service, lines: str) -> None:
    """Add ``lines`` to the template's [tool.venvkeeper.update] table, commit and push."""
    pyproject = service.project / "pyproject.toml"
    header = "[tool.venvkeeper.update]\n"
    text = pyproject.read_text()
    assert header in text
    pyproject.write_text(text.replace(header, header + lines.strip() + "\n"))
    service.commit_and_push("configure the update")


def _other_group() -> grp.struct_group:
    """A group the test's files do not belong to (root can give files to any group)."""
    mine = os.getgid()
    for candidate in ("daemon", "bin", "sys", "adm", "users", "nogroup"):
        try:
            group = grp.getgrnam(candidate)
        except KeyError:
            continue
        if group.gr_gid != mine:
            return group
    pytest.skip("no group other than the test's own on this machine")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another group needs root")
def test_group_permissions_are_checked_before_and_applied_after(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    group = _other_group()
    service = deploy_service(make_project, tmp_path, capsys)
    configure(service, f'group = "{group.gr_name}"')
    publish_releases(publish)

    refused = update(capsys, service)
    report = refused.json
    assert refused.code == 2, refused.err
    assert (report["outcome"], report["check"]) == ("preflight-failed", "permissions")
    assert f"not {group.gr_name}" in report["reason"]
    assert f"-exec chgrp -h {group.gr_name}" in report["hint"]
    service.assert_lock_and_live_untouched()
    # A refusal is not quietly "fixed" behind the operator's back.
    assert service.state.stat().st_gid != group.gr_gid

    # The operator follows the hint (run as given, through the shell).
    fixed = subprocess.run(["/bin/sh", "-c", report["hint"]], capture_output=True, text=True, check=False)
    assert fixed.returncode == 0, fixed.stderr
    linked = next(p for p in (service.env.resolve() / "lib").rglob("*.py") if p.stat().st_nlink > 1)
    assert linked.stat().st_gid != group.gr_gid  # uv's cache files are left alone
    updated = update(capsys, service)
    assert updated.code == 0, updated.out + updated.err
    assert updated.json["outcome"] == "updated"
    new_generation = service.env.resolve()
    for path in (
        new_generation,
        new_generation / "bin" / "python",
        service.state / "update" / "history.jsonl",
    ):
        assert path.lstat().st_gid == group.gr_gid, path
    for directory in (new_generation, new_generation / "bin", service.state / "update" / "backups"):
        assert directory.stat().st_mode & stat.S_IWGRP, directory
        assert directory.stat().st_mode & stat.S_ISGID, directory
    cache_file = next(p for p in (new_generation / "lib").rglob("*.py") if p.stat().st_nlink > 1)
    assert cache_file.stat().st_gid != group.gr_gid
    assert not cache_file.stat().st_mode & stat.S_IWGRP


def test_the_hosts_rule_picks_the_groups_and_a_missing_one_is_named(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = deploy_service(
        make_project,
        tmp_path,
        capsys,
        config="""
        [tool.venvkeeper.update.hosts]
        "web-staging*" = ["staging"]
        "web-*" = ["dev"]
        """,
    )
    monkeypatch.setenv("VENVKEEPER_HOSTNAME", "web-staging1")

    result = update(capsys, service)

    report = result.json
    assert result.code == 2
    assert (report["outcome"], report["check"], report["host"]) == (
        "preflight-failed",
        "missing-groups",
        "web-staging1",
    )
    assert "dependency group(s) staging not defined" in report["reason"]
    assert "hosts rule 'web-staging*'" in report["reason"]
    service.assert_lock_and_live_untouched()

    monkeypatch.setenv("VENVKEEPER_HOSTNAME", "web-1")
    chosen = update(capsys, service)
    assert chosen.code == 0, chosen.out + chosen.err
    assert (chosen.json["outcome"], chosen.json["groups"]) == ("no-updates", ["dev"])
    assert chosen.json["groups_from"] == "hosts rule 'web-*'"


def test_configured_exports_are_committed_with_the_lock(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    service = deploy_service(make_project, tmp_path, capsys)
    configure(service, 'exports = [{ format = "requirements.txt", path = "requirements.txt" }]')
    publish_releases(publish)

    result = update(capsys, service)

    assert result.code == 0, result.out + result.err
    assert changed_files(service.project, "HEAD") == ["requirements.txt", "uv.lock"]
    requirements = (service.project / "requirements.txt").read_text()
    assert "tinydb==1.2.1 \\" in requirements
    assert "--hash=sha256:" in requirements
    # The runtime set only: the dev group (tinyextra) stays out.
    assert "tinyextra" not in requirements


def test_history_lists_every_run_as_text_and_json(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    service = deploy_service(make_project, tmp_path, capsys)
    empty = vk(capsys, "update", "--history", "--env", service.env)
    assert empty.code == 0
    assert "no update has run" in empty.out
    assert update(capsys, service).json["outcome"] == "no-updates"
    publish_releases(publish)
    assert update(capsys, service, "--dry-run").json["outcome"] == "would-update"

    text = vk(capsys, "update", "--history", "--env", service.env)
    as_json = vk(capsys, "update", "--history", "--env", service.env, "--json")

    assert text.code == as_json.code == 0
    lines = text.out.splitlines()
    assert len(lines) == 2
    assert "no-updates" in lines[0]
    assert "would-update" in lines[1]
    assert "tinydb 1.2.0->1.2.1" in lines[1]
    entries = as_json.json["history"]
    assert [e["outcome"] for e in entries] == ["no-updates", "would-update"]
    assert entries[1]["changes"][0] == {
        "name": "tinydb",
        "old": "1.2.0",
        "new": "1.2.1",
        "kind": "patch",
        "direct": True,
    }


def test_an_in_place_environment_is_refused(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
) -> None:
    project = make_project("updatable")
    env = tmp_path / "srv" / ".venv"
    assert vk(capsys, "deploy", project, "--env", env, "--in-place").code == 0
    lock = (project / "uv.lock").read_bytes()
    publish_releases(publish)

    result = vk(capsys, "update", project, "--env", env, "--json", "--no-push")

    report = result.json
    assert result.code == 2
    assert (report["outcome"], report["check"]) == ("preflight-failed", "env-in-place")
    assert "no atomic switch or rollback" in report["reason"]
    assert (project / "uv.lock").read_bytes() == lock


def test_the_mail_password_never_reaches_the_tests_or_the_report(
    service_with_mail: Service,
    capsys: pytest.CaptureFixture[str],
    publish: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = service_with_mail
    monkeypatch.setenv("VENVKEEPER_SMTP_USER", "robot")
    monkeypatch.setenv("VENVKEEPER_SMTP_PASSWORD", "s3cr3t-pw")
    publish("tinydb", "1.2.1")

    result = update(capsys, service, "--test-command", "env; exit 1")

    report = result.json
    assert (report["outcome"], report["check"]) == ("preflight-failed", "baseline-failed")
    assert "VIRTUAL_ENV=" in report["tests"]["baseline"]["output_tail"]  # the environment was printed
    assert "s3cr3t-pw" not in result.out + result.err
    log = Path(report["tests"]["baseline"]["log"])
    assert "s3cr3t-pw" not in log.read_text()
    assert "s3cr3t-pw" not in (service.state / "update" / "history.jsonl").read_text()
    # Logging in over plain SMTP is refused rather than sending the password in clear text.
    assert "refusing to log in" in report["notification"]["error"]


@pytest.fixture
def service_with_mail(
    make_project: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Service:
    use_mail(monkeypatch, smtp.port)
    return deploy_service(make_project, tmp_path, capsys)
