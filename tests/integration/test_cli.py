"""The `appliance` command against a real data directory."""

from __future__ import annotations

import io
import sqlite3

import pytest

from appliance.cli import main
from appliance.services.context import build_appliance
from appliance.services.rounds import round_results
from appliance.settings import load_settings
from appliance.storage import audit, people
from appliance.storage.rounds import list_rounds


def run(args: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(args)


def open_data():
    return build_appliance(load_settings())


def test_init_creates_both_databases_and_a_private_instance_secret(tmp_path, monkeypatch, capsys):
    assert run(["init"], monkeypatch) == 0
    data = tmp_path / "data"
    assert (data / "identity.db").is_file() and (data / "ballots.db").is_file()
    assert (data / "instance_secret").stat().st_mode & 0o777 == 0o600
    assert (data / "identity.db").stat().st_mode & 0o777 == 0o600
    assert "data directory ready" in capsys.readouterr().out


def test_migrate_applies_once_then_reports_nothing_to_do(monkeypatch, capsys):
    assert run(["migrate"], monkeypatch) == 0
    assert "0001_people_sessions_audit" in capsys.readouterr().out
    assert run(["migrate"], monkeypatch) == 0
    assert "up to date" in capsys.readouterr().out


def test_user_add_reads_the_password_from_stdin_and_audits_it(monkeypatch):
    args = ["user", "add", "alice", "--display-name", "Alice Martin", "--group", "admins",
            "--attribute", "department=Finance", "--password-stdin"]
    assert run(args, monkeypatch, "a-long-password\n") == 0
    app = open_data()
    person = app.directory.authenticate("alice", "a-long-password")
    assert person is not None and person.display_name == "Alice Martin"
    assert person.groups == {"admins"} and person.attributes == {"department": "Finance"}
    assert ("cli", "user.add", "alice") in [entry[1:4] for entry in audit.recent(app.dbs.identity)]
    app.close()


@pytest.mark.parametrize("args, stdin, message", [
    (["user", "add", "bob", "--password-stdin"], "short\n", "at least 10 characters"),
    (["user", "add", "bob", "--attribute", "department", "--password-stdin"], "a-long-password\n", "KEY=VALUE"),
    (["user", "add", "two words", "--password-stdin"], "a-long-password\n", "no spaces"),
    (["user", "set-password", "nobody", "--password-stdin"], "a-long-password\n", "no user 'nobody'"),
    (["user", "remove", "nobody"], "", "no user 'nobody'"),
])
def test_user_commands_refuse_bad_input_with_one_clear_line(args, stdin, message, monkeypatch, capsys):
    assert run(args, monkeypatch, stdin) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_user_add_refuses_a_duplicate_username(monkeypatch, capsys):
    assert run(["user", "add", "carol", "--password-stdin"], monkeypatch, "a-long-password\n") == 0
    assert run(["user", "add", "carol", "--password-stdin"], monkeypatch, "another-password\n") == 1
    assert "already exists" in capsys.readouterr().err
    app = open_data()
    assert app.directory.authenticate("carol", "a-long-password") is not None
    app.close()


def test_set_password_and_remove_change_the_local_directory(monkeypatch, capsys):
    run(["user", "add", "dan", "--password-stdin"], monkeypatch, "first-password\n")
    assert run(["user", "set-password", "dan", "--password-stdin"], monkeypatch, "second-password\n") == 0
    app = open_data()
    assert app.directory.authenticate("dan", "first-password") is None
    assert app.directory.authenticate("dan", "second-password") is not None
    app.close()
    capsys.readouterr()
    assert run(["user", "list"], monkeypatch) == 0
    assert capsys.readouterr().out.startswith("dan\tdan\t")
    assert run(["user", "remove", "dan"], monkeypatch) == 0
    app = open_data()
    assert people.list_people(app.dbs.identity) == []
    app.close()


def test_a_bad_setting_stops_the_command_with_one_line_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "eighty")
    assert run(["init"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("appliance: setting server.port (APPLIANCE_SERVER__PORT):") and err.count("\n") == 1


def test_demo_fills_an_empty_appliance_with_an_open_and_a_published_round(monkeypatch, capsys):
    assert run(["demo"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "hr.admin" in out and "moderator" in out and "(48)" in out
    app = open_data()
    assert len(people.list_people(app.dbs.identity)) == 50
    statuses = sorted(r.status for r in list_rounds(app.dbs.ballots))
    assert statuses == ["open", "published"]
    published = next(r for r in list_rounds(app.dbs.ballots) if r.status == "published")
    admin = app.viewer(people.find_by_username(app.dbs.identity, "hr.admin")[0])
    _, view = round_results(app, published.id, admin)
    assert view.shown and view.voters >= 40
    assert all(p.rank is not None for p in view.proposals)
    app.close()
    assert run(["demo"], monkeypatch) == 1
    assert "already has people" in capsys.readouterr().err


def test_the_demo_leaves_no_ballot_of_the_published_round(monkeypatch):
    run(["demo"], monkeypatch)
    app = open_data()
    published = next(r for r in list_rounds(app.dbs.ballots) if r.status == "published")
    db = sqlite3.connect(app.settings.storage.ballots_db)
    assert db.execute("SELECT count(*) FROM ballots WHERE round_id = ?", (published.id,)).fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM counts WHERE round_id = ?", (published.id,)).fetchone()[0] > 0
    db.close()
    app.close()


def test_a_list_setting_given_as_a_plain_value_is_explained(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_DIRECTORY__ADMIN_GROUPS", "admins")
    assert run(["init"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "as JSON" in err and err.count("\n") == 1 and "Traceback" not in err


def test_an_unusable_data_directory_is_named_in_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "taken").write_text("a file, not a directory")
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", str(tmp_path / "taken" / "data"))
    assert run(["init"], monkeypatch) == 1
    err = capsys.readouterr().err
    assert err.startswith("appliance: cannot use ") and "taken" in err and err.count("\n") == 1

