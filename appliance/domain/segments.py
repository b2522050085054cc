"""Segment combinations and the coarsening map frozen at open (storage rule 4).

Every stored combination of segment values must be shared by at least k
audience members; where it is not, the least important dimensions become
"other". The all-"other" combination is kept at k or more members as well,
because people who join the audience after open are stored there.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence

OTHER = "other"
Combo = tuple[str, ...]


def raw_combo(attributes: Mapping[str, str], dimensions: Sequence[str]) -> Combo:
    """A person's segment values along the round's dimensions ("other" when missing)."""
    return tuple(attributes.get(d) or OTHER for d in dimensions)


def build_coarsening(raws: Sequence[Combo], k: int) -> dict[Combo, Combo]:
    """Map each raw combination to a stored one held by at least k of `raws`.

    Dimension by dimension, least important first, every combination still
    below k has that dimension replaced by "other", so small siblings meet
    (Finance/Paris and Finance/Nantes become Finance/other) before going further.
    """
    mapping = {raw: raw for raw in set(raws)}
    width = len(raws[0]) if raws else 0
    for i in reversed(range(width)):
        counts = _stored_counts(mapping, raws)
        for raw, stored in mapping.items():
            if counts[stored] < k:
                mapping[raw] = stored[:i] + (OTHER,) + stored[i + 1 :]
    _fill_all_other(mapping, raws, k)
    return mapping


def _stored_counts(mapping: dict[Combo, Combo], raws: Sequence[Combo]) -> Counter[Combo]:
    return Counter(mapping[raw] for raw in raws)


def _fill_all_other(mapping: dict[Combo, Combo], raws: Sequence[Combo], k: int) -> None:
    """Fold the smallest combinations into all-"other" until it holds at least k."""
    if not raws:
        return
    all_other = (OTHER,) * len(raws[0])
    counts = _stored_counts(mapping, raws)
    for combo in sorted((c for c in counts if c != all_other), key=lambda c: (counts[c], c)):
        if counts[all_other] >= k:
            return
        counts[all_other] += counts.pop(combo)
        for raw, stored in mapping.items():
            if stored == combo:
                mapping[raw] = all_other


def combo_key(combo: Combo) -> str:
    """How a combination is stored: a JSON array of its values."""
    return json.dumps(list(combo), ensure_ascii=False)


def headcounts(mapping: Mapping[Combo, Combo], raws: Sequence[Combo]) -> dict[str, int]:
    """Audience members per stored combination key."""
    return {combo_key(c): n for c, n in Counter(mapping[raw] for raw in raws).items()}
