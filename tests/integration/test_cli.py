"""The `appliance` command against a real data directory."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys

import pytest

from appliance.cli import _os_error_line, main
from appliance.services.context import build_appliance
from appliance.services.notifications import has_address
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
    first = capsys.readouterr()
    assert "0001_people_sessions_audit" in first.out
    assert "created the data directory" in first.err  # a relative data_dir run from the wrong place is seen
    assert run(["migrate"], monkeypatch) == 0
    again = capsys.readouterr()
    assert "up to date" in again.out and "created" not in again.err


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
    (["user", "add", "bob", "--email", "not an email", "--password-stdin"], "a-long-password\n",
     "--email: 'not an email' is not an email address"),
    (["user", "add", "bob", "--email", "bob@", "--password-stdin"], "a-long-password\n", "--email: 'bob@'"),
    (["user", "add", "bob\x1b[31m", "--password-stdin"], "a-long-password\n", "control characters"),
    (["user", "add", "bob\u202e", "--password-stdin"], "a-long-password\n", "control characters"),
    (["user", "add", "bob", "--group", "staff,admins", "--password-stdin"], "a-long-password\n",
     "--group 'staff,admins'"),
    (["user", "add", "bob", "--group", "staff\x07", "--password-stdin"], "a-long-password\n", "--group 'staff\\x07'"),
    (["user", "add", "bob", "--display-name", "  ", "--password-stdin"], "a-long-password\n",
     "--display-name '  ': must not be blank"),
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


@pytest.mark.parametrize("first, second", [
    ("alice", "ALICE"), ("Bob", "bob"), ("carol", "ｃａｒｏｌ"), ("Straße", "STRASSE"),
])
def test_user_add_refuses_a_username_sign_in_takes_for_an_existing_one(first, second, monkeypatch, capsys):
    assert run(["user", "add", first, "--password-stdin"], monkeypatch, "a-long-password\n") == 0
    capsys.readouterr()
    assert run(["user", "add", second, "--password-stdin"], monkeypatch, "another-password\n") == 1
    err = capsys.readouterr().err
    assert f"user {first!r} already exists" in err and err.count("\n") == 1
    app = open_data()
    assert [p.username for p in people.list_people(app.dbs.identity)] == [first]
    app.close()


def test_user_add_keeps_a_valid_email_trimmed(monkeypatch):
    args = ["user", "add", "erin", "--email", " erin@example.org ", "--display-name", " Erin ", "--password-stdin"]
    assert run(args, monkeypatch, "a-long-password\n") == 0
    app = open_data()
    person = people.find_by_username(app.dbs.identity, "erin")[0]
    assert person.email == "erin@example.org" and person.display_name == "Erin"
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


def test_a_command_that_creates_the_data_directory_says_where(tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # run from another directory than the installation's: a second, empty appliance
    assert run(["user", "list"], monkeypatch) == 0
    err = capsys.readouterr().err
    assert err == (f"appliance: created the data directory {elsewhere / 'data'}, which did not exist (storage.data_dir,"
                   " relative to the current directory unless absolute)\n")
    assert run(["user", "list"], monkeypatch) == 0 and capsys.readouterr().err == ""  # said once, when made
    monkeypatch.chdir(tmp_path)
    assert run(["init"], monkeypatch) == 0 and capsys.readouterr().err == ""  # init says it its own way


def test_a_bad_setting_stops_the_command_with_one_line_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_SERVER__PORT", "eighty")
    assert run(["init"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith("appliance: setting server.port (APPLIANCE_SERVER__PORT):") and err.count("\n") == 1


def test_a_ca_file_given_empty_is_none_the_system_s_authorities(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_LDAP__CA_FILE", "")  # not the file "."
    monkeypatch.setenv("APPLIANCE_MAIL__CA_FILE", " ")
    settings = load_settings()
    assert settings.ldap.ca_file is None and settings.mail.ca_file is None
    assert run(["init"], monkeypatch) == 0


def test_demo_fills_an_empty_appliance_with_an_open_and_a_published_round(monkeypatch, capsys):
    assert run(["demo"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "hr.admin" in out and "moderator" in out and "(48)" in out
    app = open_data()
    assert len(people.list_people(app.dbs.identity)) == 50
    everyone = people.list_people(app.dbs.identity)
    assert all(has_address(person) and person.username.isascii() for person in everyone)  # "Inès" is "ines"
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



def _ldap_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_DIRECTORY__KIND", "ldap")
    monkeypatch.setenv("APPLIANCE_LDAP__SERVERS", '["ldap://127.0.0.1:1"]')
    monkeypatch.setenv("APPLIANCE_LDAP__USER_SEARCH_BASE", "ou=people,dc=example,dc=org")
    monkeypatch.setenv("APPLIANCE_LDAP__GROUP_SEARCH_BASE", "ou=groups,dc=example,dc=org")


def _demo_is_empty() -> None:
    app = open_data()
    assert people.list_people(app.dbs.identity) == [] and list_rounds(app.dbs.ballots) == []
    assert not (app.keys_dir.is_dir() and list(app.keys_dir.glob("*.key")))
    app.close()


@pytest.mark.parametrize("variable, value, message", [
    ("APPLIANCE_ROUNDS__PROPOSAL_MAX_CHARS", "40", "rounds.proposal_max_chars 40"),
    ("APPLIANCE_ROUNDS__PROPOSAL_MIN_CHARS", "60", "rounds.proposal_min_chars 60"),
    ("APPLIANCE_DIRECTORY__MODERATOR_GROUPS", "[]", "directory.moderator_groups is empty"),
    ("APPLIANCE_DIRECTORY__KIND", "ldap", "needs the local directory"),
])
def test_the_demo_refuses_settings_it_cannot_work_with_before_writing(variable, value, message, monkeypatch, capsys):
    if value == "ldap":
        _ldap_settings(monkeypatch)
    monkeypatch.setenv(variable, value)
    assert run(["demo"], monkeypatch) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    _demo_is_empty()


def test_the_demo_gives_its_admin_and_moderator_the_configured_groups(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_DIRECTORY__ADMIN_GROUPS", '["hr", "admins"]')
    monkeypatch.setenv("APPLIANCE_DIRECTORY__MODERATOR_GROUPS", '["editors"]')
    assert run(["demo"], monkeypatch) == 0
    app = open_data()
    admin = app.viewer(people.find_by_username(app.dbs.identity, "hr.admin")[0])
    moderator = app.viewer(people.find_by_username(app.dbs.identity, "moderator")[0])
    assert admin.groups == {"hr"} and admin.is_admin and moderator.groups == {"editors"} and moderator.is_moderator
    assert sorted(r.status for r in list_rounds(app.dbs.ballots)) == ["open", "published"]
    app.close()


def test_a_demo_failing_part_way_is_undone_and_can_be_run_again(monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_ROUNDS__DEFAULT_K", "100000")  # passes the settings, fails at round creation
    assert run(["demo"], monkeypatch) == 1
    err = capsys.readouterr().err
    assert err.startswith("appliance: the demo failed and was undone: k must be at most") and err.count("\n") == 1
    _demo_is_empty()
    monkeypatch.delenv("APPLIANCE_ROUNDS__DEFAULT_K")
    assert run(["demo"], monkeypatch) == 0
    assert "hr.admin" in capsys.readouterr().out


def test_a_demo_failing_after_its_rounds_opened_removes_their_rows_and_keys(monkeypatch, capsys):
    from appliance.services import participation

    real, calls = participation.cast_vote, []

    def failing_vote(*args, **kwargs):  # the second round's votes: one round published, one open with its key
        calls.append(1)
        if len(calls) > 350:
            raise sqlite3.OperationalError("disk I/O error")
        return real(*args, **kwargs)

    monkeypatch.setattr(participation, "cast_vote", failing_vote)
    assert run(["demo"], monkeypatch) == 1
    err = capsys.readouterr().err
    assert "the demo failed and was undone: disk I/O error" in err and err.count("\n") == 1
    _demo_is_empty()
    app = open_data()
    for db in (app.settings.storage.ballots_db, app.settings.storage.identity_db):
        conn = sqlite3.connect(db)
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        filled = [t for t in tables if t not in ("_sqlite_migrations", "audit_log", "settings")
                  and conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0]]
        conn.close()
        assert filled == [], db
    app.close()
    monkeypatch.setattr(participation, "cast_vote", real)
    assert run(["demo"], monkeypatch) == 0


def test_an_unexpected_domain_error_of_a_command_is_one_line(monkeypatch, capsys):
    from appliance.domain.errors import Conflict

    def refused(_):
        raise Conflict("the round %(round_id)s was changed meanwhile", round_id="'r1'")

    monkeypatch.setattr("appliance.cli.run_init", refused)
    assert run(["init"], monkeypatch) == 1
    assert capsys.readouterr().err == "appliance: the round 'r1' was changed meanwhile\n"


def test_a_listing_cut_short_by_its_reader_ends_quietly(tmp_path):
    env = {**os.environ, "APPLIANCE_STORAGE__DATA_DIR": str(tmp_path / "data")}
    assert subprocess.run([sys.executable, "-m", "appliance", "demo"], capture_output=True, env=env).returncode == 0
    listing = subprocess.Popen([sys.executable, "-m", "appliance", "user", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    listing.stdout.close()  # as `| head -0` would, before the listing is written
    _, err = listing.communicate(timeout=60)
    assert (listing.returncode, err) == (141, b"")


def test_a_broken_pipe_that_is_not_the_reader_going_is_said(monkeypatch, capsys):
    def broken(*_):  # as a relay's socket closed under a command: a fault no test server produces on demand
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(people, "list_people", broken)
    assert run(["user", "list"], monkeypatch) == 1
    assert capsys.readouterr().err.strip().endswith("cannot use a file: Broken pipe")


def test_mail_retry_with_nothing_given_up_on_says_so(monkeypatch, capsys):
    assert run(["mail", "retry"], monkeypatch) == 0
    assert capsys.readouterr().out == "no message was given up on: nothing to send again\n"
    assert run(["mail", "drop"], monkeypatch) == 0
    assert capsys.readouterr().out == "no message was given up on: nothing to delete\n"


@pytest.mark.parametrize("command, said", [
    (["serve"], "Run the web application."),
    (["init"], "Create the data directory, databases and instance secret."),
    (["mail", "drop"], "Delete the messages given up on, for good"),
    (["user", "add"], "Add a person (password from a prompt, or stdin)."),
])
def test_every_command_s_help_says_what_it_does(command, said, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit:
        run([*command, "--help"], monkeypatch)
    assert exit.value.code == 0
    assert said in capsys.readouterr().out


def test_an_unreadable_configuration_file_is_named_as_such_not_as_the_data_directory(tmp_path, monkeypatch):
    config = tmp_path / "appliance.toml"
    monkeypatch.setenv("APPLIANCE_CONFIG", str(config))
    # Refused reading is what a container user meets with a root-only mounted file; as root here, it cannot
    # be produced, so the error is made as open() makes it.
    line = _os_error_line(PermissionError(13, "Permission denied", str(config)))
    assert line.startswith(f"appliance: cannot use {config}: Permission denied (the configuration file,"
                           " APPLIANCE_CONFIG: this user is uid ")
    assert "storage.data_dir" not in line
    other = _os_error_line(PermissionError(13, "Permission denied", str(tmp_path / "data" / "identity.db")))
    assert "check who owns storage.data_dir" in other


@pytest.mark.parametrize("command", [["migrate"], ["init"], ["user", "list"]])
def test_a_data_directory_that_cannot_be_made_is_named_as_storage_data_dir(command, monkeypatch, capsys):
    monkeypatch.setenv("APPLIANCE_STORAGE__DATA_DIR", "/proc/no-such-place/data")  # /proc takes no new folder
    assert run(command, monkeypatch) == 1
    said = capsys.readouterr().err
    assert said.startswith("appliance: cannot use /proc/no-such-place")
    assert "(storage.data_dir, where the appliance keeps its databases and keys)" in said
    assert "Traceback" not in said
