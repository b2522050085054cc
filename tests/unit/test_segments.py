"""The coarsening map frozen at open (ARCHITECTURE.md, storage rule 4)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.domain.segments import OTHER, build_coarsening, combo_key, headcounts, raw_combo

DIMENSIONS = ("department", "site")
ALL_OTHER = (OTHER, OTHER)


def people(*groups: tuple[int, str | None, str | None]) -> list[tuple[str, ...]]:
    """Raw combinations of `n` people per (n, department, site); None is a missing attribute."""
    raws = []
    for n, department, site in groups:
        attributes = {name: value for name, value in zip(DIMENSIONS, (department, site)) if value is not None}
        raws += [raw_combo(attributes, DIMENSIONS)] * n
    return raws


def test_it_reads_a_missing_or_empty_attribute_as_other() -> None:
    assert raw_combo({"department": "IT"}, DIMENSIONS) == ("IT", OTHER)
    assert raw_combo({"department": "", "site": "Lyon"}, DIMENSIONS) == (OTHER, "Lyon")
    assert raw_combo({}, DIMENSIONS) == ALL_OTHER
    assert raw_combo({"grade": "B", "site": "Lyon"}, ("site", "grade")) == ("Lyon", "B")


def test_it_keeps_combinations_that_already_hold_k_people() -> None:
    raws = people((6, "Finance", "Lyon"), (5, "IT", "Paris"), (5, None, None))
    mapping = build_coarsening(raws, 5)
    assert mapping == {("Finance", "Lyon"): ("Finance", "Lyon"), ("IT", "Paris"): ("IT", "Paris"),
                       ALL_OTHER: ALL_OTHER}


def test_it_turns_the_least_important_dimension_of_a_small_combination_into_other_first() -> None:
    raws = people((6, "Finance", "Lyon"), (2, "Finance", "Paris"), (4, "Finance", None),
                  (6, "IT", "Paris"), (5, None, None))
    mapping = build_coarsening(raws, 5)
    assert mapping[("Finance", "Paris")] == ("Finance", OTHER)
    assert mapping[("Finance", OTHER)] == ("Finance", OTHER)
    assert mapping[("IT", "Paris")] == ("IT", "Paris")
    assert headcounts(mapping, raws) == {
        '["Finance", "Lyon"]': 6, '["Finance", "other"]': 6, '["IT", "Paris"]': 6, '["other", "other"]': 5}


def test_it_coarsens_the_last_dimension_of_three_before_the_others() -> None:
    dims = ("department", "site", "grade")
    raws = ([raw_combo({"department": "IT", "site": "Paris", "grade": "A"}, dims)] * 5
            + [raw_combo({"department": "IT", "site": "Paris", "grade": "B"}, dims)] * 2
            + [raw_combo({"department": "IT", "site": "Paris"}, dims)] * 3
            + [raw_combo({"department": "IT", "site": "Lyon", "grade": "A"}, dims)] * 5
            + [raw_combo({}, dims)] * 5)
    mapping = build_coarsening(raws, 5)
    # the grade goes, not the site: 2 + 3 people share ("IT", "Paris", "other")
    assert mapping[("IT", "Paris", "B")] == ("IT", "Paris", OTHER)
    assert mapping[("IT", "Paris", OTHER)] == ("IT", "Paris", OTHER)
    assert mapping[("IT", "Paris", "A")] == ("IT", "Paris", "A")
    assert mapping[("IT", "Lyon", "A")] == ("IT", "Lyon", "A")
    assert mapping[(OTHER, OTHER, OTHER)] == (OTHER, OTHER, OTHER)


def test_it_moves_a_department_into_other_when_even_its_department_alone_is_too_small() -> None:
    raws = people((6, "Finance", "Lyon"), (3, "Legal", "Lyon"), (6, "IT", "Paris"), (5, None, None))
    mapping = build_coarsening(raws, 5)
    assert mapping[("Legal", "Lyon")] == ALL_OTHER
    assert headcounts(mapping, raws) == {'["Finance", "Lyon"]': 6, '["IT", "Paris"]': 6, '["other", "other"]': 8}


def test_it_fills_the_all_other_combination_up_to_k_with_the_smallest_combinations() -> None:
    raws = people((6, "Finance", "Lyon"), (7, "IT", "Paris"), (5, "Sales", "Lyon"))
    mapping = build_coarsening(raws, 5)
    # nobody was "other": the smallest combination is folded in so that late joiners are hidden among k
    assert mapping[("Sales", "Lyon")] == ALL_OTHER
    assert headcounts(mapping, raws) == {'["Finance", "Lyon"]': 6, '["IT", "Paris"]': 7, '["other", "other"]': 5}


def test_it_keeps_an_all_other_combination_of_k_or_more_as_it_is() -> None:
    raws = people((6, "Finance", "Lyon"), (5, "Sales", "Lyon"), (5, None, None))
    assert headcounts(build_coarsening(raws, 5), raws) == {
        '["Finance", "Lyon"]': 6, '["Sales", "Lyon"]': 5, '["other", "other"]': 5}


def test_it_tops_up_a_small_all_other_combination() -> None:
    raws = people((6, "Finance", "Lyon"), (7, "IT", "Paris"), (2, None, None))
    assert headcounts(build_coarsening(raws, 5), raws) == {'["IT", "Paris"]': 7, '["other", "other"]': 8}


def test_it_puts_a_tiny_audience_entirely_in_other() -> None:
    raws = people((2, "Finance", "Lyon"), (1, "IT", "Paris"), (1, None, "Paris"))
    mapping = build_coarsening(raws, 5)
    assert set(mapping.values()) == {ALL_OTHER}
    assert headcounts(mapping, raws) == {'["other", "other"]': 4}


def test_it_builds_an_empty_map_for_an_empty_audience() -> None:
    assert build_coarsening([], 5) == {}
    assert headcounts({}, []) == {}


def test_it_stores_a_combination_as_a_json_array_keeping_accents() -> None:
    assert combo_key(("Ingénierie", OTHER)) == '["Ingénierie", "other"]'


# Property tests: random audiences, random k.

VALUES = {
    "department": st.sampled_from(["Finance", "IT", "Sales", "Legal", "HR", "R&D", "Ops", ""]),
    "site": st.sampled_from(["Lyon", "Paris", "Nantes", "Lille", ""]),
    "grade": st.sampled_from(["A", "B", "C"]),
}


@st.composite
def audiences(draw: st.DrawFn) -> tuple[tuple[str, ...], list[tuple[str, ...]], int]:
    dims = tuple(draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=3, unique=True)))
    person = st.fixed_dictionaries({}, optional={d: VALUES[d] for d in dims})
    # People come in groups sharing attributes, so that skewed audiences of up to 200 are cheap to draw.
    groups = draw(st.lists(st.tuples(person, st.integers(min_value=1, max_value=40)), max_size=30))
    raws = [raw_combo(attributes, dims) for attributes, n in groups for _ in range(n)][:200]
    k = draw(st.integers(min_value=5, max_value=10))
    return dims, raws, k


PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(audiences())
def test_every_stored_combination_holds_at_least_k_members(audience) -> None:
    _, raws, k = audience
    mapping = build_coarsening(raws, k)
    stored = Counter(mapping[raw] for raw in raws)
    if len(raws) >= k:
        assert all(n >= k for n in stored.values()), (k, stored)
    elif raws:  # too few to split at all: everyone is "other"
        assert set(stored) == {(OTHER,) * len(raws[0])}


@PROPERTY
@given(audiences())
def test_the_all_other_combination_holds_at_least_k_members(audience) -> None:
    dims, raws, k = audience
    mapping = build_coarsening(raws, k)
    stored = Counter(mapping[raw] for raw in raws)
    if len(raws) >= k:
        assert stored[(OTHER,) * len(dims)] >= k, (k, stored)


@PROPERTY
@given(audiences())
def test_every_raw_combination_maps_to_one_that_only_replaces_values_by_other(audience) -> None:
    _, raws, k = audience
    mapping = build_coarsening(raws, k)
    assert set(mapping) == set(raws)
    for raw, stored in mapping.items():
        assert len(stored) == len(raw)
        assert all(s in (r, OTHER) for r, s in zip(raw, stored)), (raw, stored)


@PROPERTY
@given(audiences())
def test_headcounts_sum_to_the_audience_size(audience) -> None:
    _, raws, k = audience
    counts = headcounts(build_coarsening(raws, k), raws)
    assert sum(counts.values()) == len(raws)
    assert all(n > 0 for n in counts.values())
