"""What a voter is shown next: a sequence of accepted proposals they have not voted on (ARCHITECTURE.md, Sequences)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from appliance.domain.pseudonyms import voter_pseudonym
from appliance.domain.rounds import Viewer
from appliance.domain.sequences import Tally, next_sequence
from appliance.services.context import Appliance
from appliance.services.participation import open_round_for, release
from appliance.storage import ballots, proposals, similar
from appliance.storage.proposals import StoredProposal


@dataclass(frozen=True)
class Sequence:
    proposals: list[StoredProposal]
    voted: int  # accepted proposals this voter has voted on
    remaining: int  # accepted proposals left to vote on, one per group of duplicates (as sequences show them)


def sequence_for(app: Appliance, round_id: str, viewer: Viewer) -> Sequence:
    """The voter's next sequence: from the hourly snapshot of vote counts (and of near-duplicate
    groups), the current accepted proposals and the voter's own votes; one proposal per group of
    duplicates, whether a moderator marked them or their texts say the same."""
    round_, secret = open_round_for(app, round_id, viewer)
    release(app, round_)
    accepted = proposals.list_by_status(app.dbs.ballots, round_id, "accepted")
    now = app.clock().timestamp()
    counts, similar_groups = app.tally_snapshots.get(round_id, now, lambda: (
        ballots.tallies(app.dbs.ballots, round_id), similar.groups(app.dbs.ballots, round_id)))
    pseudonym = voter_pseudonym(app.instance_secret, secret, viewer.person_id)
    voted = ballots.voted_by(app.dbs.ballots, round_id, pseudonym) & {p.id for p in accepted}
    groups = merged_groups([p.id for p in accepted], {p.id: p.duplicate_of for p in accepted if p.duplicate_of},
                           similar_groups)
    # In a fixed order (the list comes shuffled): the same draws then pick the same proposals.
    tallies = [Tally(p.id, *counts.get(p.id, (0, 0, 0))) for p in sorted(accepted, key=lambda p: p.id)]
    chosen = next_sequence(tallies, voted, _draws(app, secret, pseudonym, app.tally_snapshots.period(now), voted),
                           groups)
    by_id = {p.id: p for p in accepted}
    left = {groups.get(p.id, p.id) for p in accepted} - {groups.get(pid, pid) for pid in voted}
    return Sequence([by_id[pid] for pid in chosen], len(voted), len(left))


def _draws(app: Appliance, secret: bytes, pseudonym: bytes, period: int, voted: set[str]) -> np.random.Generator:
    """The random draws of one voter's sequence: the same within one snapshot period for the same votes.

    Asking again gives the same sequence, so that repeated asking cannot sample the engine's Thompson draws
    and read the hidden counts (or a single vote's move) from how often each proposal comes up. The draws
    change with the period whether the counts did or not: a new sequence does not say that someone voted.
    """
    state = b"sequence" + pseudonym + period.to_bytes(8, "big") + ",".join(sorted(voted)).encode()
    seed = hmac.new(app.instance_secret + secret, state, hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(seed, "big"))


def merged_groups(ids: list[str], *links: Mapping[str, str]) -> dict[str, str]:
    """Groups of duplicates from several sources (a moderator's marks, near-duplicate text): id -> group.

    Two proposals linked by any source are in one group (union-find); the group is named by its smallest id.
    Proposals linked to one that is no longer among `ids` (refused since the hourly snapshot) stay together.
    """
    parent = {pid: pid for pid in ids}

    def root(pid: str) -> str:
        while parent[pid] != pid:
            parent[pid] = parent[parent[pid]]
            pid = parent[pid]
        return pid

    for mapping in links:
        for pid, other in mapping.items():
            if pid in parent or other in parent:
                parent.setdefault(pid, pid)
                parent.setdefault(other, other)
                a, b = root(pid), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {pid: root(pid) for pid in ids}
