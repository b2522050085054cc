"""Round use cases: create, open, close, publish, list and results."""

from __future__ import annotations

import gc
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from appliance.domain import rounds as rules
from appliance.domain import segments
from appliance.domain.disclosure import ResultsView, RoundCounts, participation_band, publishable_view
from appliance.domain.errors import Conflict, Forbidden, Invalid, NotFound
from appliance.domain.proposals import clean_paragraphs, clean_text
from appliance.domain.rounds import Round, Viewer
from appliance.domain.schedules import zone_named
from appliance.services.context import Appliance, log, secret_fingerprint
from appliance.storage import audit, ballots, digests, instance, keys, locks, outbox, proposals, snapshots
from appliance.storage import participation as participation_store
from appliance.storage.connection import checkpoint
from appliance.storage import rounds as stored_rounds


@dataclass(frozen=True)
class RoundDraft:
    """What an admin gives to create a round; None takes the configured default."""

    title: str
    question: str
    description: str = ""
    audience_groups: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    k: int | None = None
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    proposals_close_at: datetime | None = None
    moderation: str = "pre"
    proposal_quota: int | None = None


def defaulted(app: Appliance) -> dict[str, int]:
    """The settings of a round that None (left out, or an empty form field) gives their configured default."""
    defaults = app.settings.rounds
    return {"k": defaults.default_k, "proposal_quota": defaults.proposal_quota}


def create_round(app: Appliance, actor: str, draft: RoundDraft) -> Round:
    """Store a draft round after checking its settings."""
    defaults, default = app.settings.rounds, defaulted(app)
    round_ = Round(
        id=secrets.token_hex(8), title=draft.title, question=draft.question, description=draft.description,
        audience_groups=tuple(draft.audience_groups), dimensions=tuple(draft.dimensions),
        k=default["k"] if draft.k is None else draft.k, opens_at=draft.opens_at,
        closes_at=draft.closes_at, proposals_close_at=draft.proposals_close_at, moderation=draft.moderation,
        status="draft", proposal_min_chars=defaults.proposal_min_chars,
        proposal_max_chars=defaults.proposal_max_chars,
        proposal_quota=default["proposal_quota"] if draft.proposal_quota is None else draft.proposal_quota,
        release_interval_seconds=defaults.release_interval_seconds,
    )
    round_ = _checked_draft(app, round_, ahead=(draft.closes_at, draft.proposals_close_at))
    stored_rounds.insert_round(app.dbs.ballots, round_)
    audit.record(app.dbs.identity, actor, "round.create", round_.id, round_.title)
    return round_


def _checked_draft(app: Appliance, round_: Round, ahead: tuple[datetime | None, datetime | None],
                   in_directory: bool = True) -> Round:
    """The draft's settings checked, for creation and edits alike, and written as stored: texts cleaned,
    groups as the directory spells them. `ahead`: the dates given now, which must not be past;
    `in_directory`: whether to check the audience groups and dimensions against the directory (an edit
    that leaves them does not ask it: a group emptied since, or a directory down, keeps the draft editable)."""
    check_limits(round_.k, round_.proposal_quota)
    if round_.moderation not in rules.MODERATION_MODES:
        raise Invalid("moderation must be 'pre' or 'post'")
    title, question = clean_text(round_.title), clean_text(round_.question)
    if not title or not question:
        raise Invalid("title and question must not be empty")
    dimensions = tuple(d.strip() for d in round_.dimensions)
    rules.check_dimensions(dimensions)
    rules.check_schedule(round_.opens_at, round_.closes_at, round_.proposals_close_at)
    rules.check_ahead(app.clock(), *ahead)
    groups = check_against_directory(app, round_.audience_groups, dimensions) if in_directory \
        else round_.audience_groups
    return replace(round_, title=title, question=question, description=clean_paragraphs(round_.description),
                   audience_groups=groups, dimensions=dimensions)


def check_limits(k: int, proposal_quota: int | None) -> None:
    """Invalid when k or the proposal quota (None: the default) is out of bounds, for the API and the form alike."""
    if k < rules.MIN_K:
        raise Invalid("k must be at least %(min)s", min=rules.MIN_K)
    if k > rules.MAX_K:
        raise Invalid("k must be at most %(max)s", max=rules.MAX_K)
    low, high = rules.QUOTA_RANGE
    if proposal_quota is not None and not low <= proposal_quota <= high:
        raise Invalid("proposal_quota must be from %(min)s to %(max)s", min=low, max=high)


def check_against_directory(app: Appliance, groups: tuple[str, ...], dimensions: tuple[str, ...]) -> tuple[str, ...]:
    """Invalid when an audience group or a dimension does not exist in the directory; else the groups as the
    directory writes them (it compares names without case), each once."""
    if dimensions:
        known = app.directory.dimensions()
        unknown = [d for d in dimensions if d not in known]
        if unknown:
            offered = ", ".join(known)
            if not offered:
                raise Invalid("unknown dimension %(dimension)s: the directory offers none", dimension=repr(unknown[0]))
            raise Invalid("unknown dimension %(dimension)s: the directory offers %(offered)s",
                          dimension=repr(unknown[0]), offered=offered)
    spelled = as_in_directory(app, groups)
    missing = [given for given, name in spelled.items() if name is None]
    if missing:
        raise Invalid("audience group %(group)s does not exist in the directory", group=repr(missing[0]))
    return tuple(dict.fromkeys(spelled.values()))


def as_in_directory(app: Appliance, groups: Iterable[str]) -> dict[str, str | None]:
    """Each group name given -> the name as the directory writes it (it compares names without case), or None
    when the directory has no such group."""
    groups = list(groups)
    names = {name.casefold(): name for name in app.directory.group_names()} if groups else {}
    return {given: names.get(given.casefold()) for given in groups}


def find_round(app: Appliance, round_id: str, viewer: Viewer) -> Round:
    """The round if this viewer may see it: NotFound for drafts of others, Forbidden outside the audience."""
    round_ = stored_rounds.get_round(app.dbs.ballots, round_id)
    if round_ is None or (round_.status == "draft" and not viewer.is_admin):
        raise NotFound("no round %(round_id)s", round_id=repr(round_id))
    if not _may_see(app, round_, viewer):
        raise Forbidden("you are not in this round's audience")
    return round_


def is_member(app: Appliance, round_: Round, viewer: Viewer) -> bool:
    """In the audience by group now, or frozen into it at open whatever their groups are now."""
    return (rules.in_audience(round_.audience_groups, viewer.groups)
            or snapshots.member_combo(app.dbs.identity, round_.id, viewer.person_id) is not None)


def _may_see(app: Appliance, round_: Round, viewer: Viewer) -> bool:
    return rules.can_see(round_, viewer) or (round_.status == "open" and is_member(app, round_, viewer))


def visible_rounds(app: Appliance, viewer: Viewer) -> list[Round]:
    """The rounds this viewer may see."""
    return [r for r in stored_rounds.list_rounds(app.dbs.ballots) if _may_see(app, r, viewer)]


def _stored_round(app: Appliance, round_id: str) -> Round:
    """Any round, for admins' lifecycle steps; NotFound when there is none."""
    round_ = stored_rounds.get_round(app.dbs.ballots, round_id)
    if round_ is None:
        raise NotFound("no round %(round_id)s", round_id=repr(round_id))
    return round_


def open_round(app: Appliance, actor: str, round_id: str, scheduled: datetime | None = None) -> Round:
    """Freeze the audience and its coarsened segments, create the round key, and open.

    `scheduled`: the scheduler's opening, due at that opens_at; an admin who moved it meanwhile wins (Conflict).
    """
    round_ = _stored_round(app, round_id)
    rules.next_status(round_.status, "open")
    rules.check_can_open(round_, app.clock())
    members = app.directory.audience(round_.audience_groups)
    if not members:
        raise Conflict("nobody is in this round's audience: check its audience groups in the directory")
    if len(members) < round_.k:
        raise Conflict("the audience counts %(count)s people, fewer than the anonymity threshold k = %(k)s: no"
                       " result could ever be published; create the round again with a lower k or a wider audience",
                       count=len(members), k=round_.k)
    raws = [segments.raw_combo(p.attributes, round_.dimensions) for p in members]
    mapping = segments.build_coarsening(raws, round_.k)
    snapshots.write_snapshot(app.dbs.identity, round_id, [
        (p.id, segments.combo_key(mapping[raw])) for p, raw in zip(members, raws)
    ])
    try:
        keys.create_round_key(app.keys_dir, round_id)
    except FileExistsError:
        raise Conflict("the round is being opened by another request") from None
    coarsening = {segments.combo_key(raw): segments.combo_key(stored) for raw, stored in mapping.items()}
    try:
        opened = stored_rounds.open_round(app.dbs.ballots, round_, coarsening, segments.headcounts(mapping, raws),
                                          scheduled)
    except BaseException:
        _unopened(app, round_id)
        raise
    if not opened:
        _unopened(app, round_id)
        raise Conflict("the round was opened or changed meanwhile")
    audit.record(app.dbs.identity, actor, "round.open", round_id, f"audience={len(members)}")
    return stored_rounds.get_round(app.dbs.ballots, round_id)


def _unopened(app: Appliance, round_id: str) -> None:
    """After an opening that failed: no key, and no audience kept for a round that is still a draft (or gone)."""
    keys.destroy_round_key(app.keys_dir, round_id)
    current = stored_rounds.get_round(app.dbs.ballots, round_id)
    if current is None or current.status == "draft":
        snapshots.delete_snapshot(app.dbs.identity, round_id)


EDITABLE = ("title", "question", "description", "audience_groups", "dimensions", "k", "moderation",
            "proposal_quota", "opens_at", "closes_at", "proposals_close_at")
DATES = ("opens_at", "closes_at", "proposals_close_at")


def edit_round(app: Appliance, actor: str, round_id: str, changes: dict[str, object]) -> Round:
    """Change any setting of a draft, or extend an open round's closes_at; the audit log says what changed."""
    round_ = _stored_round(app, round_id)
    if not changes:
        raise Invalid("nothing to change: give at least one of %(fields)s", fields=", ".join(EDITABLE))
    if round_.status == "draft":
        edited = _edited_draft(app, round_, changes)
    elif round_.status == "open":
        edited = _extended(round_, changes, app.clock())
    else:
        raise Conflict("cannot edit a round that is %(current)s (it must be draft, or open to extend closes_at)",
                       current=round_.status)
    if not stored_rounds.update_settings(app.dbs.ballots, round_, edited):
        raise Conflict("the round was opened or changed meanwhile")
    detail = ", ".join(name if name not in DATES or changes[name] is None else f"{name}={changes[name].isoformat()}"
                       for name in EDITABLE if name in changes)
    audit.record(app.dbs.identity, actor, "round.edit", round_id, detail)
    return stored_rounds.get_round(app.dbs.ballots, round_id)


def _edited_draft(app: Appliance, round_: Round, changes: dict[str, object]) -> Round:
    """The draft with these changes, checked as at creation; k or proposal_quota set to None take the default."""
    given = dict(changes)
    for name, default in defaulted(app).items():
        if name in given and given[name] is None:
            given[name] = default
    for name in ("audience_groups", "dimensions"):
        if name in given:
            given[name] = tuple(given[name] or ())
    return _checked_draft(app, replace(round_, **given),
                          ahead=(changes.get("closes_at"), changes.get("proposals_close_at")),
                          in_directory="audience_groups" in changes or "dimensions" in changes)


def delete_draft(app: Appliance, actor: str, round_id: str) -> None:
    """Delete a draft round, which nobody outside the admins has seen; any other round is kept (Conflict)."""
    round_ = _stored_round(app, round_id)
    if round_.status != "draft":
        raise Conflict("only a draft can be deleted: this round is %(current)s", current=round_.status)
    if not stored_rounds.delete_draft(app.dbs.ballots, round_id):
        raise Conflict("the round was opened or changed meanwhile")
    digests.forget_round(app.dbs.identity, round_id)
    snapshots.delete_snapshot(app.dbs.identity, round_id)  # left by an opening that failed
    locks.forget_round(app.dbs.identity, round_id)
    audit.record(app.dbs.identity, actor, "round.delete", round_id, round_.title)


def _extended(round_: Round, changes: dict[str, object], now: datetime) -> Round:
    """The open round with a later closes_at, and a new proposals_close_at when one is given."""
    fixed = [name for name in changes if name not in ("closes_at", "proposals_close_at")]
    if fixed:
        raise Conflict("%(name)s cannot change once the round is open: only closes_at can be extended",
                       name=fixed[0])
    edited = replace(round_, **changes)
    rules.check_schedule(edited.opens_at, edited.closes_at, edited.proposals_close_at)
    rules.check_extension(round_.closes_at, changes.get("closes_at"), now)
    rules.check_ahead(now, None, changes.get("proposals_close_at"))
    return edited


def close_round(app: Appliance, actor: str, round_id: str, scheduled: datetime | None = None) -> Round:
    """Turn ballots into counts, destroy the round key and every link to a person.

    `scheduled`: the scheduler's close, due at that closes_at; an extension made meanwhile wins (Conflict).
    """
    round_ = _stored_round(app, round_id)
    rules.next_status(round_.status, "close")
    if not ballots.close_and_count(app.dbs.ballots, round_id, scheduled):
        raise Conflict("the round was closed or extended meanwhile")
    _erase_links(app, round_id)
    audit.record(app.dbs.identity, actor, "round.close", round_id)
    withdraw_open_mail(app, round_id)
    return stored_rounds.get_round(app.dbs.ballots, round_id)


def withdraw_open_mail(app: Appliance, round_id: str) -> None:
    """Withdraw the round's mail of an open round not sent yet: "a consultation is open", "it closes soon" and
    "this week's digest" of participation must not arrive after it closed (a relay down for hours). Keys as
    notifications._notice_key and queue_weekly_digest write them; the final digest is queued at publish."""
    outbox.withdraw(app.dbs.identity, (f"{kind}:{round_id}:" for kind in ("invitation", "reminder", "digest")))


def _erase_links(app: Appliance, round_id: str, compact: bool = True) -> None:
    """Destroy the round key and the audience snapshot; then rewrite the ballots file."""
    keys.destroy_round_key(app.keys_dir, round_id)
    snapshots.delete_snapshot(app.dbs.identity, round_id)
    locks.forget_round(app.dbs.identity, round_id)
    checkpoint(app.dbs.identity)
    if compact and not ballots.scrub(app.dbs.ballots):
        log.warning("the ballots database stayed busy after closing round %s: it is compacted at the next write",
                    round_id)


@dataclass(frozen=True)
class AudienceCount:
    round_id: str
    title: str
    status: str
    members: int


def sync_headcounts(app: Appliance) -> list[AudienceCount]:
    """Count each draft and open round's audience in the directory now; store open rounds' headcounts.

    Members frozen at open keep their stored combination (and their place, even
    if they left the audience groups since); people who joined the audience
    after open count in the all-"other" combination. Only counts are stored.
    """
    report = []
    for round_ in stored_rounds.list_rounds(app.dbs.ballots):
        if round_.status not in ("draft", "open"):
            continue
        members = app.directory.audience(round_.audience_groups)
        if round_.status == "open":
            frozen = snapshots.members(app.dbs.identity, round_.id)
            joined = sum(1 for p in members if p.id not in frozen)
            counts = Counter(frozen.values())
            if joined:
                counts[segments.combo_key((segments.OTHER,) * len(round_.dimensions))] += joined
            if stored_rounds.replace_headcounts(app.dbs.ballots, round_.id, dict(counts)):
                report.append(AudienceCount(round_.id, round_.title, "open", sum(counts.values())))
        else:
            report.append(AudienceCount(round_.id, round_.title, "draft", len(members)))
    return report


def publish_round(app: Appliance, actor: str, round_id: str) -> Round:
    """Show a closed round's results to its audience."""
    round_ = _stored_round(app, round_id)
    new = rules.next_status(round_.status, "publish")
    if not stored_rounds.change_status(app.dbs.ballots, round_id, round_.status, new):
        raise Conflict("the round changed meanwhile")
    audit.record(app.dbs.identity, actor, "round.publish", round_id)
    return stored_rounds.get_round(app.dbs.ballots, round_id)


def round_results(app: Appliance, round_id: str, viewer: Viewer,
                  dimension: str | None = None) -> tuple[Round, ResultsView]:
    """The publishable view, for those allowed to read it now, broken down by one dimension or none."""
    round_ = find_round(app, round_id, viewer)
    if round_.status in ("draft", "open"):
        raise Conflict("results exist only once the round is closed")
    if not rules.can_read_results(round_, viewer):
        raise Forbidden("results are shown to the audience once the round is published")
    if dimension is not None and dimension not in round_.dimensions:
        offered = ", ".join(round_.dimensions)
        if not offered:
            raise Invalid("unknown dimension %(dimension)s: this round's dimensions are none",
                          dimension=repr(dimension))
        raise Invalid("unknown dimension %(dimension)s: this round's dimensions are %(offered)s",
                      dimension=repr(dimension), offered=offered)
    key = (round_id, dimension)
    view = app.results_cache.get(key)
    if view is None:  # a closed round's counts never change: its views are computed once per process
        counts, combo_voters = ballots.load_counts(app.dbs.ballots, round_id)
        accepted = [(p.id, p.text) for p in proposals.list_by_status(app.dbs.ballots, round_id, "accepted")]
        data = RoundCounts(round_.k, round_.dimensions, accepted, counts, combo_voters,
                           stored_rounds.get_headcounts(app.dbs.ballots, round_id))
        seed = stored_rounds.noise_seed(app.dbs.ballots, round_id)
        collecting = gc.isenabled()
        gc.disable()  # millions of small objects, none of them cyclic garbage: collection only slows it down
        try:
            view = publishable_view(data, dimension, seed)
        finally:
            if collecting:
                gc.enable()
        app.results_cache.put(key, view)
    return round_, view


@dataclass(frozen=True)
class Participation:
    """What may be said of participation now: a lagged daily band while open, the total after close."""

    status: str
    band: str | None
    as_of: str | None  # the day the band was seen, in server.time_zone
    voters: int | None
    history: list[tuple[str, str]]


PARTICIPATION_LAG_SECONDS = 24 * 3600


def participation(app: Appliance, round_id: str) -> Participation:
    """While open: bands, recorded once a day and shown a full day later; after close: the voters (k or more)."""
    round_ = _stored_round(app, round_id)
    if round_.status == "draft":
        return Participation("draft", None, None, None, [])
    if round_.status == "open":
        now = app.clock()
        today = now.astimezone(zone_named(app.settings.server.time_zone)).date().isoformat()
        if not participation_store.has_day(app.dbs.identity, round_id, today):
            band = participation_band(ballots.count_voters(app.dbs.ballots, round_id), round_.k)
            participation_store.record_band(app.dbs.identity, round_id, today, band, int(now.timestamp()))
        # A full day late: the reading that records a day's band may come at any time of that day.
        history = participation_store.bands_before(app.dbs.identity, round_id, today,
                                                   int(now.timestamp()) - PARTICIPATION_LAG_SECONDS)
        day, band = history[-1] if history else (None, None)
        return Participation("open", band, day, None, history)
    voters = sum(ballots.combo_voters(app.dbs.ballots, round_id).values())
    return Participation(round_.status, participation_band(voters, round_.k), None,
                         voters if voters >= round_.k else None, [])


class StartupRefused(Exception):
    """Starting now would harm open rounds; the message says what to restore."""


FINGERPRINT = "instance_secret_fingerprint"


def check_instance_secret(app: Appliance, keyed_rounds: list[Round]) -> None:
    """Refuse a changed instance secret while rounds still have keys: everyone would get a new pseudonym."""
    current = secret_fingerprint(app.instance_secret)
    stored = instance.get_value(app.dbs.identity, FINGERPRINT)
    if stored not in (None, current) and keyed_rounds:
        raise StartupRefused(
            f"security.instance_secret changed while {len(keyed_rounds)} round(s) are open: everyone would get a"
            " new pseudonym and could vote twice; restore the previous secret (data_dir/instance_secret or the"
            " configured one), or delete those rounds' key files in storage.keys_dir to close them as they stand")
    if stored != current:
        instance.set_value(app.dbs.identity, FINGERPRINT, current)


def reconcile_keys(app: Appliance, close_keyless: bool = False) -> None:
    """At start: check the instance secret, finish interrupted closes, close open rounds whose key is lost.

    When no open round finds its key (a keys volume not mounted, an empty mount
    point), start-up is refused unless `close_keyless` says the keys are really
    gone: closing rounds cannot be undone.
    """
    all_rounds = stored_rounds.list_rounds(app.dbs.ballots)
    open_rounds = [r for r in all_rounds if r.status == "open"]
    keyless = [r for r in open_rounds if keys.read_round_key(app.keys_dir, r.id) is None]
    check_instance_secret(app, [r for r in open_rounds if r not in keyless])
    if keyless and len(keyless) == len(open_rounds) and not close_keyless:
        raise StartupRefused(
            f"none of the {len(open_rounds)} open round(s) finds its key file in storage.keys_dir {app.keys_dir}:"
            " mount or restore that directory; if the keys are really lost (a backup restored without them),"
            " run `appliance close-keyless-rounds` once to close those rounds as they stand")
    left_behind = set(keys.round_ids_with_keys(app.keys_dir)) | set(snapshots.round_ids(app.dbs.identity))
    for round_ in all_rounds:
        if round_.status != "open" and round_.id in left_behind:  # a close was interrupted: finish it
            _erase_links(app, round_.id, compact=False)
    for round_ in keyless:
        log.warning("round %s is open but its key file is missing: closing it", round_.id)
        try:
            close_round(app, "system", round_.id)
        except Conflict:
            pass  # closed meanwhile


def record_export(app: Appliance, actor: str, round_id: str) -> None:
    """Exports are admin acts worth auditing."""
    audit.record(app.dbs.identity, actor, "results.export", round_id)
