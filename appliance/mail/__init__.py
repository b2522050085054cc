"""Outgoing email through the organisation's SMTP relay.

`smtp` sends (one connection for many messages, failures as MailError),
`message` builds the messages, `errors` explains what went wrong.
"""

from appliance.mail.errors import MailError, MailErrorKind
from appliance.mail.message import build_message
from appliance.mail.smtp import MailConnection, MailDisabled, Mailer

__all__ = ["MailConnection", "MailDisabled", "MailError", "MailErrorKind", "Mailer", "build_message"]
