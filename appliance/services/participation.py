"""What the audience does in an open round: propose and vote; and what moderators do."""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache

from appliance.directory import MAX_SURNAMES, DirectoryUnavailable
from appliance.domain import proposals as proposal_rules
from appliance.domain import segments
from appliance.domain.errors import Conflict, Forbidden, Invalid, NotFound, Throttled
from appliance.domain.personal_data import Flag, NameIndex, find_personal_data
from appliance.domain.pseudonyms import author_label, voter_pseudonym
from appliance.domain.rounds import Round, Viewer
from appliance.domain.votes import check_vote
from appliance.services.context import Appliance
from appliance.services.limits import RateLimiter
from appliance.services.rounds import find_round, is_member
from appliance.storage import audit, ballots, locks, proposals, similar, snapshots
from appliance.storage.proposals import StoredProposal


def open_round_for(app: Appliance, round_id: str, viewer: Viewer) -> tuple[Round, bytes]:
    """The round and its secret if it is open and the viewer is in its audience."""
    round_ = find_round(app, round_id, viewer)
    if round_.status != "open":
        raise Conflict("the round is %(status)s, not open", status=round_.status)
    if round_.closes_at and app.clock() >= round_.closes_at:
        raise Conflict("the round closed at %(when)s", when=round_.closes_at.isoformat())
    if not is_member(app, round_, viewer):
        raise Forbidden("you are not in this round's audience")
    secret = app.round_key(round_id)
    if secret is None:
        raise Conflict("the round cannot take part: its key is missing")
    return round_, secret


def _release_for(app: Appliance, round_: Round) -> proposals.Release:
    """This moment's release period of the round, and what released proposals become."""
    period = proposal_rules.release_period(app.clock().timestamp(), round_.release_interval_seconds)
    return proposals.Release(period, proposal_rules.released_status(round_.moderation))


def next_batch(app: Appliance, round_: Round) -> datetime | None:
    """When the open round's next batch of new proposals reaches moderation (or, in post-moderation, the
    public list); None when it is not open or releases at once. Says nothing of what the batch holds."""
    if round_.status != "open":
        return None
    at = proposal_rules.next_release(app.clock().timestamp(), round_.release_interval_seconds)
    return None if at is None else datetime.fromtimestamp(at, timezone.utc)


def release(app: Appliance, round_: Round) -> None:
    """Release the batch of queued proposals if a new period has begun."""
    proposals.release_due(app.dbs.ballots, round_.id, _release_for(app, round_))


def _within_limit(app: Appliance, limiter: RateLimiter, viewer: Viewer, message: str) -> None:
    """Count one action of the viewer, or Throttled when they reached the limit (the action is not counted)."""
    wait = limiter.hit(viewer.person_id, app.clock().timestamp())
    if wait is not None:
        raise Throttled(message, wait, limit=limiter.limit, wait=wait)


def submit_proposal(app: Appliance, round_id: str, viewer: Viewer, text: str) -> StoredProposal:
    """Store a proposal under the author's label; it waits for the next release batch.

    Returned with the status its author is told (a queued proposal is pending, or accepted in post-moderation).
    Submitting the same text again (a double tap) returns the proposal already stored. Only attempts that
    pass every check count against the hourly limit: a refused draft does not use it up.
    """
    round_, secret = open_round_for(app, round_id, viewer)
    if round_.proposals_close_at and app.clock() >= round_.proposals_close_at:
        raise Conflict("proposals are closed for this round; you can still vote")
    cleaned = proposal_rules.check_proposal_text(text, round_.proposal_min_chars, round_.proposal_max_chars)
    label = author_label(app.instance_secret, secret, viewer.person_id)
    stored = _earlier_or_room(app, round_, label, cleaned)
    if stored is None:
        _within_limit(app, app.proposal_limiter, viewer,
                      "too many proposals: at most %(limit)s in an hour; try again in %(wait)s s")
        stored = _insert(app, round_, label, cleaned)
    return replace(stored, status=proposal_rules.shown_status(stored.status, round_.moderation))


def _earlier_or_room(app: Appliance, round_: Round, label: bytes, cleaned: str) -> StoredProposal | None:
    """The author's proposal with this text if there is one; else None, or Conflict at the round's quota."""
    mine = proposals.list_by_author(app.dbs.ballots, round_.id, label)
    earlier = [p for p in mine if p.text == cleaned and p.status != "refused"]  # sent again after a refusal: anew
    if earlier:
        return earlier[0]
    if counted_in_quota(mine) >= round_.proposal_quota:
        raise _over_quota(round_)
    return None


def counted_in_quota(mine: list[StoredProposal]) -> int:
    """The author's proposals that use up the round's quota: all but the refused ones, whose author may try
    again (a refusal for several ideas asks for them one by one)."""
    return sum(1 for p in mine if p.status != "refused")


def _over_quota(round_: Round) -> Conflict:
    return Conflict("you have reached this round's quota of %(quota)s proposals", quota=round_.proposal_quota)


def _insert(app: Appliance, round_: Round, label: bytes, cleaned: str) -> StoredProposal:
    """Store the proposal in one transaction that checks again the round, the quota and a same text."""
    release = _release_for(app, round_)
    status = release.status if round_.release_interval_seconds == 0 else "queued"
    proposal = StoredProposal(secrets.token_hex(8), round_.id, cleaned, status, None, None)
    try:
        stored = proposals.insert_if_under_quota(app.dbs.ballots, proposal, label, round_.proposal_quota, release)
    except proposals.RoundNotOpen:
        raise Conflict("the round is no longer open") from None
    if stored is None:
        raise _over_quota(round_)
    if stored.id == proposal.id:
        app.ballot_writer.note_written()
    return stored


def accepted_proposals(app: Appliance, round_id: str, viewer: Viewer) -> list[StoredProposal]:
    """Accepted proposals of a round the viewer takes part in, in random order."""
    round_ = find_round(app, round_id, viewer)
    if not (viewer.is_admin or viewer.is_moderator or is_member(app, round_, viewer)):
        raise Forbidden("you are not in this round's audience")
    if round_.status == "open":
        release(app, round_)
    return proposals.list_by_status(app.dbs.ballots, round_id, "accepted")


@dataclass(frozen=True)
class Hint:
    """An accepted proposal close to a draft being written, with how close (0..1)."""

    proposal: StoredProposal
    score: float
    voted: bool = False  # the person writing has voted on it already (agreeing from the hint would change that vote)


def similar_proposals(app: Appliance, round_id: str, viewer: Viewer, draft: str) -> list[Hint]:
    """Accepted proposals that say nearly what the draft says, best first: to vote for one instead of repeating it."""
    round_, secret = open_round_for(app, round_id, viewer)
    _within_limit(app, app.hint_limiter, viewer,
                  "too many look-ups of similar proposals: at most %(limit)s a minute; try again in %(wait)s s")
    release(app, round_)
    hints = _hints(app, round_id, draft)
    if not hints:
        return hints
    voted = ballots.voted_by(app.dbs.ballots, round_id, voter_pseudonym(app.instance_secret, secret, viewer.person_id))
    return [replace(h, voted=h.proposal.id in voted) for h in hints]


def _hints(app: Appliance, round_id: str, text: str, limit: int = 5, typing: bool = True) -> list[Hint]:
    found = similar.similar(app.dbs.ballots, round_id, text[:MAX_DRAFT_CHARS], limit, typing=typing)
    hints = [(proposals.get_proposal(app.dbs.ballots, round_id, pid), score) for pid, score in found]
    return [Hint(p, round(score, 2)) for p, score in hints if p is not None and p.status == "accepted"]


@dataclass(frozen=True)
class MyProposals:
    """An author's own proposals, each with the status its author is told, and those still to be published."""

    proposals: list[StoredProposal]
    waiting: frozenset[str]  # told "accepted" (post-moderation) but waiting for the next release batch


def my_proposals(app: Appliance, round_id: str, viewer: Viewer) -> MyProposals:
    """The viewer's own proposals while the round is open; the page and the API's `published` say which wait."""
    round_, secret = open_round_for(app, round_id, viewer)
    release(app, round_)
    label = author_label(app.instance_secret, secret, viewer.person_id)
    stored = proposals.list_by_author(app.dbs.ballots, round_id, label)
    waiting = frozenset(p.id for p in stored if p.status == "queued") if round_.moderation == "post" else frozenset()
    return MyProposals([replace(p, status=proposal_rules.shown_status(p.status, round_.moderation)) for p in stored],
                       waiting)


def cast_vote(app: Appliance, round_id: str, viewer: Viewer, proposal_id: str, vote: str,
              qualification: str | None) -> None:
    """Record or change a vote under the voter's pseudonym: one short write, no directory call."""
    round_, secret = open_round_for(app, round_id, viewer)  # an unknown round is a 404, whatever the vote
    stored_qualification = check_vote(vote, qualification)
    _within_limit(app, app.vote_limiter, viewer, "too many votes: at most %(limit)s in a minute; try again in %(wait)s s")
    combo = snapshots.member_combo(app.dbs.identity, round_id, viewer.person_id)
    if combo is None:  # joined the audience after open: "other" in every breakdown
        combo = segments.combo_key((segments.OTHER,) * len(round_.dimensions))
    pseudonym = voter_pseudonym(app.instance_secret, secret, viewer.person_id)
    outcome = app.ballot_writer.cast(
        ballots.Ballot(round_id, pseudonym, combo, proposal_id, vote, stored_qualification))
    if outcome == ballots.ROUND_NOT_OPEN:
        raise Conflict("the round is no longer open")
    if outcome == ballots.PROPOSAL_UNAVAILABLE:
        raise NotFound("no accepted proposal %(proposal_id)s in this round", proposal_id=repr(proposal_id))


log = logging.getLogger("appliance")
MAX_DRAFT_CHARS = 2000  # a draft is compared on its beginning
LOCK_SECONDS = 120  # a moderator holds a proposal this long (ARCHITECTURE.md: two minutes)


DUPLICATE_HINTS = 3  # published proposals shown beside a pending one it resembles
DESK_BATCH = 10  # waiting proposals a moderator's desk holds for them at once
NAME_QUERIES = 8  # directory searches at most for the colleagues' names in one queue (MAX_SURNAMES words each)


@dataclass(frozen=True)
class QueueItem:
    """A proposal waiting for moderation, as a moderator sees it: text, never an author."""

    proposal: StoredProposal
    held_until: int | None  # another moderator holds it until then (Unix time)
    flags: list[Flag]  # personal data in its text: e-mail addresses, phone numbers, colleagues' names
    similar: list[Hint]  # published proposals it resembles: a likely duplicate


def moderation_queue(app: Appliance, actor: str, round_id: str, viewer: Viewer) -> list[QueueItem]:
    """Proposals waiting for a moderator, in random order, with those another moderator holds marked."""
    round_ = find_round(app, round_id, viewer)
    if round_.status == "open":
        release(app, round_)
    held = held_by_others(app, actor, round_id)
    pending = proposals.list_by_status(app.dbs.ballots, round_id, "pending")
    flags = personal_data_flags(app, [p.text for p in pending])
    return [QueueItem(p, held.get(p.id), found, _hints(app, round_id, p.text, DUPLICATE_HINTS, typing=False))
            for p, found in zip(pending, flags)]


def waiting_count(app: Appliance, round_: Round) -> int:
    """How many proposals of an open round wait for a moderator (the batch due released first)."""
    release(app, round_)
    return len(proposals.list_by_status(app.dbs.ballots, round_.id, "pending"))


def desk_batch(app: Appliance, actor: str, round_id: str, items: list[QueueItem],
               size: int = DESK_BATCH) -> dict[str, int]:
    """Hold up to `size` waiting proposals for this moderator, those already theirs first: id -> expiry.

    The desk offers decisions on these alone, so two moderators never handle the same proposal; each
    decision makes room for the next one, and each visit renews the holds.
    """
    now = int(app.clock().timestamp())
    theirs = locks.held_by(app.dbs.identity, round_id, actor, now)
    free = [item.proposal.id for item in items if item.held_until is None]
    mine: dict[str, int] = {}
    for pid in [pid for pid in free if pid in theirs] + [pid for pid in free if pid not in theirs]:
        if len(mine) >= size:
            break
        holder, until = locks.take(app.dbs.identity, round_id, pid, actor, now, LOCK_SECONDS)
        if holder == actor:
            mine[pid] = until
    return mine


def renew_holds(app: Appliance, actor: str, round_id: str, viewer: Viewer) -> int:
    """Keep this moderator's desk theirs while they read it (the desk page asks twice a minute); how many.

    Only holds on proposals still waiting: one taken to correct a published proposal lapses as it did.
    """
    find_round(app, round_id, viewer)
    now = int(app.clock().timestamp())
    theirs = locks.held_by(app.dbs.identity, round_id, actor, now)
    waiting = [p.id for p in proposals.list_by_status(app.dbs.ballots, round_id, "pending") if p.id in theirs]
    return locks.renew(app.dbs.identity, round_id, waiting, actor, now, LOCK_SECONDS)


def held_by_others(app: Appliance, actor: str, round_id: str) -> dict[str, int]:
    """Proposals of the round another moderator holds now: id -> expiry."""
    return locks.held_by_others(app.dbs.identity, round_id, actor, int(app.clock().timestamp()))


def duplicate_search(app: Appliance, round_id: str, viewer: Viewer, text: str) -> list[Hint]:
    """Published proposals close to any text, for a moderator looking for the original of a duplicate."""
    round_ = find_round(app, round_id, viewer)
    return _hints(app, round_id, text) if round_.status == "open" else []


_WORDS = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def personal_data_flags(app: Appliance, texts: list[str]) -> list[list[Flag]]:
    """Each text's personal-data flags; colleagues' names come from the directory, asked for all texts at once.

    The directory is asked MAX_SURNAMES words at a time, at most NAME_QUERIES times: every text's capitalised
    words first, then the others, taking each text's words in turn so that a long queue cannot crowd out the
    words of the texts that sort last. Without the directory (unreachable), e-mail addresses and phone numbers
    are still flagged.
    """
    candidates = surname_candidates(texts)[:MAX_SURNAMES * NAME_QUERIES]
    names: list[str] = []
    try:
        for start in range(0, len(candidates), MAX_SURNAMES):
            names += app.directory.names_for(candidates[start:start + MAX_SURNAMES])
    except DirectoryUnavailable as error:
        log.warning("names are not flagged in proposals: the directory is unavailable (%s)", error)
    index = _name_index(tuple(sorted(set(names))))
    return [find_personal_data(text, index) for text in texts]


def surname_candidates(texts: list[str]) -> list[str]:
    """The words of the texts that may be surnames, once each: capitalised words first, the texts in turn."""
    words = [sorted({word for word in _WORDS.findall(text) if len(word) > 1}) for text in texts]
    order: dict[str, None] = {}
    for capitalised in (True, False):
        kept = [[word for word in text if word[:1].isupper() == capitalised] for text in words]
        for rank in range(max(map(len, kept), default=0)):
            order.update((text[rank], None) for text in kept if rank < len(text))
    return list(order)


@lru_cache(maxsize=4)
def _name_index(names: tuple[str, ...]) -> NameIndex:
    return NameIndex(names)


def claim(app: Appliance, actor: str, round_id: str, viewer: Viewer, proposal_id: str) -> int:
    """Hold a proposal for two minutes, so that no other moderator decides on it meanwhile; the expiry."""
    _moderated_proposal(app, round_id, viewer, proposal_id)
    return _hold(app, actor, round_id, proposal_id)


def _hold(app: Appliance, actor: str, round_id: str, proposal_id: str) -> int:
    now = int(app.clock().timestamp())
    holder, until = locks.take(app.dbs.identity, round_id, proposal_id, actor, now, LOCK_SECONDS)
    if holder != actor:
        raise Conflict("another moderator is handling this proposal for %(seconds)s s more", seconds=until - now)
    return until


def _moderated_proposal(app: Appliance, round_id: str, viewer: Viewer, proposal_id: str) -> tuple[Round, StoredProposal]:
    round_ = find_round(app, round_id, viewer)
    if round_.status != "open":
        raise Conflict("the round is %(status)s: moderation has ended", status=round_.status)
    current = proposals.get_proposal(app.dbs.ballots, round_id, proposal_id)
    if current is None or current.status == "queued":
        raise NotFound("no proposal %(proposal_id)s to moderate in this round", proposal_id=repr(proposal_id))
    return round_, current


def moderate(app: Appliance, actor: str, round_id: str, viewer: Viewer, proposal_id: str,
             decision: str, reason: str | None = None, note: str | None = None) -> StoredProposal:
    """Accept or refuse a proposal; a published one may be refused (hidden), accepted by mistake or post-moderated."""
    round_, current = _moderated_proposal(app, round_id, viewer, proposal_id)
    if decision == "accept":
        allowed, new, reason, note = ("pending",), "accepted", None, None
    else:
        note = proposal_rules.check_refusal(reason or "", note)
        allowed, new = ("pending", "accepted"), "refused"
    if current.status not in allowed:
        raise Conflict("the proposal is already %(status)s", status=current.status)
    _hold(app, actor, round_id, proposal_id)
    try:
        if not proposals.moderate(app.dbs.ballots, round_id, proposal_id, current.status, new, reason, note):
            raise Conflict("another moderator handled this proposal meanwhile")
    finally:
        locks.release(app.dbs.identity, round_id, proposal_id, actor)
    audit.record(app.dbs.identity, actor, f"proposal.{decision}", proposal_id, reason or "")
    return proposals.get_proposal(app.dbs.ballots, round_id, proposal_id)


def correct(app: Appliance, actor: str, round_id: str, viewer: Viewer, proposal_id: str, text: str) -> StoredProposal:
    """Fix the spelling of a pending or accepted proposal; the published text is the corrected one.

    The audit log keeps the text before and after.
    """
    round_, current = _moderated_proposal(app, round_id, viewer, proposal_id)
    if current.status not in ("pending", "accepted"):
        raise Conflict("the proposal is %(status)s: only pending and accepted proposals are corrected",
                       status=current.status)
    corrected = proposal_rules.check_correction(current.text, text, round_.proposal_min_chars,
                                                round_.proposal_max_chars)
    _hold(app, actor, round_id, proposal_id)
    if not proposals.correct(app.dbs.ballots, round_id, proposal_id, current.text, corrected):
        raise Conflict("the proposal changed meanwhile")
    audit.record(app.dbs.identity, actor, "proposal.correct", proposal_id,
                 json.dumps({"before": current.text, "after": corrected}, ensure_ascii=False))
    return proposals.get_proposal(app.dbs.ballots, round_id, proposal_id)


def mark_duplicate(app: Appliance, actor: str, round_id: str, viewer: Viewer, proposal_id: str,
                   original_id: str | None) -> StoredProposal:
    """Mark an accepted proposal a duplicate of another accepted one (None: no longer a duplicate).

    It keeps its votes and stays in the results; voting sequences show one proposal of each group.
    """
    _, current = _moderated_proposal(app, round_id, viewer, proposal_id)
    if current.status != "accepted":
        raise Conflict("the proposal is %(status)s: only accepted proposals are marked duplicates",
                       status=current.status)
    if original_id is not None:
        original = proposals.get_proposal(app.dbs.ballots, round_id, original_id)
        if original is None or original.status != "accepted":
            raise NotFound("no accepted proposal %(proposal_id)s in this round", proposal_id=repr(original_id))
        if original.id == proposal_id:
            raise Invalid("a proposal cannot be a duplicate of itself")
        original_id = original.duplicate_of or original.id  # the root of its group
        if original_id == proposal_id:  # the other way round already: this one is the original of that one
            raise Invalid("the proposal it repeats is already marked as repeating this one; to turn it round,"
                          " mark that one as not a duplicate first")
    if not proposals.mark_duplicate(app.dbs.ballots, round_id, proposal_id, original_id):
        raise Conflict("the proposal changed meanwhile")
    audit.record(app.dbs.identity, actor, "proposal.duplicate", proposal_id, original_id or "")
    return proposals.get_proposal(app.dbs.ballots, round_id, proposal_id)
