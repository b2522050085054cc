"""`appliance import polis DIR` on a real Polis export (tests/data/polis, CC BY 4.0) and on broken ones."""

from __future__ import annotations

import csv
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.directory import Person
from appliance.domain.proposals import clean_text
from appliance.domain.rounds import Round
from appliance.services.context import build_appliance
from appliance.services.rounds import round_results, visible_rounds
from appliance.settings import load_settings
from appliance.storage import audit, people
from appliance.storage.ballots import load_counts
from appliance.storage.rounds import get_round, list_rounds
from tests.conftest import add_person

LONDON = Path(__file__).parents[1] / "data" / "polis" / "london.youth.policing"
REFUSED = "imported: moderated out in Polis"
# comments.csv's agrees count every row of votes.csv; the import keeps a participant's last vote
# on a comment. In this export two participants agreed twice with the same comment: voter 14
# on comment 10 (rows 0.15 s apart) and voter 5 on comment 25, so Polis shows one agree more
# on each. Every other agree and disagree count is equal.
EXTRA_POLIS_AGREES = {10: 1, 25: 1}


def ballots_rows(table: str) -> int:
    db = sqlite3.connect(load_settings().storage.ballots_db)
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def stored_round() -> Round:
    """The one round of the data directory."""
    app = build_appliance(load_settings())
    (round_,) = list_rounds(app.dbs.ballots)
    app.close()
    return round_


def polis_comments(folder: Path) -> dict[str, dict[str, str]]:
    """comments.csv rows by comment text as proposals store it (unique in the London export)."""
    with open(folder / "comments.csv", newline="", encoding="utf-8") as file:
        return {clean_text(row["comment-body"]): row for row in csv.DictReader(file)}


def imported_votes(round_id: str) -> dict[str, dict[str, int]]:
    """Per proposal text: votes by option, summed over combinations."""
    app = build_appliance(load_settings())
    counts, _ = load_counts(app.dbs.ballots, round_id)
    texts = dict(app.dbs.ballots.execute("SELECT id, text FROM proposals WHERE round_id = ?", [round_id]).fetchall())
    app.close()
    votes: dict[str, dict[str, int]] = {text: {"agree": 0, "disagree": 0, "neutral": 0} for text in texts.values()}
    for pid, options in counts.totals().items():
        votes[texts[pid]].update(options)
    return votes


def import_polis(args: list[str], capsys: pytest.CaptureFixture) -> str:
    """Import; the round id read back from the summary line."""
    assert main(["import", "polis", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("imported round ") and out.count("\n") == 1
    return out.split()[2]


def test_it_imports_a_polis_conversation_as_a_closed_round(capsys):
    assert main(["import", "polis", str(LONDON)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("imported round ") and out.count("\n") == 1
    assert ('"What is the best way to engage more young people in local scrutiny of policing?": 36 proposals'
            ' accepted, 3 refused; 26 voters, 638 votes (2 earlier votes replaced by a later one);'
            ' seen by admins') in out
    round_ = stored_round()
    assert round_.status == "closed" and round_.dimensions == () and round_.k == 5
    assert round_.audience_groups == ("admins",)  # tried out by the admins before the company hears of it
    assert round_.opens_at is None and round_.closes_at is None


def test_each_proposal_has_the_polis_agrees_and_disagrees_but_for_repeated_votes(capsys):
    round_id = import_polis([str(LONDON)], capsys)
    votes = imported_votes(round_id)
    comments = polis_comments(LONDON)
    assert set(votes) == set(comments)
    for text, row in comments.items():
        extra = EXTRA_POLIS_AGREES.get(int(row["comment-id"]), 0)
        assert votes[text]["agree"] == int(row["agrees"]) - extra, row["comment-id"]
        assert votes[text]["disagree"] == int(row["disagrees"]), row["comment-id"]


def test_comments_moderated_out_in_polis_are_refused_proposals(capsys):
    round_id = import_polis([str(LONDON)], capsys)
    db = sqlite3.connect(load_settings().storage.ballots_db)
    rows = db.execute("SELECT text, status, refusal_reason, author_label FROM proposals WHERE round_id = ?",
                      (round_id,)).fetchall()
    db.close()
    refused = sorted(text for text, status, _, _ in rows if status == "refused")
    assert refused == ["Are you between 15 and 19 years old?", "I am between 20 and 24 years old.",
                       "I am between 25 and 29 years old."]
    assert {reason for _, status, reason, _ in rows if status == "refused"} == {REFUSED}
    assert {status for _, status, _, _ in rows} == {"accepted", "refused"}
    assert all(label is None for *_, label in rows)


def test_it_stores_counts_and_voters_per_combination_and_no_voter_rows(capsys):
    round_id = import_polis([str(LONDON)], capsys)
    app = build_appliance(load_settings())
    _, combo_voters = load_counts(app.dbs.ballots, round_id)
    app.close()
    assert combo_voters == {"[]": 26}
    assert ballots_rows("ballots") == ballots_rows("voters") == ballots_rows("headcounts") == 0
    assert sum(sum(v.values()) for v in imported_votes(round_id).values()) == 638


def test_with_groups_stores_polis_groups_coarsened_to_k_voters(capsys):
    round_id = import_polis([str(LONDON), "--with-groups"], capsys)
    app = build_appliance(load_settings())
    _, combo_voters = load_counts(app.dbs.ballots, round_id)
    app.close()
    assert stored_round().dimensions == ("polis_group",)
    # group 1 has 18 voters; groups 0 and 2 (3 each) and the 2 ungrouped are fewer than k = 5 each
    assert combo_voters == {'["1"]': 18, '["other"]': 8}
    comments = polis_comments(LONDON)
    votes = imported_votes(round_id)
    assert all(votes[t]["disagree"] == int(row["disagrees"]) for t, row in comments.items())


def test_without_votes_csv_it_takes_the_final_votes_of_participants_votes(tmp_path, capsys):
    folder = tmp_path / "london"
    shutil.copytree(LONDON, folder)
    (folder / "votes.csv").unlink()
    from_participants = imported_votes(import_polis([str(folder)], capsys))
    from_votes = imported_votes(import_polis([str(LONDON)], capsys))
    assert from_participants == from_votes


def test_title_and_k_can_be_chosen(capsys):
    import_polis([str(LONDON), "--title", "  Young people and policing ", "--k", "7"], capsys)
    round_ = stored_round()
    assert round_.title == "Young people and policing" and round_.k == 7


def test_without_a_summary_the_title_is_the_folder_name(tmp_path, capsys):
    folder = tmp_path / "youth-policing"
    shutil.copytree(LONDON, folder)
    (folder / "summary.csv").unlink()
    import_polis([str(folder)], capsys)
    round_ = stored_round()
    assert round_.title == "youth-policing"


def test_the_import_is_audited(capsys):
    round_id = import_polis([str(LONDON)], capsys)
    app = build_appliance(load_settings())
    entries = [entry[1:4] for entry in audit.recent(app.dbs.identity)]
    app.close()
    assert ("cli", "round.import", round_id) in entries


def test_admins_read_the_imported_results_through_the_results_use_case_and_api(appliance, api, capsys):
    round_id = import_polis([str(LONDON), "--with-groups"], capsys)
    admin = appliance.viewer(people.find_by_username(appliance.dbs.identity, "admin")[0])
    round_, view = round_results(appliance, round_id, admin)
    assert round_.status == "closed" and view.shown and view.voters == 26
    assert len(view.proposals) == 36
    votes = imported_votes(round_id)
    ranked = {p.text for p in view.proposals if p.rank is not None}
    assert ranked == {p.text for p in view.proposals if sum(votes[p.text].values()) >= 5}  # k voters or more
    assert len(ranked) == 32
    _, by_group = round_results(appliance, round_id, admin, dimension="polis_group")
    assert by_group.shown and "1" in {segment.name for segment in by_group.segments if segment.shown}
    response = api("admin").get(f"/api/v1/rounds/{round_id}/results")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "closed" and body["voters"] == 26 and len(body["proposals"]) == 36
    page = api("admin").get(f"/rounds/{round_id}/results", params={"dimension": "polis_group"}).text
    assert "4 proposals have fewer than 5 voters: they are listed unranked under Ranking, in no other view." in page
    tabs = dict(re.findall(r'\?tab=(\w+)[^>]*>[^<]*<span class="muted">\((\d+)\)', page))
    assert int(tabs["ranking"]) == 36 == 4 + sum(int(tabs[zone]) for zone in ("consensus", "controversy",
                                                                                "rejection", "limbo"))
    participation = page[page.index("Participation by polis_group"):]
    assert "is not known for this round (it was imported)" in participation  # not "not enough responses"
    assert "not enough responses" not in participation[:participation.index("</section>")]


# Broken exports, built in tmp_path. Each is refused with the file and line, and nothing is stored.

COMMENTS = ["timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body",
            "1,a,1,1,0,0,1,Open the canteen earlier",
            "2,a,2,1,0,0,-1,Something moderated out",
            '3,a,3,2,0,0,0,"A statement written',
            'over two lines"']
VOTES = ["timestamp,datetime,comment-id,voter-id,vote"] + [f"{10 + i},a,{1 + i % 3},{i},1" for i in range(18)]
PARTICIPANTS = ["participant,group-id,n-comments,n-votes,n-agree,n-disagree,1,2,3",
                "1,0,0,2,1,1,1,-1,", "2,,0,1,0,0,0,,"]


def write_export(folder: Path, **files: list[str] | bytes | None) -> Path:
    """A small valid export (comments, votes, participants-votes); a file given as None is left out."""
    folder.mkdir()
    contents = {"comments.csv": COMMENTS, "votes.csv": VOTES, "participants-votes.csv": PARTICIPANTS}
    contents |= {name.replace("_", "-") + ".csv": lines for name, lines in files.items()}
    for name, lines in contents.items():
        if isinstance(lines, bytes):
            (folder / name).write_bytes(lines)
        elif lines is not None:
            (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def changed(lines: list[str], index: int, line: str) -> list[str]:
    return lines[:index] + [line] + lines[index + 1:]


@pytest.mark.parametrize("files, args, message", [
    ({"comments": None}, [], "has no comments.csv"),
    ({"votes": None, "participants_votes": None}, [], "has neither votes.csv nor participants-votes.csv"),
    ({"participants_votes": None}, ["--with-groups"], "--with-groups needs participants-votes.csv"),
    ({"votes": ["timestamp,datetime,comment-id,voter-id"] + [r.rsplit(",", 1)[0] for r in VOTES[1:]]}, [],
     "votes.csv line 1: missing column 'vote'"),
    ({"comments": changed(COMMENTS, 2, "2,a,two,1,0,0,-1,Something")}, [],
     "comments.csv line 3: comment-id must be an integer, not 'two'"),
    ({"comments": COMMENTS + ["4,a,1,3,0,0,1,Same id again"]}, [],
     "comments.csv line 6: comment-id 1 appears twice (first on line 2)"),
    ({"comments": COMMENTS + ["4,a,4,3,0,0,1"]}, [], "comments.csv line 6: 7 fields where the header has 8"),
    ({"votes": changed(VOTES, 16, "99,a,1,16,2")}, [], "votes.csv line 17: vote must be 1, -1 or 0, not '2'"),
    ({"votes": changed(VOTES, 3, "99,a,7,3,1")}, [], "votes.csv line 4: comment-id 7 is not in comments.csv"),
    ({"votes": changed(VOTES, 5, "99,a,1,x5,1")}, [], "votes.csv line 6: voter-id must be an integer, not 'x5'"),
    ({"votes": changed(VOTES, 2, "soon,a,1,2,1")}, [], "votes.csv line 3: timestamp must be an integer, not 'soon'"),
    ({"comments": "\n".join(COMMENTS[:2] + ["2,a,2,1,0,0,1,Caf\xe9 au lait"]).encode("latin-1")}, [],
     "comments.csv line 3: not UTF-8 text (byte 0xe9)"),
    ({"votes": None, "participants_votes": changed(PARTICIPANTS, 2, "2,,0,1,0,0,0,yes,")}, [],
     "participants-votes.csv line 3: the vote on comment 2 must be 1, -1 or 0, not 'yes'"),
    ({"votes": None, "participants_votes": [PARTICIPANTS[0] + ",8"] + [r + "," for r in PARTICIPANTS[1:]]}, [],
     "participants-votes.csv line 1: comment-id 8 is not in comments.csv"),
    ({"participants_votes": changed(PARTICIPANTS, 2, "2,blue,0,1,0,0,0,,")}, ["--with-groups"],
     "participants-votes.csv line 3: group-id must be an integer, not 'blue'"),
    ({"participants_votes": PARTICIPANTS + ["1,0,0,0,0,0,,,"]}, ["--with-groups"],
     "participants-votes.csv line 4: participant 1 appears twice (first on line 2)"),
    ({"votes": None, "participants_votes": [PARTICIPANTS[0].replace(",3", ",n-pass")] + PARTICIPANTS[1:]}, [],
     "participants-votes.csv line 1: column 'n-pass' is neither a Polis column nor a comment id"),
    ({"votes": None, "participants_votes": [PARTICIPANTS[0] + ",2"] + [r + "," for r in PARTICIPANTS[1:]]}, [],
     "participants-votes.csv line 1: column '2' appears twice"),
    ({"votes": [VOTES[0] + ", vote"] + [r + ",-1" for r in VOTES[1:]]}, [],
     "votes.csv line 1: column 'vote' appears twice"),
    ({"comments": [COMMENTS[0].replace("agrees", "comment-id")] + COMMENTS[1:]}, [],
     "comments.csv line 1: column 'comment-id' appears twice"),
    ({}, ["--k", "100000"], "k must be at most 1000"),
    ({}, ["--title", "T" * 201], "the title (--title) has 201 characters, at most 200 allowed"),
    ({"summary": ["topic," + "Long " * 50]}, [],
     "the title (summary.csv topic) has 249 characters, at most 200 allowed: give a shorter one with --title"),
    ({"summary": ["topic," + "Long " * 120]}, ["--title", "Long"],
     "the question (summary.csv topic) has 599 characters, at most 500 allowed: shorten it in summary.csv"),
    ({"summary": ["conversation-description," + "d" * 5001]}, [],
     "the description (summary.csv conversation-description) has 5001 characters, at most 5000 allowed"),
])
def test_a_broken_export_is_refused_with_its_line_and_leaves_nothing(files, args, message, tmp_path, capsys):
    assert main(["init"]) == 0
    folder = write_export(tmp_path / "export", **files)
    capsys.readouterr()
    assert main(["import", "polis", str(folder), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("appliance: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert [ballots_rows(t) for t in ("rounds", "proposals", "counts", "combo_voters")] == [0, 0, 0, 0]


def test_a_long_summary_topic_is_imported_under_a_title_given_with_title(tmp_path, capsys):
    folder = write_export(tmp_path / "export", summary=["topic," + "Long " * 50])
    assert main(["import", "polis", str(folder), "--title", "T" * 200]) == 0
    assert stored_round().title == "T" * 200


def test_the_small_export_itself_imports(tmp_path, capsys):
    folder = write_export(tmp_path / "export")
    assert main(["import", "polis", str(folder), "--with-groups"]) == 0
    assert "2 proposals accepted, 1 refused; 18 voters, 18 votes" in capsys.readouterr().out


def test_a_missing_folder_a_low_k_or_an_empty_title_is_refused(tmp_path, capsys):
    assert main(["import", "polis", str(tmp_path / "nowhere")]) == 1
    assert "nowhere: no such directory" in capsys.readouterr().err
    assert main(["import", "polis", str(LONDON), "--k", "3"]) == 1
    assert "k must be at least 5" in capsys.readouterr().err
    assert main(["import", "polis", str(LONDON), "--title", " "]) == 1
    assert "the title must not be empty" in capsys.readouterr().err
    assert ballots_rows("rounds") == 0


def test_a_failure_while_storing_leaves_no_half_imported_round(monkeypatch, capsys):
    assert main(["init"]) == 0
    # every id the same: the second proposal collides, after the round row was written
    monkeypatch.setattr("appliance.services.polis_import.secrets.token_hex", lambda n: "0" * 2 * n)
    assert main(["import", "polis", str(LONDON)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("appliance: database error") and "Traceback" not in err
    assert [ballots_rows(t) for t in ("rounds", "proposals", "counts", "combo_voters")] == [0, 0, 0, 0]
    app = build_appliance(load_settings())
    assert "round.import" not in [entry[2] for entry in audit.recent(app.dbs.identity)]
    app.close()


def test_an_upgrade_packs_the_counts_of_rounds_closed_before_and_the_results_stay_the_same(make_settings, capsys):
    round_id = import_polis([str(LONDON), "--with-groups"], capsys)

    def view_by_group(forget_packs: bool = False):
        app = build_appliance(make_settings())
        try:
            if forget_packs:  # packs lost (or never made): the counts table is read instead
                app.dbs.ballots.execute("DELETE FROM count_packs")
                app.dbs.ballots.execute("DELETE FROM pack_combos")
                app.dbs.ballots.conn.commit()
            found = people.find_by_username(app.dbs.identity, "admin")
            admin = app.viewer(found[0] if found else add_person(app, "admin", {"admins"}))
            return round_results(app, round_id, admin, dimension="polis_group")[1]
        finally:
            app.close()

    before = view_by_group()
    assert before.shown and any(segment.shown for segment in before.segments)
    db = sqlite3.connect(load_settings().storage.ballots_db)  # as a version without packs left it
    db.executescript("DROP TABLE count_packs; DROP TABLE pack_combos;"
                     " DELETE FROM _sqlite_migrations WHERE name = '0003_count_packs';")
    db.close()

    assert view_by_group() == before
    assert ballots_rows("count_packs") == 36 and ballots_rows("pack_combos") == 1
    assert view_by_group(forget_packs=True) == before


def test_an_import_is_seen_by_the_admins_alone_unless_an_audience_is_given(capsys):
    round_id = import_polis([str(LONDON)], capsys)
    app = build_appliance(load_settings())
    staff = app.viewer(Person("p-1", "ann", "Ann", "ann@example.org", frozenset({"staff"}), {}))
    admin = app.viewer(Person("p-2", "bob", "Bob", "bob@example.org", frozenset({"admins"}), {}))
    assert [r.id for r in visible_rounds(app, admin)] == [round_id]
    assert visible_rounds(app, staff) == []
    app.close()
    app = build_appliance(load_settings())
    add_person(app, "ann", {"staff"})
    add_person(app, "hugo", {"hr"})
    app.close()
    second = import_polis([str(LONDON), "--audience", "Staff", "--audience", "hr", "--audience", "staff"], capsys)
    app = build_appliance(load_settings())
    assert get_round(app.dbs.ballots, second).audience_groups == ("staff", "hr")
    app.close()
    assert main(["import", "polis", str(LONDON), "--audience", " "]) == 1
    assert "--audience: a group name must not be empty" in capsys.readouterr().err
    assert main(["import", "polis", str(LONDON), "--audience", "staf"]) == 1  # misspelt: not everyone, nobody
    assert "--audience: no group named 'staf' in the directory" in capsys.readouterr().err


def test_without_admin_groups_an_import_needs_its_audience(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_DIRECTORY__ADMIN_GROUPS", "[]")
    assert main(["import", "polis", str(LONDON)]) == 1
    assert "--audience is needed: directory.admin_groups is empty" in capsys.readouterr().err
    app = build_appliance(load_settings())
    assert list_rounds(app.dbs.ballots) == []
    app.close()


def test_an_imported_round_whose_groups_were_merged_says_so_without_an_opening(api, capsys):
    round_id = import_polis([str(LONDON), "--with-groups", "--k", "20"], capsys)  # 26 voters: no group of 20
    page = api("admin").get(f"/rounds/{round_id}/results", params={"dimension": "polis_group"}).text
    assert "No breakdown by polis_group: its groups could not be kept apart without one of them counting fewer" \
           " than 20 voters" in page
    assert "when the round opened" not in page
