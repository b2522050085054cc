"""What a closed round keeps, as the disclosure engine (domain/disclosure.py) reads it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from appliance.domain.votes import OPTION_INDEX, OPTIONS

NOT_ENOUGH = "not enough responses"
# A breakdown asked for by a dimension none of whose groups was kept apart at open (each under k people).
NO_BREAKDOWN = ("no breakdown: when the round opened, the groups of this dimension could not be kept apart without"
                " one of them counting fewer than k people, so they were merged")


@dataclass(frozen=True)
class CountRow:
    """Ballots of one proposal, segment combination, vote and qualification ('' for none)."""

    proposal_id: str
    combo: str
    vote: str
    qualification: str
    n: int


@dataclass(frozen=True)
class CountArrays:
    """A closed round's counts as arrays: one entry per proposal, stored combination and option.

    An option is a vote or a qualification (OPTIONS); a ballot with a
    qualification counts once for its vote and once for its qualification.
    """

    proposal_ids: list[str]
    combos: list[str]  # stored combination keys
    proposal: np.ndarray  # index into proposal_ids
    combo: np.ndarray  # index into combos
    option: np.ndarray  # index into OPTIONS
    n: np.ndarray

    @classmethod
    def from_rows(cls, rows: Iterable[CountRow]) -> CountArrays:
        proposals: dict[str, int] = {}
        combos: dict[str, int] = {}
        entries: list[tuple[int, int, int, int]] = []
        for row in rows:
            p = proposals.setdefault(row.proposal_id, len(proposals))
            c = combos.setdefault(row.combo, len(combos))
            entries.append((p, c, OPTION_INDEX[row.vote], row.n))
            if row.qualification:
                entries.append((p, c, OPTION_INDEX[row.qualification], row.n))
        table = np.array(entries, dtype=np.int64).reshape(-1, 4)
        return cls(list(proposals), list(combos), *table.T)

    def totals(self) -> dict[str, Counter[str]]:
        """Per proposal, its count of each option over every combination."""
        out: dict[str, Counter[str]] = {pid: Counter() for pid in self.proposal_ids}
        for proposal, option, n in zip(self.proposal.tolist(), self.option.tolist(), self.n.tolist()):
            out[self.proposal_ids[proposal]][OPTIONS[option]] += n
        return out

    def packs(self) -> list[tuple[str, bytes]]:
        """Per proposal, its entries as little-endian int32 (combination, option, n) triples, summed and sorted."""
        width = len(OPTION_INDEX)
        key = (self.proposal * len(self.combos) + self.combo) * width + self.option
        keys, at = np.unique(key, return_inverse=True)
        sums = np.bincount(at, weights=self.n, minlength=keys.size).astype(np.int64)
        proposal, rest = np.divmod(keys, len(self.combos) * width)
        combo, option = np.divmod(rest, width)
        triples = np.stack([combo, option, sums], axis=1).astype("<i4")
        bounds = np.searchsorted(proposal, np.arange(len(self.proposal_ids) + 1))
        return [(pid, triples[bounds[i]:bounds[i + 1]].tobytes()) for i, pid in enumerate(self.proposal_ids)]

    @classmethod
    def from_packs(cls, combos: list[str], packs: Iterable[tuple[str, bytes]]) -> CountArrays:
        proposal_ids, parts, owners = [], [], []
        for pid, pack in packs:
            triples = np.frombuffer(pack, dtype="<i4").reshape(-1, 3)
            owners.append(np.full(len(triples), len(proposal_ids), dtype=np.int64))
            proposal_ids.append(pid)
            parts.append(triples)
        table = np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 3), dtype=np.int64)
        owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        return cls(proposal_ids, combos, owner, *table.T)
