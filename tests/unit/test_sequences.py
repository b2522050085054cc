"""The sequence engine's rules, on hand-made tallies and on generated ones."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.domain.sequences import NEW_BELOW, SEQUENCE_SIZE, TESTED_BELOW, Tally, next_sequence


def tallies(new: int, tested: int, mature: int = 0) -> list[Tally]:
    out = [Tally(f"n{i:03d}", i % 3, 0, i % NEW_BELOW // 3) for i in range(new)]
    out += [Tally(f"t{i:03d}", 10 + 5 * i, 40, 10) for i in range(tested)]
    out += [Tally(f"m{i:03d}", TESTED_BELOW, 10, 10) for i in range(mature)]
    return out


def test_a_sequence_has_12_proposals_about_30_percent_new_the_rest_tested() -> None:
    pool = tallies(new=100, tested=100)
    shares = []
    for seed in range(200):
        chosen = next_sequence(pool, set(), np.random.default_rng(seed))
        assert len(chosen) == SEQUENCE_SIZE == len(set(chosen))
        shares.append(sum(pid.startswith("n") for pid in chosen) / SEQUENCE_SIZE)
    assert 0.27 <= float(np.mean(shares)) <= 0.33


def test_new_proposals_come_fewest_votes_first() -> None:
    pool = [Tally(f"n{v}", v, 0, 0) for v in range(NEW_BELOW)] + tallies(new=0, tested=50)
    for seed in range(20):
        new = sorted(int(pid[1:]) for pid in next_sequence(pool, set(), np.random.default_rng(seed))
                     if pid.startswith("n"))
        assert new == list(range(len(new)))


def test_thompson_sampling_favours_likely_consensus_among_tested_proposals() -> None:
    pool = [Tally(f"good{i}", 80, 10, 10) for i in range(5)] + [Tally(f"bad{i}", 10, 80, 10) for i in range(50)]
    counts = {"good": 0, "bad": 0}
    for seed in range(100):
        for pid in next_sequence(pool, set(), np.random.default_rng(seed)):
            counts["good" if pid.startswith("good") else "bad"] += 1
    assert counts["good"] >= 450  # all five consensus candidates, nearly every time


def test_controversies_get_about_one_place_in_ten() -> None:
    pool = [Tally(f"c{i}", 50, 50, 0) for i in range(30)] + [Tally(f"k{i}", 95, 2, 3) for i in range(30)]
    shown = [pid for seed in range(200) for pid in next_sequence(pool, set(), np.random.default_rng(seed))]
    assert 0.05 <= sum(pid.startswith("c") for pid in shown) / len(shown) <= 0.2


def test_nothing_already_voted_on_and_one_proposal_per_group_of_duplicates() -> None:
    pool = tallies(new=20, tested=20)
    groups = {f"t{i:03d}": f"g{i // 2}" for i in range(20)} | {"n000": "g0"}
    voted = {"t000", "n005"}
    for seed in range(50):
        chosen = next_sequence(pool, voted, np.random.default_rng(seed), groups)
        assert not set(chosen) & voted
        assert "t001" not in chosen and "n000" not in chosen  # group g0: the voter voted on t000
        named = [groups.get(pid, pid) for pid in chosen]
        assert len(named) == len(set(named))


def test_proposals_with_1500_votes_or_more_only_fill_in() -> None:
    chosen = next_sequence(tallies(new=2, tested=3, mature=50), set(), np.random.default_rng(1))
    assert len(chosen) == 12 and {pid for pid in chosen if not pid.startswith("m")} == {"n000", "n001", "t000",
                                                                                        "t001", "t002"}
    assert all(pid.startswith("m") for pid in next_sequence(tallies(0, 0, 20), set(), np.random.default_rng(1)))


def test_the_same_seed_gives_the_same_sequence_shuffled() -> None:
    pool = tallies(new=40, tested=40)
    first = next_sequence(pool, set(), np.random.default_rng(7))
    assert first == next_sequence(pool, set(), np.random.default_rng(7))
    orders = {tuple(next_sequence(tallies(new=12, tested=0), set(), np.random.default_rng(s))) for s in range(10)}
    assert len(orders) > 1 and all(sorted(order) == sorted(next(iter(orders))) for order in orders)


def test_small_and_empty_pools() -> None:
    assert next_sequence([], set(), np.random.default_rng(0)) == []
    assert sorted(next_sequence(tallies(2, 1), set(), np.random.default_rng(0))) == ["n000", "n001", "t000"]
    assert next_sequence(tallies(2, 1), {"n000", "n001", "t000"}, np.random.default_rng(0)) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 2000), st.integers(0, 2000)), max_size=60),
       st.sets(st.integers(0, 59)), st.integers(0, 2 ** 32 - 1), st.integers(0, 20))
def test_any_tallies_give_distinct_allowed_proposals(counts, voted_at, seed, size) -> None:
    pool = [Tally(f"p{i}", *c) for i, c in enumerate(counts)]
    voted = {f"p{i}" for i in voted_at}
    chosen = next_sequence(pool, voted, np.random.default_rng(seed), size=size)
    allowed = [t.proposal_id for t in pool if t.proposal_id not in voted]
    assert len(chosen) == len(set(chosen)) == min(size, len(allowed))
    assert set(chosen) <= set(allowed)
