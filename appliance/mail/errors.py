"""Why a message could not be sent, said for the people who run the relay: what to check, and whether to retry."""

from __future__ import annotations

import smtplib
import socket
import ssl
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from appliance.settings import MailSettings

MailErrorKind = Literal["connection", "tls", "auth", "refused_sender", "refused_recipient", "timeout", "protocol"]

# OpenSSL verify codes of a certificate that names another host or address.
_NAME_MISMATCH = (62, 64)


class MailError(Exception):
    """Sending failed: `message` tells IT what to check, `temporary` whether trying again later may work."""

    def __init__(self, kind: MailErrorKind, message: str, *, temporary: bool = False,
                 refused: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.temporary = temporary
        self.refused = refused  # the recipients the relay refused (kind "refused_recipient")


def explain(error: Exception, settings: MailSettings) -> MailError:
    """The MailError for an exception raised by smtplib, ssl or the network."""
    relay = f"{settings.host}:{settings.port}"
    if isinstance(error, MailError):
        return error
    if isinstance(error, ssl.SSLCertVerificationError):
        return _untrusted(error, settings)
    if isinstance(error, ssl.SSLError):
        return MailError("tls", f"TLS with {relay} failed ({error.reason or error}): check mail.security:"
                                ' "tls" is for a port that starts with TLS (usually 465), "starttls" for one that'
                                " upgrades a plain connection (usually 587 or 25)")
    if isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError):
        return MailError("timeout", f"{relay} did not answer within {settings.timeout_seconds:g} s: check mail.host,"
                                    " mail.port, firewalls that drop connections, and mail.security (a relay that"
                                    " expects TLS from the start stays silent on a plain connection)", temporary=True)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return _refused_recipients(error.recipients, relay)
    if isinstance(error, smtplib.SMTPResponseException):
        return _refused(error, settings)
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return MailError("connection", f"{relay} closed the connection unexpectedly: check mail.security and the"
                                       " relay's log", temporary=True)
    if isinstance(error, smtplib.SMTPException):
        return MailError("protocol", f"{relay}: {error}")
    if isinstance(error, socket.gaierror):
        return MailError("connection", f"cannot find the address of mail.host {settings.host!r} ({error.strerror}):"
                                       " check the name and this machine's DNS", temporary=True)
    if isinstance(error, ConnectionRefusedError):
        return MailError("connection", f"nothing accepts connections on {relay}: check mail.host and mail.port, and"
                                       " that the relay is running", temporary=True)
    return MailError("connection", f"cannot reach {relay} ({getattr(error, 'strerror', None) or error}): check"
                                   " mail.host, mail.port and the firewalls on the way", temporary=True)


def _untrusted(error: ssl.SSLCertVerificationError, settings: MailSettings) -> MailError:
    relay, reason = f"{settings.host}:{settings.port}", error.verify_message or error.reason
    if error.verify_code in _NAME_MISMATCH:
        advice = f"set mail.host to a name the certificate is made out to (it is not valid for {settings.host})"
    elif settings.ca_file is not None:
        advice = (f"mail.ca_file ({settings.ca_file}) must hold the certificate of the authority that signed the"
                  " relay's certificate")
    else:
        advice = ("set mail.ca_file to a PEM file with the certificate of the authority that signed the relay's"
                  " certificate (the organisation's own CA, usually)")
    return MailError("tls", f"the certificate of {relay} is not trusted ({reason}): {advice}")


def _refused(error: smtplib.SMTPResponseException, settings: MailSettings) -> MailError:
    relay, code = f"{settings.host}:{settings.port}", error.smtp_code
    answer = f"{relay} answered {code} {_text(error.smtp_error)}"
    temporary = 400 <= code < 500
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return MailError("auth", f"{answer}: check mail.username and mail.password", temporary=temporary)
    if code == 530 and "STARTTLS" in answer.upper():
        return MailError("tls", f'{answer}: set mail.security = "starttls"')
    if code == 530:  # "authentication required", in answer to MAIL FROM
        return MailError("auth", f"{answer}: the relay wants the appliance to sign in: set mail.username and"
                                 " mail.password")
    if isinstance(error, smtplib.SMTPSenderRefused):
        account = " as mail.username" if settings.username else ""
        return MailError("refused_sender", f"the relay refuses the sender {error.sender} ({answer}): check that"
                                           f" mail.from_address is an address the relay lets the appliance send"
                                           f" from{account}", temporary=temporary)
    if isinstance(error, smtplib.SMTPConnectError) or code == 421:
        what = "is busy or restarting" if temporary else "does not let this machine send"
        return MailError("connection", f"{answer}: the relay {what}; check its log", temporary=temporary)
    if isinstance(error, smtplib.SMTPDataError):
        return MailError("protocol", f"the relay refused the message ({answer}): its log says why (size limit,"
                                     " content filter...)", temporary=temporary)
    return MailError("protocol", f"{answer}", temporary=temporary)


def _refused_recipients(refusals: dict[str, tuple[int, bytes]], relay: str) -> MailError:
    address, (code, text) = next(iter(refusals.items()))
    others = f" and {len(refusals) - 1} more" if len(refusals) > 1 else ""
    temporary = all(400 <= refused_code < 500 for refused_code, _ in refusals.values())
    return MailError("refused_recipient", f"the relay refuses the recipient {address}{others} ({relay} answered"
                                          f" {code} {_text(text)}): check the address; if it is outside the"
                                          " organisation, the relay may need to allow the appliance to send there",
                     temporary=temporary, refused=tuple(refusals))


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
