"""Mail throughput: how many digest-sized messages per second go from the outbox to a relay, end to end.

What it measures: the outbox's sender, `send_all_due(identity.db, Mailer, now)`
(the mail job's work), called until the outbox is empty, against a real SMTP
server (aiosmtpd, plain SMTP on a loopback port) that accepts and discards
every message. The server runs in a process of its own, so its CPU does not
count against the sender's. Each of --runs runs builds a fresh data directory
(`build_appliance`, mail.security = "none"), queues --messages messages with
`enqueue` (timed apart, for information), then times the sending: claiming a
batch, parsing each stored message, a NOOP and the SMTP transaction on the
batch's connection, and marking each one sent in its own fsync'ed commit
(identity.db is synchronous=FULL: put $TMPDIR on a real disk, a tmpfs makes
fsync free).

The messages are final digests of a round (~3 KB of text and ~8 KB of HTML,
with non-ASCII text and styled bars): a few variants, each built once
with `outbox.compose`, then given, message by message, the next recipient's
To and a new Message-ID. Composing a message costs more than sending it
(the HTML is checked for remote content), so that cost is measured apart, on a
sample, and printed for information.

It prints, each against its target:
- messages per second, the median of the runs (target >= 50);
- the SMTP connections the server saw per run (target: one per batch of up to
  SEND_BATCH messages, reused for the whole batch);
- that every message arrived exactly once: the server reports the recipient
  of every message it accepted, and each one queued must appear once;
and, for information, the CPU per message of the sender and of the server, and
the time to queue a whole audience: --recipients-to-enqueue messages in one
`enqueue` call (as the round-mail job queues them), its rate, the peak RSS of
this process, and how long another writer of identity.db was kept waiting
meanwhile (a thread takes and releases the write lock every 20 ms, as a
sign-in or any other write would: past SQLite's busy timeout that write fails
with "database is locked").

How to run it, from the project directory:

    .venv/bin/python bench/mail.py [--messages 5000] [--runs 3]
        [--recipients-to-enqueue 100000]

The default run takes about 4 minutes on 2 cores, most of it sending 3 x 5,000
messages at ~100 messages/s; `--messages 1000 --recipients-to-enqueue 20000`
takes under a minute.

The SMTP server is aiosmtpd, a test dependency (`./install.sh --dev`).

It exits 0 whether the targets are met or not (it is a measurement), and 2
when it could not run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import select
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.settings import MailSettings, Settings

TARGET_RATE = 50.0  # messages per second
DOMAIN = "example.org"
FROM_ADDRESS = f"consultation@{DOMAIN}"
VARIANTS = 12  # distinct digests, each sent to every 12th person
COMPOSE_SAMPLE = 100  # messages composed one by one to measure what composing costs
PROBE_EVERY = 0.02  # seconds between two writes of the probe during the big enqueue
SERVER_START_TIMEOUT = 30.0
SERVER_ANSWER_TIMEOUT = 60.0


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- The SMTP server, in its own process ---------------------------------------------


def serve(port: int) -> int:
    """Accept and discard mail on 127.0.0.1:port; answer each "report" line on stdin with a JSON tally, then reset."""
    from aiosmtpd.controller import Controller

    lock = threading.Lock()
    tally = {"connections": 0, "messages": 0, "bytes": 0, "recipients": Counter()}

    class Sink:
        async def handle_DATA(self, server, session, envelope) -> str:
            with lock:
                tally["messages"] += 1
                tally["bytes"] += len(envelope.original_content or b"")
                tally["recipients"].update(envelope.rcpt_tos)
            return "250 2.0.0 accepted"

    class CountingController(Controller):
        def factory(self):
            with lock:
                tally["connections"] += 1  # once per TCP connection
            return super().factory()

    def reset() -> None:
        tally.update(connections=0, messages=0, bytes=0, recipients=Counter())

    controller = CountingController(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    with lock:
        reset()  # start() connects once to check that the server listens
    cpu = time.process_time()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "report":
            with lock:
                now = time.process_time()
                print(json.dumps({**tally, "cpu": now - cpu}), flush=True)
                reset()
                cpu = now
    controller.stop()
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Relay:
    """The SMTP server process: started, asked for its tally (which resets it), stopped."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        with open(log, "wb") as stderr:
            command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(self.port)]
            self.process = subprocess.Popen(command, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=stderr)
        if self._line(SERVER_START_TIMEOUT) != "ready":
            self.stop()
            raise BenchError(f"the SMTP server did not start: {self._log_tail()}")

    def tally(self) -> dict:
        """What the server accepted since the last tally."""
        assert self.process.stdin is not None
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        line = self._line(SERVER_ANSWER_TIMEOUT)
        if not line:
            raise BenchError(f"the SMTP server did not report: {self._log_tail()}")
        return json.loads(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline().strip() if ready else ""

    def _log_tail(self) -> str:
        tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
        return " / ".join(tail) or f"no output (exit status {self.process.poll()})"


# --- The messages --------------------------------------------------------------------

IDEAS = (("A shared calendar for", "so that teams stop double-booking the same rooms and people"),
         ("Quiet rooms in", "because open spaces make focused work hard for many of us"),
         ("Fewer meetings at", "to give everyone back an afternoon a week for their actual work"),
         ("Better coffee machines in", "since the old ones have not been replaced in years"),
         ("Covered bike racks at", "for the colleagues who cycle in and have nowhere safe to leave a bike"),
         ("A mentoring programme in", "so that newcomers learn faster from people who have been here longer"),
         ("Flexible hours at", "because school runs and commutes do not fit a fixed nine-to-five"),
         ("Clearer signage at", "since visitors and new staff get lost on their first days"))
PLACES = ("every site", "the head office", "the warehouses", "the regional offices", "the labs",
          "all departments", "the new building", "the customer centres")
COLOURS = {"agree": "#2e7d32", "disagree": "#c62828", "neutral": "#9e9e9e"}
FULL, EMPTY = "\u2588", "\u2591"  # the blocks of a text bar
STYLE = ("body{margin:0;padding:24px;background:#fafafa;font-family:Arial,Helvetica,sans-serif;color:#212121}"
         ".page{max-width:640px;margin:0 auto;background:#fff;padding:24px}"
         "h2{font-size:17px;color:#1a237e;margin:24px 0 8px;border-bottom:1px solid #c5cae9;padding-bottom:4px}"
         "table{width:100%;border-collapse:collapse;margin:0 0 14px}td{padding:1px 0;font-size:12px}"
         "td.t{font-size:14px;padding:4px 0}td.o{width:80px;color:#555}td.p{width:50px;text-align:right}"
         ".b{background:#eee;width:200px;height:10px}.b div{height:10px}td.v{color:#777}"
         ".button{background:#1a237e;color:#fff;padding:10px 18px;text-decoration:none;border-radius:4px}"
         ".small{font-size:11px;color:#888}")


@dataclass(frozen=True)
class Line:
    text: str
    rates: dict[str, int]  # percent by option
    voters: int


def digest(variant: int) -> tuple[str, str, str]:
    """Subject, text (~3 KB) and HTML (~8 KB) of a final digest: the widest-supported and most divided proposals."""
    rng = random.Random(variant)
    title = f"Making our work easier \u2013 {rng.choice(PLACES)}"

    def line() -> Line:
        agree = rng.randint(10, 85)
        disagree = rng.randint(0, 100 - agree)
        idea, why = rng.choice(IDEAS)
        return Line(f"{idea} {rng.choice(PLACES)}, {why}.",
                    {"agree": agree, "disagree": disagree, "neutral": 100 - agree - disagree}, rng.randint(40, 900))

    sections = {"Widest support": [line() for _ in range(5)], "Most divided": [line() for _ in range(5)]}
    voters = rng.randint(900, 4000)
    intro = f"The consultation \u201c{title}\u201d is over. What came out of it ({voters} voters):"
    link = f"https://consultation.{DOMAIN}/rounds/{rng.getrandbits(64):016x}"
    text = [intro, ""]
    html = [f"<p>{intro}</p>"]
    for heading, lines in sections.items():
        text += [heading, "=" * len(heading), ""]
        html.append(f"<h2>{heading}</h2>")
        for n, item in enumerate(lines, 1):
            text.append(f"{n}. {item.text}")
            html.append(f'<table role="presentation"><tr><td colspan="3" class="t">{n}. {item.text}</td></tr>')
            for option, rate in item.rates.items():
                blocks = round(rate / 10)
                text.append(f"   {option:<9}{FULL * blocks}{EMPTY * (10 - blocks)} {rate:3d} %")
                html.append(f'<tr><td class="o">{option}</td><td><div class="b"><div style="background:'
                            f'{COLOURS[option]};width:{rate * 2}px"></div></div></td><td class="p">{rate} %</td></tr>')
            text += [f"   {item.voters} voters", ""]
            html.append(f'<tr><td colspan="3" class="v">{item.voters} voters</td></tr></table>')
    footer = ("Figures with too few responses behind them are not shown, so that nobody's vote can be told apart.\n"
              "You receive this message because you were invited to the consultation.")
    text += [f"Open the consultation: {link}", "", footer]
    html.append(f'<p style="margin:24px 0"><a class="button" href="{link}">Open the consultation</a></p>'
                f'<p class="small">{footer.replace(chr(10), "<br>")}</p>')
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<style>{STYLE}</style></head><body><div class="page">' + "\n".join(html) + "</div></body></html>")
    return f"{title}: the results", "\n".join(text), page


def address(run: str, i: int) -> str:
    return f"person.{run}.{i:06d}@{DOMAIN}"


@dataclass
class Audience:
    """The messages to `count` people of a run, made as the outbox draws them; `seconds` spent making them."""

    mail: MailSettings
    run: str
    count: int
    seconds: float = 0.0
    variants: list[EmailMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        from appliance.services.outbox import compose

        self.variants = [compose(self.mail, "", f"someone@{DOMAIN}", *digest(v)).message for v in range(VARIANTS)]

    def __iter__(self) -> Iterator:
        """Each message is a variant readdressed in place: the outbox serialises it before it draws the next."""
        from appliance.services.outbox import Outgoing

        for i in range(self.count):
            started = time.perf_counter()
            message = self.variants[i % VARIANTS]
            message.replace_header("To", Address(f"Person {i}", addr_spec=address(self.run, i)))
            message.replace_header("Message-ID", make_msgid(domain=DOMAIN))
            item = Outgoing(f"final:bench-{self.run}:{address(self.run, i)}", message)
            self.seconds += time.perf_counter() - started
            yield item


def compose_cost(mail: MailSettings) -> tuple[float, int, int, int]:
    """CPU seconds to compose one digest with `outbox.compose`, on a sample; the text, HTML and message sizes."""
    from appliance.services.outbox import compose

    contents = [digest(v) for v in range(VARIANTS)]
    started = time.process_time()
    for i in range(COMPOSE_SAMPLE):
        message = compose(mail, f"sample:{i}", address("sample", i), *contents[i % VARIANTS]).message
    seconds = (time.process_time() - started) / COMPOSE_SAMPLE
    sizes = [(len(text.encode()), len(html.encode())) for _, text, html in contents]
    return (seconds, round(statistics.mean(t for t, _ in sizes)), round(statistics.mean(h for _, h in sizes)),
            len(bytes(message)))


def check_queued(db, count: int) -> None:
    """BenchError unless the outbox holds `count` messages to as many recipients."""
    from appliance.storage.connection import fetch_one

    rows, recipients = fetch_one(db, "SELECT count(*), count(DISTINCT recipient) FROM outbox")
    if (rows, recipients) != (count, count):
        raise BenchError(f"the outbox holds {rows} messages to {recipients} recipients, {count} expected")


# --- Sending -------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    messages: int
    enqueue_seconds: float
    seconds: float
    sender_cpu: float
    server_cpu: float
    connections: int
    sent: int
    retried: int
    failed: int
    left: int
    errors: list[str]
    arrived: int
    missing: int
    repeated: int  # recipients who got the message more than once
    unexpected: int
    wire_bytes: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def exactly_once(self) -> bool:
        return self.arrived == self.messages and not (self.missing or self.repeated or self.unexpected)


def mail_settings(data_dir: Path, port: int) -> Settings:
    from appliance.settings import load_settings

    return load_settings(storage={"data_dir": str(data_dir)},
                         mail={"enabled": True, "host": "127.0.0.1", "port": port, "security": "none",
                               "from_address": FROM_ADDRESS, "from_name": "Consultation"})


def send_run(tmp: Path, number: int, relay: Relay, count: int) -> Run:
    """Queue `count` digests in a fresh data directory, then send them all; what the server received."""
    from appliance.mail import Mailer
    from appliance.services.context import build_appliance, utc_now
    from appliance.services.outbox import SendReport, depth, enqueue, failures, send_all_due

    run = f"r{number}"
    settings = mail_settings(tmp / f"run-{number}", relay.port)
    app = build_appliance(settings)
    try:
        db = app.dbs.identity
        messages = Audience(settings.mail, run, count)
        started = time.perf_counter()
        enqueue(db, messages, utc_now())
        enqueue_seconds = time.perf_counter() - started - messages.seconds
        check_queued(db, count)
        relay.tally()  # from zero
        mailer = Mailer(settings.mail)
        total = SendReport()
        cpu, started = time.process_time(), time.perf_counter()
        while depth(db):
            report = send_all_due(db, mailer, utc_now())
            total += report
            if not report.sent:  # what is left waits for a retry later (or failed): not this benchmark's business
                break
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        tally = relay.tally()
        left, errors = depth(db), [f.last_error for f in failures(db, 3)]
    finally:
        app.close()
    received = Counter(tally["recipients"])
    expected = {address(run, i) for i in range(count)}
    return Run(count, enqueue_seconds, seconds, cpu, tally["cpu"], tally["connections"], total.sent, total.retried,
               total.failed, left, errors, tally["messages"], len(expected - set(received)),
               sum(1 for a, n in received.items() if a in expected and n > 1), len(set(received) - expected),
               tally["bytes"])


def print_run(number: int, run: Run) -> None:
    print(f"run {number}: {run.messages} messages in {run.seconds:.1f} s = {run.rate:.0f} messages/s;"
          f" CPU per message: sender {run.sender_cpu / run.messages * 1e3:.2f} ms, SMTP server"
          f" {run.server_cpu / run.messages * 1e3:.2f} ms; {run.connections} SMTP connections;"
          f" {run.arrived} arrived ({run.wire_bytes / max(run.arrived, 1) / 1024:.1f} KB each on the wire);"
          f" queued beforehand in {run.enqueue_seconds:.1f} s", flush=True)
    if run.retried or run.failed or run.left:
        print(f"  {run.sent} sent, {run.retried} to retry, {run.failed} failed, {run.left} left in the outbox"
              + (f"; last errors: {' | '.join(run.errors)}" if run.errors else ""), flush=True)


# --- Queuing a whole audience --------------------------------------------------------


@dataclass
class Probe:
    """Another writer of identity.db: takes and releases the write lock every PROBE_EVERY s, timing each wait."""

    path: Path
    waits: list[float] = field(default_factory=list)
    written: list[float] = field(default_factory=list)  # when each write that went through was done
    locked: int = 0  # writes that gave up: "database is locked"
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        from appliance.storage.connection import connect, write

        db = connect(self.path)
        self.written.append(time.perf_counter())
        try:
            while not self.stop.wait(PROBE_EVERY):
                started = time.perf_counter()
                try:
                    with write(db):
                        pass
                    self.written.append(time.perf_counter())
                except sqlite3.OperationalError:
                    self.locked += 1
                self.waits.append(time.perf_counter() - started)
        finally:
            db.conn.close()

    def longest_gap(self) -> float:
        """The longest time nothing else could write (less the probe's own pause between two writes)."""
        return max((b - a for a, b in zip(self.written, self.written[1:])), default=0.0) - PROBE_EVERY


def enqueue_audience(tmp: Path, port: int, count: int) -> None:
    """Queue `count` digests in one `enqueue` call, a writer probing identity.db meanwhile; print the figures."""
    from appliance.services.context import build_appliance, utc_now
    from appliance.services.outbox import enqueue

    settings = mail_settings(tmp / "audience", port)
    app = build_appliance(settings)
    try:
        messages = Audience(settings.mail, "a", count)
        probe = Probe(settings.storage.identity_db)
        thread = threading.Thread(target=probe.run, daemon=True)
        thread.start()
        started = time.perf_counter()
        try:
            queued = enqueue(app.dbs.identity, messages, utc_now())
        finally:
            seconds = time.perf_counter() - started - messages.seconds
            probe.stop.set()
            thread.join()
        check_queued(app.dbs.identity, count)
    finally:
        app.close()
    size = sum(p.stat().st_size for p in settings.storage.identity_db.parent.glob("identity.db*"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"enqueue of a whole audience: {queued} digests in one enqueue call in {seconds:.1f} s ="
          f" {queued / seconds:.0f} messages/s (informational; making the messages, {messages.seconds:.1f} s, not"
          f" counted); identity.db {size / 2**20:.0f} MB; peak RSS of this process {rss:.0f} MB (the messages were"
          f" made one at a time: a caller that composes the whole list first holds it too)", flush=True)
    print(f"  another writer of identity.db meanwhile (one every {PROBE_EVERY * 1e3:.0f} ms): none went through"
          f" for {probe.longest_gap():.1f} s at the longest; longest wait {max(probe.waits, default=0):.2f} s;"
          f" {probe.locked} of {len(probe.waits)} gave up with \"database is locked\" (a sign-in then fails)",
          flush=True)


# --- The benchmark -------------------------------------------------------------------


def benchmark(args: argparse.Namespace, tmp: Path) -> int:
    from appliance.services.outbox import SEND_BATCH

    relay = Relay(tmp / "smtp-server.log")
    try:
        mail = mail_settings(tmp / "sample", relay.port).mail
        compose_seconds, text_size, html_size, message_size = compose_cost(mail)
        audience = args.recipients_to_enqueue or 100_000
        print(f"messages: final digests of {text_size / 1024:.1f} KB of text and {html_size / 1024:.1f} KB of HTML,"
              f" {message_size / 1024:.1f} KB as queued; composing one with outbox.compose takes"
              f" {compose_seconds * 1e3:.1f} ms of CPU (informational, not part of the figures below:"
              f" {compose_seconds * audience:.0f} s for {audience} people)",
              flush=True)
        runs = []
        for number in range(1, args.runs + 1):
            runs.append(send_run(tmp, number, relay, args.messages))
            print_run(number, runs[-1])
        rates = [r.rate for r in runs]
        median = statistics.median(rates)
        print(f"throughput: median {median:.0f} messages/s over {len(runs)} runs"
              f" ({', '.join(f'{r:.0f}' for r in rates)}); target >= {TARGET_RATE:g} messages/s:"
              f" {verdict(median >= TARGET_RATE)}", flush=True)
        batches = math.ceil(args.messages / SEND_BATCH)
        connections = [r.connections for r in runs]
        print(f"connections: {', '.join(map(str, connections))} per run for {batches} batches of up to {SEND_BATCH}"
              f" messages; target 1 per batch, reused: {verdict(all(c == batches for c in connections))}",
              flush=True)
        once = all(r.exactly_once for r in runs)
        problems = "; ".join(f"run {n}: {r.arrived} arrived, {r.missing} missing, {r.repeated} more than once,"
                             f" {r.unexpected} unexpected" for n, r in enumerate(runs, 1) if not r.exactly_once)
        print(f"delivery: {sum(r.arrived for r in runs)} of {sum(r.messages for r in runs)} messages arrived,"
              f" {'each exactly once' if once else problems}; target every message exactly once: {verdict(once)}",
              flush=True)
        if args.recipients_to_enqueue:
            enqueue_audience(tmp, relay.port, args.recipients_to_enqueue)
    finally:
        relay.stop()
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages sent per run (default 5000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs, each in a fresh data directory (default 3;"
                                                            " the median)")
    parser.add_argument("--recipients-to-enqueue", type=int, default=100_000,
                        help="digests queued in one enqueue call, for information (default 100000; 0 skips it)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)  # internal: the SMTP server
    args = parser.parse_args(argv)
    if args.serve is None and (args.messages < 1 or args.runs < 1 or args.recipients_to_enqueue < 0):
        parser.error("--messages and --runs must be positive, --recipients-to-enqueue at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        return serve(args.serve)
    for name in [n for n in os.environ if n.startswith("APPLIANCE_")]:
        del os.environ[name]
    try:
        from appliance.settings import SettingsError
    except ImportError as error:
        print(f"mail.py: {error} (run it with the project's virtual environment)", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="appliance-mail-bench-") as tmp:
            config = Path(tmp) / "empty.toml"
            config.write_text("")
            os.environ["APPLIANCE_CONFIG"] = str(config)  # no configuration of this machine takes part
            return benchmark(args, Path(tmp))
    except (BenchError, SettingsError, OSError, ImportError) as error:
        print(f"mail.py: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
