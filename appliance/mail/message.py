"""The messages the appliance sends: plain text with an HTML alternative that fetches nothing from elsewhere."""

from __future__ import annotations

import email.policy
import re
from collections.abc import Mapping
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.settings import MailSettings

# Header lines up to RFC 5322's limit: with the default 78, a header holding one long word (the signed
# opt-out link of List-Unsubscribe) is sent as RFC 2047 encoded-words, which mail clients do not read as a URI.
POLICY = email.policy.default.clone(max_line_length=998)

# Attributes whose URL a mail client fetches by itself when the message is opened.
_FETCHED_ATTRIBUTES = frozenset({"src", "srcset", "background", "poster", "data", "lowsrc", "dynsrc"})
_CSS_URL = re.compile(r"""(?:url\(|@import)\s*["']?\s*([^"')\s;]*)""", re.IGNORECASE)


def parse_address(text: str, setting: str = "address") -> Address:
    """One address such as someone@example.org, or a ValueError that names the setting."""
    try:
        address = Address(addr_spec=text.strip())
    except (ValueError, IndexError, HeaderParseError):
        address = None
    if address is None or not address.username or not address.domain:
        raise ValueError(f"{setting}: {text!r} is not an email address (expected something like name@example.org)")
    return address


def build_message(to: str, subject: str, text: str, html: str | None = None, *,
                  settings: MailSettings, to_name: str = "", headers: Mapping[str, str] | None = None
                  ) -> EmailMessage:
    """A message from the configured sender to one person: text, and html as its alternative when given."""
    sender = parse_address(settings.from_address, "mail.from_address")
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(settings.from_name, sender.username, sender.domain)
    # A name on one line: a line break in a directory's display name must not refuse the message.
    message["To"] = Address(" ".join(to_name.split()), addr_spec=parse_address(to, "to").addr_spec)
    if settings.reply_to:
        message["Reply-To"] = parse_address(settings.reply_to, "mail.reply_to")
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.domain)
    # RFC 3834: vacation responders and list servers do not answer an automatic message.
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        refuse_remote_content(html)
        message.add_alternative(html, subtype="html")
    return message


def refuse_remote_content(html: str) -> None:
    """ValueError if opening html would fetch anything (image, style sheet, font) from a server."""
    parser = _RemoteReferences()
    parser.feed(html)
    parser.close()
    if parser.found:
        raise ValueError(f"html: refers to {parser.found[0]!r}, which a mail client would fetch on opening the"
                         " message, telling that server who read it and when; embed it (data: or cid:) or leave it out")


class _RemoteReferences(HTMLParser):
    """Collects the references a mail client would fetch from elsewhere."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in _FETCHED_ATTRIBUTES or (tag == "link" and name == "href"):
                # srcset lists "URL width" candidates; a data: URL has commas of its own, but no spaces after them.
                refs = re.split(r",\s+", value or "") if name == "srcset" else [value or ""]
                self.found += [ref for ref in refs if _is_remote(ref.strip().split(" ")[0])]
            elif name == "style":
                self.found += _css_references(value or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found += _css_references(data)


def _css_references(css: str) -> list[str]:
    return [ref for ref in _CSS_URL.findall(css) if _is_remote(ref)]


def _is_remote(reference: str) -> bool:
    """Anything but an embedded part (cid:) or inline data (data:) has to be fetched."""
    reference = reference.strip()
    return bool(reference) and not reference.lower().startswith(("data:", "cid:"))
