"""A real SMTP server (aiosmtpd) for the test suite, in a thread of the test process.

`SmtpServer` listens on 127.0.0.1 and a free port, with plain SMTP ("none"),
STARTTLS ("starttls", required before any mail) or implicit TLS ("tls"), and
optionally AUTH with one username and password (required over STARTTLS,
offered otherwise). It keeps every message
it accepts as a `Received`: envelope sender and recipients, the parsed
EmailMessage, and who signed in. `refusals` makes it refuse senders (MAIL FROM)
and recipients (RCPT TO) with the reply given, for example
"550 5.1.1 no such user" or "451 4.3.0 try later".

`connections` counts the connections clients opened; `stop()` drops every open
connection at once, as a relay going down does, and `start()` again listens on
the same port. Certificates come from tests.services.slapd.TestCA::

    with SmtpServer("starttls", certificate=ca.server_cert(tmp_path), username="app", password="pw") as server:
        ...
        assert server.messages[0].message["Subject"] == "Hello"
"""

from __future__ import annotations

import asyncio
import email.policy
import ssl
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.services.slapd import _free_port

Security = Literal["none", "starttls", "tls"]
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Received:
    """A message the server accepted."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage
    login: str | None  # the AUTH username of the session, if it signed in
    raw: bytes = b""  # the message as it came over the wire


class SmtpServer:
    """A private SMTP server. Construction picks the port; `start()` listens, `stop()` ends every connection."""

    def __init__(self, security: Security = "none", *, certificate: tuple[Path, Path] | None = None,
                 username: str | None = None, password: str | None = None) -> None:
        if security != "none" and certificate is None:
            raise ValueError(f"security {security!r} needs a certificate (cert, key)")
        self.host, self.port, self.security = "127.0.0.1", _free_port(), security
        self.messages: list[Received] = []
        self.refusals: dict[str, str] = {}  # sender or recipient address -> the reply that refuses it
        self._credentials = (username, password) if username is not None else None
        self._tls = _server_context(*certificate) if certificate is not None else None
        self._controller: _Controller | None = None
        self._open: set[_Smtp] = set()
        self._factory_calls = 0
        self._starts = 0

    def mail_settings(self, from_address: str, **extra: object) -> dict[str, object]:
        """The appliance's [mail] section for this server as a plain relay (no TLS, no login), plus `extra`."""
        return {"enabled": True, "host": self.host, "port": self.port, "security": "none",
                "from_address": from_address} | extra

    @property
    def connections(self) -> int:
        """How many connections clients opened, over every start."""
        return self._factory_calls - self._starts  # start() makes one connection of its own to check it listens

    def start(self) -> SmtpServer:
        assert self._controller is None, "already running"
        options: dict[str, Any] = {}
        if self.security == "tls":
            options["ssl_context"] = self._tls
        elif self.security == "starttls":
            options |= {"tls_context": self._tls, "require_starttls": True}
        if self._credentials is not None:
            # aiosmtpd can insist on AUTH only after STARTTLS (it counts neither plain SMTP nor implicit TLS as
            # safe for it): elsewhere AUTH is offered, and checked, but mail without it is accepted too.
            starttls = self.security == "starttls"
            options |= {"authenticator": self._authenticate, "auth_required": starttls, "auth_require_tls": starttls}
        self._controller = _Controller(self, _Handler(self), hostname=self.host, port=self.port,
                                       server_hostname="localhost", **options)
        self._controller.start()
        self._starts += 1
        return self

    def stop(self) -> None:
        """Close every client connection at once and stop listening; stopping a stopped server does nothing."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        asyncio.run_coroutine_threadsafe(self._drop_connections(), controller.loop).result(STOP_TIMEOUT)
        controller.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def _drop_connections(self) -> None:
        for session in list(self._open):
            (session._original_transport or session.transport).abort()
        for _ in range(3):  # let the transports close their sockets before the loop stops
            await asyncio.sleep(0)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        success = (login, auth_data.password.decode("utf-8", "replace")) == self._credentials
        return AuthResult(success=success, handled=False, auth_data=login if success else None)


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, handler: _Handler, **options: Any) -> None:
        super().__init__(handler, **options)
        self._owner = owner

    def factory(self) -> SMTP:
        self._owner._factory_calls += 1  # once per TCP connection
        return _Smtp(self._owner, self.handler, **self.SMTP_kwargs)


class _Smtp(SMTP):
    """aiosmtpd's SMTP, keeping track of its open connections so that stop() can drop them."""

    def __init__(self, owner: SmtpServer, handler: _Handler, **options: Any) -> None:
        super().__init__(handler, **options)
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # called again after STARTTLS, with the TLS transport
        self._owner._open.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._owner._open.discard(self)
        super().connection_lost(error)


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self._owner = owner

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address in self._owner.refusals:
            return self._owner.refusals[address]
        envelope.mail_from, envelope.mail_options = address, list(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address in self._owner.refusals:
            return self._owner.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._owner.messages.append(Received(
            sender=envelope.mail_from or "", recipients=tuple(envelope.rcpt_tos), message=message,
            login=session.auth_data if session.authenticated else None, raw=content))
        return "250 2.0.0 message accepted"


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
