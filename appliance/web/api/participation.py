"""Proposals, ballots and moderation within a round."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from appliance.domain.rounds import Viewer
from appliance.services import participation as service
from appliance.services.context import Appliance
from appliance.storage.proposals import StoredProposal
from appliance.web.api.models import PROBLEMS, BallotIn, BallotOut, MyProposalOut, ProposalIn, ProposalOut, RefusalIn
from appliance.web.auth import requires_moderator


def proposal_out(proposal: StoredProposal) -> ProposalOut:
    return ProposalOut(id=proposal.id, text=proposal.text, status=proposal.status)


class ProposalController(Controller):
    path = "/api/v1/rounds/{round_id:str}"
    tags = ["proposals and votes"]

    @post("/proposals", sync_to_thread=True, status_code=201, responses=PROBLEMS)
    def submit(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str], data: JSONBody[ProposalIn]) -> ProposalOut:
        """Submit a proposal; it reaches moderation (or publication) with the next release batch."""
        return proposal_out(service.submit_proposal(app, round_id, viewer, data.text))

    @get("/proposals", sync_to_thread=True, responses=PROBLEMS)
    def accepted(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str]) -> list[ProposalOut]:
        """Accepted proposals, in random order, without author or time."""
        return [proposal_out(p) for p in service.accepted_proposals(app, round_id, viewer)]

    @get("/proposals/mine", sync_to_thread=True, responses=PROBLEMS)
    def mine(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str]) -> list[MyProposalOut]:
        """My own proposals and their status (with the refusal reason, shown only to me)."""
        return [
            MyProposalOut(id=p.id, text=p.text, status=p.status,
                          refusal_reason=p.refusal_reason, refusal_note=p.refusal_note)
            for p in service.my_proposals(app, round_id, viewer)
        ]

    @post("/ballots", sync_to_thread=True, status_code=200, responses=PROBLEMS)
    def vote(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str], data: JSONBody[BallotIn]) -> BallotOut:
        """Cast or change my vote on one proposal."""
        service.cast_vote(app, round_id, viewer, data.proposal, data.vote, data.qualification)
        return BallotOut()


class ModerationController(Controller):
    path = "/api/v1/rounds/{round_id:str}"
    tags = ["moderation"]

    @get("/moderation", guards=[requires_moderator], sync_to_thread=True, responses=PROBLEMS)
    def queue(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str]) -> list[ProposalOut]:
        """Proposals waiting for moderation: text only, never an author."""
        return [proposal_out(p) for p in service.moderation_queue(app, round_id, viewer)]

    @post("/proposals/{proposal_id:str}/accept", guards=[requires_moderator], sync_to_thread=True, status_code=200, responses=PROBLEMS)
    def accept(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str], round_id: FromPath[str], proposal_id: FromPath[str]) -> ProposalOut:
        """Accept a pending proposal."""
        return proposal_out(service.moderate(app, actor, round_id, viewer, proposal_id, "accept"))

    @post("/proposals/{proposal_id:str}/refuse", guards=[requires_moderator], sync_to_thread=True, status_code=200, responses=PROBLEMS)
    def refuse(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str], round_id: FromPath[str], proposal_id: FromPath[str],
               data: JSONBody[RefusalIn]) -> ProposalOut:
        """Refuse a proposal with a reason from the charter and an optional note."""
        return proposal_out(service.moderate(app, actor, round_id, viewer, proposal_id, "refuse",
                                             data.reason, data.note))

