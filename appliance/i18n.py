"""Languages the appliance speaks: gettext catalogues, and numbers and dates the language's way.

Pages choose a language per request (appliance.web.i18n); mail speaks mail.language.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_datetime_format, get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    """The language's catalogue, compiled in memory from its .po file.

    English is the source language; its catalogue only rewords, for the pages, the messages that name an
    API field ("closes_at" is "the closing date" on a form).
    """
    po_file = LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po_file.exists():
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

    def datetime(self, value: dt.datetime | None) -> str:
        """A date and time as the language writes it, in the organisation's time zone."""
        if value is None:
            return ""
        try:
            local = value.astimezone(ZoneInfo(self.zone))
        except OverflowError:  # a date near year 9999, stored before dates were kept within 2000 to 2999
            return value.isoformat()
        # The day as in date(), the time to the minute: "Oct 15, 2030, 12:00 AM CEST", "15 oct. 2030, 00:00 CEST".
        day = format_date(local, "medium", locale=self.language)
        time = format_time(local, "short", tzinfo=local.tzinfo, locale=self.language)
        return get_datetime_format("medium", locale=self.language).replace("{1}", day).replace("{0}", time) \
            + f" {local.tzname()}"

    def date(self, value: dt.date) -> str:
        """A day as the language writes it (Oct 27, 2030 or 27 oct. 2030)."""
        return format_date(value, "medium", locale=self.language)

    def day(self, iso: str) -> str:
        """A day given as YYYY-MM-DD (as the API gives days), the language's way; as given if it is not one."""
        try:
            return self.date(dt.date.fromisoformat(iso))
        except ValueError:
            return iso
