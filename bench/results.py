"""Results of a big closed round: how fast the publishable view is computed, and in how much memory.

What it measures: `round_results(app, round_id, admin, dimension)`, the use
case behind GET /api/v1/rounds/{id}/results, end to end from a real SQLite
file: reading the counts, combination voters, headcounts and accepted
proposals of a closed round, then the disclosure engine (`publishable_view`:
k, complement, overlap and homogeneity rules for every proposal and dimension,
cell-key perturbation, scores, ranks, representative estimates). Each timed
view is the first one of a fresh process that only opens the prepared data
directory and computes it: the appliance may keep the views of closed rounds in
memory, so only a first call measures the computation (the time of a second
call in the same process is printed beside it, for information). It prints,
for no breakdown and for each of the 3 dimensions, the median of --runs such
views and the peak RSS of those processes (ru_maxrss, so the setup's memory
does not count), each against its target.

How to run it, from the project directory:

    .venv/bin/python bench/results.py [--ballots 1000000] [--voters N]
        [--proposals 5000] [--audience N] [--runs 3] [--seed 1]
        [--keep DIR] [--profile]

The setup (timed apart, not part of the target) builds a data directory with
`build_appliance`, then writes directly, in bulk, a round as it is stored
after close: a `rounds` row (status "closed", dimensions department (20
values), site (10) and grade (5), k = 5), the accepted proposals (author labels
already erased), `headcounts` (the audience, --audience people, default 1.5 x
the voters, with a skewed, department-dependent distribution of segment
combinations coarsened by `build_coarsening`), `combo_voters`, and the `counts`
rows of --ballots ballots by --voters voters (default ballots / 10). A voter
votes on about ballots / voters distinct proposals (some voters much more than
others, some proposals much more popular), agree / disagree / neutral with
rates that depend on the proposal and a little on the department, and 30% of
ballots carry a qualification. Everything is drawn from --seed, so the same
options give the same round.

--keep DIR keeps the prepared data directory in DIR (DIR/data) and reuses it
on the next run with the same options: the setup is then skipped.

When a target is missed, or with --profile, it then profiles the slowest view
in another fresh process: the time and peak RSS of loading (SQLite -> arrays)
apart from the engine, then a cProfile of one whole view, the engine's
functions and the top functions by own time.

The setup, each measurement and the profile run in processes of their own,
started from a small parent: Linux carries a process's peak RSS over fork and
exec, so a measuring process started from the big setup process would report
the setup's peak as its own. The targets are set for 1M ballots (<= 2 s per
view, <= 500 MB) and 10M (<= 20 s); other sizes get 2 s per million ballots,
and 2 s at least.

It exits 0 whether the targets are met or not (it is a measurement), and 2
when it could not run.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import math
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SECONDS_PER_MILLION = 2.0  # target: 2 s for 1M ballots, 20 s for 10M
TARGET_RSS_MB = 500.0  # for 1M ballots
DIMENSIONS = ("department", "site", "grade")
DEPARTMENTS = ("Finance", "IT", "Sales", "Legal", "Operations", "Marketing", "Human Resources", "Procurement",
               "Logistics", "Research", "Engineering", "Quality", "Customer Service", "Facilities", "Security",
               "Communication", "Audit", "Treasury", "Strategy", "Data")
SITES = ("Paris", "Lyon", "Lille", "Marseille", "Nantes", "Toulouse", "Bordeaux", "Strasbourg", "Rennes", "Nice")
GRADES = ("G1", "G2", "G3", "G4", "G5")
K = 5
QUALIFIED = 0.30  # share of ballots with a qualification
MANIFEST = "bench-results.json"
VERSION = 2  # of the generated data: a kept directory from another version is rebuilt


class BenchError(Exception):
    """The benchmark could not run; the message says why."""


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def target_seconds(ballots: int) -> float:
    """2 s per million ballots (the targets are set at 1M and 10M), and never below 2 s."""
    return SECONDS_PER_MILLION * max(1.0, ballots / 1_000_000)


# --- The synthetic round ------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    ballots: int
    voters: int
    proposals: int
    audience: int
    seed: int

    def key(self) -> dict:
        return {"version": VERSION, **self.__dict__}


def zipf(n: int, exponent: float) -> list[float]:
    return [1 / (i + 1) ** exponent for i in range(n)]


def cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def draw_audience(rng: random.Random, size: int) -> list[tuple[str, str, str]]:
    """Each audience member's raw segment combination (department, site, grade), skewed and correlated.

    Departments follow a Zipf law (the biggest about 28%, the smallest 1.4%);
    each department has its own main sites (a Zipf law over a rotation of the
    sites); grades are pyramidal; 1% have no site and 2% no grade ("other").
    """
    from appliance.domain.segments import OTHER

    n_sites, n_grades = len(SITES), len(GRADES)
    departments = rng.choices(range(len(DEPARTMENTS)), cum_weights=cumulative(zipf(len(DEPARTMENTS), 0.9)), k=size)
    site_weights = zipf(n_sites, 1.3)
    sites = {}  # per department, its members' sites in turn: a Zipf law over a rotation of the sites
    for d, members in Counter(departments).items():
        shift = (3 * d) % n_sites
        rotated = site_weights[shift:] + site_weights[:shift]
        sites[d] = iter(rng.choices(range(n_sites), cum_weights=cumulative(rotated), k=members))
    grades = iter(rng.choices(range(n_grades), cum_weights=cumulative([0.38, 0.27, 0.18, 0.11, 0.06]), k=size))
    random_ = rng.random
    raws = []
    for d in departments:
        site, grade = SITES[next(sites[d])], GRADES[next(grades)]
        raws.append((DEPARTMENTS[d], site if random_() >= 0.01 else OTHER, grade if random_() >= 0.02 else OTHER))
    return raws


@dataclass
class Prepared:
    """What the setup writes, in the order of the counts table's primary key."""

    round_id: str
    proposals: list[tuple[str, str]]  # (id, text), sorted by id
    raw_combos: int  # distinct raw combinations in the audience
    combos: list[str]  # stored combination keys, sorted
    headcounts: dict[str, int]
    combo_voters: dict[str, int]
    cells: Counter  # (proposal * len(combos) + combo) * 12 + vote * 4 + qualification -> ballots
    ballots: int


def generate(plan: Plan) -> Prepared:
    """The closed round's content, drawn from the plan's seed."""
    from appliance.domain import segments
    from appliance.domain.votes import VOTES

    rng = random.Random(plan.seed)
    round_id = f"{rng.getrandbits(64):016x}"
    raws = draw_audience(rng, plan.audience)
    mapping = segments.build_coarsening(raws, K)
    headcounts = segments.headcounts(mapping, raws)
    combos = sorted(headcounts)
    combo_index = {key: i for i, key in enumerate(combos)}
    stored_of = {raw: combo_index[segments.combo_key(stored)] for raw, stored in mapping.items()}
    department_of_combo = [DEPARTMENTS.index(json.loads(c)[0]) if json.loads(c)[0] in DEPARTMENTS
                           else len(DEPARTMENTS) for c in combos]

    members = rng.sample(range(plan.audience), plan.voters)
    voter_combos = [stored_of[raws[m]] for m in members]
    combo_voters = Counter(voter_combos)

    ids = sorted({f"{rng.getrandbits(64):016x}" for _ in range(plan.proposals)})
    while len(ids) < plan.proposals:  # a collision among 64-bit ids: practically never
        ids = sorted(set(ids) | {f"{rng.getrandbits(64):016x}"})
    proposals = [(pid, f"Proposal {i:05d}: {rng.choice(IDEAS)} {rng.choice(PLACES)}") for i, pid in enumerate(ids)]

    # Opinions: per proposal an agree tendency and a neutral share; per department a deviation.
    departments = len(DEPARTMENTS) + 1  # the last one: combinations whose department is "other"
    thresholds = []  # (agree, agree + disagree) per proposal x department
    for _ in range(plan.proposals):
        tendency, neutral = rng.gauss(0.3, 1.2), rng.uniform(0.05, 0.35)
        for _ in range(departments):
            agree = (1 - neutral) / (1 + math.exp(-(tendency + rng.gauss(0, 0.6))))
            thresholds.append((agree, 1 - neutral))
    popularity = cumulative([rng.lognormvariate(0, 0.7) for _ in range(plan.proposals)])

    # How many proposals each voter votes on: 1 each, the rest by a skewed activity.
    per_voter = [1] * plan.voters
    extra = max(0, plan.ballots - plan.voters)
    activity = cumulative([rng.lognormvariate(0, 1.0) for _ in range(plan.voters)])
    for voter, n in Counter(rng.choices(range(plan.voters), cum_weights=activity, k=extra)).items():
        per_voter[voter] += n

    keys = []
    append, random_, choices, all_proposals = keys.append, rng.random, rng.choices, range(plan.proposals)
    for combo, wanted in zip(voter_combos, per_voter):
        wanted = min(wanted, plan.proposals)
        if wanted * 2 > plan.proposals:
            picked = rng.sample(all_proposals, wanted)
        else:
            picked = set(choices(all_proposals, cum_weights=popularity, k=wanted))
            while len(picked) < wanted:
                picked.update(choices(all_proposals, cum_weights=popularity, k=wanted - len(picked)))
        department = department_of_combo[combo]
        base = combo * 12
        for p in picked:
            agree, not_neutral = thresholds[p * departments + department]
            draw = random_()
            vote = 0 if draw < agree else 1 if draw < not_neutral else 2
            qualification = 1 + int(random_() * 3) if random_() < QUALIFIED else 0
            append(p * len(combos) * 12 + base + vote * 4 + qualification)
    assert VOTES == tuple(sorted(VOTES))  # the integer keys follow the primary key's order
    return Prepared(round_id, proposals, len(set(raws)), combos, headcounts,
                    {combos[c]: n for c, n in combo_voters.items()}, Counter(keys), len(keys))


IDEAS = ("a shared calendar for", "quiet rooms in", "fewer meetings at", "better coffee in", "bike racks at",
         "a car-sharing scheme for", "flexible hours at", "a mentoring programme in", "standing desks at",
         "a monthly open forum in", "clearer signage at", "a lending library in")
PLACES = ("every site", "the head office", "the warehouses", "the regional offices", "the labs",
          "all departments", "the new building", "the customer centres")


def write_round(app, plan: Plan, data: Prepared) -> None:
    """Store the round as it is after close: rounds, proposals, headcounts, combo_voters, counts."""
    from appliance.domain.rounds import Round
    from appliance.domain.votes import QUALIFICATIONS, VOTES
    from appliance.storage import rounds as stored_rounds
    from appliance.storage.ballots import store_packs
    from appliance.storage.connection import checkpoint, write

    db = app.dbs.ballots
    stored_rounds.insert_round(db, Round(
        id=data.round_id, title="Benchmark round (results)", question="How could we make our work easier?",
        description="", audience_groups=("staff",), dimensions=DIMENSIONS, k=K, opens_at=None, closes_at=None,
        proposals_close_at=None, moderation="pre", status="closed", proposal_min_chars=12,
        proposal_max_chars=280, proposal_quota=5, release_interval_seconds=0,
    ))
    options = [(vote, q) for vote in VOTES for q in ("", *sorted(QUALIFICATIONS[vote]))]  # 12, in key order
    width = len(data.combos) * 12
    rid, combos, proposals = data.round_id, data.combos, data.proposals

    def count_rows():
        for key in sorted(data.cells):
            p, rest = divmod(key, width)
            c, o = divmod(rest, 12)
            yield rid, proposals[p][0], combos[c], *options[o], data.cells[key]

    with write(db):
        db.conn.executemany("INSERT INTO proposals (id, round_id, text, status) VALUES (?, ?, ?, 'accepted')",
                            [(pid, rid, text) for pid, text in proposals])
        db.conn.executemany("INSERT INTO headcounts (round_id, combo, members) VALUES (?, ?, ?)",
                            [(rid, c, n) for c, n in sorted(data.headcounts.items())])
        db.conn.executemany("INSERT INTO combo_voters (round_id, combo, voters) VALUES (?, ?, ?)",
                            [(rid, c, n) for c, n in sorted(data.combo_voters.items())])
        db.conn.executemany("INSERT INTO counts (round_id, proposal_id, combo, vote, qualification, n)"
                            " VALUES (?, ?, ?, ?, ?, ?)", count_rows())
        store_packs(db, rid)  # as close does
    stored_rounds.noise_seed(db, rid)  # made at the first reading: made now, so the timed views only read
    if not checkpoint(db):
        raise BenchError("could not checkpoint the WAL of the prepared ballots database")


def prepare(plan: Plan, root: Path) -> None:
    """Build the data directory root/data (or reuse a kept one); the round id and setup figures go to the manifest."""
    from appliance.services.context import build_appliance
    from appliance.settings import load_settings

    manifest_path, data_dir = root / MANIFEST, root / "data"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("plan") == plan.key() and (data_dir / "ballots.db").is_file():
            print(f"reusing the prepared round in {data_dir} (its setup took {manifest['setup']['total']:.1f} s)",
                  flush=True)
            return
        print(f"{root} holds a round prepared with other options: preparing it again", flush=True)
        manifest_path.unlink()
        shutil.rmtree(data_dir, ignore_errors=True)
    clock = time.perf_counter()
    data = generate(plan)
    generated = time.perf_counter() - clock
    app = build_appliance(load_settings(storage={"data_dir": str(data_dir)}))
    try:
        write_round(app, plan, data)
    finally:
        app.close()
    total = time.perf_counter() - clock
    size = sum(p.stat().st_size for p in data_dir.glob("ballots.db*"))
    setup = {"generate": generated, "write": total - generated, "total": total, "ballots": data.ballots,
             "count_rows": len(data.cells), "raw_combos": data.raw_combos, "combos": len(data.combos),
             "combos_with_voters": len(data.combo_voters), "db_mb": size / 1e6}
    manifest_path.write_text(json.dumps({"plan": plan.key(), "round_id": data.round_id, "setup": setup}, indent=1))


# --- The measured part, in a fresh process ------------------------------------------


def rss_mb() -> float:
    """Peak RSS of this process so far, in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hwm_mb() -> float | None:
    """The same from /proc (VmHWM), as a cross-check; None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def source_fingerprint() -> str:
    """A short hash of the appliance package's sources as this process imported them.

    The measuring processes each report it: a change between them means the code
    was edited during the benchmark and the figures mix versions.
    """
    import appliance

    root = Path(appliance.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def open_prepared(data_dir: str):
    from appliance.domain.rounds import Viewer
    from appliance.services.context import build_appliance
    from appliance.settings import load_settings

    app = build_appliance(load_settings(storage={"data_dir": data_dir}))
    return app, Viewer("bench-admin", frozenset({"admins"}), True, False)


def measure(data_dir: str, round_id: str, dimension: str | None, again: bool) -> dict:
    """Time the first view in this fresh process, and its peak RSS; with `again`, time a second call too.

    Only the first call counts: the appliance may keep views of closed rounds in
    memory (they never change), so a second call in the same process can be a
    cache hit, which says nothing of the cost of computing the view.
    """
    from appliance.services.rounds import round_results

    app, admin = open_prepared(data_dir)
    code = source_fingerprint()
    try:
        before = rss_mb()
        clock = time.perf_counter()
        _, view = round_results(app, round_id, admin, dimension)
        seconds = time.perf_counter() - clock
        peak, peak_hwm = rss_mb(), hwm_mb()
        summary = {"voters": view.voters, "proposals": len(view.proposals),
                   "scored": sum(1 for p in view.proposals if p.scores is not None),
                   "representative": sum(1 for p in view.proposals if p.representative is not None),
                   "cells_shown": sum(1 for p in view.proposals for c in p.cells if c.rates is not None),
                   "segments_shown": sum(1 for s in view.segments if s.shown)}
        del view
        second = None
        if again:
            clock = time.perf_counter()
            round_results(app, round_id, admin, dimension)
            second = time.perf_counter() - clock
        return {"seconds": seconds, "again": second, "rss_before_mb": before, "rss_peak_mb": peak,
                "hwm_mb": peak_hwm, "summary": summary, "code": code}
    finally:
        app.close()


# Functions whose cumulative time the profile reports: (file suffix, function name, what it is), indented
# under their usual caller; those the engine no longer has are left out.
PROFILED = (
    ("appliance/services/rounds.py", "round_results", "round_results (whole view)"),
    ("appliance/storage/ballots.py", "load_counts", "  load_counts (packed counts -> arrays)"),
    ("~", "<method 'fetchall' of 'sqlite3.Cursor' objects>", "    sqlite3 fetchall (all queries)"),
    ("appliance/storage/rounds.py", "get_headcounts", "  get_headcounts"),
    ("appliance/storage/proposals.py", "list_by_status", "  list_by_status (accepted proposals)"),
    ("appliance/domain/disclosure.py", "publishable_view", "  publishable_view (engine)"),
    ("appliance/domain/disclosure.py", "__init__", "    {class}.__init__"),
    ("appliance/domain/scoring.py", "score_proposal", "    score_proposal (overall, per proposal)"),
    ("appliance/domain/disclosure.py", "decide_groups", "    decide_groups (round + proposals)"),
    ("appliance/domain/disclosure.py", "_complement", "      _complement"),
    ("appliance/domain/disclosure.py", "_overlap", "      _overlap"),
    ("appliance/domain/disclosure.py", "homogeneous", "      homogeneous (homogeneity rule)"),
    ("appliance/domain/disclosure.py", "_groups", "    _groups (cells of a dimension)"),
    ("appliance/domain/disclosure.py", "_perturb", "      _perturb"),
    ("appliance/domain/disclosure.py", "_rates", "    _rates"),
    ("appliance/domain/disclosure.py", "representative", "    representative"),
    ("appliance/domain/disclosure.py", "consensus", "    consensus"),
    ("appliance/domain/disclosure.py", "cells", "    cells"),
    ("appliance/domain/disclosure.py", "segments", "    segments"),
)


def profile(data_dir: str, round_id: str, dimension: str | None, measured: str) -> None:
    """Print where one view's time and memory go: load vs engine (unprofiled), then cProfile."""
    from appliance.domain.disclosure import RoundCounts, publishable_view
    from appliance.services.rounds import round_results
    from appliance.storage import ballots, proposals
    from appliance.storage import rounds as stored_rounds

    app, admin = open_prepared(data_dir)
    code = source_fingerprint()
    if code != measured:
        print(f"  WARNING: the application code changed since it was measured: profiling sources {code}")
    try:
        db = app.dbs.ballots
        before = rss_mb()
        # The steps of round_results, timed apart (the access checks are left out: they read one row).
        gc_time = [0.0, 0, 0.0]  # seconds in the garbage collector, collections, start of the current one

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                gc_time[2] = time.perf_counter()
            else:
                gc_time[0] += time.perf_counter() - gc_time[2]
                gc_time[1] += info.get("generation") == 2

        gc.callbacks.append(on_gc)
        clock = time.perf_counter()
        round_ = stored_rounds.get_round(db, round_id)
        counts, combo_voters = ballots.load_counts(db, round_id)
        accepted = [(p.id, p.text) for p in proposals.list_by_status(db, round_id, "accepted")]
        headcounts = stored_rounds.get_headcounts(db, round_id)
        seed = stored_rounds.noise_seed(db, round_id)
        loaded = time.perf_counter()
        after_load = rss_mb()
        publishable_view(RoundCounts(round_.k, round_.dimensions, accepted, counts, combo_voters, headcounts),
                         dimension, seed)
        done = time.perf_counter()
        gc.callbacks.remove(on_gc)
        after_view = rss_mb()
        rows = counts.n.size
        del counts, combo_voters, accepted, headcounts
        total = done - clock
        print(f"  without the profiler: {total:.2f} s = load {loaded - clock:.2f} s ({(loaded - clock) / total:.0%};"
              f" {rows} count entries) + engine {done - loaded:.2f} s ({(done - loaded) / total:.0%})")
        print(f"  peak RSS: {before:.0f} MB opened, {after_load:.0f} MB after loading,"
              f" {after_view:.0f} MB after the engine")
        print(f"  garbage collector: {gc_time[0]:.2f} s of the {total:.2f} s ({gc_time[1]} full collections)")

        profiler = cProfile.Profile()
        profiler.enable()
        round_results(app, round_id, admin, dimension)
        profiler.disable()
    finally:
        app.close()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    whole = next((v[3] for k, v in entries.items() if k[2] == "round_results"), None) or 1.0
    print(f"  cProfile of one view ({whole:.2f} s under the profiler, which slows small calls down):")
    print(f"    {'':50} {'calls':>10} {'own s':>8} {'cum s':>8} {'share':>6}")
    for suffix, name, label in PROFILED:
        found = [(k, v) for k, v in entries.items() if k[2] == name and k[0].endswith(suffix)]
        if "{class}" in label:  # one line per class
            groups = [(label.format(**{"class": class_of(k)}), [(k, v)]) for k, v in found]
        else:
            groups = [(label, found)] if found else []
        for text, items in groups:
            calls, own, cum = (sum(v[i] for _, v in items) for i in (1, 2, 3))
            print(f"    {text:50} {calls:>10} {own:>8.2f} {cum:>8.2f} {cum / whole:>6.0%}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    print("  top 15 functions by own time:")
    for line in lines[start:]:
        if line.strip():
            print("    " + line.replace(str(Path.cwd()) + "/", "").replace(sys.prefix + "/", ""))


def class_of(key: tuple) -> str:
    """The class a profiled method belongs to: the nearest `class` line above it."""
    import linecache

    filename, lineno, _ = key
    for number in range(lineno, 0, -1):
        line = linecache.getline(filename, number)
        if line.startswith("class "):
            return line[6:].split("(")[0].split(":")[0].strip()
    return "?"


# --- Driving it ---------------------------------------------------------------------


def child_env(config: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("APPLIANCE_")}
    env["APPLIANCE_CONFIG"] = str(config)  # no configuration of this machine takes part
    return env


def run_child(args: list[str], env: dict[str, str], capture: bool, what: str) -> str:
    """Run this script with internal arguments in a fresh process; its output when `capture`."""
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(command, env=env, text=True, stdout=subprocess.PIPE if capture else None)
    if done.returncode != 0:
        raise BenchError(f"{what} failed (exit status {done.returncode})")
    return done.stdout or ""


def hwm(result: dict) -> str:
    """VmHWM beside ru_maxrss, when they disagree by more than 5%."""
    other = result.get("hwm_mb")
    if other is None or abs(other - result["rss_peak_mb"]) <= 0.05 * result["rss_peak_mb"]:
        return ""
    return f"; VmHWM says {other:.0f} MB"


def benchmark(args: argparse.Namespace, root: Path) -> int:
    plan = Plan(args.ballots, args.voters, args.proposals, args.audience, args.seed)
    if root.is_dir() and not (root / MANIFEST).is_file() and any(p.name != "empty.toml" for p in root.iterdir()):
        raise BenchError(f"--keep {root}: the directory is not empty and was not prepared by this benchmark")
    config = root / "empty.toml"
    root.mkdir(parents=True, exist_ok=True)
    config.write_text("")
    env = child_env(config)
    sizes = ", ".join(f"{d} ({len(v)})" for d, v in zip(DIMENSIONS, (DEPARTMENTS, SITES, GRADES)))
    print(f"round: {plan.ballots} ballots planned, {plan.voters} voters, {plan.proposals} proposals,"
          f" audience {plan.audience}, dimensions {sizes}, k={K}, seed {plan.seed}", flush=True)
    # The setup runs in a process of its own: a process started from a big one inherits its peak RSS
    # (Linux keeps ru_maxrss across fork and exec), so this one stays small for the measuring processes.
    run_child(["--prepare", str(root), json.dumps(plan.__dict__)], env, capture=False, what="the setup")
    manifest = json.loads((root / MANIFEST).read_text())
    round_id, setup = manifest["round_id"], manifest["setup"]
    print(f"setup: {setup['total']:.1f} s (generate {setup['generate']:.1f} s, write {setup['write']:.1f} s;"
          f" not part of the target): {setup['ballots']} ballots in {setup['count_rows']} count rows,"
          f" {setup['combos']} stored combinations ({setup['combos_with_voters']} with voters) from"
          f" {setup['raw_combos']} raw ones,"
          f" ballots.db {setup['db_mb']:.0f} MB", flush=True)

    target = target_seconds(setup["ballots"])
    data_dir = str(root / "data")
    results: dict[str | None, list[dict]] = {}
    for dimension in (None, *DIMENSIONS):
        runs = []
        for run in range(args.runs):  # each in a fresh process: the first view of a process is never cached
            out = run_child(["--measure", data_dir, round_id, dimension or "-", "again" if run == 0 else "once"],
                            env, capture=True, what=f"measuring the view by {dimension or '(none)'}")
            runs.append(json.loads(out.strip().splitlines()[-1]))
        results[dimension] = runs
        seconds = [r["seconds"] for r in runs]
        median, first, s = statistics.median(seconds), runs[0], runs[0]["summary"]
        peak = max(runs, key=lambda r: r["rss_peak_mb"])
        print(f"view by {dimension or '(none)':10}: median {median:.2f} s of {len(runs)} fresh process{'es' if len(runs) > 1 else ''}"
              f" ({', '.join(f'{x:.2f}' for x in seconds)}); target <= {target:g} s: {verdict(median <= target)};"
              f" peak RSS {peak['rss_peak_mb']:.0f} MB ({peak['rss_before_mb']:.0f} MB before the view{hwm(peak)});"
              f" a second call in the same process: {first['again']:.2f} s", flush=True)
        print(f"  {s['voters']} voters; {s['scored']}/{s['proposals']} proposals scored, {s['representative']} with a"
              f" representative estimate; {s['cells_shown']} cells and {s['segments_shown']} segments shown",
              flush=True)

    codes = list(dict.fromkeys(r["code"] for runs in results.values() for r in runs))
    print(f"code measured: appliance sources {codes[0]}" + (
        "" if len(codes) == 1 else f", then {', '.join(codes[1:])}: WARNING, the application code changed during"
                                   " the benchmark, so these figures mix versions"))
    medians = {d: statistics.median(r["seconds"] for r in runs) for d, runs in results.items()}
    slowest = max(medians, key=medians.get)
    peak = max(r["rss_peak_mb"] for runs in results.values() for r in runs)
    time_ok = medians[slowest] <= target
    rss_ok = peak <= TARGET_RSS_MB
    per_million = "<= 2 s for 1M ballots, <= 20 s for 10M; 2 s per million in between, 2 s below 1M"
    print(f"time: slowest view (by {slowest or '(none)'}) {medians[slowest]:.2f} s; target <= {target:g} s"
          f" ({per_million}): {verdict(time_ok)}")
    if setup["ballots"] <= 1_000_000:
        print(f"memory: peak RSS {peak:.0f} MB; target <= {TARGET_RSS_MB:.0f} MB for 1M ballots: {verdict(rss_ok)}")
    else:
        print(f"memory: peak RSS {peak:.0f} MB (the target, <= {TARGET_RSS_MB:.0f} MB, is set for 1M ballots)")
        rss_ok = True
    if args.profile or not (time_ok and rss_ok):
        print(f"profile of the view by {slowest or '(none)'} (in a fresh process):", flush=True)
        run_child(["--profile-view", data_dir, round_id, slowest or "-", codes[-1]], env, capture=False,
                  what="the profile")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=1_000_000, help="ballots of the round (default 1,000,000)")
    parser.add_argument("--voters", type=int, help="distinct voters (default ballots / 10)")
    parser.add_argument("--proposals", type=int, default=5000, help="accepted proposals (default 5000)")
    parser.add_argument("--audience", type=int, help="audience members (default 1.5 x voters)")
    parser.add_argument("--runs", type=int, default=3,
                        help="views timed per dimension, each in a fresh process (default 3; the median)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated round (default 1)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="prepare the data directory in DIR and keep it; reused when the options match")
    parser.add_argument("--profile", action="store_true", help="profile the slowest view even if the targets are met")
    parser.add_argument("--prepare", nargs=2, help=argparse.SUPPRESS)  # internal: root plan-json
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)  # internal: data_dir round_id dim again|once
    parser.add_argument("--profile-view", nargs=4, help=argparse.SUPPRESS)  # internal: data_dir round_id dim code
    args = parser.parse_args(argv)
    if args.prepare or args.measure or args.profile_view:
        return args
    args.voters = args.voters or max(1, args.ballots // 10)
    args.audience = args.audience or args.voters * 3 // 2
    if min(args.ballots, args.voters, args.proposals, args.runs) < 1:
        parser.error("--ballots, --voters, --proposals and --runs must be positive")
    if args.voters > args.ballots:
        parser.error("--voters must not exceed --ballots: every voter casts at least one ballot")
    if args.audience < args.voters:
        parser.error("--audience must be at least --voters")
    if args.voters * args.proposals < args.ballots:
        parser.error("--ballots must not exceed --voters x --proposals (one ballot per voter and proposal)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare:
        try:
            prepare(Plan(**json.loads(args.prepare[1])), Path(args.prepare[0]))
        except BenchError as error:
            print(f"results.py: {error}", file=sys.stderr)
            return 2
        return 0
    if args.measure:
        data_dir, round_id, dimension, again = args.measure
        print(json.dumps(measure(data_dir, round_id, None if dimension == "-" else dimension, again == "again")))
        return 0
    if args.profile_view:
        data_dir, round_id, dimension, code = args.profile_view
        profile(data_dir, round_id, None if dimension == "-" else dimension, code)
        return 0
    for name in [n for n in os.environ if n.startswith("APPLIANCE_")]:
        del os.environ[name]
    try:
        if args.keep:
            return benchmark(args, args.keep.resolve())
        with tempfile.TemporaryDirectory(prefix="appliance-results-bench-") as tmp:
            return benchmark(args, Path(tmp))
    except BenchError as error:
        print(f"results.py: {error}", file=sys.stderr)
        return 2
    except (OSError, ImportError) as error:
        print(f"results.py: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
