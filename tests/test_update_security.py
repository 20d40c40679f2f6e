"""``venvkeeper update`` with advisories: a version with a known advisory is held back and named, a fix
may pass the policy up to ``[tool.venvkeeper.update] security`` (the tests still judge it), the report,
the history, the commit and the mail list what is fixed and what remains, and a source that cannot be
read stops the run before anything changes.

The advisories are an OSV export zip the tests write (as OSV publishes ``PyPI/all.zip``); the project is
test_update's ``updatable`` (tinydb and tinyweb directly, tinyutil through tinyweb), on the local index.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from support.gitremote import commit_message, head
from support.index import LocalIndex
from support.osvserver import OsvServer
from support.smtp import SmtpServer
from test_update import FIRST_COMMIT, Service, changes, deploy_service, mentions, parts, update, use_mail
from venvkeeper.core.errors import ConfigError
from venvkeeper.update import plan as updateplan
from venvkeeper.update import screen, security
from venvkeeper.update.config import parse_update_config
from venvkeeper.update.plan import Change
from vk import vk


def _record(
    vuln_id: str, name: str, *, versions: tuple[str, ...] = (), fixed: str | None = None
) -> dict[str, Any]:
    """An OSV record: the listed versions, or every version below ``fixed``."""
    entry: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": name}}
    if versions:
        entry["versions"] = list(versions)
    if fixed:
        entry["ranges"] = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
    return {
        "id": vuln_id,
        "aliases": [f"CVE-2026-{abs(hash(vuln_id)) % 10000:04d}"],
        "summary": f"a flaw in {name}",
        "modified": "2026-11-01T00:00:00Z",
        "affected": [entry],
    }


def export(tmp_path: Path, *records: dict[str, Any], name: str = "all.zip") -> Path:
    """An OSV export as OSV publishes it: a zip of ``ID.json`` records (outside the project)."""
    path = tmp_path / "osv" / name
    path.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path


BAD_TINYDB = _record("GHSA-tiny-db00-0122", "tinydb", versions=("1.2.2",))
BAD_TINYUTIL = _record("GHSA-tiny-util-0111", "tinyutil", versions=("1.1.1",))
OLD_TINYUTIL = _record("GHSA-tiny-util-0120", "tinyutil", fixed="1.2.0")  # affects the locked 1.1.0
TINYWEB_NO_FIX = _record("GHSA-tiny-web0-0100", "tinyweb", versions=("1.0.0",))
BAD_TINYDOCS = _record("GHSA-tiny-docs-0100", "tinydocs", versions=("1.0.0",))


@pytest.fixture
def service(make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Service:
    return deploy_service(make_project, tmp_path, capsys)


def set_security(service: Service, level: str) -> None:
    pyproject = service.project / "pyproject.toml"
    text = pyproject.read_text().replace('policy = "patch"\n', f'policy = "patch"\nsecurity = "{level}"\n')
    pyproject.write_text(text)
    service.commit_and_push(f"security = {level}")


def held(name: str, version: str, *ids: str, held_at: str | None, **more: str) -> dict[str, Any]:
    """A held-back entry of the report, as ``--json`` has it."""
    entry = {"name": name, "version": version, "ids": list(ids), "parent": None, "requires": None, "uv": None}
    return {**entry, **more, "held_at": held_at}


def security_of(report: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = report["security"]
    return found


def test_a_vulnerable_candidate_is_held_back_and_named(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name, version in (("tinydb", "1.2.1"), ("tinydb", "1.2.2"), ("tinyutil", "1.1.1")):
        publish(name, version)
    osv = export(tmp_path, BAD_TINYDB, BAD_TINYUTIL)

    result = update(capsys, service, "--osv", str(osv))

    assert result.code == 0, result.out + result.err
    report = result.json
    assert report["outcome"] == "updated"
    # tinydb: the highest version without an advisory (1.2.1, not 1.2.2); tinyutil's only newer
    # release has one, so it stays at the locked 1.1.0.
    assert changes(report) == {"tinydb": ("1.2.0", "1.2.1", "patch", True)}
    found = security_of(report)
    assert found["source"] == f"the OSV export {osv}"
    assert found["held_back"] == [
        held("tinydb", "1.2.2", "GHSA-tiny-db00-0122", held_at="1.2.1"),
        held("tinyutil", "1.1.1", "GHSA-tiny-util-0111", held_at="1.1.0"),
    ]
    assert (found["fixed"], found["remaining"]) == ([], [])
    lock = service.lock_bytes()
    assert b'name = "tinydb"\nversion = "1.2.1"' in lock
    assert b'name = "tinyutil"\nversion = "1.1.0"' in lock
    assert service.imported_version("tinydb") == "1.2.1"
    assert service.imported_version("tinyutil") == "1.1.0"
    (entry,) = service.history()
    assert entry["security"]["held_back"] == ["GHSA-tiny-db00-0122", "GHSA-tiny-util-0111"]


def test_the_text_report_names_what_is_held_back_and_security_is_off_without_a_source(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    publish("tinydb", "1.2.2")
    osv = export(tmp_path, BAD_TINYDB, TINYWEB_NO_FIX)

    text = vk(capsys, "update", service.project, "--env", service.env, "--dry-run", "--osv", osv)

    assert text.code == 0, text.out + text.err
    assert "no-updates" in text.out
    assert mentions(text.out, "held back:", "tinydb", "1.2.2", "GHSA-tiny-db00-0122"), text.out
    assert mentions(text.out, "remaining:", "tinyweb", "1.0.0", "GHSA-tiny-web0-0100"), text.out

    # No source anywhere: the update is as it always was (tinydb 1.2.2 is taken), nothing is said.
    plain = update(capsys, service, "--dry-run")
    assert plain.code == 0, plain.err
    assert plain.json["security"] is None
    assert changes(plain.json) == {"tinydb": ("1.2.0", "1.2.2", "patch", True)}
    assert "advisories" not in vk(capsys, "update", service.project, "--env", service.env, "--dry-run").out
    service.assert_lock_and_live_untouched()


def test_a_night_whose_only_update_is_held_back_is_mailed(
    service: Service,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish("tinyutil", "1.1.1")
    use_mail(monkeypatch, smtp.port)

    result = update(capsys, service, "--osv", str(export(tmp_path, BAD_TINYUTIL)))

    assert result.code == 0, result.out + result.err
    assert (result.json["outcome"], result.json["changes"]) == ("no-updates", [])
    reason = "no updates within the patch policy (tinyutil held back: known advisories)"
    assert result.json["reason"] == reason
    (message,) = smtp.messages
    text = parts(message)["text/plain"]
    assert mentions(text, "held back:", "tinyutil", "1.1.1", "GHSA-tiny-util-0111"), text
    service.assert_lock_and_live_untouched()


def test_the_source_is_osv_then_the_audit_config_then_the_environment(
    service: Service,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish("tinydb", "1.2.2")
    vulnerable = export(tmp_path, BAD_TINYDB, name="vulnerable.zip")
    clean = export(tmp_path, TINYWEB_NO_FIX, name="clean.zip")

    def taken() -> tuple[str | None, str]:
        result = update(capsys, service, "--dry-run")
        assert result.code == 0, result.err
        return changes(result.json).get("tinydb", (None, None))[1], security_of(result.json)["source"]

    monkeypatch.setenv("VENVKEEPER_OSV", str(vulnerable))
    assert taken() == (None, f"the OSV export {vulnerable}")
    pyproject = service.project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.venvkeeper.audit]\nosv = "{clean}"\n')
    service.commit_and_push("audit with the clean export")
    assert taken() == ("1.2.2", f"the OSV export {clean}")
    with_osv = update(capsys, service, "--dry-run", "--osv", str(vulnerable))
    assert "tinydb" not in changes(with_osv.json)
    assert security_of(with_osv.json)["held_back"][0]["name"] == "tinydb"


def test_advisories_from_an_osv_service(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    publish("tinydb", "1.2.1")
    publish("tinydb", "1.2.2")
    with OsvServer([BAD_TINYDB, TINYWEB_NO_FIX]) as osv:
        result = update(capsys, service, "--dry-run", "--osv", osv.url)
        asked = {(q["package"]["name"], q["version"]) for batch in osv.queries for q in batch["queries"]}
    assert result.code == 0, result.err
    assert changes(result.json) == {"tinydb": ("1.2.0", "1.2.1", "patch", True)}
    found = security_of(result.json)
    assert [(e["name"], e["version"]) for e in found["held_back"]] == [("tinydb", "1.2.2")]
    assert found["remaining"] == [{"name": "tinyweb", "version": "1.0.0", "id": "GHSA-tiny-web0-0100"}]
    assert {("tinydb", "1.2.0"), ("tinydb", "1.2.2"), ("tinydb", "1.2.1")} <= asked
    with OsvServer([], status=500) as failing:
        down = update(capsys, service, "--osv", failing.url)
    assert (down.code, down.json["check"]) == (2, "advisories")
    service.assert_lock_and_live_untouched()


def test_a_new_dependency_with_an_advisory_holds_back_its_parent(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    publish("tinyweb", "1.0.1", requires=("tinyutil>=1.0", "tinydocs"))
    publish("tinydb", "1.2.1")

    result = update(capsys, service, "--dry-run", "--osv", str(export(tmp_path, BAD_TINYDOCS)))

    assert result.code == 0, result.err
    assert changes(result.json) == {"tinydb": ("1.2.0", "1.2.1", "patch", True)}
    # tinydocs is in no lock: nothing is held at a version of it.
    assert security_of(result.json)["held_back"] == [
        held("tinydocs", "1.0.0", "GHSA-tiny-docs-0100", parent="tinyweb", held_at=None)
    ]


def test_security_minor_takes_a_fix_past_the_patch_policy_and_the_tests_still_judge_it(
    make_project: Callable[..., Path],
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    osv = export(tmp_path, OLD_TINYUTIL, TINYWEB_NO_FIX)
    config = f'\n[tool.venvkeeper.audit]\nosv = "{osv}"\n'
    service = deploy_service(make_project, tmp_path, capsys, config=config)
    set_security(service, "minor")
    for version in ("1.1.1", "1.2.0", "1.3.0", "2.0.0"):
        publish("tinyutil", version)
    use_mail(monkeypatch, smtp.port)

    # The fix (1.2.0) is a minor change, past the patch policy: taken, but only if the tests pass.
    service.refuse("tinyutil", "1.2.0")
    refused = update(capsys, service)
    assert refused.code == 1, refused.out + refused.err
    assert refused.json["outcome"] == "tests-failed"
    assert changes(refused.json) == {"tinyutil": ("1.1.0", "1.2.0", "minor", False)}
    service.assert_lock_and_live_untouched()
    (service.project / "refuse-tests.txt").unlink()

    result = update(capsys, service)

    assert result.code == 0, result.out + result.err
    report = result.json
    # The lowest fix's minor line (not 1.3.0, not 2.0.0); tinyweb has no fix, its advisory remains.
    assert changes(report) == {"tinyutil": ("1.1.0", "1.2.0", "minor", False)}
    found = security_of(report)
    assert found["level"] == "minor"
    assert found["fixed"] == [
        {"name": "tinyutil", "old": "1.1.0", "new": "1.2.0", "id": "GHSA-tiny-util-0120"}
    ]
    assert found["remaining"] == [{"name": "tinyweb", "version": "1.0.0", "id": "GHSA-tiny-web0-0100"}]
    assert service.imported_version("tinyutil") == "1.2.0"
    message = commit_message(service.project)
    assert mentions(message, "Fixes", "GHSA-tiny-util-0120", "tinyutil 1.1.0"), message
    assert head(service.project) != service.head
    (entry, last) = service.history()
    assert (entry["outcome"], last["outcome"]) == ("tests-failed", "updated")
    assert last["security"] == {
        "fixed": ["GHSA-tiny-util-0120"],
        "remaining": ["GHSA-tiny-web0-0100"],
        "held_back": [],
    }

    failed_mail, mail = smtp.messages
    for message_ in (failed_mail, mail):
        text = parts(message_)["text/plain"]
        assert "Advisories:" in text
        assert mentions(text, "fixed:", "tinyutil", "1.1.0", "1.2.0", "GHSA-tiny-util-0120"), text
        assert mentions(text, "remaining:", "tinyweb", "1.0.0", "GHSA-tiny-web0-0100"), text
    assert mentions(parts(mail)["text/html"], "<li>", "fixed:", "GHSA-tiny-util-0120", "</li>")


def test_an_unreadable_source_stops_the_update_before_anything_changes(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    publish("tinydb", "1.2.1")
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(b"not a zip")

    result = vk(capsys, "update", service.project, "--env", service.env, "--osv", damaged)

    assert result.code == 2, result.out + result.err
    assert result.error_line.startswith("error: preflight-failed: the advisories cannot be read:")
    assert f"{damaged}: not a readable OSV export zip" in result.error_line
    missing = update(capsys, service, "--osv", str(tmp_path / "nowhere.zip"))
    assert (missing.code, missing.json["outcome"], missing.json["check"]) == (
        2,
        "preflight-failed",
        "advisories",
    )
    service.assert_lock_and_live_untouched()
    assert [e["check"] for e in service.history()] == ["advisories", "advisories"]
    assert service.remote is not None
    assert service.remote.log() == [FIRST_COMMIT]


def test_security_set_without_a_source_says_so(
    make_project: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    service = deploy_service(make_project, tmp_path, capsys)
    set_security(service, "major")

    result = update(capsys, service, "--dry-run")

    assert result.code == 0, result.err
    note = security_of(result.json)["note"]
    assert "no advisory source is configured: security checks are off" in note


def pin_tinyweb_to_a_release_that_needs_the_vulnerable_tinyutil(
    service: Service, publish: Callable[..., Path]
) -> None:
    """tinyweb 1.0.7 needs tinyutil 1.1.1 (which has an advisory) and is pinned in the update table, so
    the cap below 1.1.1 leaves uv no solution; tinydb 1.2.7 depends on tinyutil too, but not on that
    version. (Versions no other test publishes: uv's cache outlives a test, and other contents under
    the same name and version would not match their hash.)"""
    publish("tinyutil", "1.1.1")
    publish("tinyweb", "1.0.7", requires=("tinyutil==1.1.1",))
    publish("tinydb", "1.2.7", requires=("tinyutil>=1.0",))
    pyproject = service.project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.venvkeeper.update.packages]\ntinyweb = "==1.0.7"\n')
    service.commit_and_push("pin tinyweb")


def test_a_package_whose_update_needs_the_vulnerable_version_is_held_too_and_the_rest_ships(
    service: Service,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pin_tinyweb_to_a_release_that_needs_the_vulnerable_tinyutil(service, publish)
    osv = export(tmp_path, BAD_TINYUTIL)

    text = vk(capsys, "update", service.project, "--env", service.env, "--dry-run", "--osv", osv)
    assert text.code == 0, text.out + text.err
    assert mentions(text.out, "held back:", "tinyutil", "1.1.1", "GHSA-tiny-util-0111", "held at 1.1.0"), (
        text.out
    )
    assert mentions(
        text.out,
        "held back:",
        "tinyweb 1.0.7",
        "depends on tinyutil",
        "GHSA-tiny-util-0111",
        "held at 1.0.0",
        "uv, with tinyutil capped:",
    ), text.out
    use_mail(monkeypatch, smtp.port)

    result = update(capsys, service, "--osv", str(osv))

    assert result.code == 0, result.out + result.err
    report = result.json
    assert report["outcome"] == "updated"
    assert changes(report) == {"tinydb": ("1.2.0", "1.2.7", "patch", True)}
    assert report["held"] == []  # held for the advisory, not for moving past the policy
    tinyweb = held("tinyweb", "1.0.7", "GHSA-tiny-util-0111", requires="tinyutil", held_at="1.0.0")
    found = security_of(report)["held_back"]
    assert [{**e, "uv": None} for e in found] == [
        held("tinyutil", "1.1.1", "GHSA-tiny-util-0111", held_at="1.1.0"),
        {**tinyweb, "uv": None},
    ]
    # uv's own reason, as it gave it with tinyutil capped.
    said = found[1]["uv"]
    assert said.startswith("No solution found when resolving dependencies"), said
    assert "tinyweb" in said and "tinyutil==1.1.1" in said, said
    lock = service.lock_bytes()
    for name, version in (("tinydb", "1.2.7"), ("tinyweb", "1.0.0"), ("tinyutil", "1.1.0")):
        assert f'name = "{name}"\nversion = "{version}"'.encode() in lock, name
    assert head(service.project) != service.head
    assert service.remote is not None and service.remote.head() == head(service.project)
    message = commit_message(service.project)
    assert mentions(message, "Held back:", "tinyweb 1.0.7", "depends on tinyutil", "held at 1.0.0"), message
    assert [service.imported_version(m) for m in ("tinydb", "tinyweb", "tinyutil")] == [
        "1.2.7",
        "1.0.0",
        "1.1.0",
    ]
    (message_,) = smtp.messages
    mail = parts(message_)["text/plain"]
    assert "Advisories:" in mail
    assert mentions(
        mail,
        "held back:",
        "tinyweb 1.0.7",
        "depends on tinyutil",
        "held at 1.0.0",
        "uv, with tinyutil capped: No solution",
    ), mail
    assert service.history()[-1]["security"]["held_back"] == ["GHSA-tiny-util-0111"]


def test_when_nothing_can_be_held_the_run_says_the_cap_left_no_solution_in_uvs_words(
    service: Service,
    publish: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    index: LocalIndex,
) -> None:
    pin_tinyweb_to_a_release_that_needs_the_vulnerable_tinyutil(service, publish)
    # The locked tinyweb is gone from the index: every tinyweb left needs the vulnerable tinyutil.
    index.unpublish("tinyweb", "1.0.0")
    osv = export(tmp_path, BAD_TINYUTIL)
    use_mail(monkeypatch, smtp.port)

    text = vk(capsys, "update", service.project, "--env", service.env, "--osv", osv)

    assert text.code == 1, text.out + text.err
    assert text.error_line.startswith(
        "error: relock-failed: holding back versions with known advisories leaves no solution: "
        "tinyutil below 1.1.1 (GHSA-tiny-util-0111); uv could not re-lock: No solution found"
    ), text.err
    assert "all versions of tinyweb depend on tinyutil==1.1.1" in text.error_line, text.err
    assert "uv.lock was not changed" in text.error_line
    assert mentions(text.out, "held back:", "tinyweb 1.0.7", "depends on tinyutil"), text.out
    assert "hint: the packages uv names need the version with the advisory" in text.err
    service.assert_lock_and_live_untouched()

    result = update(capsys, service, "--osv", str(osv))
    assert (result.code, result.json["outcome"]) == (1, "relock-failed")
    assert result.json["changes"] == []
    assert [(e["name"], e["requires"]) for e in security_of(result.json)["held_back"]] == [
        ("tinyutil", None),
        ("tinyweb", "tinyutil"),
    ]
    service.assert_lock_and_live_untouched()
    assert [e["outcome"] for e in service.history()] == ["relock-failed", "relock-failed"]
    mail = parts(smtp.messages[0])["text/plain"]
    assert mentions(mail, "Reason:", "leaves no solution", "No solution found"), mail
    assert mentions(mail, "held back:", "tinyutil", "1.1.1", "GHSA-tiny-util-0111"), mail


def test_a_pinned_package_that_needs_the_vulnerable_version_through_another_is_held_with_it(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """tinyextra 1.0.8 (pinned) needs tinyweb 1.0.8, which needs the vulnerable tinyutil 1.1.1: both are
    held at their locked versions; tinydb, which depends on tinyutil but not on 1.1.1, still moves."""
    publish("tinyutil", "1.1.1")
    publish("tinyweb", "1.0.8", requires=("tinyutil==1.1.1",))
    publish("tinyextra", "1.0.8", requires=("tinyweb>=1.0.8",))
    publish("tinydb", "1.2.8", requires=("tinyutil>=1.0",))
    pyproject = service.project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.venvkeeper.update.packages]\ntinyextra = "==1.0.8"\n'
    )
    service.commit_and_push("pin tinyextra")

    result = update(capsys, service, "--dry-run", "--osv", str(export(tmp_path, BAD_TINYUTIL)))

    assert result.code == 0, result.out + result.err
    assert result.json["outcome"] == "would-update"
    assert changes(result.json) == {"tinydb": ("1.2.0", "1.2.8", "patch", True)}
    found = security_of(result.json)["held_back"]
    assert [(e["name"], e["version"], e["requires"], e["held_at"]) for e in found] == [
        ("tinyextra", "1.0.8", "tinyutil", "1.0.0"),
        ("tinyutil", "1.1.1", None, "1.1.0"),
        ("tinyweb", "1.0.8", "tinyutil", "1.0.0"),
    ]
    service.assert_lock_and_live_untouched()


def test_a_pin_to_a_version_with_an_advisory_holds_the_package_at_the_locked_version(
    service: Service, publish: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Capped below the pinned 1.2.2, uv would take 1.2.1, which the pin forbids: held at 1.2.0."""
    publish("tinydb", "1.2.1")
    publish("tinydb", "1.2.2")
    pyproject = service.project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.venvkeeper.update.packages]\ntinydb = "==1.2.2"\n')
    service.commit_and_push("pin tinydb")

    result = update(capsys, service, "--osv", str(export(tmp_path, BAD_TINYDB)))

    assert result.code == 0, result.out + result.err
    assert (result.json["outcome"], result.json["changes"]) == ("no-updates", [])
    assert result.json["reason"] == "no updates within the patch policy (tinydb held back: known advisories)"
    assert security_of(result.json)["held_back"] == [
        held("tinydb", "1.2.2", "GHSA-tiny-db00-0122", held_at="1.2.0")
    ]
    service.assert_lock_and_live_untouched()


# The pure decisions.


def test_fix_targets_take_the_lowest_fix_past_the_policy_within_the_level() -> None:
    fix = security.Known("A", fixed=("1.2.0", "2.0.1"))
    current = {("p", "1.1.0"): [fix], ("q", "1.1.0"): [fix], ("r", "1.1.0"): [security.Known("B")]}
    versions = {"p": ("1.1.0",), "q": ("1.1.0",), "r": ("1.1.0",)}
    rules = {"p": "patch", "q": "minor", "r": "patch"}
    # q's policy takes 1.2.0 by itself; r's advisory has no fix.
    assert security.fix_targets(versions, rules, current, "minor") == {"p": "1.2.0"}
    assert security.fix_targets(versions, rules, current, "patch") == {}
    assert security.fix_targets(versions, rules, current, "off") == {}
    assert security.fix_targets(versions, {**rules, "p": "==1.1.0"}, current, "major") == {}


def test_requests_caps_and_parents() -> None:
    plan = updateplan.plan_upgrade({"tinydb": ("1.2.0",), "tinyweb": ("1.0.0",)}, "patch", {})
    capped = security.with_requests(plan, {"tinydb": security.cap_request("tinydb", "1.2.0", "1.2.2")}, {})
    assert sorted(capped.requests) == ["tinydb>=1.2.0,<1.2.2", "tinyweb<1.1"]
    assert security.cap_request("tinydb", "1.2.2", "1.2.1") is None  # a downgrade: held instead
    assert security.widened_request("tinyutil", "1.2.0", "patch") == "tinyutil<1.3"
    moved = [
        Change("tinydb", "1.2.0", "1.2.1, 1.2.2", "patch", True),
        Change("new", None, "1.0", "added", False),
    ]
    found = {("tinydb", "1.2.2"): [security.Known("A")], ("new", "1.0"): [security.Known("B")]}
    assert {n: v for n, (v, _) in security.vulnerable_candidates(moved, found, {}).items()} == {
        "tinydb": "1.2.2",
        "new": "1.0",
    }
    # An advisory the locked version has as well holds nothing back (it stays "remaining").
    already = {("tinydb", "1.2.0"): [security.Known("A")]}
    assert set(security.vulnerable_candidates(moved, found, already)) == {"new"}
    lock = {
        "package": [
            {"name": "web", "dependencies": [{"name": "mid"}]},
            {"name": "mid", "dependencies": [{"name": "new"}]},
            {"name": "other", "dependencies": []},
        ]
    }
    assert security.parents_of(lock, "new", moved={"web", "other"}, added={"mid", "new"}) == {"web"}


def test_the_security_key_takes_a_level(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"

    def parsed(value: object) -> str:
        return parse_update_config({"tool": {"venvkeeper": {"update": {"security": value}}}}, path).security

    assert parse_update_config({}, path).security == "off"
    assert [parsed(level) for level in ("off", "patch", "minor", "major")] == list(security.LEVELS)
    with pytest.raises(ConfigError, match=r"\[tool.venvkeeper.update\] security must be"):
        parsed("yes")


class _Recording:
    """An advisory source that records what it is asked and knows one advisory per name asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def affecting(
        self, packages: Mapping[str, Collection[str]]
    ) -> dict[tuple[str, str], list[security.Known]]:
        self.asked.extend(packages)
        return {(n, v): [security.Known("GHSA-x", fixed=("99",))] for n, vs in packages.items() for v in vs}


def test_only_registry_packages_are_screened() -> None:
    """A git or path package's name is never sent to the advisory service, nor held back by a PyPI
    advisory for its namesake."""
    new_lock = {
        "package": [
            {"name": "fromgit", "version": "2.0", "source": {"git": "https://example.org/r.git#" + "a" * 40}},
            {"name": "tinyutil", "version": "1.1.0", "source": {"registry": "https://pypi.org/simple"}},
        ]
    }
    changes = [
        updateplan.Change("fromgit", "1.0", "2.0", "major", True),
        updateplan.Change("tinyutil", "1.0.0", "1.1.0", "minor", False),
    ]
    source = _Recording()
    screening = security.Screening(source, "off", {})
    adjust = screen.Adjust()

    assert screen.judge(
        screening, {"tinyutil": ("1.0.0",), "fromgit": ("1.0",)}, new_lock, changes, adjust, last=False
    )
    assert source.asked == ["tinyutil"]
    assert set(adjust.held_back) == {"tinyutil"}


def test_dependents_are_the_moved_packages_that_lead_to_a_capped_one() -> None:
    lock = {
        "package": [
            {"name": "app-web", "dependencies": [{"name": "Mid"}]},  # moved, through a new package
            {"name": "mid", "dependencies": [{"name": "tinyutil"}]},  # new
            {"name": "tinyweb", "dependencies": [{"name": "tinyutil"}]},  # moved
            {"name": "top", "dependencies": [{"name": "tinyweb"}]},  # moved, through a moved package
            {"name": "steady", "dependencies": [{"name": "tinyutil"}]},  # did not move
            {"name": "tinyutil", "dependencies": []},
        ]
    }
    moved = {"app-web", "tinyweb", "top", "tinyutil"}
    found = security.dependents(lock, {"tinyutil"}, moved, added={"mid"})
    assert found == {"app-web": "tinyutil", "tinyweb": "tinyutil", "top": "tinyutil"}
    assert security.dependents(lock, {"steady"}, moved, added={"mid"}) == {}
    said = "Because tinyweb>=1.0.1 depends on tinyutil==1.1.1 and App_Web==2 depends on tinyweb, ..."
    assert security.named_in(said, found) == ["app-web", "tinyweb"]


def test_unblock_holds_only_what_uvs_reason_names_and_gives_up_when_it_names_none() -> None:
    lock = {
        "package": [
            {"name": "tinyweb", "version": "1.0.1", "dependencies": [{"name": "tinyutil"}]},
            {"name": "tinydb", "version": "1.2.1", "dependencies": [{"name": "tinyutil"}]},
            {"name": "tinyutil", "version": "1.1.1"},
        ]
    }
    adjust = screen.Adjust(fresh={"tinyutil": "1.1.1"}, judged=lock, moved={"tinyweb", "tinydb", "tinyutil"})
    adjust.held_back["tinyutil"] = {"name": "tinyutil", "version": "1.1.1", "ids": ["GHSA-x"]}
    said = (
        "No solution found: Because tinyweb==1.0.1 depends on tinyutil==1.1.1 and tinyutil>=1.1.0,<1.1.1, ..."
    )

    assert screen.unblock(adjust, said)
    assert adjust.hold == {"tinyweb"}  # tinydb depends on tinyutil too, but uv does not name it
    assert adjust.held_back["tinyweb"]["requires"] == "tinyutil"
    assert adjust.held_back["tinyweb"]["version"] == "1.0.1"
    assert adjust.held_back["tinyweb"]["uv"] == said
    # The same words again (tinyweb already held): nothing more to hold, the caps leave no way.
    assert not screen.unblock(adjust, said)
    assert adjust.hold == {"tinyweb"}
    # uv's derivation goes on below its first sentence: a package named there is held too.
    assert screen.unblock(adjust, said, "  And because tinydb==1.2.1 depends on tinyutil==1.1.1, ...")
    assert adjust.hold == {"tinyweb", "tinydb"}


def test_a_no_solution_that_does_not_run_through_a_cap_is_not_blamed_on_an_advisory() -> None:
    """uv finds no solution for another reason (the project's own requirements, a policy hold): the
    run ends with uv's reason and hint, not 'holding back versions with known advisories'."""
    adjust = screen.Adjust(fresh={"tinyutil": "1.1.1"}, moved={"tinyweb", "tinyutil"})
    adjust.held_back["tinyutil"] = {"name": "tinyutil", "version": "1.1.1", "ids": ["GHSA-x"]}
    other = "No solution found: Because tinydb>=2 depends on tinyjson>=3 and you require tinyjson<3, ..."
    capped = "No solution found: Because tinyweb==1.0.1 depends on tinyutil==1.1.1 and tinyutil<1.1.1, ..."

    assert not screen.in_the_way(adjust, other)
    assert not screen.in_the_way(adjust, other, "  And because tinydb==2.0.0 depends on tinyjson>=3, ...")
    assert screen.in_the_way(adjust, capped)
    assert screen.in_the_way(adjust, other, "  And because tinyweb==1.0.1 depends on tinyutil==1.1.1, ...")
    assert not screen.in_the_way(screen.Adjust(), capped)  # no caps this round: nothing to blame
