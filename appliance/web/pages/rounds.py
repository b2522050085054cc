"""Employees' pages: my rounds, a round (propose and vote), my proposals."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import BaseModel, Field

from appliance.domain.errors import Conflict, DomainError, NotFound
from appliance.domain.rounds import Round, Viewer, can_read_results
from appliance.services import participation, sequences
from appliance.services import rounds as service
from appliance.services.context import Appliance
from appliance.web.pages.errors import said
from appliance.web.pages.labels import NOTICES, N_
from appliance.web.pages.render import page, see_other, speaker_for
from appliance.web.pages.session import FORM

VOTE_NOTICES = ("voted", "vote_withdrawn", "vote_closed")
PROPOSE_NOTICES = ("proposed", "proposed_post")
GROUPS = (("open", N_("Open now")), ("published", N_("Results published")), ("closed", N_("Closed")),
          ("draft", N_("Drafts")))


class ProposalForm(BaseModel):
    text: str = Field("", max_length=40_000)  # the textarea's guard: 4 x the longest proposal_max_chars


class BallotForm(BaseModel):
    proposal: str = Field(max_length=64)
    choice: str = Field(max_length=64, description="a vote, or vote:qualification")


def round_context(app: Appliance, viewer: Viewer, round_: Round) -> dict:
    """What the round page shows this viewer: the voting card and the proposal form when they take part."""
    context: dict = {"round": round_, "member": False, "ended": False, "results": can_read_results(round_, viewer)}
    if round_.status != "open" or not service.is_member(app, round_, viewer):
        return context
    try:
        mine = participation.my_proposals(app, round_.id, viewer).proposals
        chosen = sequences.sequence_for(app, round_.id, viewer)
    except Conflict:  # past its closing time, not closed yet: nothing to take part in any more
        return context | {"ended": True}
    proposals_open = not (round_.proposals_close_at and app.clock() >= round_.proposals_close_at)
    return context | {
        "member": True, "sequence": chosen, "card": chosen.proposals[0] if chosen.proposals else None,
        "rest": [{"id": p.id, "text": p.text} for p in chosen.proposals[1:]],  # the card's script goes on with these
        "quota_left": max(0, round_.proposal_quota - participation.counted_in_quota(mine)), "mine": len(mine), "proposals_open": proposals_open,
    }


class RoundPages(Controller):
    include_in_schema = False

    @get("/rounds", sync_to_thread=True)
    def list_rounds(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer],
                    request: Request) -> Template:
        """My rounds, open ones first."""
        visible = service.visible_rounds(app, viewer)
        groups = [(title, [r for r in visible if r.status == status]) for status, title in GROUPS]
        return page(request, "rounds.html", groups=[(t, rs) for t, rs in groups if rs])

    @get("/rounds/{round_id:str}", sync_to_thread=True)
    def read(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], request: Request,
             round_id: FromPath[str], done: FromQuery[str | None] = None) -> Template:
        """A round: its question, the proposal form and the voting card."""
        round_ = service.find_round(app, round_id, viewer)
        notice = speaker_for(request).gettext(NOTICES[done]) if done in NOTICES else None
        context = round_context(app, viewer, round_)
        # said where it happened: in the card's live region, beside the proposal form (the page opens there);
        # at the top of the page when neither is on it any more
        voted = done in VOTE_NOTICES and context["member"]
        proposed = done in PROPOSE_NOTICES and context["member"]
        return page(request, "round.html", notice=None if voted or proposed else notice,
                    vote_notice=notice if voted else "", propose_notice=notice if proposed else None,
                    propose_error=None, draft="", **context)

    @post("/rounds/{round_id:str}/proposals", sync_to_thread=True, status_code=303)
    def propose(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], request: Request,
                round_id: FromPath[str], data: Annotated[ProposalForm, FORM]) -> Redirect | Template:
        """Submit a proposal from the form; on a refusal, the form comes back with the draft and the reason."""
        try:
            proposal = participation.submit_proposal(app, round_id, viewer, data.text)
        except DomainError as error:
            round_ = service.find_round(app, round_id, viewer)
            context = round_context(app, viewer, round_)
            beside_form = context["member"]  # said above the draft it is about, where the page opens
            return page(request, "round.html", status=error.status, error=None if beside_form else said(request, error),
                        propose_error=said(request, error) if beside_form else None, propose_notice=None,
                        draft=data.text, vote_notice="", **context)
        done = "proposed" if proposal.status == "pending" else "proposed_post"
        return see_other(f"/rounds/{round_id}?done={done}#propose")

    @post("/rounds/{round_id:str}/ballots", sync_to_thread=True, status_code=303)
    def vote(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str],
             data: Annotated[BallotForm, FORM]) -> Redirect:
        """Cast a vote from the card (the no-script path; scripts post to the API)."""
        vote, _, qualification = data.choice.strip().partition(":")  # the values' padding spaces off
        try:
            participation.cast_vote(app, round_id, viewer, data.proposal, vote, qualification or None)
        except (NotFound, Conflict) as refused:  # withdrawn, or the round closed: back to the round, told why
            done = "vote_withdrawn" if isinstance(refused, NotFound) else "vote_closed"
            return see_other(f"/rounds/{round_id}?done={done}#vote")
        return see_other(f"/rounds/{round_id}?done=voted#vote")

    @get("/rounds/{round_id:str}/mine", sync_to_thread=True)
    def mine(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], request: Request,
             round_id: FromPath[str]) -> Template:
        """My proposals in an open round and what became of them; one waiting for its batch is said so.

        Once the round has closed, nobody can tell which proposals were mine (the author labels are erased at
        close): the page says so, rather than refusing.
        """
        round_ = service.find_round(app, round_id, viewer)
        if round_.status in ("closed", "published"):
            return page(request, "mine.html", round=round_, proposals=[], waiting=frozenset(), ended=True)
        mine = participation.my_proposals(app, round_id, viewer)
        return page(request, "mine.html", round=round_, proposals=mine.proposals, waiting=mine.waiting,
                    ended=False)
