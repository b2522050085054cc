"""Languages of the pages: the choice of each request (the switch's cookie, then Accept-Language)."""

from __future__ import annotations

from babel.core import negotiate_locale

from appliance.i18n import DEFAULT_LANGUAGE, LANGUAGES

LANGUAGE_COOKIE = "lang"
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
