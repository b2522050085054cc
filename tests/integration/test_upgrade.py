"""A newer version on an older volume: databases of the first schema, upgraded in place, data intact."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from litestar.testing import TestClient
from sqlite_utils import Database

from appliance.app import create_app
from appliance.services.context import build_appliance
from appliance.storage import audit, migrations
from appliance.storage.backup import applied_migrations, pending_migrations
from appliance.storage.connection import connect
from appliance.storage.keys import INSTANCE_SECRET_FILE
from tests.conftest import Api, create_open_round, seed_people
from tests.integration.test_anonymity import looks_like_time, tables

FIRST_IDENTITY, FIRST_BALLOTS = "0001_people_sessions_audit", "0001_rounds_proposals_ballots_counts"


def signed_in(app, username: str) -> Api:
    browser = Api(TestClient(app))
    assert browser.sign_in(username).status_code == 200
    return browser


def run_a_round(data_dir: Path, make_settings) -> tuple[str, dict]:
    """With today's code: a round proposed on, voted on by 8 people and closed; its id and results."""
    appliance = build_appliance(make_settings(storage={"data_dir": str(data_dir)}))
    seed_people(appliance)
    app = create_app(appliance.settings, appliance)
    admin = signed_in(app, "admin")
    round_id = create_open_round(admin, moderation="post", audience_groups=["staff"])
    voters = [signed_in(app, f"u{i:02d}") for i in range(8)]
    ids = [voters[i].post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text}).json()["id"]
           for i, text in enumerate(["Hold fewer and shorter meetings", "Publish the menu a week ahead"])]
    for i, voter in enumerate(voters):
        voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": ids[0], "vote": "agree" if i < 6 else "disagree"})
        voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": ids[1], "vote": "neutral"})
    admin.post(f"/api/v1/rounds/{round_id}/close")
    results = admin.get(f"/api/v1/rounds/{round_id}/results").json()
    appliance.close()
    return round_id, results


def copy_into_first_schema(source: Path, target: Path) -> None:
    """Databases made by the first migrations alone, holding the rows of source in the columns they had."""
    target.mkdir()
    for name, first, known in (("identity.db", FIRST_IDENTITY, migrations.identity),
                               ("ballots.db", FIRST_BALLOTS, migrations.ballots)):
        db = connect(target / name)
        later = [m.name for m in known.pending(db) if m.name != first]
        known.apply(db, stop_before=later[0])
        db.conn.execute("ATTACH DATABASE ? AS source", (str(source / name),))
        tables = [r[0] for r in db.conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'"
                                                " AND name NOT LIKE '\\_%' ESCAPE '\\'")]
        for table in tables:
            if table == "sessions":  # they changed form (0007_sealed_sessions), which ends the old ones
                continue
            columns = ", ".join(r[1] for r in db.conn.execute(f"PRAGMA main.table_info({table})"))
            db.conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM source.{table}")
        db.conn.commit()
        db.conn.execute("DETACH DATABASE source")
        db.close()
    shutil.copy(source / INSTANCE_SECRET_FILE, target / INSTANCE_SECRET_FILE)


def test_databases_of_the_first_schema_are_upgraded_in_place_with_their_data(tmp_path: Path, make_settings) -> None:
    round_id, results = run_a_round(tmp_path / "today", make_settings)
    old = tmp_path / "old"
    copy_into_first_schema(tmp_path / "today", old)
    assert applied_migrations(old / "identity.db") == [FIRST_IDENTITY]
    assert applied_migrations(old / "ballots.db") == [FIRST_BALLOTS]

    with sqlite3.connect(old / "identity.db") as db:  # a session of the old form, saying whose it is
        db.execute("INSERT INTO sessions (token_hash, person_id, username, display_name, groups, attributes,"
                   " expires_at) VALUES ('00', 'local:0123456789ab', 'session-of-old-form', 'X', '[]', '{}', 9e9)")
    appliance = build_appliance(make_settings(storage={"data_dir": str(old)}))  # what every start does
    appliance.dbs.identity.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"session-of-old-form" not in b"".join(p.read_bytes() for p in old.glob("identity.db*"))
    app = create_app(appliance.settings, appliance)
    admin = signed_in(app, "admin")  # people and their passwords are intact
    assert admin.get(f"/api/v1/rounds/{round_id}").json()["status"] == "closed"
    assert admin.get(f"/api/v1/rounds/{round_id}/results").json() == results
    assert ("admin", "round.close", round_id) in [entry[1:4] for entry in audit.recent(appliance.dbs.identity)]
    assert create_open_round(admin)  # and the upgraded databases take new rounds
    appliance.close()
    assert pending_migrations(old / "identity.db", migrations.identity) == []
    assert pending_migrations(old / "ballots.db", migrations.ballots) == []


def dated_rows(path: Path) -> list[tuple[str, dict]]:
    """The rows of a SQLite file holding a value that looks like a date, a time or a Unix time."""
    return [(table, row) for table, rows in tables(path).items() for row in rows
            if any(looks_like_time(v) for v in row.values())]


def test_ballots_db_keeps_migration_names_but_no_applied_at_after_init_and_after_an_upgrade(
        tmp_path: Path, make_settings) -> None:
    appliance = build_appliance(make_settings(storage={"data_dir": str(tmp_path / "new")}))  # what init does
    appliance.close()
    assert dated_rows(tmp_path / "new" / "ballots.db") == []
    every = [m.name for m in migrations.ballots.pending(Database(memory=True))]
    assert applied_migrations(tmp_path / "new" / "ballots.db") == every
    assert dated_rows(tmp_path / "new" / "identity.db")  # identity.db keeps when each migration was applied

    run_a_round(tmp_path / "today", make_settings)
    old = tmp_path / "old"
    copy_into_first_schema(tmp_path / "today", old)
    assert dated_rows(old / "ballots.db")  # sqlite-utils recorded when the first migration was applied
    appliance = build_appliance(make_settings(storage={"data_dir": str(old)}))  # the upgrade
    appliance.close()
    assert dated_rows(old / "ballots.db") == []
    assert pending_migrations(old / "ballots.db", migrations.ballots) == []
    assert applied_migrations(old / "ballots.db")[0] == FIRST_BALLOTS
