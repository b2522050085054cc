"""`appliance serve` as IT runs it, in a process of its own: what it logs, and how it stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


@contextmanager
def serving(data_dir: Path, **settings: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """A running `appliance serve` on a free port, and its address; its output is read once it has stopped."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, APPLIANCE_STORAGE__DATA_DIR=str(data_dir), APPLIANCE_SERVER__PORT=str(port),
               **{f"APPLIANCE_{name.upper()}": value for name, value in settings.items()})
    server = subprocess.Popen([sys.executable, "-m", "appliance", "serve"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.2)
        yield server, base
    finally:
        if server.poll() is None:
            server.kill()


def test_the_running_server_writes_no_access_log(tmp_path):
    """No line puts a client's address beside a request (a vote, a proposal), in text or JSON logs."""
    for log_format in ("text", "json"):
        with serving(tmp_path / log_format, logging__format=log_format) as (server, base):
            assert httpx.get(f"{base}/sign-in").status_code == 200
            assert httpx.post(f"{base}/api/v1/rounds/r1/ballots", json={}).status_code in (401, 403)
            server.terminate()
            output = server.communicate(timeout=20)[0]
        assert "serving on" in output and "no admin yet: create one with `appliance user add admin" in output
        for trace in ("/sign-in", "/healthz", "/ballots", '"GET ', '"POST '):
            assert trace not in output, (log_format, trace, output)


def test_behind_the_image_s_bootstrap_serve_does_not_tell_a_second_way_to_make_the_first_admin(tmp_path):
    with serving(tmp_path / "data", bootstrapped="1") as (server, base):  # as the entry point runs it
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert "serving on" in output and "no admin yet" not in output


def test_head_answers_like_get_without_a_body(tmp_path):
    """Monitoring probes and link checkers ask HEAD: same status and headers as GET, no body."""
    with serving(tmp_path / "data") as (server, base):
        with httpx.Client(base_url=base) as client:
            for path in ("/healthz", "/sign-in", "/api/v1/unsubscribe?token=bogus"):
                get, head = client.get(path), client.head(path)
                assert head.status_code == get.status_code and head.content == b"", path
                assert head.headers["content-type"] == get.headers["content-type"], path
                assert int(head.headers["content-length"]) == len(get.content) > 0, path
            assert client.head("/api/v1/rounds/r1/ballots").status_code == 405  # POST only
            assert client.get("/healthz").json() == {"status": "ok"}  # the connection still works


def test_sigterm_lets_a_request_in_flight_finish_then_the_server_exits(tmp_path):
    """`docker stop` sends SIGTERM: a request already being received still gets its answer, then it exits."""
    with serving(tmp_path / "data") as (server, base):
        token = httpx.get(f"{base}/healthz").cookies["csrftoken"]
        body = json.dumps({"username": "nobody", "password": "not the password"}).encode()
        head = (f"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nCookie: csrftoken={token}\r\nX-CSRFToken: {token}\r\n\r\n").encode()
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as client:
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
        server.communicate(timeout=10)


def test_a_port_in_use_stops_serve_with_status_2_naming_the_setting_before_anything_starts(tmp_path):
    """Another process listens there: one line naming server.port, exit 2, no database, lock or job started."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = dict(os.environ, APPLIANCE_STORAGE__DATA_DIR=str(tmp_path / "data"), APPLIANCE_SERVER__PORT=str(port))
        served = subprocess.run([sys.executable, "-m", "appliance", "serve"], env=env, capture_output=True, text=True,
                                timeout=60)
    assert served.returncode == 2, served
    assert served.stderr == (f"appliance: server.port {port} (APPLIANCE_SERVER__PORT): address already in use on"
                             " 127.0.0.1; stop what uses it or choose another port\n")
    assert not (tmp_path / "data").exists()  # no migration, key check or scheduler lock before the bind


def test_a_second_serve_on_the_same_data_directory_says_so_in_its_log(tmp_path):
    with serving(tmp_path / "data") as (first, _):
        with serving(tmp_path / "data") as (second, base):
            assert httpx.get(f"{base}/readyz").json()["scheduler"] == "running elsewhere"
            second.terminate()
            output = second.communicate(timeout=20)[0]
        first.terminate()
        first_output = first.communicate(timeout=20)[0]
    assert "another appliance serve already runs on" in output and "it runs the scheduled jobs" in output
    assert "another appliance serve" not in first_output


def test_a_request_cut_off_at_a_stop_is_one_warning_not_an_error_with_a_traceback(tmp_path):
    """A slow client still sending when `docker stop` comes: nothing for a log alert to page the operator about."""
    with serving(tmp_path / "data") as (server, base):
        token = httpx.get(f"{base}/healthz").cookies["csrftoken"]
        head = (f"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: 100\r\nCookie: csrftoken={token}\r\nX-CSRFToken: {token}\r\n\r\n").encode()
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=20) as client:
            client.sendall(head + b'{"username": ')  # and never the rest
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            output = server.communicate(timeout=30)[0]
    assert "WARNING uvicorn.error stopping: 1 running request(s), cut off after the grace period" in output
    assert " ERROR " not in output and "Traceback" not in output and "CancelledError" not in output
