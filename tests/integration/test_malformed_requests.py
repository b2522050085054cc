"""Inputs found by fuzzing the API: each must get a 4xx problem, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import create_open_round

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("body", [
    b'{"username": "\xff", "password": "x"}',
    b"[" * 1000 + b"]" * 1000,
    b"{not json",
])
def test_a_malformed_json_body_is_a_400_problem(api, body):
    response = api(None).post("/api/v1/session", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["title"] == "Bad Request"


@pytest.mark.parametrize("path", ["/api/v1/rounds/x/moderation", "/api/v1/rounds/x/proposals/y/accept",
                                  "/api/v1/rounds/x/proposals/y/refuse", "/api/v1/rounds"])
def test_an_options_request_is_answered_without_signing_in(api, path):
    assert api(None).options(path).status_code == 204


def test_a_missing_body_is_named_as_such(api):
    response = api("admin").post("/api/v1/rounds")
    assert response.status_code == 400
    assert response.json()["detail"] == "a JSON body is required"


@pytest.mark.parametrize("fields, message", [
    ({"dimensions": ["department", " department"]}, "dimensions must not repeat"),
    ({"title": "\u0000"}, "title and question must not be empty"),
    ({"question": " \t "}, "title and question must not be empty"),
])
def test_a_round_with_blank_or_repeated_fields_is_refused(api, fields, message):
    body = {"title": "A round", "question": "What would help?"} | fields
    response = api("admin").post("/api/v1/rounds", json=body)
    assert response.status_code == 400
    assert response.json()["detail"] == message


def test_the_csv_export_names_its_charset_once(api):
    admin = api("admin")
    round_id = create_open_round(admin)
    admin.post(f"/api/v1/rounds/{round_id}/close")
    response = admin.get(f"/api/v1/rounds/{round_id}/results.csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"


def test_the_schema_documents_errors_as_problems(api):
    schema = api(None).get("/schema/openapi.json").json()
    ballots = schema["paths"]["/api/v1/rounds/{round_id}/ballots"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409"} <= set(ballots)
    assert "application/problem+json" in ballots["409"]["content"]


def test_a_proposal_that_looks_like_a_formula_is_exported_as_text(api):
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin)
    formula = '=HYPERLINK("http://example.org","click")'
    assert api("u00").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": formula}).status_code == 201
    (pending,) = mod.get(f"/api/v1/rounds/{round_id}/moderation").json()
    mod.post(f"/api/v1/rounds/{round_id}/proposals/{pending['id']}/accept")
    admin.post(f"/api/v1/rounds/{round_id}/close")
    csv_text = admin.get(f"/api/v1/rounds/{round_id}/results.csv").text
    assert csv_text.splitlines()[1].startswith(",\"'=HYPERLINK(")


def test_a_formula_after_a_comma_or_a_semicolon_is_exported_as_text_whatever_the_separator(api):
    from appliance.web.api.results import spreadsheet_safe

    assert spreadsheet_safe("Plus de vélos,=cmd|' /C calc'!A0,merci") == "Plus de vélos,'=cmd|' /C calc'!A0,merci"
    assert spreadsheet_safe("a; +1; @SUM(A1); -2, fin. 3.5") == "a; '+1; '@SUM(A1); '-2, fin. 3.5"
    admin = api("admin")
    round_id = create_open_round(admin, moderation="post")
    text = "Plus de vélos, merci;=cmd|' /C calc'!A0"
    assert api("u00").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).status_code == 201
    admin.post(f"/api/v1/rounds/{round_id}/close")
    for separator in ("comma", "semicolon"):
        row = admin.get(f"/api/v1/rounds/{round_id}/results.csv", params={"separator": separator}).text.splitlines()[1]
        for cut in (",", ";"):  # opened with either separator, no cell starts a formula
            assert not any(cell.strip('"')[:1] in "=+-@" for cell in row.split(cut) if cell), (separator, cut, row)
        assert "Plus de vélos, merci;'=cmd" in row  # and the text, with its full stop and commas, reads the same
