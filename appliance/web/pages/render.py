"""Rendering a page: the template, its language, the signed-in person, and safe headers."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template import TemplateConfig

from appliance.domain.disclosure import band_said, percent_said
from appliance.domain.scoring import shown_points
from appliance.domain.votes import QUALIFICATIONS
from appliance.i18n import LANGUAGES, Speaker
from appliance.web.pages import labels
from appliance.web.i18n import LANGUAGE_COOKIE, NAMES, choose_language

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
# Pages load nothing from elsewhere and run no inline script: an injected <script> stays inert.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                               " frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Vary": "Cookie, Accept-Language",
}

# The card's buttons all have values of one length ("agree:" padded with spaces to the longest vote and
# nuance), so that the form's request body has one size whatever the vote: its size on the network must not
# tell the vote, as every answer has one size (ARCHITECTURE.md, rule 6). The form handler strips the spaces.
CHOICE_WIDTH = max(len(f"{vote}:{name}") for vote, names in QUALIFICATIONS.items() for name in names)


def ballot_choice(vote: str, qualification: str = "") -> str:
    return f"{vote}:{qualification}".ljust(CHOICE_WIDTH)


LABELS = {"statuses": labels.STATUSES, "votes": labels.VOTES, "vote_keys": labels.VOTE_KEYS,
          "qualifications": labels.QUALIFICATIONS, "qualifications_of": QUALIFICATIONS, "zones": labels.ZONES,
          "reasons": labels.REASONS, "choice": ballot_choice}


def template_config() -> TemplateConfig:
    """Jinja over appliance/templates, escaping everything by default."""
    environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(default=True),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment))


def speaker_for(request: Request) -> Speaker:
    """The language of this request: the switch's cookie, else Accept-Language."""
    language = choose_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language", ""))
    return Speaker(language, request.app.state.appliance.settings.server.time_zone)


def page(request: Request, name: str, status: int = 200, **context: Any) -> Template:
    """The template `name` rendered in the request's language, for whoever is signed in."""
    speaker = speaker_for(request)
    viewer = request.scope.get("auth")
    values = {
        "_": speaker.gettext, "ngettext": speaker.ngettext, "say": speaker, "band": partial(band_said, speaker),
        "rate": partial(percent_said, speaker), "points": shown_points,
        "lang": speaker.language, "time_zone": speaker.zone,
        "languages": [(code, NAMES[code]) for code in LANGUAGES], "person": request.scope.get("user"),
        "viewer": viewer, "here": current_page(request),
        "notice": None, "error": None,
    } | LABELS
    headers = SECURITY_HEADERS | {"Content-Language": speaker.language}
    return Template(template_name=name, context=values | context, status_code=status, headers=headers)


def current_page(request: Request) -> str:
    """Where the language switch comes back to: this page, or my rounds after a form post (no GET there)."""
    if request.method != "GET":
        return "/rounds"
    return safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))


def safe_next(target: str | None, default: str = "/rounds") -> str:
    """A local path to go back to; anything else (another site, a scheme) becomes the default."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def see_other(path: str) -> Redirect:
    """After a form post: go to `path` with GET (303), so that a reload does not post again."""
    return Redirect(path=path, status_code=303)
