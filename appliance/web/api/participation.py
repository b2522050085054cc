"""Proposals, ballots and moderation within a round."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from appliance.domain.rounds import Viewer
from appliance.services import participation as service
from appliance.services import sequences
from appliance.services.context import Appliance
from appliance.storage.proposals import StoredProposal
from appliance.web.api.models import (
    PROBLEMS,
    THROTTLED_PROBLEMS,
    BallotIn,
    BallotOut,
    ClaimOut,
    CorrectionIn,
    DraftIn,
    DuplicateIn,
    FlagOut,
    HintOut,
    SimilarOut,
    ModeratedOut,
    MyProposalOut,
    ProposalIn,
    ProposalOut,
    QueueItemOut,
    RefusalIn,
    SequenceOut,
)
from appliance.web.auth import requires_moderator


def proposal_out(proposal: StoredProposal) -> ProposalOut:
    return ProposalOut(id=proposal.id, text=proposal.text, status=proposal.status)


def hints_out(hints: list[service.Hint]) -> list[HintOut]:
    return [HintOut(id=h.proposal.id, text=h.proposal.text, status=h.proposal.status, score=h.score) for h in hints]


class ProposalController(Controller):
    path = "/api/v1/rounds/{round_id:str}"
    tags = ["proposals and votes"]

    @post("/proposals", sync_to_thread=True, status_code=201, responses=THROTTLED_PROBLEMS)
    def submit(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str], data: JSONBody[ProposalIn]) -> ProposalOut:
        """Submit a proposal; it reaches moderation (or publication) with the next release batch."""
        return proposal_out(service.submit_proposal(app, round_id, viewer, data.text))

    @post("/proposals/similar", sync_to_thread=True, status_code=200, responses=THROTTLED_PROBLEMS)
    def similar(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str],
                data: JSONBody[DraftIn]) -> list[SimilarOut]:
        """Accepted proposals close to a draft being written (French or English, accents ignored), best first.

        The draft travels in the body and is neither stored nor logged; ask again as the draft grows.
        `voted` says which of them the person has voted on already.
        """
        return [SimilarOut(id=h.proposal.id, text=h.proposal.text, status=h.proposal.status, score=h.score,
                           voted=h.voted) for h in service.similar_proposals(app, round_id, viewer, data.text)]

    @get("/proposals", sync_to_thread=True, responses=PROBLEMS)
    def accepted(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str]) -> list[ProposalOut]:
        """Accepted proposals, in random order, without author or time."""
        return [proposal_out(p) for p in service.accepted_proposals(app, round_id, viewer)]

    @get("/proposals/mine", sync_to_thread=True, responses=PROBLEMS)
    def mine(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str]) -> list[MyProposalOut]:
        """My own proposals and their status (with the refusal reason, shown only to me)."""
        mine = service.my_proposals(app, round_id, viewer)
        return [
            MyProposalOut(id=p.id, text=p.text, status=p.status, refusal_reason=p.refusal_reason,
                          refusal_note=p.refusal_note, published=p.status == "accepted" and p.id not in mine.waiting)
            for p in mine.proposals
        ]

    @get("/sequence", sync_to_thread=True, responses=PROBLEMS)
    def sequence(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer],
                 round_id: FromPath[str]) -> SequenceOut:
        """My next sequence: up to 12 accepted proposals I have not voted on, new ones and promising ones.

        Chosen from vote counts refreshed hourly, one proposal per group of duplicates, in random order.
        An empty list: nothing left to vote on.
        """
        chosen = sequences.sequence_for(app, round_id, viewer)
        return SequenceOut(proposals=[proposal_out(p) for p in chosen.proposals], voted=chosen.voted,
                           remaining=chosen.remaining)

    @post("/ballots", sync_to_thread=True, status_code=200, responses=THROTTLED_PROBLEMS)
    def vote(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str], data: JSONBody[BallotIn]) -> BallotOut:
        """Cast or change my vote on one proposal."""
        service.cast_vote(app, round_id, viewer, data.proposal, data.vote, data.qualification)
        return BallotOut()


class ModerationController(Controller):
    path = "/api/v1/rounds/{round_id:str}"
    tags = ["moderation"]

    @get("/moderation", guards=[requires_moderator], sync_to_thread=True, responses=PROBLEMS)
    def queue(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
              round_id: FromPath[str]) -> list[QueueItemOut]:
        """Proposals waiting for moderation, in random order: text only, never an author.

        Those another moderator is handling carry `held_until`; `flags` point at personal data in
        the text (e-mail addresses, phone numbers, names of people in the directory).
        """
        return [QueueItemOut(id=item.proposal.id, text=item.proposal.text, status=item.proposal.status,
                             held_until=item.held_until,
                             flags=[FlagOut(kind=f.kind, start=f.start, end=f.end, text=f.text) for f in item.flags],
                             similar=hints_out(item.similar))
                for item in service.moderation_queue(app, actor, round_id, viewer)]

    @post("/moderation/similar", guards=[requires_moderator], sync_to_thread=True, status_code=200,
          responses=PROBLEMS)
    def search(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], round_id: FromPath[str],
               data: JSONBody[DraftIn]) -> list[HintOut]:
        """Published proposals close to a text, best first: to find the original a duplicate repeats."""
        return hints_out(service.duplicate_search(app, round_id, viewer, data.text))

    @post("/proposals/{proposal_id:str}/claim", guards=[requires_moderator], sync_to_thread=True, status_code=200,
          responses=PROBLEMS)
    def claim(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
              round_id: FromPath[str], proposal_id: FromPath[str]) -> ClaimOut:
        """Hold a proposal for two minutes while reading it: no other moderator may decide on it meanwhile (409)."""
        return ClaimOut(held_until=service.claim(app, actor, round_id, viewer, proposal_id))

    @post("/proposals/{proposal_id:str}/correct", guards=[requires_moderator], sync_to_thread=True, status_code=200,
          responses=PROBLEMS)
    def correct(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
                round_id: FromPath[str], proposal_id: FromPath[str], data: JSONBody[CorrectionIn]) -> ProposalOut:
        """Fix the spelling of a pending or accepted proposal (not a rewrite: 80% of it must stay).

        The corrected text is the one published; the audit log keeps both.
        """
        return proposal_out(service.correct(app, actor, round_id, viewer, proposal_id, data.text))

    @post("/proposals/{proposal_id:str}/duplicate", guards=[requires_moderator], sync_to_thread=True,
          status_code=200, responses=PROBLEMS)
    def duplicate(self, app: NamedDependency[Appliance], viewer: NamedDependency[Viewer], actor: NamedDependency[str],
                  round_id: FromPath[str], proposal_id: FromPath[str], data: JSONBody[DuplicateIn]) -> ModeratedOut:
        """Mark an accepted proposal a duplicate of another (`of`), or not any more (`of`: null).

        It keeps its votes and its results; voting sequences show one proposal of each group.
        """
        proposal = service.mark_duplicate(app, actor, round_id, viewer, proposal_id, data.of)
        return ModeratedOut(id=proposal.id, text=proposal.text, status=proposal.status,
                            duplicate_of=proposal.duplicate_of)

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

