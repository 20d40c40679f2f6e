"""update's mail: the settings (and secrets) and the message; :mod:`venvkeeper.gateways.smtp` sends it.

:func:`load_settings` and :func:`compose` are pure (the environment and the report come in as
arguments). The SMTP password lives in the environment or the env-file, never in pyproject.toml, and
is kept out of every repr and JSON document.
"""

from __future__ import annotations

import email.utils
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from venvkeeper.core.config import reject_unknown
from venvkeeper.core.errors import ConfigError
from venvkeeper.update import security

__all__ = ["MailSettings", "NotifyConfig", "compose", "load_settings", "parse_notify"]

_TABLE = "[tool.venvkeeper.update.notify]"
_KEYS = {"to", "always", "smtp-host", "smtp-port", "smtp-security", "from", "env-file"}
_SECRET_KEYS = {"user", "password", "smtp-user", "smtp-password"}
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class NotifyConfig:
    """The validated ``[tool.venvkeeper.update.notify]`` table."""

    to: tuple[str, ...] = ()
    always: bool = False
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None  # "starttls" | "ssl" | "none"
    sender: str | None = None  # key "from"
    env_file: str = "../.env"  # relative to the project dir


def _fail(path: Path, key: str, wanted: str) -> ConfigError:
    return ConfigError(f"{path}: {_TABLE} {key} must be {wanted}", hint=f"fix {key} in {path}")


def _text(table: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _fail(path, key, "a non-empty string")
    return value


def parse_notify(table: Any, path: Path) -> NotifyConfig:
    if table is None:
        return NotifyConfig()
    if not isinstance(table, dict):
        raise _fail(path, "", "a table")
    # Secrets first: a committed password is worth its own message, not "unknown key".
    secrets = sorted(_SECRET_KEYS & set(table))
    if secrets:
        raise ConfigError(
            f"{path}: {_TABLE} {secrets[0]} is not allowed: secrets never go in the committed pyproject.toml",
            hint="set VENVKEEPER_SMTP_USER and VENVKEEPER_SMTP_PASSWORD in the environment or the env-file",
        )
    reject_unknown(table, _KEYS, _TABLE, path)
    to = table.get("to", [])
    if not isinstance(to, list) or not all(isinstance(v, str) and v.strip() for v in to):
        raise _fail(path, "to", "a list of mail addresses")
    always = table.get("always", False)
    if not isinstance(always, bool):
        raise _fail(path, "always", "true or false")
    port = table.get("smtp-port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        raise _fail(path, "smtp-port", "a port number (1-65535)")
    security = table.get("smtp-security")
    if security is not None and security not in _DEFAULT_PORTS:
        raise _fail(path, "smtp-security", '"starttls", "ssl" or "none"')
    env_file = _text(table, "env-file", path) or NotifyConfig.env_file
    return NotifyConfig(
        to=tuple(v.strip() for v in to),
        always=always,
        smtp_host=_text(table, "smtp-host", path),
        smtp_port=port,
        smtp_security=security,
        sender=_text(table, "from", path),
        env_file=env_file,
    )


@dataclass(frozen=True)
class MailSettings:
    """Where and how to send; ``password`` is left out of repr() (and so of str() and logs)."""

    host: str | None  # None: no mail (notification.skipped)
    port: int
    security: str
    sender: str
    user: str | None
    password: str | None = field(repr=False)
    recipients: tuple[str, ...]
    always: bool

    def to_json(self) -> dict[str, Any]:
        # The user only as "is set": the JSON goes into logs and the history.
        return {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "sender": self.sender,
            "user_set": self.user is not None,
            "recipients": list(self.recipients),
        }


def _read_env_file(path: Path) -> dict[str, str]:
    try:
        # interpolate=False: a password with "${...}" in it is taken literally, and nothing is
        # read from os.environ behind the caller's back.
        values = dotenv_values(path, interpolate=False)
    except (OSError, ValueError):  # unreadable or not UTF-8: as if absent, the environment may do
        return {}
    return {key: value for key, value in values.items() if value}


def _admins_json(value: str) -> tuple[str, ...] | None:
    """The auto-updater's ``ADMINS_JSON='[["First Last", "first@example.org"], ...]'`` (the format of
    its .env) as ``First Last <first@example.org>`` recipients; None when it is not that shape."""
    try:
        pairs = json.loads(value)
    except ValueError:
        return None
    if not isinstance(pairs, list):
        return None
    recipients: list[str] = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            return None
        name, address = (part.strip() for part in pair)
        if "@" not in address:
            return None
        # formataddr quotes a name with commas or dots and encodes a non-ASCII one (RFC 2047);
        # smtplib sends only the <address> part as the envelope recipient.
        recipients.append(email.utils.formataddr((name, address)))
    return tuple(recipients)


def load_settings(
    project_dir: Path, notify: NotifyConfig | None, environ: Mapping[str, str], hostname: str
) -> MailSettings:
    notify = notify or NotifyConfig()  # None: pyproject.toml could not be read, the defaults hold
    env_file = project_dir / notify.env_file
    from_file = _read_env_file(env_file)

    def lookup(name: str) -> tuple[str | None, str]:
        # An empty value counts as unset, so `VAR=` in a file does not hide the next source.
        if environ.get(name):
            return environ[name].strip(), "the environment"
        if from_file.get(name):
            return from_file[name].strip(), str(env_file)
        return None, ""

    def invalid(name: str, value: str, source: str, wanted: str) -> ConfigError:
        return ConfigError(
            f"{name}={value!r} (from {source}) must be {wanted}", hint=f"fix {name} in {source}"
        )

    security, source = lookup("VENVKEEPER_SMTP_SECURITY")
    if security is None:
        security = notify.smtp_security or "starttls"
    elif security.lower() not in _DEFAULT_PORTS:
        raise invalid("VENVKEEPER_SMTP_SECURITY", security, source, '"starttls", "ssl" or "none"')
    security = security.lower()
    port_text, source = lookup("VENVKEEPER_SMTP_PORT")
    if port_text is None:
        port = notify.smtp_port or _DEFAULT_PORTS[security]
    elif not port_text.isdecimal() or not 0 < int(port_text) < 65536:
        raise invalid("VENVKEEPER_SMTP_PORT", port_text, source, "a port number (1-65535)")
    else:
        port = int(port_text)
    admins = lookup("VENVKEEPER_ADMINS")[0] or ""
    recipients = notify.to or tuple(a.strip() for a in admins.split(",") if a.strip())
    admins_json, source = lookup("ADMINS_JSON")
    if not recipients and admins_json is not None:
        from_json = _admins_json(admins_json)
        if from_json is None:
            example = """ADMINS_JSON='[["First Last", "first@example.org"]]'"""
            raise ConfigError(
                f"ADMINS_JSON (from {source}) must be a JSON list of [name, address] pairs, like {example}",
                hint=f"fix ADMINS_JSON in {source}",
            )
        recipients = from_json
    return MailSettings(
        host=lookup("VENVKEEPER_SMTP_HOST")[0] or notify.smtp_host,
        port=port,
        security=security,
        sender=lookup("VENVKEEPER_SMTP_FROM")[0] or notify.sender or f"venvkeeper@{hostname}",
        user=lookup("VENVKEEPER_SMTP_USER")[0],
        # Not stripped: a password may end in a space.
        password=environ.get("VENVKEEPER_SMTP_PASSWORD") or from_file.get("VENVKEEPER_SMTP_PASSWORD"),
        recipients=recipients,
        always=notify.always,
    )


def _summary(outcome: str, report: Mapping[str, Any], count: int) -> str:
    plural = "" if count == 1 else "s"
    summaries = {
        "updated": f"updated {count} package{plural} ({report.get('policy') or '?'})",
        "no-updates": "no updates",
        "would-update": f"dry run: {count} update{plural} available",
        "tests-failed": "tests failed, update NOT applied",
        "push-rejected": "push rejected, update NOT applied",
        "deploy-failed": "deploy failed, update reverted",
        "preflight-failed": f"preflight failed ({report.get('check') or '?'})",
        "relock-failed": "re-lock failed",
    }
    return summaries.get(outcome, outcome)


_NOTICES = {
    "tests-failed": "The update listed below was NOT applied: its tests failed, uv.lock was not written "
    "and the live environment was not touched.",
    "push-rejected": "The update listed below was NOT applied: the push was rejected, the commit was "
    "undone and uv.lock restored from its backup.",
    "deploy-failed": "The update listed below was reverted: the live environment is back on its previous "
    "generation and a revert commit names the lock that is live.",
    "would-update": "Dry run: nothing was changed.",
}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _either(value: Any, if_true: str, if_false: str) -> str:
    """A JSON true/false/null as text: null (unknown) says nothing."""
    return if_true if value is True else if_false if value is False else ""


def _lock_fact(lock: Mapping[str, Any]) -> str:
    committed, reverted = lock.get("committed"), lock.get("reverted")
    if lock.get("restored"):
        text = "restored from its backup, commit undone"
    elif committed:
        text = f"committed {str(committed)[:12]}" + _either(lock.get("pushed"), ", pushed", ", not pushed")
        if isinstance(reverted, str):
            text += f"; reverted by commit {reverted[:12]}"
        elif reverted:
            text += "; reverted by a new commit"
    else:
        text = "unchanged"
    return text + (f" (backup: {lock['backup']})" if lock.get("backup") else "")


def _live_fact(live: Mapping[str, Any]) -> str:
    generation, previous = live.get("generation"), live.get("previous")
    if live.get("changed"):
        return f"new generation {generation}" + (f" (previous {previous})" if previous is not None else "")
    text = "unchanged" + (f", generation {generation}" if generation is not None else "")
    return text + _either(live.get("verified"), ", verified", ", verification FAILED: check it")


@dataclass(frozen=True)
class _Body:
    """What the mail says, rendered twice: as text/plain and as text/html."""

    title: str
    facts: list[tuple[str, str]]
    notice: str
    changes: list[list[str]]  # the header row first
    tests: list[tuple[str, str]]  # (heading, output tail) of each failed test run
    diff: str
    advisories: list[str]  # held back, fixed, remaining (empty: no advisory source)


def _body(report: Mapping[str, Any], lock_diff: str, title: str) -> _Body:
    outcome = str(report.get("outcome") or "unknown")
    facts = [
        ("Outcome", outcome),
        ("Reason", str(report.get("reason") or "")),
        ("Lock", _lock_fact(_mapping(report.get("lock")))),
        ("Live environment", _live_fact(_mapping(report.get("live")))),
    ]
    changes = [["package", "old", "new", "kind", "dependency"]]
    for change in map(_mapping, report.get("changes") or []):
        old, new = change.get("old") or "-", change.get("new") or "-"  # "-": added or removed
        dependency = _either(change.get("direct"), "direct", "transitive")
        changes.append(
            [str(change.get("name") or "?"), str(old), str(new), str(change.get("kind") or "?"), dependency]
        )
    tests = []
    for which in ("baseline", "candidate"):
        run = _mapping(_mapping(report.get("tests")).get(which))
        how = "timed out" if run.get("timed_out") else f"exit code {run.get('exit_code')}"
        if run.get("ok") is False:
            tests.append(
                (f"The {which} tests failed ({how}), the output's tail:", str(run.get("output_tail") or ""))
            )
    diff = lock_diff.rstrip("\n") or "(uv.lock did not change)"
    notice = _NOTICES.get(outcome, "")
    if outcome == "deploy-failed" and not _mapping(report.get("lock")).get("reverted"):
        notice = (
            "The deploy of the update listed below failed and the live environment is as it was, but the "
            "commit could NOT be reverted: see the reason."
        )
    advisories = security.lines(_mapping(report.get("security")))
    return _Body(title, facts, notice, changes, tests, diff, advisories)


def _render_text(body: _Body) -> str:
    lines = [body.title, ""] + [f"{label + ':':<18}{value}" for label, value in body.facts] + [""]
    if body.notice:
        lines += [body.notice, ""]
    if len(body.changes) > 1:
        widths = [max(map(len, column)) for column in zip(*body.changes, strict=True)]
        lines.append(f"Changes ({len(body.changes) - 1}):")
        for row in body.changes:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        lines.append("")
    if body.advisories:
        lines += ["Advisories:", *(f"  {line}" for line in body.advisories), ""]
    for heading, tail in body.tests:
        lines += [heading, tail.rstrip("\n"), ""]
    return "\n".join([*lines, "uv.lock diff:", body.diff, ""])


def _render_html(body: _Body) -> str:
    e = html.escape
    parts = [
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n<h1>{e(body.title)}</h1>',
        "<table>",
    ]
    parts += [f'<tr><th align="left">{e(label)}</th><td>{e(value)}</td></tr>' for label, value in body.facts]
    parts.append("</table>")
    if body.notice:
        parts.append(f"<p><strong>{e(body.notice)}</strong></p>")
    if len(body.changes) > 1:
        header, *rows = body.changes
        parts += [f"<h2>Changes ({len(rows)})</h2>", '<table border="1" cellpadding="4">']
        parts.append("<tr>" + "".join(f"<th>{e(cell)}</th>" for cell in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in rows]
        parts.append("</table>")
    if body.advisories:
        items = [f"<li>{e(line)}</li>" for line in body.advisories]
        parts += ["<h2>Advisories</h2>", "<ul>", *items, "</ul>"]
    for heading, tail in body.tests:
        parts += [f"<h2>{e(heading)}</h2>", f"<pre>{e(tail)}</pre>"]
    parts += ["<h2>uv.lock diff</h2>", f"<pre>{e(body.diff)}</pre>", "</body></html>", ""]
    return "\n".join(parts)


def compose(
    report: Mapping[str, Any], lock_diff: str, settings: MailSettings, project_name: str
) -> EmailMessage:
    host = str(report.get("host") or "")
    summary = _summary(str(report.get("outcome") or "unknown"), report, len(report.get("changes") or []))
    body = _body(report, lock_diff, f"{project_name} on {host or '?'}: {summary}")
    message = EmailMessage()
    message["Subject"] = f"[venvkeeper] {host or '?'} {project_name}: {summary}"
    message["From"] = settings.sender
    if settings.recipients:  # none: send() refuses, and an empty To: would only confuse a reader
        message["To"] = ", ".join(settings.recipients)
    message["Date"] = email.utils.formatdate(localtime=True)
    domain = settings.sender.partition("@")[2] or host or "localhost"
    message["Message-ID"] = email.utils.make_msgid("venvkeeper", domain=domain)
    # RFC 3834: vacation responders and ticket systems must not answer a robot.
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable wraps at 76 columns, so a uv.lock line of any length stays under SMTP's
    # 998-octet limit (RFC 5321 4.5.3.1.6) on the wire and decodes back whole.
    message.set_content(_render_text(body), cte="quoted-printable")
    message.add_alternative(_render_html(body), subtype="html", cte="quoted-printable")
    return message
