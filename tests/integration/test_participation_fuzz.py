"""Generated inputs against the participation and moderation endpoints: a 4xx problem or a success, never a 5xx."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import create_open_round

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
FIELDS = ("text", "proposal", "vote", "qualification", "reason", "note", "of")
BODIES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({}, optional={name: JSON_VALUES for name in FIELDS}),
    st.fixed_dictionaries({"text": st.text(max_size=400)}),
    st.fixed_dictionaries({"proposal": st.text(max_size=40), "vote": st.sampled_from(["agree", "disagree", "neutral",
                                                                                      "maybe", ""]),
                           "qualification": st.none() | st.text(max_size=20)}),
)
IDS = st.one_of(st.text(alphabet="0123456789abcdef", min_size=1, max_size=20),
                st.text(min_size=1, max_size=20).map(lambda s: quote(s, safe="")))  # any text, as a path segment
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def desk(api):
    """An open round with one accepted and one pending proposal; an employee and a moderator signed in."""
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    employee, mod = api("u01"), api("mod")
    for text in ("Flexible hours for everyone", "A quiet room on every floor"):
        assert employee.post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    queue = mod.get(f"/api/v1/rounds/{round_id}/moderation").json()
    assert mod.post(f"/api/v1/rounds/{round_id}/proposals/{queue[0]['id']}/accept").status_code == 200
    return round_id, [p["id"] for p in queue], employee, mod


def answered(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        assert response.json()["detail"]


@FUZZ
@given(body=BODIES)
def test_employee_endpoints_never_fail_on_generated_bodies(desk, body):
    round_id, _, employee, _ = desk
    for path in ("proposals", "ballots"):
        answered(employee.post(f"/api/v1/rounds/{round_id}/{path}", json=body))
    answered(employee.get(f"/api/v1/rounds/{round_id}/sequence"))


@FUZZ
@given(body=BODIES, proposal=IDS, which=st.integers(min_value=0, max_value=2))
def test_moderation_endpoints_never_fail_on_generated_bodies_and_ids(desk, body, proposal, which):
    round_id, ids, employee, mod = desk
    target = ids[which] if which < len(ids) else proposal
    for action in ("claim", "accept", "refuse", "correct", "duplicate"):
        for client in (mod, employee):
            answered(client.post(f"/api/v1/rounds/{round_id}/proposals/{target}/{action}", json=body))


@FUZZ
@given(round_id=IDS)
def test_unknown_rounds_are_a_4xx(desk, round_id):
    _, _, employee, mod = desk
    answered(employee.get(f"/api/v1/rounds/{round_id}/sequence"))
    answered(mod.get(f"/api/v1/rounds/{round_id}/moderation"))
    answered(employee.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": "x", "vote": "agree"}))


DATES = st.one_of(st.none(), st.text(max_size=30), st.integers(),
                  st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()))
ROUND_CHANGES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({}, optional={"title": JSON_VALUES, "question": JSON_VALUES, "description": JSON_VALUES,
                                        "opens_at": DATES, "closes_at": DATES, "proposals_close_at": DATES}),
)


@FUZZ
@given(body=ROUND_CHANGES, which=st.sampled_from(["draft", "open"]))
def test_editing_a_round_never_fails_on_generated_bodies(api, pages, body, which):
    admin = api("admin")
    response = admin.post("/api/v1/rounds", json={"title": "Canteen", "question": "How could the canteen serve us?"})
    round_id = response.json()["id"]
    if which == "open":
        assert admin.post(f"/api/v1/rounds/{round_id}/open").status_code == 200
    answered(admin.patch(f"/api/v1/rounds/{round_id}", json=body))
    answered(admin.get(f"/api/v1/rounds/{round_id}"))  # whatever was stored can be read back, and shown
    assert pages("admin").get(f"/admin/rounds/{round_id}").status_code == 200
