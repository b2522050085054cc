"""Signing in and out on pages, and the language switch."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from pydantic import BaseModel, Field

from appliance.directory import DirectoryUnavailable
from appliance.domain.errors import Throttled, Unauthorized
from appliance.services.context import Appliance
from appliance.i18n import LANGUAGES
from appliance.services.sign_in import sign_in
from appliance.storage import sessions
from appliance.web.auth import DEVICE_COOKIE, SESSION_COOKIE, session_cookies
from appliance.web.i18n import LANGUAGE_COOKIE
from appliance.web.pages.render import page, safe_next, see_other, speaker_for

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
LANGUAGE_COOKIE_DAYS = 365


class SignInForm(BaseModel):
    username: str = Field("", max_length=256)
    password: str = Field("", max_length=1024)
    next: str = Field("/rounds", max_length=2000)


class LanguageForm(BaseModel):
    lang: str = Field(max_length=8)
    next: str = Field("/rounds", max_length=2000)


class SignInPages(Controller):
    include_in_schema = False

    @get("/sign-in", opt={"exclude_from_auth": True}, sync_to_thread=False)
    def form(self, request: Request, next: FromQuery[str] = "/rounds", done: FromQuery[str | None] = None) -> Template:
        """The sign-in form; after signing out, it says so."""
        notice = speaker_for(request).gettext("You are signed out.") if done == "signed_out" else None
        return page(request, "sign_in.html", next=safe_next(next), username="", notice=notice)

    @post("/sign-in", opt={"exclude_from_auth": True}, sync_to_thread=True, status_code=303)
    def submit(self, app: NamedDependency[Appliance], request: Request,
               data: Annotated[SignInForm, FORM]) -> Response:
        """Check the password with the directory; on success, start a session and go on."""
        say = speaker_for(request)
        address = request.client.host if request.client else ""
        try:
            signed_in = sign_in(app, data.username, data.password, address, request.cookies.get(DEVICE_COOKIE, ""))
        except Unauthorized:
            return self._again(request, data, 401, say.gettext("Wrong username or password."))
        except Throttled as error:
            response = self._again(request, data, 429, say.gettext(
                "Too many failed attempts. Try again in %(seconds)s seconds.", seconds=error.retry_after))
            response.headers["Retry-After"] = str(error.retry_after)
            return response
        except DirectoryUnavailable:
            unreachable = say.gettext("The directory cannot be reached; try again in a moment.")
            return self._again(request, data, 503, unreachable)
        return Redirect(path=safe_next(data.next), status_code=303, cookies=session_cookies(app, signed_in, "/sign-in"))

    @staticmethod
    def _again(request: Request, data: SignInForm, status: int, error: str) -> Template:
        return page(request, "sign_in.html", status=status, next=safe_next(data.next), username=data.username,
                    error=error)

    @post("/sign-out", sync_to_thread=True, status_code=303)
    def sign_out(self, app: NamedDependency[Appliance], request: Request) -> Redirect:
        """End the session and clear its cookie."""
        sessions.delete_session(app.dbs.identity, sessions.token_hash(request.cookies[SESSION_COOKIE]))
        return Redirect(path="/sign-in?done=signed_out", status_code=303,
                        cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])

    @post("/language", opt={"exclude_from_auth": True}, sync_to_thread=False, status_code=303)
    def language(self, request: Request, data: Annotated[LanguageForm, FORM]) -> Redirect:
        """Remember the chosen language in a cookie and go back to the page."""
        back = see_other(safe_next(data.next))
        if data.lang in LANGUAGES:
            back.cookies.append(Cookie(key=LANGUAGE_COOKIE, value=data.lang, max_age=LANGUAGE_COOKIE_DAYS * 86400,
                                       samesite="lax", httponly=True, path="/",
                                       secure=request.app.state.appliance.settings.security.cookie_secure))
        return back

    @get("/", sync_to_thread=False)
    def home(self) -> Redirect:
        """The home page is the list of my rounds (signed-out visitors land on the sign-in page)."""
        return Redirect(path="/rounds", status_code=303)
