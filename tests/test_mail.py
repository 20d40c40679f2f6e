"""update's mail: where the settings come from, what the message says, and sending it to a real server."""

from __future__ import annotations

import html
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from support.smtp import SmtpServer, closed_port
from venvkeeper.core.errors import ConfigError
from venvkeeper.gateways.smtp import NotifyError, send
from venvkeeper.update.mail import MailSettings, NotifyConfig, compose, load_settings, parse_notify

PYPROJECT = Path("/srv/webapp/pyproject.toml")
PASSWORD = "pa55-W0rd-that-must-never-leak"  # noqa: S105 (a test secret, asserted never to leak)


def run(ok: bool, tail: str = "3 passed in 0.12s\n", exit_code: int = 0) -> dict[str, Any]:
    return {"ok": ok, "exit_code": exit_code, "timed_out": False, "duration_s": 0.4, "output_tail": tail}


def report(outcome: str = "updated", **overrides: Any) -> dict[str, Any]:
    """An update's JSON document as docs/update.md describes it."""
    document: dict[str, Any] = {
        "schema_version": 1,
        "command": "update",
        "outcome": outcome,
        "check": None,
        "reason": "2 packages updated, tests passed, deployed generation 2",
        "host": "web1",
        "policy": "patch",
        "groups": [],
        "changes": [
            {"name": "tinydb", "old": "1.2.0", "new": "1.2.1", "kind": "patch", "direct": True},
            {"name": "tinyutil", "old": "0.3.0", "new": "0.3.4", "kind": "patch", "direct": False},
        ],
        "lock": {
            "changed": True,
            "backup": "/srv/app-venv.venvkeeper/update/backups/uv.lock.20240102T000100000000Z",
            "committed": "0123456789abcdef0123456789abcdef01234567",
            "pushed": True,
            "restored": False,
            "reverted": None,
        },
        "live": {"changed": True, "generation": 2, "previous": 1, "verified": None},
        "tests": {"baseline": run(ok=True), "candidate": run(ok=True)},
    }
    document.update(overrides)
    return document


def settings(
    port: int = 25,
    *,
    security: str = "none",
    user: str | None = None,
    password: str | None = None,
    recipients: tuple[str, ...] = ("ops@example.org", "dev@example.org"),
) -> MailSettings:
    return MailSettings(
        host="127.0.0.1",
        port=port,
        security=security,
        sender="venvkeeper@web1.example.org",
        user=user,
        password=password,
        recipients=recipients,
        always=False,
    )


def parts(message: Any) -> tuple[str, str]:
    text, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html_part is not None
    return text.get_content(), html_part.get_content()


# -- settings ---------------------------------------------------------------------------------


def test_settings_come_from_the_environment_then_the_env_file_then_pyproject(tmp_path: Path) -> None:
    project = tmp_path / "webapp"
    project.mkdir()
    (tmp_path / ".env").write_text(
        "VENVKEEPER_SMTP_HOST=file.example.org\n"
        "VENVKEEPER_SMTP_PORT=2525\n"
        "VENVKEEPER_SMTP_USER=alice\n"
        f"VENVKEEPER_SMTP_PASSWORD='{PASSWORD}'\n"
    )
    notify = NotifyConfig(
        to=("ops@example.org",),
        smtp_host="toml.example.org",
        smtp_port=587,
        smtp_security="none",
        sender="app@example.org",
    )
    environ = {"VENVKEEPER_SMTP_HOST": "env.example.org"}

    mail = load_settings(project, notify, environ, "web1")

    assert (mail.host, mail.port, mail.security, mail.sender) == (
        "env.example.org",
        2525,
        "none",
        "app@example.org",
    )
    assert (mail.user, mail.password, mail.recipients) == ("alice", PASSWORD, ("ops@example.org",))
    # The env-file is read, never loaded into the process environment.
    assert "VENVKEEPER_SMTP_PASSWORD" not in os.environ


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25)])
def test_the_port_defaults_by_security_and_the_sender_by_hostname(
    tmp_path: Path, security: str, port: int
) -> None:
    mail = load_settings(tmp_path, None, {"VENVKEEPER_SMTP_SECURITY": security}, "web1")

    assert (mail.host, mail.port, mail.security, mail.sender) == (None, port, security, "venvkeeper@web1")


@pytest.mark.parametrize("notify", [NotifyConfig(), None], ids=["to-empty", "pyproject-unreadable"])
def test_recipients_fall_back_to_venvkeeper_admins(tmp_path: Path, notify: NotifyConfig | None) -> None:
    project = tmp_path / "webapp"
    project.mkdir()
    (tmp_path / ".env").write_text("VENVKEEPER_ADMINS= root@example.org , ops@example.org,\n")

    assert load_settings(project, notify, {}, "web1").recipients == ("root@example.org", "ops@example.org")
    environ = {"VENVKEEPER_ADMINS": "boss@example.org"}
    assert load_settings(project, notify, environ, "web1").recipients == ("boss@example.org",)
    with_to = NotifyConfig(to=("team@example.org",))
    assert load_settings(project, with_to, environ, "web1").recipients == ("team@example.org",)


def test_the_env_file_is_taken_literally_from_where_notify_says(tmp_path: Path) -> None:
    project = tmp_path / "webapp"
    (project / "deploy").mkdir(parents=True)
    # "${HOME}" stays as written: a password is not a template.
    (project / "deploy" / "mail.env").write_text("VENVKEEPER_SMTP_PASSWORD=a${HOME}b\n")

    mail = load_settings(project, NotifyConfig(env_file="deploy/mail.env"), {}, "web1")

    assert mail.password == "a${HOME}b"  # noqa: S105


@pytest.mark.parametrize("kind", ["not-utf8", "directory", "missing"])
def test_an_unreadable_env_file_is_ignored(tmp_path: Path, kind: str) -> None:
    project = tmp_path / "webapp"
    project.mkdir()
    if kind == "not-utf8":
        (tmp_path / ".env").write_bytes(b"VENVKEEPER_SMTP_HOST=\xff\xfe\n")
    elif kind == "directory":
        (tmp_path / ".env").mkdir()

    mail = load_settings(project, NotifyConfig(smtp_host="toml.example.org"), {}, "web1")

    assert mail.host == "toml.example.org"


def test_an_invalid_port_or_security_names_the_variable_and_its_source(tmp_path: Path) -> None:
    project = tmp_path / "webapp"
    project.mkdir()
    (tmp_path / ".env").write_text("VENVKEEPER_SMTP_PORT=smtp\n")

    with pytest.raises(ConfigError) as port_error:
        load_settings(project, None, {}, "web1")
    with pytest.raises(ConfigError) as security_error:
        load_settings(project, None, {"VENVKEEPER_SMTP_SECURITY": "tls"}, "web1")

    env_file = tmp_path / "webapp" / "../.env"
    assert (
        port_error.value.message
        == f"VENVKEEPER_SMTP_PORT='smtp' (from {env_file}) must be a port number (1-65535)"
    )
    assert security_error.value.message == (
        'VENVKEEPER_SMTP_SECURITY=\'tls\' (from the environment) must be "starttls", "ssl" or "none"'
    )


# -- [tool.venvkeeper.update.notify] ----------------------------------------------------------


def test_parse_notify_reads_the_table() -> None:
    table = {
        "to": ["ops@example.org"],
        "always": True,
        "smtp-host": "mail.example.org",
        "smtp-port": 465,
        "smtp-security": "ssl",
        "from": "venvkeeper@example.org",
        "env-file": "/etc/webapp/mail.env",
    }

    assert parse_notify(table, PYPROJECT) == NotifyConfig(
        ("ops@example.org",),
        True,
        "mail.example.org",
        465,
        "ssl",
        "venvkeeper@example.org",
        "/etc/webapp/mail.env",
    )
    assert parse_notify(None, PYPROJECT) == NotifyConfig()


@pytest.mark.parametrize("key", ["user", "password", "smtp-user", "smtp-password"])
def test_secrets_in_pyproject_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_notify({"smtp-host": "mail.example.org", key: PASSWORD}, PYPROJECT)

    assert error.value.message == (
        f"{PYPROJECT}: [tool.venvkeeper.update.notify] {key} is not allowed: "
        "secrets never go in the committed pyproject.toml"
    )
    assert "VENVKEEPER_SMTP_PASSWORD" in error.value.hint
    assert PASSWORD not in error.value.message + error.value.hint


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"smtp_host": "x"}, "unknown key [tool.venvkeeper.update.notify] smtp_host"),
        ({"to": "ops@example.org"}, "[tool.venvkeeper.update.notify] to must be a list of mail addresses"),
        ({"smtp-port": "587"}, "[tool.venvkeeper.update.notify] smtp-port must be a port number (1-65535)"),
        ({"smtp-port": 70000}, "[tool.venvkeeper.update.notify] smtp-port must be a port number (1-65535)"),
        (
            {"smtp-security": "tls"},
            '[tool.venvkeeper.update.notify] smtp-security must be "starttls", "ssl" or "none"',
        ),
        ({"always": "yes"}, "[tool.venvkeeper.update.notify] always must be true or false"),
    ],
)
def test_parse_notify_names_the_bad_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_notify(table, PYPROJECT)

    assert error.value.message == f"{PYPROJECT}: {message}"


# -- the message ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "extra", "summary"),
    [
        ("updated", {}, "updated 2 packages (patch)"),
        ("no-updates", {"changes": []}, "no updates"),
        ("would-update", {"changes": report()["changes"][:1]}, "dry run: 1 update available"),
        ("tests-failed", {}, "tests failed, update NOT applied"),
        ("push-rejected", {}, "push rejected, update NOT applied"),
        ("deploy-failed", {}, "deploy failed, update reverted"),
        ("preflight-failed", {"check": "dirty-tree"}, "preflight failed (dirty-tree)"),
        ("relock-failed", {}, "re-lock failed"),
    ],
)
def test_the_subject_says_what_happened(outcome: str, extra: dict[str, Any], summary: str) -> None:
    message = compose(report(outcome, **extra), "", settings(), "webapp")

    assert message["Subject"] == f"[venvkeeper] web1 webapp: {summary}"


def test_an_updated_mail_has_both_parts_the_changes_and_the_headers() -> None:
    diff = '--- a/uv.lock\n+++ b/uv.lock\n@@ -1 +1 @@\n-version = "1.2.0"\n+version = "1.2.1"\n'

    message = compose(report(), diff, settings(), "webapp")
    text, html_text = parts(message)

    assert message.get_content_type() == "multipart/alternative"
    assert message["To"] == "ops@example.org, dev@example.org"
    assert message["From"] == "venvkeeper@web1.example.org"
    assert message["Date"]
    assert message["Message-ID"].endswith("@web1.example.org>")
    for part in message.iter_parts():
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert "Outcome:          updated" in text
    assert "Reason:           2 packages updated, tests passed, deployed generation 2" in text
    assert "Lock:             committed 0123456789ab, pushed (backup: /srv/app-venv.venvkeeper" in text
    assert "Live environment: new generation 2 (previous 1)" in text
    assert "  tinydb    1.2.0  1.2.1  patch  direct\n" in text
    assert "  tinyutil  0.3.0  0.3.4  patch  transitive\n" in text
    assert text.endswith(f"uv.lock diff:\n{diff}")
    assert "<td>tinyutil</td><td>0.3.0</td><td>0.3.4</td><td>patch</td><td>transitive</td>" in html_text
    assert "<pre>--- a/uv.lock\n+++ b/uv.lock" in html_text
    assert "version = &quot;1.2.1&quot;" in html_text


def test_a_tests_failed_mail_carries_the_output_and_says_not_applied() -> None:
    tail = "FAILED tests/test_app.py::test_page - <script>alert('x')</script> & more\n1 failed\n"
    failed = report(
        "tests-failed",
        reason="the tests failed on the updated lock",
        lock={"changed": False, "committed": None, "pushed": None, "restored": False, "reverted": None},
        live={"changed": False, "generation": 1, "previous": None, "verified": True},
        tests={"baseline": run(ok=True), "candidate": run(ok=False, tail=tail, exit_code=1)},
    )

    text, html_text = parts(compose(failed, "", settings(), "webapp"))

    for body in (text, html_text):
        assert "The update listed below was NOT applied" in body
    assert "Lock:             unchanged" in text
    assert "Live environment: unchanged, generation 1, verified" in text
    assert f"The candidate tests failed (exit code 1), the output's tail:\n{tail}" in text
    assert "  tinydb    1.2.0  1.2.1  patch  direct" in text
    assert "<script>" not in html_text
    assert html.escape(tail) in html_text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html_text


def test_a_preflight_failed_mail_has_the_reason_and_no_change_table() -> None:
    failed = {
        "outcome": "preflight-failed",
        "check": "env-not-clean",
        "reason": "verify found 2 findings in /srv/app-venv",
        "host": "web1",
        "changes": [],
        "lock": {"changed": False},
        "live": {"changed": False},
        "tests": {"baseline": None, "candidate": None},
    }

    message = compose(failed, "", settings(), "webapp")
    text, html_text = parts(message)

    assert message["Subject"] == "[venvkeeper] web1 webapp: preflight failed (env-not-clean)"
    assert "Reason:           verify found 2 findings in /srv/app-venv" in text
    assert "Changes" not in text
    assert "Changes" not in html_text
    assert "uv.lock diff:\n(uv.lock did not change)\n" in text


def test_compose_survives_a_report_with_missing_keys() -> None:
    message = compose({"outcome": "busy", "changes": [{"name": "tinydb"}]}, "", settings(), "webapp")
    text, _ = parts(message)

    assert message["Subject"] == "[venvkeeper] ? webapp: busy"
    assert "  tinydb   -    -    ?" in text


# -- sending ----------------------------------------------------------------------------------


def test_a_long_lock_diff_line_arrives_whole_and_no_wire_line_exceeds_998_octets(smtp: SmtpServer) -> None:
    entries = ", ".join(f'{{ url = "https://files.example.org/tinydb-1.2.{i}.whl" }}' for i in range(60))
    long_line = f"+wheels = [{entries}] # é"
    assert len(long_line) > 3000
    diff = f"--- a/uv.lock\n+++ b/uv.lock\n@@ -1 +1 @@\n-wheels = []\n{long_line}\n"

    send(compose(report(), diff, settings(smtp.port), "webapp"), settings(smtp.port))

    (raw,) = smtp.raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    text, html_text = parts(smtp.messages[0])
    assert f"\n{long_line}\n" in text
    assert html.escape(long_line) in html_text


def test_send_over_plain_smtp(smtp: SmtpServer) -> None:
    send(compose(report(), "", settings(smtp.port), "webapp"), settings(smtp.port))

    (envelope,) = smtp.envelopes
    assert envelope.mail_from == "venvkeeper@web1.example.org"
    assert envelope.rcpt_tos == ("ops@example.org", "dev@example.org")
    assert smtp.messages[0]["Subject"] == "[venvkeeper] web1 webapp: updated 2 packages (patch)"


def test_send_over_starttls_with_login(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(starttls=True, auth=("alice", PASSWORD)) as server:
        assert server.ca_file is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        mail = settings(server.port, security="starttls", user="alice", password=PASSWORD)

        send(compose(report(), "", mail, "webapp"), mail)

        # The server refuses MAIL before STARTTLS and before AUTH: arriving is the proof of both.
        assert [message["Subject"] for message in server.messages] == [
            "[venvkeeper] web1 webapp: updated 2 packages (patch)"
        ]


def test_send_over_implicit_tls_with_login(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(implicit_tls=True, auth=("alice", PASSWORD)) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        mail = settings(server.port, security="ssl", user="alice", password=PASSWORD)

        send(compose(report(), "", mail, "webapp"), mail)

        assert [envelope.rcpt_tos for envelope in server.envelopes] == [
            ("ops@example.org", "dev@example.org")
        ]


def test_starttls_to_an_untrusted_certificate_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(starttls=True) as server, SmtpServer(starttls=True) as other:
        monkeypatch.setenv("SSL_CERT_FILE", str(other.ca_file))
        mail = settings(server.port, security="starttls")

        with pytest.raises(NotifyError) as error:
            send(compose(report(), "", mail, "webapp"), mail)

        assert error.value.message.startswith(f"cannot send mail via 127.0.0.1:{server.port} (starttls): ")
        assert "CERTIFICATE_VERIFY_FAILED" in error.value.message
        assert server.messages == []


def test_a_refused_login_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(starttls=True, auth=("alice", "the-right-one")) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        mail = settings(server.port, security="starttls", user="alice", password=PASSWORD)
        message = compose(report(), "", mail, "webapp")

        with pytest.raises(NotifyError) as error:
            send(message, mail)

        assert error.value.code == "notify"
        assert error.value.message.startswith(
            f"cannot send mail via 127.0.0.1:{server.port} (starttls): 535 "
        )
        assert "VENVKEEPER_SMTP_PASSWORD" in error.value.hint
        assert server.messages == []
    shown = [
        str(error.value),
        error.value.hint,
        "".join(traceback.format_exception(error.value)),
        repr(mail),
        str(mail),
        json.dumps(mail.to_json()),
        bytes(message).decode(),
    ]
    assert not [text for text in shown if PASSWORD in text]
    assert mail.to_json()["user_set"] is True


def test_a_server_that_is_down_fails_quickly_naming_host_and_port() -> None:
    port = closed_port()
    mail = settings(port)
    started = time.monotonic()

    with pytest.raises(NotifyError) as error:
        send(compose(report(), "", mail, "webapp"), mail, timeout=5)

    assert error.value.message == f"cannot send mail via 127.0.0.1:{port} (none): Connection refused"
    assert time.monotonic() - started < 1
