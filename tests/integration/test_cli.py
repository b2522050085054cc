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


def test_the_running_server_writes_no_access_log(tmp_path):
    """No line puts a client's address beside a request (a vote, a proposal), in text or JSON logs."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    for log_format in ("text", "json"):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = dict(os.environ, APPLIANCE_STORAGE__DATA_DIR=str(tmp_path / log_format),
                   APPLIANCE_SERVER__PORT=str(port), APPLIANCE_LOGGING__FORMAT=log_format)
        server = subprocess.Popen([sys.executable, "-m", "appliance", "serve"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                    time.sleep(0.2)
            assert httpx.get(f"{base}/sign-in").status_code == 200
            assert httpx.post(f"{base}/api/v1/rounds/r1/ballots", json={}).status_code in (401, 403)
        finally:
            server.terminate()
            output = server.communicate(timeout=20)[0]
        assert "serving on" in output and "no admin yet: create one with `appliance user add admin" in output
        for trace in ("/sign-in", "/healthz", "/ballots", '"GET ', '"POST '):
            assert trace not in output, (log_format, trace, output)


def test_sigterm_lets_a_request_in_flight_finish_then_the_server_exits(tmp_path):
    """`docker stop` sends SIGTERM: a request already being received still gets its answer, then exit 0."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, APPLIANCE_STORAGE__DATA_DIR=str(tmp_path / "data"), APPLIANCE_SERVER__PORT=str(port))
    server = subprocess.Popen([sys.executable, "-m", "appliance", "serve"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                token = httpx.get(f"http://127.0.0.1:{port}/healthz").cookies["csrftoken"]
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.2)
        body = json.dumps({"username": "nobody", "password": "not the password"}).encode()
        head = (f"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nCookie: csrftoken={token}\r\nX-CSRFToken: {token}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(head + body[:10])  # the request is in flight: half its body has arrived
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            time.sleep(1)
            client.sendall(body[10:])
            answer = client.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 401"), answer
        started = time.monotonic()
        # uvicorn raises the signal again once it has shut down cleanly: the parent sees "terminated by SIGTERM".
        assert server.wait(timeout=10) in (0, -signal.SIGTERM) and time.monotonic() - started < 10
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=10)
