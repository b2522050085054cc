"""The sequence engine (ARCHITECTURE.md, Sequences): its rules on hand-made tallies, its invariants on generated ones."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.domain.sequences import (
    CONTROVERSY_SHARE,
    NEW_BELOW,
    NEW_SHARE,
    SEQUENCE_SIZE,
    TESTED_BELOW,
    Tally,
    agree_prior,
    controversy_draws,
    next_sequence,
)

SEEDS = range(300)


def fresh(count: int, votes: int = 0, prefix: str = "new") -> list[Tally]:
    """New proposals with `votes` votes each (fewer than NEW_BELOW), half agree."""
    return [Tally(f"{prefix}{i:03d}", votes // 2, votes - votes // 2, 0) for i in range(count)]


def probed(count: int, agree: float = 0.8, votes: int = 200, prefix: str = "tested") -> list[Tally]:
    """Tested proposals with `votes` votes each, an agree rate `agree`, the rest split evenly."""
    yes = round(agree * votes)
    return [Tally(f"{prefix}{i:03d}", yes, (votes - yes) // 2, votes - yes - (votes - yes) // 2)
            for i in range(count)]


def settled(count: int) -> list[Tally]:
    return [Tally(f"mature{i:03d}", TESTED_BELOW, 300, 200) for i in range(count)]


def sequence(pool: list[Tally], seed: int = 0, voted: frozenset[str] = frozenset(),
             groups: dict[str, str] | None = None, size: int = SEQUENCE_SIZE) -> list[str]:
    return next_sequence(pool, voted, np.random.default_rng(seed), groups, size)


def share(pool: list[Tally], prefix: str) -> float:
    shown = [pid for seed in SEEDS for pid in sequence(pool, seed)]
    return sum(pid.startswith(prefix) for pid in shown) / len(shown)


def test_it_shows_12_distinct_proposals() -> None:
    pool = fresh(40) + probed(40)
    for seed in range(20):
        chosen = sequence(pool, seed)
        assert len(chosen) == SEQUENCE_SIZE == len(set(chosen))


def test_about_30_percent_of_a_sequence_is_new_proposals() -> None:
    assert share(fresh(100) + probed(100), "new") == pytest.approx(NEW_SHARE, abs=0.02)


def test_new_places_go_to_the_fewest_votes_first() -> None:
    pool = [Tally(f"new{v}", v // 2, v - v // 2, 0) for v in range(NEW_BELOW)] + fresh(6, 9, "late") + probed(60)
    for seed in range(50):
        shown = {pid for pid in sequence(pool, seed) if pid.startswith("new")}
        fewest = {f"new{v}" for v in range(len(shown))}
        assert shown == fewest  # as many as there are new places, the ones with fewest votes


def test_ties_among_new_proposals_are_broken_at_random() -> None:
    pool = fresh(30) + probed(60)
    seen = Counter(pid for seed in SEEDS for pid in sequence(pool, seed) if pid.startswith("new"))
    assert len(seen) == 30  # every one of the equally new proposals gets its turn
    assert max(seen.values()) < 3 * min(seen.values())


def test_the_rest_goes_to_the_edge_of_the_results_top_not_to_settled_winners() -> None:
    pool = (probed(9, agree=0.9, votes=600, prefix="top") + probed(1, agree=0.99, votes=1000, prefix="sure")
            + probed(3, agree=0.85, votes=30, prefix="edge") + probed(40, agree=0.2, prefix="low") + fresh(20))
    counts = Counter(pid.rstrip("0123456789") for seed in range(100) for pid in sequence(pool, seed))
    assert counts["edge"] >= 290  # the three that may still enter the top, nearly every time
    assert counts["top"] >= 250  # members of the top whose place is least sure
    assert counts["sure"] <= 2  # a winner beyond doubt needs no more votes
    assert counts["new"] == pytest.approx(100 * SEQUENCE_SIZE * NEW_SHARE, rel=0.1)


def test_with_few_proposals_tested_the_likeliest_consensus_comes_first() -> None:
    pool = probed(5, agree=0.9, prefix="good") + probed(5, agree=0.2, prefix="bad") + fresh(20)
    counts = Counter(pid[:3] for seed in range(100) for pid in sequence(pool, seed, size=6))
    assert counts["goo"] >= 330 and counts["bad"] <= 80  # the bad ones come as controversies only


def test_a_proposal_that_may_reach_the_top_gets_more_places_than_one_that_cannot() -> None:
    pool = (probed(1, agree=0.85, votes=20, prefix="unsure") + probed(1, agree=0.6, votes=1000, prefix="known")
            + probed(20, agree=0.9, votes=400, prefix="top") + probed(40, agree=0.3, prefix="low"))
    counts = Counter(pid for seed in SEEDS for pid in sequence(pool, seed))
    assert counts["unsure000"] > 20 and counts["known000"] == 0


def test_about_10_percent_of_a_sequence_is_likely_controversies() -> None:
    pool = ([Tally(f"split{i}", 90, 90, 20) for i in range(30)]
            + [Tally(f"agreed{i}", 190, 5, 5) for i in range(30)])
    assert share(pool, "split") == pytest.approx(CONTROVERSY_SHARE, abs=0.03)


def test_a_controversy_draw_is_high_only_when_agree_and_disagree_both_are() -> None:
    rng = np.random.default_rng(0)
    counts = np.array([[50, 48, 2], [95, 3, 2], [3, 95, 2], [30, 10, 60]], dtype=np.int64)
    draws = np.mean([controversy_draws(*counts.T, rng) for _ in range(200)], axis=0)
    assert draws.argmax() == 0 and draws[0] > 0.4 and max(draws[1:]) < 0.15


def test_the_prior_of_the_agree_rate_is_fitted_to_the_tested_proposals() -> None:
    assert agree_prior(np.array([5, 9]), np.array([10, 10])) == (1.0, 1.0)  # too few to fit
    agree = np.array([50, 55, 60, 65, 70, 3])
    votes = np.array([100, 100, 100, 100, 100, 5])  # the new one does not count
    a, b = agree_prior(agree, votes)
    assert a / (a + b) == pytest.approx(0.6)
    assert a + b == 20.0  # rates this close would be worth more: the prior is capped at 20 votes
    spread = agree_prior(np.array([5, 95, 10, 90, 50]), np.full(5, 100))
    assert sum(spread) == 2.0  # rates all over the place: the prior is worth 2 votes


def test_nothing_already_voted_on_is_shown() -> None:
    pool = fresh(10) + probed(10)
    voted = frozenset({"new000", "new003", "tested001", "tested009"})
    for seed in range(50):
        chosen = sequence(pool, seed, voted)
        assert not set(chosen) & voted
        assert len(chosen) == SEQUENCE_SIZE


def test_at_most_one_proposal_per_group_of_near_duplicates() -> None:
    pool = probed(20, agree=0.9) + fresh(20)
    groups = {f"tested{i:03d}": f"g{i // 4}" for i in range(20)} | {f"new{i:03d}": f"h{i // 5}" for i in range(20)}
    for seed in range(50):
        chosen = sequence(pool, seed, groups=groups)
        named = [groups[pid] for pid in chosen]
        assert len(named) == len(set(named)) == 9  # 5 groups of tested, 4 of new: all of them, once


def test_a_group_the_voter_already_voted_in_is_not_shown_again() -> None:
    pool = probed(4, agree=0.9) + fresh(4)
    groups = {"tested000": "g", "tested001": "g", "new000": "g", "removed": "g"}
    assert sorted(sequence(pool, voted=frozenset({"tested000"}), groups=groups)) == [
        "new001", "new002", "new003", "tested002", "tested003"]
    # A proposal no longer listed (refused after the vote) still closes its group.
    assert "tested001" not in sequence(pool, voted=frozenset({"removed"}), groups=groups)


def test_proposals_with_1500_votes_or_more_only_fill_in() -> None:
    chosen = sequence(fresh(2) + probed(3) + settled(50), seed=1)
    assert len(chosen) == SEQUENCE_SIZE
    assert {pid for pid in chosen if not pid.startswith("mature")} == {
        "new000", "new001", "tested000", "tested001", "tested002"}
    assert share(probed(30) + settled(30), "mature") == 0.0
    assert all(pid.startswith("mature") for pid in sequence(settled(20)))


def test_10_votes_make_a_proposal_tested_and_1500_votes_take_it_out_of_the_draws() -> None:
    nine = fresh(1, NEW_BELOW - 1, "nine") + probed(40, agree=0.5)
    assert all("nine000" in sequence(nine, seed) for seed in range(50))  # the only new proposal: every time
    ten = [Tally("ten", 1, NEW_BELOW - 1, 0)] + probed(40, agree=0.5)
    assert sum("ten" in sequence(ten, seed) for seed in range(50)) < 25  # tested, and a poor one
    edge = (probed(1, agree=0.95, votes=TESTED_BELOW - 1, prefix="edge")
            + probed(1, agree=0.95, votes=TESTED_BELOW, prefix="over") + probed(5, agree=0.5))
    shown = Counter(pid for seed in range(50) for pid in sequence(edge, seed, size=3))
    assert shown["edge000"] == 50 and shown["over000"] == 0


def test_new_proposals_fill_in_when_tested_ones_run_short_and_the_other_way_round() -> None:
    few_tested = sequence(fresh(20) + probed(2))
    assert len(few_tested) == SEQUENCE_SIZE and {"tested000", "tested001"} <= set(few_tested)
    few_new = sequence(fresh(1) + probed(20))
    assert len(few_new) == SEQUENCE_SIZE and "new000" in few_new


def test_the_same_seed_gives_the_same_sequence() -> None:
    pool = fresh(40, 3) + probed(40, agree=0.7) + settled(5)
    groups = {f"tested{i:03d}": f"g{i // 2}" for i in range(40)}
    voted = frozenset({"new001", "tested004"})
    assert sequence(pool, 7, voted, groups) == sequence(pool, 7, voted, groups)
    assert sequence(pool, 7, set(voted), groups) == sequence(pool, 7, list(voted), groups)
    assert sequence(pool, 7) != sequence(pool, 8)


def test_the_sequence_is_shuffled() -> None:
    pool = fresh(12)  # everything is shown: only the order differs
    orders = {tuple(sequence(pool, seed)) for seed in range(20)}
    assert len(orders) == 20 and {tuple(sorted(order)) for order in orders} == {tuple(sorted(orders.pop()))}
    firsts = Counter(sequence(probed(6, agree=0.95) + probed(30, agree=0.3, prefix="low"), seed)[0]
                     for seed in range(200))
    assert sum(count for pid, count in firsts.items() if pid.startswith("low")) > 40  # not the best ones first


def test_a_small_pool_gives_everything_allowed() -> None:
    assert sorted(sequence(fresh(2) + probed(1))) == ["new000", "new001", "tested000"]
    assert sorted(sequence(probed(3), voted=frozenset({"tested001"}))) == ["tested000", "tested002"]
    assert sequence(fresh(2) + probed(1), voted=frozenset({"new000", "new001", "tested000"})) == []


def test_an_empty_pool_or_size_gives_nothing() -> None:
    assert sequence([]) == []
    assert sequence(probed(5), size=0) == []


def test_another_size_keeps_the_shares() -> None:
    pool = fresh(100) + probed(100)
    shown = [pid for seed in SEEDS for pid in sequence(pool, seed, size=20)]
    assert len(shown) == 20 * len(SEEDS)
    assert sum(pid.startswith("new") for pid in shown) / len(shown) == pytest.approx(NEW_SHARE, abs=0.02)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 2000), st.integers(0, 2000)), max_size=60),
       st.sets(st.integers(0, 70)), st.dictionaries(st.integers(0, 59), st.integers(0, 9)),
       st.integers(0, 2 ** 32 - 1), st.integers(0, 30))
def test_any_tallies_give_distinct_allowed_proposals(counts: list[tuple[int, int, int]], voted_at: set[int],
                                                     grouped: dict[int, int], seed: int, size: int) -> None:
    pool = [Tally(f"p{i}", *c) for i, c in enumerate(counts)]
    voted = {f"p{i}" for i in voted_at}  # some voted-on proposals may no longer be listed
    groups = {f"p{i}": f"p{g}" for i, g in grouped.items()}  # as the service builds them: duplicate_of or itself
    chosen = next_sequence(pool, voted, np.random.default_rng(seed), groups, size)
    closed = {groups.get(pid, pid) for pid in voted}
    allowed = {t.proposal_id for t in pool if groups.get(t.proposal_id, t.proposal_id) not in closed}
    open_groups = {groups.get(pid, pid) for pid in allowed}
    assert len(chosen) == len(set(chosen)) == min(size, len(open_groups))
    assert set(chosen) <= allowed and not set(chosen) & voted
    assert len({groups.get(pid, pid) for pid in chosen}) == len(chosen)
    assert chosen == next_sequence(pool, voted, np.random.default_rng(seed), groups, size)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3000), st.integers(0, 3000)), min_size=1,
                max_size=40), st.integers(0, 2 ** 32 - 1))
def test_without_groups_or_votes_a_sequence_is_min_of_size_and_pool(counts: list[tuple[int, int, int]],
                                                                   seed: int) -> None:
    pool = [Tally(f"p{i}", *c) for i, c in enumerate(counts)]
    chosen = next_sequence(pool, set(), np.random.default_rng(seed))
    assert len(chosen) == len(set(chosen)) == min(SEQUENCE_SIZE, len(pool))


def test_groups_of_duplicates_merge_their_sources_and_survive_a_refused_link() -> None:
    from appliance.services.sequences import merged_groups

    ids = ["a", "b", "c", "d", "e"]
    groups = merged_groups(ids, {"b": "a"}, {"c": "b", "d": "d"})
    assert groups == {"a": "a", "b": "a", "c": "a", "d": "d", "e": "e"}
    # "z" was refused after the hourly snapshot linked "d" and "e" to it: they stay one group.
    groups = merged_groups(ids, {}, {"d": "z", "e": "z"})
    assert groups["d"] == groups["e"]
    assert len({groups[pid] for pid in ids}) == 4
