"""``venvkeeper audit`` (issue 16): the known vulnerabilities of a lock, an environment or a bundle, in
OSV's terms, from an OSV export (offline) or an OSV-compatible service on 127.0.0.1."""

from __future__ import annotations

import datetime
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.osvserver import OsvServer
from venvkeeper.audit.osv import OsvFormatError, matching, parse_record
from vk import commit_all, vk

TINYUTIL_ADVISORY: dict[str, Any] = {
    "schema_version": "1.6.0",
    "id": "GHSA-tiny-util0-0001",
    "modified": "2026-11-01T00:00:00Z",
    "aliases": ["CVE-2026-11111", "PYSEC-2026-101"],
    "summary": "tinyutil evaluates untrusted input",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "TinyUtil", "purl": "pkg:pypi/tinyutil"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}],
            "versions": ["1.0.0", "1.1.0"],
        }
    ],
}
# Not a match: another version, a withdrawn record, another ecosystem.
OTHERS: list[dict[str, Any]] = [
    {
        "id": "PYSEC-2026-102",
        "modified": "2026-11-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "tinydb"}, "versions": ["1.0.0"]}],
    },
    {
        "id": "GHSA-with-draw-0001",
        "modified": "2026-11-01T00:00:00Z",
        "withdrawn": "2026-11-02T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "tinyweb"}, "versions": ["1.0.0"]}],
    },
    {
        "id": "GHSA-npmx-0000-0001",
        "modified": "2026-11-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "npm", "name": "tinyweb"}, "versions": ["1.0.0"]}],
    },
]


def _export(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    """An OSV export as OSV publishes it per ecosystem: a zip of ``ID.json`` records."""
    path = tmp_path / "osv" / "all.zip"
    path.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path


def test_osv_ranges_versions_and_withdrawn_records() -> None:
    record = parse_record(TINYUTIL_ADVISORY)
    assert record is not None
    assert [name for name, *_ in matching([record], {"tinyutil": "1.1.0"})] == ["tinyutil"]
    assert matching([record], {"tinyutil": "1.2.0"}) == []
    assert matching([record], {"tinyutil": "1.1.5"}) != []  # in the range, though not listed
    last = {
        "id": "X-1",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "a"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"last_affected": "2.3"}]}
                ],
            }
        ],
    }
    parsed = parse_record(last)
    assert parsed is not None
    assert [v for v in ("1.9", "2.0", "2.3", "2.3.1") if matching([parsed], {"a": v})] == ["2.0", "2.3"]
    assert parse_record(OTHERS[1]) is None and parse_record(OTHERS[2]) is None
    with pytest.raises(OsvFormatError, match=r"events\[1\].*not a version"):
        parse_record(
            {
                **last,
                "affected": [
                    {
                        **last["affected"][0],
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "one"}]}],
                    }
                ],
            }
        )


def _deployed(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path]:
    project = make_project("workspace")
    env = tmp_path / ".venv"
    assert vk(capsys, "deploy", project, "--env", env).code == 0
    return project, env


def test_audit_of_an_environment_a_lock_and_a_bundle_offline(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = _deployed(make_project, tmp_path, capsys)
    export = _export(tmp_path, [TINYUTIL_ADVISORY, *OTHERS])
    bundle = tmp_path / "app.tar.gz"
    assert vk(capsys, "pack", project, "-o", bundle).code == 0

    for subject in (["--env", env], [project], [bundle]):
        found = vk(capsys, "audit", *subject, "--osv", export, "--json")
        assert found.code == 1, found.out
        assert found.json["clean"] is False
        [finding] = found.json["findings"]
        assert finding == {
            "package": "tinyutil",
            "version": "1.1.0",
            "id": "GHSA-tiny-util0-0001",
            "aliases": ["CVE-2026-11111", "PYSEC-2026-101"],
            "summary": "tinyutil evaluates untrusted input",
            "affected": "<1.2.0",
            "fixed": ["1.2.0"],
            "upgrade_to": ["1.2.0"],
            "ignored": None,
        }
        # The members (webapp, core) are never audited: they are not PyPI's.
        assert found.json["packages"] == 3

    text = vk(capsys, "audit", "--env", env, "--osv", export)
    assert text.code == 1
    assert "1 known vulnerability in 3 packages" in text.out
    assert (
        "  tinyutil 1.1.0: GHSA-tiny-util0-0001 (CVE-2026-11111, PYSEC-2026-101): tinyutil evaluates"
        in text.out
    )
    assert "      affected <1.2.0; fixed in 1.2.0\n" in text.out

    clean = vk(capsys, "audit", "--env", env, "--osv", _export(tmp_path, OTHERS), "--json")
    assert (clean.code, clean.json["clean"], clean.json["findings"]) == (0, True, [])


def test_audit_against_an_osv_service(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, env = _deployed(make_project, tmp_path, capsys)
    with OsvServer([TINYUTIL_ADVISORY, *OTHERS]) as osv:
        found = vk(capsys, "audit", "--env", env, "--osv", osv.url, "--json")
        asked = sorted((q["package"]["name"], q["version"]) for q in osv.queries[0]["queries"])
    assert found.code == 1, found.out
    assert [f["id"] for f in found.json["findings"]] == ["GHSA-tiny-util0-0001"]
    assert asked == [("tinydb", "1.2.0"), ("tinyutil", "1.1.0"), ("tinyweb", "1.0.0")]
    assert found.json["source"] == f"the OSV API at {osv.url}"

    # No data is never "clean": a failing service, an unreachable one, a damaged export.
    with OsvServer([], status=503) as failing:
        down = vk(capsys, "audit", "--env", env, "--osv", failing.url)
    assert down.code == 2 and "answered HTTP 503" in down.error_line
    gone = vk(capsys, "audit", "--env", env, "--osv", failing.url)
    assert gone.code == 2 and "cannot reach the OSV service" in gone.error_line
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(b"PK\x03\x04 not really")
    broken = vk(capsys, "audit", "--env", env, "--osv", damaged)
    assert broken.code == 2 and "not a readable OSV export zip" in broken.error_line
    nothing = vk(capsys, "audit", "--env", env)
    assert nothing.code == 2 and "no advisory source" in nothing.error_line


def test_ignores_need_a_reason_and_expire(
    make_project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, env = _deployed(make_project, tmp_path, capsys)
    export = _export(tmp_path, [TINYUTIL_ADVISORY])
    later = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    earlier = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()

    # By an alias: the CVE id accepts the GHSA record of the same flaw.
    accepted = vk(
        capsys,
        "audit",
        "--env",
        env,
        "--osv",
        export,
        "--ignore",
        f"CVE-2026-11111:{later}:no input reaches it",
        "--json",
    )
    assert accepted.code == 0, accepted.out
    assert accepted.json["findings"] == []
    assert accepted.json["ignored"][0]["ignored"]["reason"] == "no input reaches it"

    lapsed = vk(
        capsys, "audit", "--env", env, "--osv", export, "--ignore", f"GHSA-tiny-util0-0001:{earlier}:was fine"
    )
    assert lapsed.code == 1
    assert (
        f"  expired ignore: GHSA-tiny-util0-0001 (until {earlier}, --ignore): reported again\n" in lapsed.out
    )

    bad = vk(capsys, "audit", "--env", env, "--osv", export, "--ignore", "GHSA-tiny-util0-0001:soon")
    assert bad.code == 2 and "needs an id, an expiry date and a reason" in bad.error_line

    # In the project's config, with the source: `audit PROJECT` needs no options at all.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + f'\n[tool.venvkeeper.audit]\nosv = "{export}"\n'
        + f'ignore = [{{id = "PYSEC-2026-101", until = {later}, reason = "vendored fix"}}]\n'
    )
    commit_all(project, "audit config")
    configured = vk(capsys, "audit", project, "--json")
    assert configured.code == 0, configured.out
    assert configured.json["ignored"][0]["ignored"]["origin"] == str(project / "pyproject.toml")
