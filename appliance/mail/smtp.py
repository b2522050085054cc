"""Sending through the organisation's SMTP relay: one connection for many messages, every failure explained."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from appliance.mail.errors import MailError, explain
from appliance.mail.message import build_message
from appliance.settings import MailSettings

__all__ = ["MailConnection", "MailDisabled", "MailError", "Mailer", "build_message", "tls_context"]

log = logging.getLogger(__name__)

SIGN_IN_METHODS = ("CRAM-MD5", "PLAIN", "LOGIN")  # what smtplib's login() can do

NOT_ENABLED = ("mail is not enabled, so the appliance sends no email: set mail.enabled = true"
               " (APPLIANCE_MAIL__ENABLED=true) and at least mail.host and mail.from_address")


class MailDisabled(Exception):
    """mail.enabled is false; the message says how to turn mail on."""


class Mailer:
    """Sends messages through the relay that the [mail] settings describe."""

    def __init__(self, settings: MailSettings) -> None:
        if not settings.enabled:
            raise MailDisabled(NOT_ENABLED)
        self.settings = settings

    @property
    def relay(self) -> str:
        """HOST:PORT (security), to tell IT which relay was used."""
        return f"{self.settings.host}:{self.settings.port} ({self.settings.security})"

    @contextmanager
    def connection(self) -> Iterator[MailConnection]:
        """An open (and signed-in) connection for all the messages of the block; MailError if it cannot open."""
        smtp = MailConnection(self.settings)
        try:
            yield smtp
        finally:
            smtp.close()

    def send(self, message: EmailMessage) -> None:
        """Send one message on a connection of its own."""
        with self.connection() as smtp:
            smtp.send(message)


class MailConnection:
    """An SMTP session with the relay, opened again once if the relay dropped it between two messages."""

    def __init__(self, settings: MailSettings) -> None:
        self._settings = settings
        self._smtp = open_session(settings)
        self._used = False

    def send(self, message: EmailMessage) -> None:
        """Send message to its To, Cc and Bcc addresses, or raise MailError."""
        if not self._alive():
            log.info("the mail relay closed the connection; connecting again")
            self._smtp.close()
            self._smtp = open_session(self._settings)
        self._used = True
        try:
            refused = self._smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise explain(error, self._settings) from None
        if refused:  # some recipients were refused, the others accepted the message
            refusal = explain(smtplib.SMTPRecipientsRefused(refused), self._settings)
            raise MailError(refusal.kind, f"{refusal.message}; the other recipients got the message",
                            temporary=refusal.temporary, refused=refusal.refused)

    def close(self) -> None:
        """Say goodbye (QUIT) and close; a relay that is already gone is fine."""
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            self._smtp.close()

    def _alive(self) -> bool:
        # Relays close idle sessions. A NOOP before reusing one costs a round trip; sending on a dead session and
        # retrying could not tell how far the relay got, and might deliver the message twice.
        if self._smtp.sock is None:
            return False
        if not self._used:
            return True
        try:
            return self._smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False


def open_session(settings: MailSettings) -> smtplib.SMTP:
    """A connected smtplib session: TLS as mail.security says, signed in when mail.username is set."""
    smtp = None
    try:
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_seconds,
                                    context=tls_context(settings))
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        if settings.security == "starttls":
            _start_tls(smtp, settings)
        if settings.username:
            _sign_in(smtp, settings)
        return smtp
    except (smtplib.SMTPException, OSError, MailError) as error:
        if smtp is not None:
            smtp.close()
        raise explain(error, settings) from None


def tls_context(settings: MailSettings) -> ssl.SSLContext:
    """Checks the relay's certificate and name, against mail.ca_file or else the system's authorities."""
    try:
        return ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    except (ssl.SSLError, OSError) as error:
        raise MailError("tls", f"mail.ca_file {settings.ca_file}: not a readable PEM certificate"
                               f" ({getattr(error, 'reason', None) or error.strerror or error})") from None


def _start_tls(smtp: smtplib.SMTP, settings: MailSettings) -> None:
    smtp.ehlo()
    if not smtp.has_extn("starttls"):
        raise MailError("tls", f"{settings.host}:{settings.port} does not offer STARTTLS: if the port starts with"
                               ' TLS (usually 465) set mail.security = "tls"; if the relay has no TLS at all,'
                               ' "none" (on a network where nobody can read the mail)')
    smtp.starttls(context=tls_context(settings))


def _sign_in(smtp: smtplib.SMTP, settings: MailSettings) -> None:
    relay = f"{settings.host}:{settings.port}"
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        hint = ' (often offered only over TLS: try mail.security = "starttls")' if settings.security == "none" else ""
        raise MailError("auth", f"{relay} offers no sign-in (AUTH){hint}: if it accepts the appliance without one,"
                                " remove mail.username and mail.password")
    offered = smtp.esmtp_features["auth"].upper().split()
    if not set(offered) & set(SIGN_IN_METHODS):
        raise MailError("auth", f"{relay} offers none of the sign-in methods the appliance knows"
                                f" ({', '.join(SIGN_IN_METHODS)}), only {', '.join(offered)}")
    smtp.login(settings.username, settings.password.get_secret_value() if settings.password else "")
