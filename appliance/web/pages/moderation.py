"""The moderation desk: open rounds, then a round's queue with personal-data flags; never an author."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import BaseModel, Field

from appliance.domain.errors import DomainError, Invalid
from appliance.domain.personal_data import Flag
from appliance.domain.proposals import REFUSAL_REASONS
from appliance.domain.rounds import Viewer
from appliance.services import participation
from appliance.services import rounds as service
from appliance.services.context import Appliance
from appliance.web.auth import requires_moderator
from appliance.web.pages.errors import said
from appliance.web.pages.labels import NOTICES, N_, PUBLISHED_NOTICES
from appliance.web.pages.render import page, see_other, speaker_for
from appliance.web.pages.session import FORM

FLAG_KINDS = {"email": N_("e-mail address"), "phone": N_("phone number"), "name": N_("a colleague's name")}


# Where a decision on a published proposal comes back to: that proposal, or the next one of the list.
BACK = Field("", max_length=64, pattern=r"^[0-9a-f]*$")


class CorrectionForm(BaseModel):
    text: str = Field(max_length=10_000)
    back: str = BACK


class DuplicateForm(BaseModel):
    proposal: str = Field("", max_length=64)  # none chosen: refused by the rules, in the page's language
    of: str = Field("", max_length=64, description="the proposal it repeats; empty: not a duplicate any more")


class RefusalForm(BaseModel):
    reason: str = Field(default="", max_length=64)  # none chosen: the charter's message, not a form error
    note: str = Field("", max_length=2000)
    back: str = BACK


def marked_text(text: str, flags: list[Flag]) -> list[tuple[str, str | None]]:
    """The text cut into pieces, each with the kind of personal data it is (None for plain text)."""
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for flag in sorted(flags, key=lambda f: f.start):
        if flag.start < at:
            continue  # overlapping flags: the first one is enough to draw the eye
        pieces += [(text[at:flag.start], None), (text[flag.start:flag.end], flag.kind)]
        at = flag.end
    return [piece for piece in pieces + [(text[at:], None)] if piece[0]]


class ModerationPages(Controller):
    include_in_schema = False
    guards = [requires_moderator]

    @get("/moderation", sync_to_thread=True)
    def rounds(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], request: Request) -> Template:
        """The open rounds a moderator can work on."""
        open_rounds = [r for r in service.visible_rounds(app, viewer) if r.status == "open"]
        waiting = {r.id: participation.waiting_count(app, r) for r in open_rounds}
        return page(request, "moderation_rounds.html", rounds=open_rounds, waiting=waiting)

    @get("/rounds/{round_id:str}/moderation", sync_to_thread=True)
    def queue(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
              request: Request, round_id: FromPath[str], done: FromQuery[str | None] = None,
              at: FromQuery[str | None] = None) -> Template:
        """The proposals waiting for a decision, in random order: their text and flags, nothing else."""
        notice = speaker_for(request).gettext(NOTICES[done]) if done in NOTICES else None
        place = (at or "published") if done in PUBLISHED_NOTICES else "desk"
        return _desk(app, viewer, actor, request, round_id, notice=notice, place=place)

    @post("/rounds/{round_id:str}/moderation/{proposal_id:str}/accept", sync_to_thread=True, status_code=303)
    def accept(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
               request: Request, round_id: FromPath[str], proposal_id: FromPath[str]) -> Redirect | Template:
        """Accept a pending proposal; a refusal (another moderator took it meanwhile) comes back on the desk."""
        try:
            participation.moderate(app, actor, round_id, viewer, proposal_id, "accept")
        except DomainError as error:  # said on its card while it is still on this desk, else above the desk
            return _desk(app, viewer, actor, request, round_id, refused=error, refused_at=proposal_id, accepting=True)
        return see_other(f"/rounds/{round_id}/moderation?done=accepted#desk")

    @post("/rounds/{round_id:str}/moderation/holds", sync_to_thread=True, status_code=204)
    def holds(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
              round_id: FromPath[str]) -> None:
        """Renew the holds of this moderator's desk: its page asks twice a minute while they are at it."""
        participation.renew_holds(app, actor, round_id, viewer)

    @post("/rounds/{round_id:str}/moderation/{proposal_id:str}/refuse", sync_to_thread=True, status_code=303)
    def refuse(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
               request: Request, round_id: FromPath[str], proposal_id: FromPath[str],
               data: Annotated[RefusalForm, FORM]) -> Redirect | Template:
        """Refuse a proposal with a reason from the charter; the author alone reads it, in "my proposals"."""
        try:
            participation.moderate(app, actor, round_id, viewer, proposal_id, "refuse", data.reason,
                                   data.note or None)
        except DomainError as error:
            return _desk(app, viewer, actor, request, round_id, refused=error, refused_at=proposal_id, typed=data)
        return see_other(_back(round_id, "refused", data.back, proposal_id))

    @post("/rounds/{round_id:str}/moderation/{proposal_id:str}/correct", sync_to_thread=True, status_code=303)
    def correct(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
                request: Request, round_id: FromPath[str], proposal_id: FromPath[str],
                data: Annotated[CorrectionForm, FORM]) -> Redirect | Template:
        """Fix the spelling of a pending or published proposal (not a rewrite); the audit log keeps both texts."""
        try:
            participation.correct(app, actor, round_id, viewer, proposal_id, data.text)
        except DomainError as error:
            return _desk(app, viewer, actor, request, round_id, refused=error, refused_at=proposal_id, typed=data)
        return see_other(_back(round_id, "corrected", data.back, proposal_id))

    @post("/rounds/{round_id:str}/moderation/duplicates", sync_to_thread=True, status_code=303)
    def duplicate(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer],
                  actor: NamedDependency[str], request: Request, round_id: FromPath[str],
                  data: Annotated[DuplicateForm, FORM]) -> Redirect | Template:
        """Mark a published proposal as repeating another (or not any more): sequences show one of each group.

        A refusal comes back on the desk, above the duplicate form."""
        try:
            if not data.proposal:
                raise Invalid("choose the published proposal that repeats another, then the one it repeats")
            participation.mark_duplicate(app, actor, round_id, viewer, data.proposal, data.of or None)
        except DomainError as error:
            return _desk(app, viewer, actor, request, round_id, refused=error, refused_at="duplicates")
        return see_other(f"/rounds/{round_id}/moderation?done={'grouped' if data.of else 'ungrouped'}#published")


def _desk(app: Appliance, viewer: Viewer, actor: str, request: Request, round_id: str, *, notice: str | None = None,
          place: str = "desk", refused: DomainError | None = None, refused_at: str | None = None,
          typed: RefusalForm | CorrectionForm | None = None, accepting: bool = False) -> Template:
    """The desk: the moderator's own held proposals and those others hold; the rest waits folded, counted.

    Published proposals with personal data come first. A decision's notice is shown where the moderator
    was: above the desk, or on the published proposal (`place`). A refused decision comes back on its
    proposal, with the reason and what the moderator typed; the page opens there.
    """
    round_ = service.find_round(app, round_id, viewer)
    items = participation.moderation_queue(app, actor, round_id, viewer)
    mine = participation.desk_batch(app, actor, round_id, items)
    items.sort(key=lambda item: (item.proposal.id not in mine, item.held_until is not None))  # mine first
    on_desk = [item for item in items if item.proposal.id in mine or item.held_until is not None]
    waiting = [item for item in items if item.proposal.id not in mine and item.held_until is None]
    published = participation.accepted_proposals(app, round_id, viewer)
    published_flags = dict(zip((p.id for p in published),
                               participation.personal_data_flags(app, [p.text for p in published])))
    published.sort(key=lambda p: (not published_flags[p.id], p.text.casefold()))
    others = participation.held_by_others(app, actor, round_id)
    # Where a refused decision can be said beside its form (else above the desk): an Accept only on the desk.
    decidable = set(mine) if accepting else (set(mine) | {p.id for p in published if p.id not in others}
                                             | ({"duplicates"} if len(published) >= 2 else set()))
    problem = said(request, refused) if refused else None
    return page(request, "moderation.html", status=refused.status if refused else 200,
                error=problem if problem and refused_at not in decidable else None,  # its form is gone: on top
                round=round_, desk_notice=notice,
                notice_place=place if place in published_flags or place == "desk" else "published",
                problem=problem, problem_at=refused_at if refused_at in decidable else None,
                typed_text=getattr(typed, "text", None), typed_reason=getattr(typed, "reason", None),
                typed_note=getattr(typed, "note", None),
                reason_codes=REFUSAL_REASONS, next_batch=participation.next_batch(app, round_),
                flag_kinds=FLAG_KINDS, published=published, mine=mine, batch=participation.DESK_BATCH,
                others=others, texts={p.id: p.text for p in published},
                items=[(item, marked_text(item.proposal.text, item.flags)) for item in on_desk],
                waiting=[(item, marked_text(item.proposal.text, item.flags)) for item in waiting],
                published_pieces={p.id: marked_text(p.text, published_flags[p.id]) for p in published},
                published_flags=published_flags, pending_count=len(items))


def _back(round_id: str, done: str, back: str, decided: str) -> str:
    """The desk after a decision: at the published proposal it came from (`back`), else at the desk's list.

    A refused proposal leaves the list: `back` names the next one, or itself when it was the only one.
    """
    if not back:
        return f"/rounds/{round_id}/moderation?done={done}#desk"
    anchor = "published" if back == decided and done == "refused" else f"published-{back}"
    return f"/rounds/{round_id}/moderation?done={done}_published&at={back}#{anchor}"
