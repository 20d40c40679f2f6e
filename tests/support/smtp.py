"""A real SMTP server on 127.0.0.1 (aiosmtpd in a thread) that keeps every message it accepts.

It can require STARTTLS, or speak TLS from the first byte (``implicit_tls``, as on port 465),
with a certificate from a throw-away trustme CA whose PEM is at :attr:`SmtpServer.ca_file` for the
client's ``SSL_CERT_FILE``; and it can require AUTH with one user and password.
Like any real server it refuses a line longer than 998 octets, so a test that passes here
passes against a strict relay too.
"""

from __future__ import annotations

import email.policy
import socket
import ssl
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Delivery", "SmtpServer", "closed_port"]

_HOST = "127.0.0.1"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Delivery:
    """The SMTP envelope of one accepted message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]


class _Handler:
    def __init__(self, auth: tuple[str, str] | None) -> None:
        self.auth = auth
        self.raw: list[bytes] = []
        self.envelopes: list[Delivery] = []

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        # Checked here rather than with aiosmtpd's auth_required, which warns (and so fails
        # under filterwarnings=error) when AUTH is required without TLS.
        if self.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert envelope.original_content is not None
        assert envelope.mail_from is not None
        self.raw.append(bytes(envelope.original_content))
        self.envelopes.append(Delivery(envelope.mail_from, tuple(envelope.rcpt_tos)))
        return "250 2.0.0 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.auth is not None
        user, password = self.auth
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)


class _Controller(Controller):
    """Listens on port 0 and learns the port the system chose, so no two tests race for one."""

    def _trigger_server(self) -> None:
        assert self.server is not None  # set in the server thread before start() gets here
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """``with SmtpServer(starttls=True, auth=("alice", "secret")) as server: ...``"""

    def __init__(
        self, *, starttls: bool = False, implicit_tls: bool = False, auth: tuple[str, str] | None = None
    ) -> None:
        self.host = _HOST
        self._handler = _Handler(auth)
        self._tmp = tempfile.TemporaryDirectory(prefix="vk-smtp-")
        self.ca_file: Path | None = None
        options: dict[str, Any] = {}
        if starttls or implicit_tls:
            ca = trustme.CA()
            self.ca_file = Path(self._tmp.name) / "ca.pem"
            ca.cert_pem.write_to_path(str(self.ca_file))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(_HOST, "localhost").configure_cert(context)
            if starttls:
                options.update(tls_context=context, require_starttls=True)
            else:
                options.update(ssl_context=context)
        if auth is not None:
            # aiosmtpd counts only STARTTLS as TLS: with implicit TLS, requiring it would hide AUTH.
            options.update(authenticator=self._handler.authenticate, auth_require_tls=starttls)
        # server_hostname: without it aiosmtpd asks socket.getfqdn(), a DNS lookup.
        self._controller = _Controller(
            self._handler, hostname=_HOST, port=0, server_hostname="localhost", **options
        )
        self._running = False

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def raw(self) -> list[bytes]:
        """Each message exactly as it came over the wire (after dot-unstuffing), CRLF line ends."""
        return list(self._handler.raw)

    @property
    def messages(self) -> list[EmailMessage]:
        """Each message parsed, with "\\n" line ends as a mail client stores it (CRLF is the wire's)."""
        parser = BytesParser(policy=email.policy.default)
        return [
            cast("EmailMessage", parser.parsebytes(raw.replace(b"\r\n", b"\n"))) for raw in self._handler.raw
        ]

    @property
    def envelopes(self) -> list[Delivery]:
        return list(self._handler.envelopes)

    def start(self) -> None:
        try:
            self._controller.start()
        except BaseException:
            self.stop()
            raise
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False
        self._tmp.cleanup()  # idempotent: a second cleanup finds nothing to remove

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
