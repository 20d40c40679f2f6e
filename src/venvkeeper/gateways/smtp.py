"""The one place venvkeeper talks SMTP: send a composed message, or say in one line why it could not.

What to send and to whom is decided elsewhere (:mod:`venvkeeper.update.mail`); this module only opens
the connection, secures it, logs in and hands the message over. The password never appears in an error.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Protocol

from venvkeeper.core.errors import VenvkeeperError

__all__ = ["NotifyError", "Relay", "send"]


class NotifyError(VenvkeeperError):
    """The mail could not be sent; the update's own outcome stands."""

    code = "notify"


class Relay(Protocol):
    """Where and how to send (:class:`venvkeeper.update.mail.MailSettings` is one)."""

    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int: ...
    @property
    def security(self) -> str: ...  # "starttls" | "ssl" | "none"
    @property
    def sender(self) -> str: ...
    @property
    def user(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def recipients(self) -> Sequence[str]: ...


def _reason(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refused = [f"{to} ({code} {_decode(text)})" for to, (code, text) in error.recipients.items()]
        return "recipients refused: " + ", ".join(refused)
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_decode(error.smtp_error)}"
    if isinstance(error, ssl.SSLError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _decode(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else text


def _deliver(client: smtplib.SMTP, message: EmailMessage, relay: Relay) -> None:
    if relay.security == "starttls":
        client.starttls(context=ssl.create_default_context())
    if relay.user is not None:
        if relay.security == "none":
            # A password is never sent in clear text, even to a server that offers AUTH without TLS.
            raise NotifyError(
                f"refusing to log in to {relay.host}:{relay.port} without TLS",
                hint="set VENVKEEPER_SMTP_SECURITY to starttls or ssl, or drop VENVKEEPER_SMTP_USER",
            )
        client.login(relay.user, relay.password or "")
    refused = client.send_message(message, relay.sender, list(relay.recipients))
    if refused:  # some accepted, some not: the admins who were refused never hear of it
        raise smtplib.SMTPRecipientsRefused(refused)
    with contextlib.suppress(smtplib.SMTPException, OSError):  # accepted: a rude goodbye is no failure
        client.quit()


def send(message: EmailMessage, relay: Relay, *, timeout: float = 30.0) -> None:
    if relay.host is None or not relay.recipients:
        raise NotifyError("no SMTP host or no recipients", hint="set VENVKEEPER_SMTP_HOST and notify.to")
    try:
        # create_default_context() loads the system CAs, and SSL_CERT_FILE / SSL_CERT_DIR when set.
        client: smtplib.SMTP
        if relay.security == "ssl":
            context = ssl.create_default_context()
            client = smtplib.SMTP_SSL(relay.host, relay.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=timeout)
        try:
            _deliver(client, message, relay)
        finally:
            client.close()  # no QUIT after a failure: the server may be the thing that is broken
    # ValueError: credentials or addresses that cannot be encoded (UnicodeEncodeError).
    except (smtplib.SMTPException, OSError, ValueError) as error:
        reason = " ".join(_reason(error).split())
        if relay.password:
            reason = reason.replace(relay.password, "***")
        if isinstance(error, smtplib.SMTPAuthenticationError):
            hint = "check VENVKEEPER_SMTP_USER and VENVKEEPER_SMTP_PASSWORD"
        else:
            hint = "check VENVKEEPER_SMTP_HOST, VENVKEEPER_SMTP_PORT and VENVKEEPER_SMTP_SECURITY"
        # from None: the original exception may hold the credentials (UnicodeEncodeError.object).
        raise NotifyError(
            f"cannot send mail via {relay.host}:{relay.port} ({relay.security}): {reason}", hint=hint
        ) from None
