"""GET /metrics and GET /api/v1/audit through HTTP: operators' counts that name nobody."""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import create_open_round

TOKEN = "scrape-token-0123456789"


@pytest.fixture
def settings_overrides() -> dict[str, dict]:
    return {"server": {"metrics_token": TOKEN}}


def scrape(api) -> str:
    """What the monitoring system reads, with its token."""
    response = api(None).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return response.text


SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$')


def voted_round(api) -> tuple[str, list[str], list[str]]:
    """An open round with two accepted proposals and votes of six people; its id, proposal ids, usernames."""
    admin = api("admin")
    round_id = create_open_round(admin, moderation="post", audience_groups=["staff"])
    usernames = [f"u{i:02d}" for i in range(6)]
    voters = [api(name) for name in usernames]
    proposals = [voters[i].post(f"/api/v1/rounds/{round_id}/proposals",
                                json={"text": text}).json()["id"]
                 for i, text in enumerate(["Hold fewer and shorter meetings", "Publish the menu a week ahead"])]
    for voter in voters:
        for proposal in proposals:
            response = voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal, "vote": "agree"})
            assert response.status_code == 200
    return round_id, proposals, usernames


def test_metrics_count_requests_by_route_and_votes_cast(api) -> None:
    voted_round(api)
    response = api(None).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert "appliance_votes_cast_total 12" in text
    assert "appliance_proposals_submitted_total 2" in text
    assert ('appliance_http_requests_total{method="POST",route="/api/v1/rounds/{round_id}/ballots",status="200"} 12'
            in text)
    assert 'appliance_http_request_duration_seconds_count{method="POST",route="/api/v1/rounds/{round_id}/ballots"} 12' in text
    assert 'appliance_rounds{status="open"} 1' in text
    assert 'appliance_outbox_messages{state="waiting"} 0' in text
    assert re.search(r'appliance_job_runs_total\{job="rounds"\} \d+', text)


def test_metrics_are_well_formed_prometheus_text(api) -> None:
    voted_round(api)
    for line in scrape(api).splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or SAMPLE.match(line), line


def test_metrics_name_no_person_round_or_proposal(api, appliance) -> None:
    round_id, proposals, usernames = voted_round(api)
    api("u01").get(f"/api/v1/rounds/{round_id}/proposals")
    api("u02").post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": "not-a-proposal", "vote": "agree"})
    text = scrape(api)
    person_ids = [p.id for p in appliance.directory.audience([])]
    for secret in [round_id, *proposals, *usernames, *person_ids, "admin", "example.org"]:
        assert secret not in text


def test_unknown_paths_never_appear_in_the_metrics(api) -> None:
    client = api(None)
    client.get("/api/v1/rounds/some-secret-id/nothing-here")
    text = scrape(api)
    assert "some-secret-id" not in text


def test_votes_and_proposals_from_the_pages_forms_are_counted_too(api, pages) -> None:
    round_id = create_open_round(api("admin"), moderation="post", audience_groups=["staff"])
    employee = pages("u01")
    assert employee.submit(f"/rounds/{round_id}/proposals", {"text": "Hold fewer and shorter meetings"}
                           ).status_code == 303
    [proposal] = api("u02").get(f"/api/v1/rounds/{round_id}/proposals").json()
    assert employee.submit(f"/rounds/{round_id}/ballots", {"proposal": proposal["id"], "choice": "agree"}
                           ).status_code == 303
    text = employee.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text  # the pages' own app
    assert "appliance_votes_cast_total 1" in text and "appliance_proposals_submitted_total 1" in text


class TestWithoutAMetricsToken:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, dict]:
        return {}

    def test_metrics_are_off_without_a_token(self, api) -> None:
        """Live counts would say when someone voted: only the monitoring system, with its token, reads them."""
        response = api(None).get("/metrics")
        assert response.status_code == 404 and "server.metrics_token" in response.text
        assert "appliance_votes_cast_total" not in api("admin").get("/metrics").text


class TestWithAMetricsToken:
    def test_a_metrics_token_is_asked_for_when_set(self, api) -> None:
        client = api(None)
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"}).status_code == 200


def test_admins_read_the_audit_log_newest_first(api) -> None:
    admin = api("admin")
    round_id = create_open_round(admin)
    admin.post(f"/api/v1/rounds/{round_id}/close")
    entries = admin.get("/api/v1/audit", params={"limit": 2}).json()
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("admin", "round.close", round_id), ("admin", "round.open", round_id)]
    assert set(entries[0]) == {"at", "actor", "action", "target", "detail"}


def test_only_admins_read_the_audit_log(api) -> None:
    assert api("u01").get("/api/v1/audit").status_code == 403
    assert api("mod").get("/api/v1/audit").status_code == 403
    assert api(None).get("/api/v1/audit").status_code == 401
    assert api("admin").get("/api/v1/audit", params={"limit": 0}).status_code == 400


def test_no_log_record_names_a_voter_or_what_they_wrote(api, appliance, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    round_id, proposals, usernames = voted_round(api)
    api("u03").post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": "nope", "vote": "agree"})
    server_records = [r for r in caplog.records if not r.name.startswith("httpx")]  # the test's own client
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in server_records)
    person_ids = [p.id for p in appliance.directory.audience([])]
    for secret in [*usernames, *person_ids, "Hold fewer and shorter meetings", *proposals]:
        assert secret not in text
