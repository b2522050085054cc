"""Errors on pages: an HTML page that says what happened, or the sign-in page when signed out."""

from __future__ import annotations

import re
import sqlite3
from http import HTTPStatus
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.response import Redirect, Template

from appliance.directory import DirectoryUnavailable
from appliance.domain.errors import DomainError
from appliance.i18n import DEFAULT_LANGUAGE
from appliance.storage.ballot_writer import VoteTimeout
from appliance.web import errors as api_errors
from appliance.web.auth import NEEDS_ADMIN, NEEDS_MODERATOR
from appliance.web.pages.labels import ACTIONS, REASONS, STATUSES, N_
from appliance.web.pages.render import current_page, page, safe_next, speaker_for

TITLES = {
    400: N_("This request is not valid"),
    401: N_("Please sign in"),
    403: N_("This is not open to you"),
    404: N_("This page does not exist"),
    405: N_("This is a button's address"),
    409: N_("This cannot be done now"),
    429: N_("Too many attempts"),
    503: N_("The appliance cannot answer right now"),
}
SOMETHING_WRONG = N_("Something went wrong")
# A role's guard refused the page: who has the role (the directory settings' groups that give it).
ROLE_NEEDED = {
    NEEDS_MODERATOR: ("moderator_groups", N_("This page is for moderators: the members of %(groups)s in the"
                                             " directory. An administrator of the directory can add you.")),
    NEEDS_ADMIN: ("admin_groups", N_("This page is for administrators: the members of %(groups)s in the directory.")),
}


# A refused form leads back to the page it was on: a round's dashboard, its moderation desk, the round page.
_FORM_PAGES = ((re.compile(r"/admin/rounds/(?!new/?$)([^/]+)/[^/]+/?"), "/admin/rounds/{}"),
               (re.compile(r"/rounds/([^/]+)/moderation(/.*)?"), "/rounds/{}/moderation"),
               (re.compile(r"/rounds/([^/]+)/.+"), "/rounds/{}"))


def back_to(request: Request) -> str | None:
    """The page whose form made this request, when it is a form's own address; else None."""
    if request.method != "POST":
        return None
    for pattern, target in _FORM_PAGES:
        match = pattern.fullmatch(request.url.path)
        if match:
            return target.format(quote(match.group(1), safe=""))
    return None


def _render(request: Request, status: int, detail: str, headers: dict[str, str] | None = None) -> Template:
    """The error page, titled in the reader's language; the detail is the service's own message."""
    response = page(request, "error.html", status=status,
                    title=speaker_for(request).gettext(TITLES.get(status, SOMETHING_WRONG)), detail=detail,
                    back=back_to(request))
    if headers:
        response.headers.update(headers)
    return response


def signed_out(request: Request, _: NotAuthorizedException) -> Response:
    """Signed out or expired: to the sign-in page, coming back here afterwards (GET only)."""
    back = current_page(request)
    return Redirect(path=f"/sign-in?next={quote(safe_next(back), safe='/')}", status_code=303)


# Values of an error that name a code, with the words the pages have for it.
CODE_WORDS = {"status": STATUSES, "current": STATUSES, "required": STATUSES, "action": ACTIONS}
# Values that list codes (", "-separated): a page names each as its form does, in every language.
LIST_WORDS = {"reasons": REASONS}
# Form fields named in an error: the API says "closes_at", a page says what its form calls it, in every language.
FIELD_WORDS = {"opens_at": N_("the opening date"), "closes_at": N_("the closing date"),
               "proposals_close_at": N_("the closing date for proposals"), "k": N_("the anonymity threshold (k)"),
               "proposal_quota": N_("the number of proposals per person")}


def said(request: Request, error: DomainError) -> str:
    """The broken rule's message in the reader's language (as written when the catalogue lacks it).

    English sentences use a status's or action's own word ("cannot open a round that is closed");
    other languages name it as their pages do (« ouvrir », « Clôturée »).
    """
    return _sentence(_said(request, error))


def _sentence(text: str) -> str:
    """A message as a page writes it, with a capital first letter (the API's start in lower case)."""
    return text[:1].upper() + text[1:]


def _said(request: Request, error: DomainError) -> str:
    if not error.template:
        return str(error)
    say = speaker_for(request)
    values = {name: say.gettext(FIELD_WORDS[value]) if name == "name" and value in FIELD_WORDS else value
              for name, value in error.values.items()}
    values |= {name: ", ".join(say.gettext(LIST_WORDS[name].get(code, code)) for code in str(value).split(", "))
               for name, value in values.items() if name in LIST_WORDS}
    if say.language != DEFAULT_LANGUAGE:
        values = {name: say.gettext(CODE_WORDS[name][value]) if value in CODE_WORDS.get(name, ()) else value
                  for name, value in values.items()}
    return say.gettext(error.template, **values)


def domain_error(request: Request, error: DomainError) -> Template:
    """A rule the person broke: its own message in the reader's language, with the status the API gives."""
    retry_after = getattr(error, "retry_after", None)
    return _render(request, error.status, said(request, error),
                   {"Retry-After": str(retry_after)} if retry_after else None)


def http_error(request: Request, error: HTTPException) -> Template:
    """Not found, not allowed, an invalid form or an expired CSRF token, said on a page."""
    if error.status_code >= 500:
        return unexpected_error(request, error)
    detail = error.detail
    if detail == HTTPStatus(error.status_code).phrase:  # "Not Found" says in English what the title says already
        detail = ""
    if error.status_code == 405:  # an address for a form's button, opened as a link
        detail = speaker_for(request).gettext("This address is for a button on a page, not for a link. Go back"
                                              " to the page and use its button.")
    elif isinstance(error, PermissionDeniedException) and "CSRF" in detail:
        detail = speaker_for(request).gettext("The form had expired. Go back, reload the page and try again.")
    elif isinstance(error, PermissionDeniedException) and detail in ROLE_NEEDED:
        setting, message = ROLE_NEEDED[detail]
        groups = getattr(request.app.state.appliance.settings.directory, setting)
        detail = speaker_for(request).gettext(message, groups=", ".join(groups))
    elif isinstance(error, ValidationException):
        detail = api_errors.describe_validation(error.extra) or detail
    return _render(request, error.status_code, detail, error.headers)


def directory_unavailable(request: Request, error: DirectoryUnavailable) -> Template:
    """The directory is down: try again later (the reason goes to the operator's log)."""
    api_errors.directory_unavailable(request, error)  # logs the reason for the operator
    detail = speaker_for(request).gettext("The directory cannot be reached; try again in a moment.")
    return _render(request, 503, detail, {"Retry-After": "10"})


def busy_error(request: Request, error: Exception) -> Template:
    """The database stayed busy: try again in a moment; any other database error is a 500."""
    if api_errors.busy_error(request, error).status_code != 503:  # logged there either way
        return _render(request, 500, speaker_for(request).gettext("Something went wrong on our side."))
    if api_errors.disk_full(error):
        return _render(request, 503, speaker_for(request).gettext(
            "The appliance cannot store anything now: its disk is full, and its operator is told. Try again later."),
            {"Retry-After": "60"})
    return _render(request, 503, speaker_for(request).gettext("The appliance is busy; try again in a moment."),
                   {"Retry-After": "2"})


def unexpected_error(request: Request, error: Exception) -> Template:
    """A bug: logged with its path (never the body), and a plain apology on the page."""
    api_errors.unexpected_error(request, error)  # logs it
    return _render(request, 500, speaker_for(request).gettext("Something went wrong on our side."))


def unrouted_error(request: Request, error: HTTPException) -> Response:
    """No route took the request (404, 405): a page for a browser, problem+json for the API and programs."""
    wants_page = not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")
    return http_error(request, error) if wants_page else api_errors.http_error(request, error)


PAGE_EXCEPTION_HANDLERS = {
    NotAuthorizedException: signed_out,
    DomainError: domain_error,
    DirectoryUnavailable: directory_unavailable,
    HTTPException: http_error,
    sqlite3.OperationalError: busy_error,
    OSError: busy_error,  # a full disk; any other is a 500
    VoteTimeout: busy_error,
    Exception: unexpected_error,
}
