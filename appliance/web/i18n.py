"""Languages of the pages: the choice (cookie, then Accept-Language), gettext catalogues, localized figures."""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.core import negotiate_locale
from babel.dates import format_datetime, get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "lang"
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
NAMES = {"en": "English", "fr": "Français"}


def parse_accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, most wanted first (q=0 dropped)."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag.replace("-", "_")))
    return [tag for _, _, tag in sorted(weighted)]


def choose_language(cookie: str | None, accept_language: str) -> str:
    """The cookie's language if it is one we speak, else the browser's preference, else English."""
    if cookie in LANGUAGES:
        return cookie
    preferred = parse_accept_language(accept_language)
    wanted = [tag.split("_")[0].lower() for tag in preferred]
    return negotiate_locale(wanted, list(LANGUAGES)) or DEFAULT_LANGUAGE


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    """The language's catalogue, compiled in memory from its .po file (English is the source language)."""
    po_file = LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT_LANGUAGE or not po_file.exists():
        return gettext.NullTranslations()
    with po_file.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@dataclass(frozen=True)
class Speaker:
    """Words, numbers and dates in one language."""

    language: str
    zone: str = "UTC"  # server.time_zone: dates are shown there, with its abbreviation (CET, CEST...)

    def gettext(self, message: str, **values: object) -> str:
        """The translated message, with %(name)s placeholders filled."""
        text = translations(self.language).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        """Singular or plural form for n; %(num)s is n, localized."""
        text = translations(self.language).ngettext(singular, plural, n)
        return text % ({"num": self.number(n)} | values)

    def number(self, value: float) -> str:
        """A number as the language writes it (1,200 or 1 200)."""
        return format_decimal(value, locale=self.language)

    def percent(self, value: float) -> str:
        """A rate (0 to 1) as a whole percentage, the language's way (62% or 62 %)."""
        return format_percent(value, locale=self.language)

    def weekdays(self) -> list[str]:
        """The days of the week, Monday first, as the language names them."""
        names = get_day_names("wide", locale=self.language)
        return [names[day] for day in range(7)]

    def datetime(self, value: datetime | None) -> str:
        """A date and time as the language writes it, in the organisation's time zone."""
        if value is None:
            return ""
        local = value.astimezone(ZoneInfo(self.zone))
        return format_datetime(local, "medium", tzinfo=local.tzinfo, locale=self.language) + f" {local.tzname()}"
