"""Ballot throughput: how many votes per second the appliance records durably.

What it measures: POST /api/v1/rounds/{id}/ballots through the real HTTP
server (uvicorn + Litestar, SQLite with synchronous=FULL, so every vote is an
fsync'ed commit), sent by many signed-in voters at once over keep-alive
connections. It prints the number of ballots, ballots per second, p50 and p99
latency, errors (any answer other than 200), the CPU used by the client and the
server during the run, and how long closing the round takes (ballots -> counts,
then VACUUM and WAL truncation).

How to run it, from the project directory:

    .venv/bin/python bench/votes.py [--voters 300] [--proposals 40]
        [--concurrency 32] [--seconds 20] [--workers 1] [--seed 1]

Without --url it is self-contained: it creates a temporary data directory
(under $TMPDIR: put it on a real disk, a tmpfs makes fsync free), inserts the
people directly through storage, starts `python -m appliance serve` on a free
loopback port, drives a whole round through the HTTP API, and stops the server
(SIGTERM, then wait) at the end, on errors and on Ctrl-C.

With --url http://127.0.0.1:PORT it uses an appliance that is already running
(loopback only). Its directory must hold the benchmark people, all with the
password given by --password: `bench-admin` (group admins), `bench-mod`
(moderators) and `bench-voter-0000` ... (staff, one per --voters), e.g. with
`appliance user add bench-voter-0000 --group staff --attribute department=IT
--attribute site=Lyon --password-stdin`. Proposals must be released at once
(rounds.release_interval_seconds = 0).

Signing in costs one argon2 verification per voter (about 0.2 s of CPU), so
setting up 300 voters takes a minute or more before the timed part starts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import http.client
import ipaddress
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

TARGET = ">= 3000 durable votes/s on 2 cores (later work)"
PASSWORD = "bench-password-not-secret"  # only ever used on loopback, in a throw-away data directory
ADMIN, MODERATOR = "bench-admin", "bench-mod"
DEPARTMENTS = ("Finance", "IT", "Sales", "Legal", "Operations")
SITES = ("Lyon", "Paris", "Lille")
VOTES = {
    "agree": ("like_it", "doable", "platitude_agree"),
    "disagree": ("no_way", "impossible", "platitude_disagree"),
    "neutral": ("do_not_understand", "no_opinion", "do_not_care"),
}
VOTE_NAMES = tuple(VOTES)
SIGN_IN_CONCURRENCY = 2  # each argon2 verification already runs 4 lanes in parallel on the server
SETUP_TIMEOUT = 60.0  # seconds, for any single setup request
STARTUP_TIMEOUT = 30.0
GRACE = 30.0  # seconds allowed after the deadline for the last votes to answer


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


def voter_name(index: int) -> str:
    return f"bench-voter-{index:04d}"


# --- A minimal HTTP/1.1 keep-alive client ------------------------------------
#
# Measured against a stub server that answers at once, on 2 cores with 8 to 32
# connections: httpx.AsyncClient costs about 1.1 ms of CPU per request (a third
# of a core at 300 requests/s), this client 50 us at full speed (15% of one core
# at 3000 requests/s) and up to 200 us at a few hundred requests/s, when fewer
# replies share each wake-up. It does only what the benchmark needs: JSON bodies,
# Content-Length framing, cookies read from Set-Cookie. Each run prints its
# actual CPU use as "client CPU", beside the server's.


class Reply(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def cookies(self) -> dict[str, str]:
        """Cookies this reply sets: name -> value."""
        found = {}
        for name, value in self.headers:
            if name.lower() == "set-cookie":
                key, _, val = value.split(";", 1)[0].partition("=")
                found[key.strip()] = val.strip().strip('"')
        return found


@dataclass(frozen=True)
class Target:
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Target:
        """The loopback host and port of an http:// URL; anything else is refused."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise BenchError(f"--url must look like http://127.0.0.1:8000, not {url!r}")
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise BenchError(f"--url must point at a loopback address, not {host}")
        return cls(host, parts.port or 80)


class Connection:
    """One keep-alive connection; requests on it go one after the other."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target) -> None:
        self.reader, self.writer = reader, writer
        self.host_header = f"Host: {target.host}:{target.port}\r\n"

    @classmethod
    async def open(cls, target: Target) -> Connection:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        return cls(reader, writer, target)

    async def request(self, method: str, path: str, body: Any = None, headers: str = "") -> Reply:
        """Send one request (JSON body, extra header lines) and read its reply."""
        payload = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\n{self.host_header}Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n{headers}\r\n")
        self.writer.write(head.encode("latin-1") + payload)
        return await self._read_reply()

    async def _read_reply(self) -> Reply:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        headers = [(name.strip(), value.strip()) for name, _, value in
                   (line.partition(":") for line in lines if line)]
        length = 0
        for name, value in headers:
            lowered = name.lower()
            if lowered == "content-length":
                length = int(value)
            elif lowered == "transfer-encoding":
                raise BenchError(f"unexpected Transfer-Encoding {value!r}: this client reads Content-Length only")
        body = await self.reader.readexactly(length) if length else b""
        return Reply(int(status_line.split(" ", 2)[1]), headers, body)

    def close(self) -> None:
        self.writer.close()


# --- Signed-in people and setup calls -----------------------------------------


@dataclass(frozen=True)
class Session:
    """A signed-in person: session cookie and CSRF token, as ready-made header lines."""

    username: str
    token: str
    csrf: str

    @property
    def headers(self) -> str:
        cookie = f"session={self.token}; csrftoken={self.csrf}" if self.token else f"csrftoken={self.csrf}"
        return f"Cookie: {cookie}\r\nX-CSRFToken: {self.csrf}\r\n"


async def call(conn: Connection, method: str, path: str, session: Session | None = None,
               body: Any = None, expect: int = 200) -> Any:
    """One setup request; its JSON answer, or BenchError on any other status."""
    async with asyncio.timeout(SETUP_TIMEOUT):
        reply = await conn.request(method, path, body, session.headers if session else "")
    if reply.status != expect:
        raise BenchError(f"{method} {path} as {session.username if session else 'anonymous'}: "
                         f"HTTP {reply.status} {reply.body[:300].decode(errors='replace')}")
    return json.loads(reply.body) if reply.body else None


async def sign_in(target: Target, username: str, password: str) -> Session:
    """Any GET hands out the csrftoken cookie; the sign-in then sets the session cookie."""
    conn = await Connection.open(target)
    try:
        async with asyncio.timeout(SETUP_TIMEOUT):
            csrf = (await conn.request("GET", "/healthz")).cookies().get("csrftoken")
            if not csrf:
                raise BenchError("GET /healthz handed out no csrftoken cookie")
            anonymous = Session(username, "", csrf)
            reply = await conn.request("POST", "/api/v1/session", {"username": username, "password": password},
                                       anonymous.headers)
    finally:
        conn.close()
    token = reply.cookies().get("session")
    if reply.status != 200 or not token:
        raise BenchError(f"signing in {username}: HTTP {reply.status} {reply.body[:200]!r}")
    return Session(username, token, csrf)


async def sign_in_voters(target: Target, count: int, password: str) -> list[Session]:
    """Every voter signed in, a few at a time (each sign-in is an argon2 verification)."""
    limit = asyncio.Semaphore(SIGN_IN_CONCURRENCY)

    async def one(index: int) -> Session:
        async with limit:
            return await sign_in(target, voter_name(index), password)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def open_round(conn: Connection, admin: Session) -> str:
    """A round for the staff, broken down by department and site, created and opened."""
    body = {"title": "Benchmark round", "question": "How could we make our day-to-day work easier?",
            "audience_groups": ["staff"], "dimensions": ["department", "site"]}
    created = await call(conn, "POST", "/api/v1/rounds", admin, body, expect=201)
    await call(conn, "POST", f"/api/v1/rounds/{created['id']}/open", admin)
    return created["id"]


async def add_proposals(conn: Connection, round_id: str, authors: list[Session], moderator: Session,
                        count: int) -> list[str]:
    """`count` proposals by the first voters in turn, all accepted by the moderator; their ids."""
    base = f"/api/v1/rounds/{round_id}/proposals"
    ids = []
    for i in range(count):
        text = {"text": f"Proposal {i:03d}: a small change that would make day-to-day work easier"}
        ids.append((await call(conn, "POST", base, authors[i % len(authors)], text, expect=201))["id"])
    for proposal_id in ids:
        await call(conn, "POST", f"{base}/{proposal_id}/accept", moderator)
    return ids


# --- The timed part -----------------------------------------------------------


class VoterPlan:
    """One voter's ballots: every proposal in a random order, then again (changing votes), and so on."""

    def __init__(self, session: Session, proposals: list[str], rng: random.Random) -> None:
        self.session, self.proposals, self.rng = session, proposals, rng
        self.pending: list[str] = []

    def next_ballot(self) -> dict[str, Any]:
        if not self.pending:
            self.pending = self.rng.sample(self.proposals, len(self.proposals))
        vote = self.rng.choice(VOTE_NAMES)
        return {"proposal": self.pending.pop(), "vote": vote,
                "qualification": self.rng.choice((None, *VOTES[vote]))}


@dataclass
class Stats:
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter = field(default_factory=collections.Counter)
    first_error: str = ""
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None

    def failed(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.first_error = self.first_error or f"{kind}: {detail}"


async def vote_worker(conn: Connection | None, target: Target, path: str, plans: list[VoterPlan],
                      deadline: float, stats: Stats) -> None:
    """Send ballots for these voters in turn, one at a time on one connection, until the deadline.

    A broken connection counts as an error and is opened again.
    """
    try:
        for plan in itertools.cycle(plans):
            if time.perf_counter() >= deadline:
                return
            body, headers = plan.next_ballot(), plan.session.headers
            started = time.perf_counter()
            try:
                conn = conn or await Connection.open(target)
                reply = await conn.request("POST", path, body, headers)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                stats.failed("connection", repr(error))
                if conn:
                    conn.close()
                conn = None
                await asyncio.sleep(0.05)
                continue
            stats.latencies.append(time.perf_counter() - started)
            if reply.status == 200:
                stats.ok += 1
            else:
                stats.failed(f"HTTP {reply.status}", reply.body[:200].decode(errors="replace"))
    finally:
        if conn:
            conn.close()


async def run_load(target: Target, round_id: str, plans: list[VoterPlan], concurrency: int, seconds: float,
                   server_pid: int | None) -> Stats:
    """`concurrency` workers, each with its own connection and share of the voters, for `seconds`."""
    stats, path = Stats(), f"/api/v1/rounds/{round_id}/ballots"
    shares = [plans[i::concurrency] for i in range(min(concurrency, len(plans)))]
    conns = [await Connection.open(target) for _ in shares]  # connected before the clock starts
    server_cpu_before, cpu_before = process_tree_cpu(server_pid), time.process_time()
    started = time.perf_counter()
    tasks = [asyncio.create_task(vote_worker(conn, target, path, share, started + seconds, stats))
             for conn, share in zip(conns, shares)]
    done, stuck = await asyncio.wait(tasks, timeout=seconds + GRACE)
    for task in stuck:
        task.cancel()
        stats.failed("timeout", f"no answer {GRACE:.0f} s after the deadline")
    stats.elapsed = time.perf_counter() - started
    stats.client_cpu = time.process_time() - cpu_before
    server_cpu_after = process_tree_cpu(server_pid)
    if server_cpu_before is not None and server_cpu_after is not None:
        stats.server_cpu = server_cpu_after - server_cpu_before
    for task in done:
        task.result()  # a bug in the client itself should not pass unnoticed
    return stats


def process_tree_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) of a process and its children, from /proc; None where unavailable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_tree_cpu(int(child)) or 0.0 for child in children)


# --- The whole benchmark over HTTP --------------------------------------------


async def benchmark(args: argparse.Namespace, target: Target, server_pid: int | None) -> int:
    """Set up a round through the API, vote for a fixed time, close the round; print the figures."""
    admin, round_id, plans = await prepare_round(args, target)
    print(f"voting for {args.seconds:g} s: {len(plans)} voters, {len(plans[0].proposals)} proposals, "
          f"{min(args.concurrency, len(plans))} connections", flush=True)
    stats = await run_load(target, round_id, plans, args.concurrency, args.seconds, server_pid)
    close_seconds = await close_round(target, admin, round_id)
    report(stats, close_seconds)
    return 1 if stats.errors else 0


async def prepare_round(args: argparse.Namespace, target: Target) -> tuple[Session, str, list[VoterPlan]]:
    """Everyone signed in, an open round with accepted proposals, and each voter's plan."""
    clock = time.perf_counter()
    admin = await sign_in(target, ADMIN, args.password)
    moderator = await sign_in(target, MODERATOR, args.password)
    voters = await sign_in_voters(target, args.voters, args.password)
    print(f"signed in {len(voters)} voters in {time.perf_counter() - clock:.1f} s", flush=True)
    conn = await Connection.open(target)
    try:
        round_id = await open_round(conn, admin)
        proposals = await add_proposals(conn, round_id, voters, moderator, args.proposals)
    finally:
        conn.close()
    plans = [VoterPlan(s, proposals, random.Random(f"{args.seed}:{i}")) for i, s in enumerate(voters)]
    return admin, round_id, plans


async def close_round(target: Target, admin: Session, round_id: str) -> float:
    """Close the round (ballots -> counts, VACUUM, WAL truncated); how long it took, in seconds."""
    conn = await Connection.open(target)  # a fresh one: the server drops idle keep-alive connections
    try:
        clock = time.perf_counter()
        await call(conn, "POST", f"/api/v1/rounds/{round_id}/close", admin)
        return time.perf_counter() - clock
    finally:
        conn.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def report(stats: Stats, close_seconds: float) -> None:
    latencies = sorted(stats.latencies)
    rate = stats.ok / stats.elapsed if stats.elapsed else 0.0
    requests = max(1, len(latencies))
    print(f"ballots: {stats.ok} in {stats.elapsed:.1f} s")
    print(f"ballots per second: {rate:.0f}")
    print(f"latency: p50 {percentile(latencies, 0.50) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"errors: {sum(stats.errors.values())}"
          + (f" ({', '.join(f'{k}: {n}' for k, n in stats.errors.most_common())}; first: {stats.first_error})"
             if stats.errors else ""))
    print(f"client CPU: {stats.client_cpu / stats.elapsed:.0%} of one core, "
          f"{stats.client_cpu / requests * 1e6:.0f} us per request")
    if stats.server_cpu is not None:
        print(f"server CPU: {stats.server_cpu / stats.elapsed:.0%} of one core ({os.cpu_count()} cores here)")
    print(f"close: {close_seconds:.2f} s (ballots -> counts + VACUUM)")
    print(f"target: {TARGET}; this run: {rate:.0f} votes/s")


# --- A self-contained appliance -----------------------------------------------


def prepare_people(data_dir: Path, voters: int) -> None:
    """Open a fresh data directory and insert the people directly, all with one precomputed hash."""
    from appliance.directory import Person
    from appliance.directory.local import HASHER
    from appliance.services.context import build_appliance
    from appliance.settings import load_settings
    from appliance.storage.people import insert_person

    settings = load_settings(storage={"data_dir": str(data_dir)}, rounds={"release_interval_seconds": 0})
    app = build_appliance(settings)
    password_hash = HASHER.hash(PASSWORD)  # hashed once: argon2 is slow on purpose

    def add(username: str, group: str, attributes: dict[str, str] | None = None) -> None:
        person = Person(f"local:{username}", username, username.title(), f"{username}@example.org",
                        frozenset({group}), attributes or {})
        insert_person(app.dbs.identity, person, password_hash)

    try:
        add(ADMIN, "admins")
        add(MODERATOR, "moderators")
        for i in range(voters):
            add(voter_name(i), "staff", {"department": DEPARTMENTS[i % len(DEPARTMENTS)],
                                         "site": SITES[i % len(SITES)]})
    finally:
        app.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(data_dir: Path, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    """`python -m appliance serve` on loopback, in its own session so that Ctrl-C reaches only us."""
    env = os.environ | {
        "APPLIANCE_STORAGE__DATA_DIR": str(data_dir),
        "APPLIANCE_ROUNDS__RELEASE_INTERVAL_SECONDS": "0",
        "APPLIANCE_SERVER__WORKERS": str(workers),
    }
    command = [sys.executable, "-m", "appliance", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_healthy(server: subprocess.Popen, port: int, log_path: Path) -> None:
    """Poll /healthz until it answers 200; BenchError if the server dies or takes too long."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"the server exited with status {server.returncode}:\n{log_tail(log_path)}")
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            probe.request("GET", "/healthz")
            if probe.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            probe.close()
        time.sleep(0.1)
    raise BenchError(f"the server did not answer /healthz within {STARTUP_TIMEOUT:.0f} s:\n{log_tail(log_path)}")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM, then wait for a graceful stop; kill only if it hangs."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def run_self_contained(args: argparse.Namespace) -> int:
    """Prepare a temporary appliance, serve it, benchmark it, stop it."""
    with tempfile.TemporaryDirectory(prefix="appliance-bench-") as tmp:
        data_dir, log_path = Path(tmp) / "data", Path(tmp) / "server.log"
        clock = time.perf_counter()
        prepare_people(data_dir, args.voters)
        print(f"inserted {args.voters + 2} people in {time.perf_counter() - clock:.1f} s", flush=True)
        port = free_port()
        server = start_server(data_dir, port, args.workers, log_path)
        try:
            wait_until_healthy(server, port, log_path)
            print(f"server pid {server.pid} on http://127.0.0.1:{port} ({args.workers} worker(s))", flush=True)
            return asyncio.run(benchmark(args, Target("127.0.0.1", port), server.pid))
        except BenchError:
            print(f"server log:\n{log_tail(log_path)}", file=sys.stderr)
            raise
        finally:
            stop_server(server)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=300, help="signed-in voters (default 300)")
    parser.add_argument("--proposals", type=int, default=40, help="accepted proposals to vote on (default 40)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--seconds", type=float, default=20, help="how long to vote (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the voters' choices (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the started server")
    parser.add_argument("--url", help="benchmark an appliance already running on loopback (see the docstring)")
    parser.add_argument("--password", default=PASSWORD, help="password of the benchmark people (with --url)")
    args = parser.parse_args(argv)
    if args.voters < 1 or args.proposals < 1 or args.concurrency < 1 or not 0 < args.seconds <= 3600:
        parser.error("--voters, --proposals and --concurrency must be positive; --seconds in (0, 3600]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.url:
            return asyncio.run(benchmark(args, Target.from_url(args.url), None))
        return run_self_contained(args)
    except BenchError as error:
        print(f"votes.py: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
