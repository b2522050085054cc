"""Representativeness: does the representative estimate undo a department that mobilises en masse?

What it measures, by simulation: a synthetic organisation of 5 departments
whose true opinions on --proposals proposals are known (each department has
its own agree / disagree / neutral rates per proposal, differing between
departments). One department, 5% of the headcount, takes part at 100%; the
others at 15% (each member independently), so the small department casts about
a quarter of the votes. Each voter votes on a random subset of --per-voter
proposals (0: on all of them), with the true rates of their department; 30% of
ballots carry a qualification. The closed round's counts (dimension
"department", k = 5, headcounts of the whole audience) go through the
disclosure engine, `publishable_view`, in memory. Nobody is outside the five
departments, so `build_coarsening` folds the smallest department (the
mobilised one) into the all-"other" combination, which must hold k people: the
view shows it as "other", still a stratum of its own.

For each proposal the truth is the audience-wide agree rate (the departments'
true agree rates weighted by headcount). It prints, per seed and their median,
the mean absolute error against that truth of the raw agree rate (the
proposal's overall rate, `scores.rates["agree"]`) and of the representative
estimate (`representative["agree"]`, post-stratified by audience share), and
their ratio, against the target: the representative error at most one third of
the raw error. For context it also prints the error of an ideal post-stratified
estimate computed from the true counts (no perturbation, no rounding, every
department its own stratum): what sampling alone leaves.

How to run it, from the project directory:

    .venv/bin/python bench/representativeness.py [--seed 1] [--runs 5]
        [--proposals 200] [--audience 10000] [--per-voter 50] [--spread 0.8]

Run i uses seed --seed + i: the same options give the same figures. --spread
sets how much the departments' opinions differ (the sd of each department's
deviation of the agree logit, per proposal): the raw error grows with it, while
the representative error is mostly sampling error, so the ratio depends on both
--spread and the votes per proposal (--audience, --per-voter).

It exits 0 whether the target is met or not (it is a measurement), and 2 when
it could not run.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

GRID_SEEDS = 3
TARGET_RATIO = 1 / 3
TARGET = "representative error <= 1/3 of the raw error (median over the seeds)"
K = 5
DIMENSION = "department"
# name, share of the headcount, share that takes part
DEPARTMENTS = (("Legal", 0.05, 1.00), ("Finance", 0.35, 0.15), ("IT", 0.25, 0.15), ("Sales", 0.20, 0.15),
               ("Operations", 0.15, 0.15))
MOBILISED = DEPARTMENTS[0][0]
QUALIFIED = 0.30


@dataclass(frozen=True)
class Outcome:
    seed: int
    voters: int
    mobilised_share: float  # of the voters
    proposals: int  # proposals with both a raw rate and a representative estimate
    raw: float  # mean absolute errors
    representative: float
    ideal: float
    over_represented: bool | None  # the mobilised department, as the view flags it
    published_as: str  # its segment's name in the view
    seconds: float
    votes_per_proposal: float

    @property
    def ratio(self) -> float:
        return self.representative / self.raw if self.raw else math.inf


def true_rates(rng: random.Random, proposals: int, spread: float) -> list[list[tuple[float, float, float]]]:
    """Per department, per proposal: (agree, disagree, neutral), the truth.

    A proposal has a tendency (logit of agree among those with an opinion) and a
    neutral share; each department deviates from both (logit deviation sd
    `spread`, neutral deviation sd 0.05), so departments differ proposal by proposal.
    """
    tendencies = [(rng.gauss(0.3, 1.0), rng.uniform(0.05, 0.35)) for _ in range(proposals)]
    rates = []
    for _ in DEPARTMENTS:
        mine = []
        for tendency, neutral in tendencies:
            n = min(0.6, max(0.02, neutral + rng.gauss(0, 0.05)))
            agree = (1 - n) / (1 + math.exp(-(tendency + rng.gauss(0, spread))))
            mine.append((agree, 1 - n - agree, n))
        rates.append(mine)
    return rates


def headcounts_of(audience: int) -> list[int]:
    sizes = [round(share * audience) for _, share, _ in DEPARTMENTS]
    sizes[1] += audience - sum(sizes)  # rounding goes to the biggest department
    return sizes


def simulate(seed: int, proposals: int, audience: int, per_voter: int, spread: float) -> Outcome:
    """One synthetic round through the disclosure engine; its errors against the truth."""
    from appliance.domain import segments
    from appliance.domain.disclosure import RoundCounts, publishable_view
    from appliance.domain.results import CountRow
    from appliance.domain.votes import QUALIFICATIONS, VOTES

    started = time.perf_counter()
    rng = random.Random(seed)
    rates = true_rates(rng, proposals, spread)
    sizes = headcounts_of(audience)
    raws = [(name,) for (name, _, _), size in zip(DEPARTMENTS, sizes) for _ in range(size)]
    mapping = segments.build_coarsening(raws, K)
    headcounts = segments.headcounts(mapping, raws)
    combo_of = [segments.combo_key(mapping[(name,)]) for name, _, _ in DEPARTMENTS]
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(proposals)]

    cells: Counter = Counter()
    voters: Counter = Counter()
    true_votes = [[[0, 0] for _ in range(proposals)] for _ in DEPARTMENTS]  # agree, all: the ideal estimate
    subset = per_voter if 0 < per_voter < proposals else proposals
    for d, ((_, _, turnout), size) in enumerate(zip(DEPARTMENTS, sizes)):
        for _ in range(size):
            if rng.random() >= turnout:
                continue
            voters[combo_of[d]] += 1
            for p in (rng.sample(range(proposals), subset) if subset < proposals else range(proposals)):
                agree, disagree, _ = rates[d][p]
                draw = rng.random()
                vote = VOTES[0] if draw < agree else VOTES[1] if draw < agree + disagree else VOTES[2]
                qualification = rng.choice(QUALIFICATIONS[vote]) if rng.random() < QUALIFIED else ""
                cells[ids[p], combo_of[d], vote, qualification] += 1
                true_votes[d][p][0] += vote == VOTES[0]
                true_votes[d][p][1] += 1

    counts = [CountRow(pid, combo, vote, qualification, n) for (pid, combo, vote, qualification), n in cells.items()]
    data = RoundCounts(K, (DIMENSION,), [(pid, f"Proposal {i:03d}") for i, pid in enumerate(ids)], counts,
                       dict(voters), headcounts)
    view = publishable_view(data, DIMENSION, rng.randbytes(32))

    weights = [size / audience for size in sizes]
    index = {pid: i for i, pid in enumerate(ids)}
    raw_errors, representative_errors, ideal_errors = [], [], []
    for proposal in view.proposals:
        if proposal.scores is None or proposal.representative is None:
            continue
        p = index[proposal.id]
        truth = sum(w * rates[d][p][0] for d, w in enumerate(weights))
        raw_errors.append(abs(proposal.scores.rates["agree"].value - truth))
        representative_errors.append(abs(proposal.representative["agree"].value - truth))
        ideal = sum(w * true_votes[d][p][0] / true_votes[d][p][1] for d, w in enumerate(weights)
                    if true_votes[d][p][1]) / sum(w for d, w in enumerate(weights) if true_votes[d][p][1])
        ideal_errors.append(abs(ideal - truth))
    if not raw_errors:
        raise RuntimeError(f"seed {seed}: no proposal has both a raw rate and a representative estimate")
    # The coarsening keeps the all-"other" combination at k members or more: with nobody lacking a
    # department, the smallest department is folded into it and published as the pool, "other".
    published_as = mapping[(MOBILISED,)][0]
    flagged = next((s.over_represented for s in view.segments if s.name == published_as and s.shown), None)
    total = sum(voters.values())
    return Outcome(seed, total, voters[combo_of[0]] / total, len(raw_errors), statistics.fmean(raw_errors),
                   statistics.fmean(representative_errors), statistics.fmean(ideal_errors), flagged, published_as,
                   time.perf_counter() - started,
                   statistics.fmean(p.voters for p in view.proposals if p.voters is not None))


def source_fingerprint() -> str:
    """A short hash of the appliance package's sources: which version of the engine was measured."""
    import appliance

    root = Path(appliance.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def describe(outcome: Outcome) -> str:
    flag = {True: "flagged over-represented", False: "NOT flagged over-represented", None: "not shown"}
    shown_as = "" if outcome.published_as == MOBILISED else f" published as {outcome.published_as!r},"
    return (f"seed {outcome.seed}: {outcome.voters} voters ({outcome.mobilised_share:.0%} from {MOBILISED},"
            f"{shown_as} {flag[outcome.over_represented]}), {outcome.proposals} proposals;"
            f" mean absolute error raw {outcome.raw:.4f}, representative {outcome.representative:.4f}"
            f" (ideal {outcome.ideal:.4f}); ratio {outcome.ratio:.2f} ({outcome.seconds:.1f} s)")


def run(args: argparse.Namespace) -> int:
    sizes = headcounts_of(args.audience)
    print(f"organisation: {args.audience} people; "
          + ", ".join(f"{name} {size} ({share:.0%}) taking part at {turnout:.0%}"
                      for (name, share, turnout), size in zip(DEPARTMENTS, sizes)))
    subset = args.per_voter if 0 < args.per_voter < args.proposals else args.proposals
    print(f"round: {args.proposals} proposals, each voter votes on {subset} of them"
          f"{' (all)' if subset == args.proposals else ' at random'}; departments' opinions differ by a logit"
          f" sd of {args.spread:g}; dimension {DIMENSION}, k={K};"
          f" {args.runs} seeds from {args.seed}", flush=True)
    outcomes = []
    for i in range(args.runs):
        outcomes.append(simulate(args.seed + i, args.proposals, args.audience, args.per_voter, args.spread))
        print(describe(outcomes[-1]), flush=True)
    raw = statistics.median(o.raw for o in outcomes)
    representative = statistics.median(o.representative for o in outcomes)
    ideal = statistics.median(o.ideal for o in outcomes)
    ratio = statistics.median(o.ratio for o in outcomes)
    print(f"code measured: appliance sources {source_fingerprint()}")
    print(f"median over {len(outcomes)} seeds: mean absolute error raw {raw:.4f}, representative"
          f" {representative:.4f} (ideal {ideal:.4f}); ratio {ratio:.2f}")
    print(f"target: {TARGET}: ratio {ratio:.2f} vs <= {TARGET_RATIO:.2f}: "
          f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}")
    if args.grid:
        print_grid(args)
    return 0


GRID = ((10_000, 50), (10_000, 0), (50_000, 50), (50_000, 0))  # (audience, proposals per voter; 0 = all)


def print_grid(args: argparse.Namespace) -> None:
    """The same ratio for other sizes: the representative error is mostly sampling error, which more votes shrink."""
    print(f"by size (median of {GRID_SEEDS} seeds from {args.seed}; same proposals and spread):")
    for audience, per_voter in GRID:
        outcomes = [simulate(args.seed + i, args.proposals, audience, per_voter, args.spread)
                    for i in range(GRID_SEEDS)]
        votes = statistics.median(o.votes_per_proposal for o in outcomes)
        ratio = statistics.median(o.ratio for o in outcomes)
        ideal = statistics.median(o.ideal / o.raw for o in outcomes)
        print(f"  {audience:>6} people, {per_voter or 'all':>3} votes each: about {votes:.0f} votes per proposal;"
              f" ratio {ratio:.2f} (ideal estimate {ideal:.2f}): {'met' if ratio <= TARGET_RATIO else 'MISSED'}",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="seed of the first run; run i uses seed + i (default 1)")
    parser.add_argument("--runs", type=int, default=5, help="simulated rounds, one per seed (default 5)")
    parser.add_argument("--proposals", type=int, default=200, help="proposals (default 200)")
    parser.add_argument("--audience", type=int, default=10_000, help="people in the organisation (default 10000)")
    parser.add_argument("--per-voter", type=int, default=50,
                        help="proposals each voter votes on, drawn at random (default 50; 0 = all)")
    parser.add_argument("--no-grid", dest="grid", action="store_false",
                        help="skip the table of the ratio at other sizes")
    parser.add_argument("--spread", type=float, default=0.8,
                        help="how much departments' opinions differ: sd of their agree logit (default 0.8)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.proposals < 1 or args.per_voter < 0:
        parser.error("--runs and --proposals must be positive, --per-voter at least 0")
    if min(headcounts_of(args.audience)) < K:
        parser.error(f"--audience is too small: every department needs at least k={K} people")
    try:
        return run(args)
    except (ImportError, RuntimeError) as error:
        print(f"representativeness.py: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
