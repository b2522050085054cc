"""Results by dimension, CSV and participation through HTTP, with the disclosure rules visible."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from appliance.storage import audit
from appliance.web.api.results import download_name
from tests.conftest import add_person, create_open_round

# 34 more staff: Finance 12, IT 10, Legal 6 and HR 6, of whom only 3 each take part (too few to be shown).
DEPARTMENTS = ["Finance"] * 12 + ["IT"] * 10 + ["Legal"] * 6 + ["HR"] * 6
CROWD = [(f"c{i:02d}", department, "Lyon" if i % 2 else "Paris") for i, department in enumerate(DEPARTMENTS)]
ABSENT = {"c25", "c26", "c27", "c31", "c32", "c33"}  # half of Legal and of HR never vote


@pytest.fixture
def crowd(appliance):
    for username, department, site in CROWD:
        add_person(appliance, username, {"staff"}, {"department": department, "site": site})
    return [username for username, _, _ in CROWD]


def closed_round(api, crowd, votes) -> tuple[object, str, str]:
    """A round on department and site where each crowd member votes votes(username, department)."""
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin, audience_groups=["staff"], dimensions=["department", "site"])
    author = api(crowd[0])
    proposal = author.post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Flexible hours for everyone"})
    proposal_id = proposal.json()["id"]
    assert mod.post(f"/api/v1/rounds/{round_id}/proposals/{proposal_id}/accept").status_code == 200
    for username, department, _ in CROWD:
        choice = votes(username, department)
        if choice and username not in ABSENT:
            voter = author if username == crowd[0] else api(username)
            response = voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal_id, "vote": choice})
            assert response.status_code == 200, response.text
    assert admin.post(f"/api/v1/rounds/{round_id}/close").status_code == 200
    return admin, round_id, proposal_id


def test_results_by_department_show_big_segments_and_pool_the_small_one(api, crowd) -> None:
    def votes(username: str, department: str) -> str:
        if username in ("c11", "c21"):
            return "neutral"  # not unanimous: a unanimous cell needs k of its audience who did not vote
        return "agree" if department == "Finance" else "disagree"

    admin, round_id, _ = closed_round(api, crowd, votes)
    view = admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "department"}).json()
    assert view["dimension"] == "department" and view["main_dimension"] == "department"
    assert view["voters"] == 28
    segments = {s["name"]: s for s in view["segments"]}
    assert segments["Finance"]["shown"] and segments["IT"]["shown"]
    assert not segments["Legal"]["shown"] and segments["Legal"]["note"] == "not enough responses"
    assert segments["Legal"]["participation"] is None
    [proposal] = view["proposals"]
    cells = {c["segment"]: c for c in proposal["cells"]}
    # 11 of 12 agree in Finance, 9 of 10 disagree in IT; the noise (up to 2 per count) can bring
    # them down to (9 + 0.33) / (9 + 3 + 1) and (7 + 0.33) / (7 + 3 + 1), at worst.
    assert cells["Finance"]["rates"]["agree"]["value"] >= 0.7
    assert cells["IT"]["rates"]["disagree"]["value"] >= 0.65
    assert cells["Legal"]["rates"] is None and cells["Legal"]["note"] == "not enough responses"
    for cell in proposal["cells"]:  # Legal (3 voters) alone is never shown, nor IT + Legal as a pool of 13 minus IT
        if cell["rates"]:
            for figure in cell["rates"].values():
                assert round(figure["value"] * 20, 6) == round(figure["value"] * 20)  # multiples of 5 points
    pool = [c for c in proposal["cells"] if c["pooled"]]
    assert len(pool) == 1 and pool[0]["segment"] == "other" and pool[0]["rates"]  # Legal + HR: 6 voters
    assert segments["other"]["pooled"] and segments["other"]["shown"]
    assert proposal["cross_segment_consensus"] is not None


def test_an_unknown_dimension_is_a_400(api, crowd) -> None:
    admin, round_id, _ = closed_round(api, crowd, lambda u, d: "agree")
    response = admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "grade"})
    assert response.status_code == 400
    assert response.json()["detail"] == "unknown dimension 'grade': this round's dimensions are department, site"


def test_the_representative_estimate_weighs_departments_by_their_audience(api, crowd) -> None:
    # Finance (12 of 25 in the crowd, plus 4 staff of the base seed) all agree; IT all disagree.
    admin, round_id, _ = closed_round(api, crowd, lambda u, d: "agree" if d == "Finance" else "disagree")
    view = admin.get(f"/api/v1/rounds/{round_id}/results").json()
    [proposal] = view["proposals"]
    representative = proposal["representative"]
    assert representative is not None
    assert representative["agree"]["low"] <= representative["agree"]["value"] <= representative["agree"]["high"]


def test_the_csv_has_a_row_per_segment_with_the_same_hidden_cells(api, crowd) -> None:
    admin, round_id, _ = closed_round(api, crowd, lambda u, d: "agree")
    text = admin.get(f"/api/v1/rounds/{round_id}/results.csv", params={"dimension": "department"}).text
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [row["segment"] for row in rows][:1] == ["all"]
    by_segment = {row["segment"]: row for row in rows}
    assert by_segment["Legal"]["note"] == "not enough responses" and by_segment["Legal"]["agree"] == ""
    assert by_segment["Finance"]["dimension"] == "department"


def test_the_csv_opens_in_excel_with_its_accents_and_in_french_excel_in_columns(api, crowd) -> None:
    admin, round_id, _ = closed_round(api, crowd, lambda u, d: "agree" if u < "c15" else "neutral")
    url = f"/api/v1/rounds/{round_id}/results.csv"
    english = admin.get(url, params={"dimension": "department"})
    assert english.content.startswith(b"\xef\xbb\xbfrank,proposal,")  # UTF-8 byte order mark: Excel keeps the accents
    title = admin.get(f"/api/v1/rounds/{round_id}").json()["title"]
    assert english.headers["content-disposition"] == (
        f'attachment; filename="results-{download_name(title, None, round_id)[8:-4]}-by-department.csv"')
    french = admin.get(url, params={"dimension": "department", "separator": "semicolon"})
    comma_rows = list(csv.reader(io.StringIO(english.text.removeprefix("\ufeff"))))
    semicolon_rows = list(csv.reader(io.StringIO(french.text.removeprefix("\ufeff")), delimiter=";"))
    assert len(semicolon_rows) == len(comma_rows) and len(semicolon_rows[1]) == len(comma_rows[1])
    for ours, theirs in zip(semicolon_rows, comma_rows):  # the same cells, decimal commas in the figures only
        assert ours[1:4] == theirs[1:4] and ours[4:] == [cell.replace(".", ",") for cell in theirs[4:]]
    assert any("," in cell for cell in semicolon_rows[1][6:])
    wrong = admin.get(url, params={"separator": "tab"})
    assert wrong.status_code == 400 and "separator" in wrong.text


@pytest.mark.parametrize("title, dimension, name", [
    ("Canteen & coffee: 2027!", "site", "results-canteen-coffee-2027-by-site.csv"),
    ("Déjà-vu à l'Œuvre", None, "results-deja-vu-a-l-oeuvre.csv"),
    ("Équipe   ÉTÉ", "département", "results-equipe-ete-by-departement.csv"),
    ("¿?", None, "results-r1.csv"),  # nothing left of the title: the round's id
    ("x" * 200, None, "results-" + "x" * 60 + ".csv"),
    ('a"b\r\nc', "x/../y", "results-a-b-c-by-x-y.csv"),  # nothing that could break the header or a path
])
def test_the_csv_is_named_after_its_round_and_breakdown(title, dimension, name) -> None:
    assert download_name(title, dimension, "r1") == name


def test_an_admin_s_csv_export_is_audited_but_not_a_head_nor_an_employee_s_download(api, crowd, appliance) -> None:
    admin, round_id, _ = closed_round(api, crowd, lambda u, d: "agree")
    assert admin.post(f"/api/v1/rounds/{round_id}/publish").status_code == 200
    csv_url = f"/api/v1/rounds/{round_id}/results.csv"

    def exports() -> list[str]:
        return [actor for _, actor, action, *_ in audit.recent(appliance.dbs.identity) if action == "results.export"]

    assert admin.head(csv_url).status_code == 200 and exports() == []  # a monitoring probe, a link checker
    assert api(crowd[1]).get(csv_url).status_code == 200 and exports() == []  # employees read published results
    assert admin.get(csv_url).status_code == 200 and exports() == ["admin"]


def test_results_stay_the_same_when_asked_again_or_by_another_dimension_first(api, crowd) -> None:
    admin, round_id, _ = closed_round(api, crowd, lambda u, d: "agree" if u < "c15" else "neutral")
    first = admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "department"}).json()
    admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "site"})
    again = admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "department"}).json()
    assert first == again


def test_the_schema_documents_the_results_shape_with_an_example(api) -> None:
    schema = api(None).get("/schema/openapi.json").json()
    operation = schema["paths"]["/api/v1/rounds/{round_id}/results"]["get"]
    content = operation["responses"]["200"]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/ResultsOut"}
    [example] = content["examples"].values()
    assert example["value"]["segments"][1]["note"] == "not enough responses"
    assert "representative" in schema["components"]["schemas"]["ProposalResultOut"]["properties"]
    parameters = operation["parameters"]
    assert any(p["name"] == "dimension" and p["in"] == "query" for p in parameters)


# participation

class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def test_participation_while_open_is_a_band_seen_once_a_day_and_shown_a_day_late(api, appliance, crowd) -> None:
    appliance.clock = clock = Clock()
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    author = api("c00")
    proposal_id = author.post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Flexible hours for all"}).json()["id"]
    api("mod").post(f"/api/v1/rounds/{round_id}/proposals/{proposal_id}/accept")

    def vote(username: str) -> None:
        assert api(username).post(f"/api/v1/rounds/{round_id}/ballots",
                                  json={"proposal": proposal_id, "vote": "agree"}).status_code == 200

    for username in crowd[:7]:
        vote(username)
    first_day = admin.get(f"/api/v1/rounds/{round_id}/participation").json()
    assert first_day == {"round_id": round_id, "status": "open", "band": None, "as_of": None, "voters": None,
                         "history": []}
    for username in crowd[7:20]:
        vote(username)
    assert admin.get(f"/api/v1/rounds/{round_id}/participation").json()["band"] is None  # same day: nothing new
    clock.now += timedelta(days=1)
    admin = api("admin")  # sessions last 12 hours
    second_day = admin.get(f"/api/v1/rounds/{round_id}/participation").json()
    assert (second_day["band"], second_day["as_of"]) == ("5 to 9", "2026-03-02")  # the first look, a day late
    clock.now += timedelta(days=1)
    admin = api("admin")
    third_day = admin.get(f"/api/v1/rounds/{round_id}/participation").json()
    assert (third_day["band"], third_day["as_of"]) == ("10 to 24", "2026-03-03")
    assert third_day["history"] == [{"day": "2026-03-02", "band": "5 to 9"}, {"day": "2026-03-03", "band": "10 to 24"}]
    assert api("c00").get(f"/api/v1/rounds/{round_id}/participation").status_code == 403
    response = admin.post(f"/api/v1/rounds/{round_id}/close")
    assert response.status_code == 200, response.text
    closed = admin.get(f"/api/v1/rounds/{round_id}/participation").json()
    assert (closed["status"], closed["voters"], closed["band"]) == ("closed", 20, "10 to 24")


def test_participation_days_are_the_organisation_s_days(api, appliance, crowd) -> None:
    """A look at 23:30 UTC on 2 March is on 3 March in Paris (server.time_zone), as every other date shown."""
    appliance.clock = clock = Clock()
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    clock.now = datetime(2026, 3, 2, 23, 30, tzinfo=timezone.utc)
    admin = api("admin")  # sessions last 12 hours
    assert admin.get(f"/api/v1/rounds/{round_id}/participation").status_code == 200
    clock.now += timedelta(hours=1)  # 01:30 in Paris on 3 March: the same day, nothing new to record
    assert admin.get(f"/api/v1/rounds/{round_id}/participation").status_code == 200
    clock.now += timedelta(days=1)
    seen = api("admin").get(f"/api/v1/rounds/{round_id}/participation").json()
    assert seen["as_of"] == "2026-03-03" and [h["day"] for h in seen["history"]] == ["2026-03-03"]


def test_a_unanimous_segment_is_hidden_unless_k_of_its_audience_did_not_vote(api, crowd) -> None:
    admin, round_id, _ = closed_round(api, crowd, lambda u, d: "agree" if d == "Finance" else "disagree")
    view = admin.get(f"/api/v1/rounds/{round_id}/results", params={"dimension": "department"}).json()
    cells = {c["segment"]: c for c in view["proposals"][0]["cells"]}
    assert cells["Finance"]["rates"] is None  # 12 of 16 voted, all agree: only 4 did not vote
    assert cells["IT"]["rates"] is None  # 10 of 14 voted, all disagree



def test_participation_bands_are_stored_without_counts_and_not_in_the_ballots_file(api, appliance, crowd) -> None:
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    admin.get(f"/api/v1/rounds/{round_id}/participation")
    rows = list(appliance.dbs.identity.execute("SELECT * FROM participation_snapshots"))
    assert [row[2] for row in rows] == ["fewer than 5"]
    assert "participation" not in " ".join(appliance.dbs.ballots.table_names())


def test_a_band_recorded_at_the_end_of_a_day_is_shown_a_full_day_later(api, appliance, crowd) -> None:
    """The first reading of a day records its band: read at 23:59, it must not be shown at 00:00 the next day."""
    appliance.clock = clock = Clock()
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"])
    clock.now = datetime(2026, 3, 2, 22, 59, 59, tzinfo=timezone.utc)  # 23:59:59 in Paris (server.time_zone)
    admin = api("admin")  # sessions last 12 hours
    assert admin.get(f"/api/v1/rounds/{round_id}/participation").json()["band"] is None  # recorded, not shown
    clock.now += timedelta(seconds=2)  # 00:00:01 on 3 March
    assert admin.get(f"/api/v1/rounds/{round_id}/participation").json()["band"] is None
    clock.now = datetime(2026, 3, 3, 22, 59, 58, tzinfo=timezone.utc)
    admin = api("admin")
    assert admin.get(f"/api/v1/rounds/{round_id}/participation").json()["band"] is None  # a second short of a day
    clock.now += timedelta(seconds=1)
    seen = admin.get(f"/api/v1/rounds/{round_id}/participation").json()
    assert (seen["band"], seen["as_of"]) == ("fewer than 5", "2026-03-02")
