"""update's last step, after every run however it ended: permissions, the mail, the history.

The mail is composed by :mod:`venvkeeper.update.mail` and sent by :mod:`venvkeeper.gateways.smtp`; a mail
that cannot go out is reported (exit code NOTIFY_FAILED), never a reason to undo the update.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venvkeeper.core.errors import ConfigError
from venvkeeper.gateways import smtp
from venvkeeper.generations.layout import now_iso
from venvkeeper.update import groupperm, mail
from venvkeeper.update.config import UpdateConfig
from venvkeeper.update.result import UpdateResult
from venvkeeper.update.store import UpdateStore

__all__ = ["Notified", "finish", "notify"]


@dataclass(frozen=True)
class Notified:
    """Whether the admins were mailed: sent, or why not (skipped, or the error)."""

    sent: bool = False
    to: tuple[str, ...] = ()
    error: str | None = None
    skipped: str | None = None
    duration_s: float | None = None  # the time spent sending (None: no mail was tried)

    def to_json(self) -> dict[str, Any]:
        return {"sent": self.sent, "to": list(self.to), "error": self.error, "skipped": self.skipped}


def finish(
    result: UpdateResult, store: UpdateStore, given_root: Path, config: UpdateConfig | None, *, ours: bool
) -> None:
    """``config``: None when it could not be read; ``ours``: the state directory is this project's."""
    # A permissions refusal is the operator's to look into, not to be "fixed" behind their back.
    # Runs that changed nothing (a refusal, a dry run, a busy run) change no permissions either.
    changed_nothing = result.outcome in ("busy", "preflight-failed") or result.dry_run
    if not changed_nothing and config is not None and ours:
        _apply_permissions(result, store, config)
    notified = notify(result, given_root, config)
    if notified.duration_s is not None:
        result.durations["notify"] = result.durations.get("notify", 0.0) + notified.duration_s
    result.notification = notified.to_json()
    # update keeps state beside an environment venvkeeper made, and nowhere else.
    if store.directory.parent.is_dir():
        with contextlib.suppress(OSError):
            store.append(result.history_entry(now_iso()))
            store.prune_logs((config or UpdateConfig()).keep_backups)


def _apply_permissions(result: UpdateResult, store: UpdateStore, config: UpdateConfig) -> None:
    if config.group is None:
        return
    problem = groupperm.apply(
        [store.directory.parent, Path(result.env)], config.group, write=config.group_write
    )
    if problem and result.outcome == "updated":
        result.reason += f"; but {problem}"


def notify(result: UpdateResult, given_root: Path, config: UpdateConfig | None) -> Notified:
    """Mail the report to the admins, unless there is nothing they need to hear of."""
    if result.outcome == "busy" or result.dry_run:
        return Notified(skipped="not mailed for " + ("a dry run" if result.dry_run else "a busy run"))
    try:
        settings = mail.load_settings(
            given_root, None if config is None else config.notify, os.environ, result.host
        )
    except ConfigError as exc:
        return Notified(error=exc.message)
    unsent = _unsent(result, settings)
    if unsent is not None:
        return unsent
    name = result.project_name or Path(result.project).name
    started = time.monotonic()
    try:
        smtp.send(mail.compose(result.to_json(), result.lock_diff, settings, name), settings)
    except smtp.NotifyError as exc:
        return Notified(error=exc.message, to=settings.recipients, duration_s=time.monotonic() - started)
    return Notified(sent=True, to=settings.recipients, duration_s=time.monotonic() - started)


def _unsent(result: UpdateResult, settings: mail.MailSettings) -> Notified | None:
    """Why no mail goes out with these settings (None: it does)."""
    # A version held back for a known advisory is news even on a night with no update.
    held_back = result.security is not None and result.security.held_back
    if result.outcome == "no-updates" and not settings.always and not held_back:
        return Notified(skipped="no updates (set notify.always to be mailed anyway)")
    if not settings.host:
        return Notified(skipped="no SMTP host configured (VENVKEEPER_SMTP_HOST or notify.smtp-host)")
    if not settings.recipients:
        return Notified(
            error="no recipients: set notify.to in pyproject.toml, VENVKEEPER_ADMINS or ADMINS_JSON"
        )
    return None
