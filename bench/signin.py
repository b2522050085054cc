"""Sign-in throughput: how many people per second can sign in against a real LDAP directory.

What it measures: POST /api/v1/session ({username, password}) through the real
HTTP server (uvicorn + Litestar over a loopback socket), against a private
OpenLDAP server (slapd, StartTLS with a throw-away CA), in two parts: first
100 sign-ins started every second whatever the answers (an open loop: the
target's latency is measured at the target's rate, waiting for a free
connection included), then as fast as --concurrency keep-alive connections go
(the highest rate; there every connection always waits, so latency is mostly
queueing). Each sign-in is the whole path: the throttle
look-up in identity.db, the search for the person with the pooled service
connection, a bind as that person on the pooled bind connection, the search for
their groups, then the session written to identity.db (synchronous=FULL, so
fsync'ed commits). It prints the number of sign-ins, sign-ins per second, p50
and p99 latency (of the successful sign-ins), failures (any answer other than a
200 that sets a session for the right person), and the CPU used by the client,
the server and slapd during the run, each figure against its target.

How to run it, from the project directory:

    .venv/bin/python bench/signin.py [--seconds 10] [--concurrency 16]
        [--people 200] [--warmup 2] [--workers 1] [--pool-size N]

It is self-contained: it makes a test CA and starts a private slapd with the
test harness (tests/services/slapd.py; `./install.sh --dev` installs slapd),
loaded with --people people u00, u01, ... u199 who all have the harness's
password, creates a temporary data directory (under $TMPDIR: put it on a real
disk, a tmpfs makes fsync free), starts `python -m appliance serve` on a free
loopback port with directory.kind = "ldap", signs in for --warmup seconds
(not counted: the LDAP pools and SQLite connections open then), then for
--seconds, and stops the server and slapd at the end, on errors and on Ctrl-C.

The clients sign in as the people in turn (round robin over all of them), each
sign-in a fresh one: no session cookie is sent, only the CSRF token that any GET
hands out. Every sign-in succeeds, so throttling never comes into play.

It exits 0 whether the target is met or not (it is a measurement), and 2 when
it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for _path in (BENCH_DIR, ROOT):  # votes.py beside us; tests.services.slapd from the repository root
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from votes import (  # noqa: E402 - the HTTP client and the server lifecycle of the ballot benchmark
    BenchError,
    Connection,
    Stats,
    Target,
    free_port,
    log_tail,
    percentile,
    process_tree_cpu,
    start_server,
    stop_server,
    wait_until_healthy,
)

TARGET_RATE = 100  # sign-ins per second
TARGET_P99_MS = 100.0
TARGET = f">= {TARGET_RATE} sign-ins/s and p99 <= {TARGET_P99_MS:.0f} ms on 2 cores"
SETUP_TIMEOUT = 60.0  # seconds, for any single setup request
GRACE = 30.0  # seconds allowed after the deadline for the last sign-ins to answer
SLAPD_PROGRAMS = ("slapd", "slapadd", "slappasswd", "openssl")


# --- The timed part -----------------------------------------------------------


async def fetch_csrf(target: Target) -> str:
    """Any GET hands out the csrftoken cookie; one token serves every connection."""
    conn = await Connection.open(target)
    try:
        async with asyncio.timeout(SETUP_TIMEOUT):
            csrf = (await conn.request("GET", "/healthz")).cookies().get("csrftoken")
    finally:
        conn.close()
    if not csrf:
        raise BenchError("GET /healthz handed out no csrftoken cookie")
    return csrf


def signed_in_as(body: bytes) -> str | None:
    """The username a sign-in answer names (GET /api/v1/me's shape), None if it names nobody."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer.get("username") if isinstance(answer, dict) else None


async def sign_in_worker(conn: Connection | None, target: Target, csrf: str, usernames: Iterator[str],
                         password: str, deadline: float, stats: Stats) -> None:
    """Sign in as the next person, one at a time on one connection, until the deadline.

    Only a 200 that sets a session cookie for the person asked for counts; a
    broken connection counts as a failure and is opened again.
    """
    headers = f"Cookie: csrftoken={csrf}\r\nX-CSRFToken: {csrf}\r\n"
    try:
        while time.perf_counter() < deadline:
            username = next(usernames)
            body = {"username": username, "password": password}
            started = time.perf_counter()
            try:
                conn = conn or await Connection.open(target)
                reply = await conn.request("POST", "/api/v1/session", body, headers)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                stats.failed("connection", repr(error))
                if conn:
                    conn.close()
                conn = None
                await asyncio.sleep(0.05)
                continue
            latency = time.perf_counter() - started
            if reply.status != 200:
                stats.failed(f"HTTP {reply.status}", reply.body[:200].decode(errors="replace"))
            elif not reply.cookies().get("session"):
                stats.failed("no session cookie", f"signing in {username}")
            elif signed_in_as(reply.body) != username:
                stats.failed("wrong person", f"signing in {username}: {reply.body[:200]!r}")
            else:
                stats.ok += 1
                stats.latencies.append(latency)
    finally:
        if conn:
            conn.close()


async def sign_in_once(conns: asyncio.Queue, target: Target, csrf: str, username: str, password: str,
                       scheduled: float, stats: Stats) -> None:
    """One sign-in on a free connection; its latency counts from when it was due, waiting included."""
    headers = f"Cookie: csrftoken={csrf}\r\nX-CSRFToken: {csrf}\r\n"
    conn = await conns.get()
    try:
        conn = conn or await Connection.open(target)
        reply = await conn.request("POST", "/api/v1/session", {"username": username, "password": password}, headers)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        stats.failed("connection", repr(error))
        if conn:
            conn.close()
        conn = None
    else:
        if reply.status != 200 or signed_in_as(reply.body) != username:
            stats.failed(f"HTTP {reply.status}", reply.body[:200].decode(errors="replace"))
        else:
            stats.ok += 1
            stats.latencies.append(time.perf_counter() - scheduled)
    finally:
        conns.put_nowait(conn)


async def run_paced(target: Target, csrf: str, usernames: Iterator[str], password: str, concurrency: int,
                    rate: float, seconds: float) -> Stats:
    """Sign-ins started at a steady `rate` per second (an open loop: a slow answer does not delay the next)."""
    stats = Stats()
    conns: asyncio.Queue = asyncio.Queue()
    for _ in range(concurrency):
        conns.put_nowait(await Connection.open(target))
    started = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(sign_in_once(conns, target, csrf, next(usernames), password, due, stats)))
    done, stuck = await asyncio.wait(tasks, timeout=GRACE)
    for task in stuck:
        task.cancel()
        stats.failed("timeout", f"no answer {GRACE:.0f} s after the last sign-in was due")
    stats.elapsed = time.perf_counter() - started
    while not conns.empty():
        conn = conns.get_nowait()
        if conn:
            conn.close()
    for task in done:
        task.result()
    return stats


async def run_load(target: Target, csrf: str, usernames: Iterator[str], password: str, concurrency: int,
                   seconds: float, pids: dict[str, int | None]) -> tuple[Stats, dict[str, float | None]]:
    """`concurrency` clients, each with its own connection, for `seconds`; the figures and each process's CPU."""
    stats = Stats()
    conns = [await Connection.open(target) for _ in range(concurrency)]  # connected before the clock starts
    cpu_before = {name: process_tree_cpu(pid) for name, pid in pids.items()}
    client_before = time.process_time()
    started = time.perf_counter()
    tasks = [asyncio.create_task(sign_in_worker(conn, target, csrf, usernames, password, started + seconds, stats))
             for conn in conns]
    done, stuck = await asyncio.wait(tasks, timeout=seconds + GRACE)
    for task in stuck:
        task.cancel()
        stats.failed("timeout", f"no answer {GRACE:.0f} s after the deadline")
    stats.elapsed = time.perf_counter() - started
    stats.client_cpu = time.process_time() - client_before
    cpu = {}
    for name, pid in pids.items():
        after = process_tree_cpu(pid)
        cpu[name] = after - cpu_before[name] if after is not None and cpu_before[name] is not None else None
    for task in done:
        task.result()  # a bug in the client itself should not pass unnoticed
    return stats, cpu


async def benchmark(args: argparse.Namespace, target: Target, people: list[str], password: str,
                    pids: dict[str, int | None]) -> int:
    """Warm up, sign in for a fixed time; print the figures."""
    csrf = await fetch_csrf(target)
    usernames = itertools.cycle(people)
    if args.warmup > 0:
        warmup, _ = await run_load(target, csrf, usernames, password, args.concurrency, args.warmup, pids)
        if not warmup.ok:
            raise BenchError(f"no sign-in succeeded during the warm-up: {warmup.first_error}")
        print(f"warm-up: {warmup.ok} sign-ins in {warmup.elapsed:.1f} s"
              + (f", {sum(warmup.errors.values())} failures" if warmup.errors else ""), flush=True)
    print(f"1. at the target rate: {TARGET_RATE} sign-ins started per second for {args.seconds:g} s,"
          f" up to {args.concurrency} at once", flush=True)
    paced = await run_paced(target, csrf, usernames, password, args.concurrency, TARGET_RATE, args.seconds)
    if not paced.ok:
        raise BenchError(f"no sign-in succeeded: {paced.first_error}")
    print(f"2. as fast as it goes: {args.concurrency} connections signing in one after the other for"
          f" {args.seconds:g} s, {len(people)} people in turn", flush=True)
    stats, cpu = await run_load(target, csrf, usernames, password, args.concurrency, args.seconds, pids)
    if not stats.ok:
        raise BenchError(f"no sign-in succeeded: {stats.first_error}")
    report(paced, stats, cpu)
    return 0


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(paced: Stats, stats: Stats, cpu: dict[str, float | None]) -> None:
    paced_latencies = sorted(paced.latencies)
    p50, p99 = percentile(paced_latencies, 0.50) * 1000, percentile(paced_latencies, 0.99) * 1000
    latencies = sorted(stats.latencies)
    rate = stats.ok / stats.elapsed if stats.elapsed else 0.0
    busy_p50, busy_p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
    failures = sum(stats.errors.values()) + sum(paced.errors.values())
    requests = max(1, stats.ok + sum(stats.errors.values()))
    print(f"at {TARGET_RATE} sign-ins/s: {paced.ok} sign-ins, latency p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"(target p99 <= {TARGET_P99_MS:.0f} ms: {verdict(p99 <= TARGET_P99_MS)})")
    print(f"as fast as it goes: {stats.ok} sign-ins in {stats.elapsed:.1f} s, {rate:.0f} per second "
          f"(target >= {TARGET_RATE}: {verdict(rate >= TARGET_RATE)}); latency p50 {busy_p50:.1f} ms, "
          f"p99 {busy_p99:.1f} ms (every connection always waiting: latency = queue)")
    stats.errors.update(paced.errors)
    print(f"failures: {failures}"
          + (f" ({', '.join(f'{k}: {n}' for k, n in stats.errors.most_common())}; first: {stats.first_error})"
             if stats.errors else "")
          + f" (target 0: {verdict(not failures)})")
    print(f"client CPU: {stats.client_cpu / stats.elapsed:.0%} of one core, "
          f"{stats.client_cpu / requests * 1e6:.0f} us per request")
    for name, used in cpu.items():
        if used is not None:
            print(f"{name} CPU: {used / stats.elapsed:.0%} of one core, "
                  f"{used / max(1, stats.ok) * 1e3:.2f} ms per sign-in ({os.cpu_count()} cores here)")
    met = rate >= TARGET_RATE and p99 <= TARGET_P99_MS and not failures
    print(f"target: {TARGET}; this run: {rate:.0f} sign-ins/s at most, p99 {p99:.1f} ms at {TARGET_RATE}/s"
          f" ({verdict(met)})")


# --- A self-contained appliance on a private slapd ----------------------------


def require_slapd() -> None:
    """BenchError in one line unless the programs the slapd harness runs are installed."""
    for directory in ("/usr/sbin", "/sbin"):  # slapd lives in sbin, which a non-root PATH may lack
        if directory not in os.environ.get("PATH", "").split(os.pathsep) and Path(directory).is_dir():
            os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + directory
    missing = [program for program in SLAPD_PROGRAMS if shutil.which(program) is None]
    if missing:
        raise BenchError(f"{', '.join(missing)} not found: this benchmark starts a private slapd; "
                         f"run ./install.sh --dev (as root) to install it")


def ldap_environment(server, ca, config: Path, pool_size: int | None) -> dict[str, str]:
    """APPLIANCE_* variables for signing in against this slapd over StartTLS (as tests/conftest.py's ldap_sections).

    `config` is an empty TOML file, so that no config/appliance.toml of the
    working directory leaks into the run.
    """
    from tests.services.slapd import GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD

    config.write_text("# bench/signin.py: every setting comes from APPLIANCE_* variables\n", encoding="utf-8")
    env = {
        "APPLIANCE_CONFIG": str(config),
        "APPLIANCE_DIRECTORY__KIND": "ldap",
        "APPLIANCE_DIRECTORY__ADMIN_GROUPS": json.dumps(["appliance-admins", "admins"]),
        "APPLIANCE_DIRECTORY__MODERATOR_GROUPS": json.dumps(["appliance-moderators"]),
        "APPLIANCE_LDAP__SERVERS": json.dumps([server.url]),
        "APPLIANCE_LDAP__START_TLS": "true",
        "APPLIANCE_LDAP__CA_FILE": str(ca.ca_file),
        "APPLIANCE_LDAP__BIND_DN": SERVICE_DN,
        "APPLIANCE_LDAP__BIND_PASSWORD": SERVICE_PASSWORD,
        "APPLIANCE_LDAP__USER_SEARCH_BASE": PEOPLE_DN,
        "APPLIANCE_LDAP__GROUP_SEARCH_BASE": GROUPS_DN,
        "APPLIANCE_LDAP__SEGMENT_ATTRIBUTES": json.dumps({"department": "departmentNumber", "site": "l"}),
    }
    if pool_size is not None:
        env["APPLIANCE_LDAP__POOL_SIZE"] = str(pool_size)
    return env


def slapd_pid(server) -> int | None:
    """The pid slapd wrote to its pidfile, for its CPU use."""
    try:
        return int((server.workdir / "slapd.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def run_self_contained(args: argparse.Namespace) -> int:
    """Start slapd, prepare a temporary appliance on it, serve it, benchmark it, stop both."""
    require_slapd()
    from tests.services.slapd import USER_PASSWORD, Slapd, TestCA, staff_member

    with tempfile.TemporaryDirectory(prefix="appliance-bench-") as tmp:
        data_dir, log_path = Path(tmp) / "data", Path(tmp) / "server.log"
        clock = time.perf_counter()
        try:
            ca = TestCA(Path(tmp) / "ca")
            directory = Slapd(Path(tmp) / "slapd", ca, people=args.people)
            directory.start()
        except RuntimeError as error:  # the harness's way of saying a program failed
            raise BenchError(f"could not start slapd: {error}") from None
        try:
            print(f"slapd on {directory.url} (StartTLS) with {args.people} people, "
                  f"started in {time.perf_counter() - clock:.1f} s", flush=True)
            os.environ.update(ldap_environment(directory, ca, Path(tmp) / "appliance.toml", args.pool_size))
            port = free_port()
            server = start_server(data_dir, port, args.workers, log_path)
            try:
                wait_until_healthy(server, port, log_path)
                print(f"server pid {server.pid} on http://127.0.0.1:{port} ({args.workers} worker(s))", flush=True)
                people = [staff_member(n).uid for n in range(args.people)]
                pids = {"server": server.pid, "slapd": slapd_pid(directory)}
                return asyncio.run(benchmark(args, Target("127.0.0.1", port), people, USER_PASSWORD, pids))
            except BenchError:
                print(f"server log:\n{log_tail(log_path)}", file=sys.stderr)
                raise
            finally:
                stop_server(server)
        finally:
            directory.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="how long to sign in (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--people", type=int, default=200,
                        help="people in the directory, signed in in turn (default 200)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of sign-ins before the timed part (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the started server")
    parser.add_argument("--pool-size", type=int, help="ldap.pool_size of the server (default: the appliance's)")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.people < 1 or args.workers < 1 or not 0 < args.seconds <= 3600 \
            or not 0 <= args.warmup <= 600 or (args.pool_size is not None and args.pool_size < 1):
        parser.error("--concurrency, --people, --workers and --pool-size must be positive; "
                     "--seconds in (0, 3600], --warmup in [0, 600]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_self_contained(args)
    except BenchError as error:
        print(f"signin.py: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
