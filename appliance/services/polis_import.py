"""A Polis conversation export imported as a closed round.

An export is a folder of UTF-8 CSV files: comments.csv, votes.csv (every vote,
timed) and/or participants-votes.csv (final votes, opinion groups), summary.csv.
Comments become proposals (refused when moderated out in Polis), a participant's
last vote on a comment becomes one ballot, and the round is stored as close
leaves one: counts, never a row per voter. (comments.csv's agrees / disagrees
count every vote, replaced ones too: bench/polis_import.py shows it.)
"""

from __future__ import annotations

import csv
import io
import secrets
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from appliance.domain import segments
from appliance.domain.errors import Invalid
from appliance.domain.proposals import clean_paragraphs, clean_text
from appliance.domain.results import CountRow
from appliance.domain.rounds import DESCRIPTION_MAX_CHARS, QUESTION_MAX_CHARS, TITLE_MAX_CHARS, Round
from appliance.services.context import Appliance
from appliance.services.rounds import as_in_directory, check_limits
from appliance.storage import audit, imports
from appliance.storage.proposals import StoredProposal

DIMENSION = "polis_group"
REFUSAL_REASON = "imported: moderated out in Polis"
VOTES = {"1": "agree", "-1": "disagree", "0": "neutral"}
MODERATED = (-1, 0, 1)  # banned, unmoderated, accepted
# participants-votes.csv: these columns describe the participant; every other one is a comment id.
PARTICIPANT_COLUMNS = frozenset({"participant", "xid", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree"})

Key = tuple[int, int]  # (participant, comment id)


class PolisExportError(Exception):
    """A file of the export cannot be imported; the message names the file and the line."""


@dataclass(frozen=True)
class Comment:
    id: int
    text: str
    moderated_out: bool


@dataclass(frozen=True)
class PolisExport:
    """An export, checked: its comments, each participant's final votes, and opinion groups when asked for."""

    name: str
    topic: str
    description: str
    comments: dict[int, Comment]
    votes: dict[Key, str]
    groups: dict[int, str] | None
    replaced: int  # earlier votes that a later vote of the same participant on the same comment replaced


@dataclass(frozen=True)
class ImportReport:
    round_id: str
    title: str
    accepted: int
    refused: int
    voters: int
    votes: int
    replaced: int
    proposal_ids: dict[int, str]  # Polis comment id -> proposal id, kept in memory only
    audience: tuple[str, ...] = ()  # the groups that see the round; none: everyone in the directory


@dataclass(frozen=True)
class _Table:
    """A CSV file's columns and records, each with the line it starts on."""

    name: str
    header_line: int
    columns: dict[str, int]
    rows: list[tuple[int, list[str]]]

    def error(self, line: int, problem: str) -> PolisExportError:
        return PolisExportError(f"{self.name} line {line}: {problem}")

    def integer(self, line: int, fields: list[str], column: str) -> int:
        value = fields[self.columns[column]]
        try:
            return int(value)
        except ValueError:
            raise self.error(line, f"{column} must be an integer, not {value!r}") from None

    def unique(self, line: int, fields: list[str], column: str, seen: dict[int, int]) -> int:
        """An integer id that no earlier line had; remembers its line."""
        value = self.integer(line, fields, column)
        if value in seen:
            raise self.error(line, f"{column} {value} appears twice (first on line {seen[value]})")
        seen[value] = line
        return value

    def vote(self, line: int, value: str, what: str = "vote") -> str:
        if value.strip() not in VOTES:
            raise self.error(line, f"{what} must be 1, -1 or 0, not {value!r}")
        return VOTES[value.strip()]


def read_export(directory: Path, with_groups: bool = False) -> PolisExport:
    """Read and check an export folder; PolisExportError names the first problem and its line."""
    if not directory.is_dir():
        raise PolisExportError(f"{directory}: no such directory")
    if not (directory / "comments.csv").is_file():
        raise PolisExportError(f"{directory} has no comments.csv: is it a Polis conversation export?")
    comments = read_comments(directory / "comments.csv")
    votes_csv, participants_csv = directory / "votes.csv", directory / "participants-votes.csv"
    if not votes_csv.is_file() and not participants_csv.is_file():
        raise PolisExportError(f"{directory} has neither votes.csv nor participants-votes.csv: no votes to import")
    if with_groups and not participants_csv.is_file():
        raise PolisExportError(f"--with-groups needs participants-votes.csv (group-id): {directory} has none")
    groups = None
    if votes_csv.is_file():
        votes, replaced = read_votes(votes_csv, comments)
        if with_groups:
            groups, _ = read_participants(participants_csv, comments, with_votes=False)
    else:  # cells are final votes: nothing to replace
        all_groups, votes = read_participants(participants_csv, comments, with_votes=True)
        groups, replaced = (all_groups if with_groups else None), 0
    summary = read_summary(directory / "summary.csv")
    return PolisExport(directory.resolve().name, summary.get("topic", ""), summary.get("conversation-description", ""),
                       comments, votes, groups, replaced)


def read_comments(path: Path) -> dict[int, Comment]:
    """Comments by id; moderated -1 (banned in Polis) marks a comment as moderated out."""
    table = _read_table(path, ("comment-id", "moderated", "comment-body"))
    comments: dict[int, Comment] = {}
    lines: dict[int, int] = {}
    for line, fields in table.rows:
        comment_id = table.unique(line, fields, "comment-id", lines)
        moderated = table.integer(line, fields, "moderated")
        if moderated not in MODERATED:
            raise table.error(line, f"moderated must be -1, 0 or 1, not {moderated}")
        # Kept even when longer than proposals may be here; an empty one (Polis allowed it) is refused.
        text = clean_text(fields[table.columns["comment-body"]])
        comments[comment_id] = Comment(comment_id, text, moderated == -1 or not text)
    if not comments:
        raise PolisExportError(f"{path.name} has no comments")
    return comments


def read_votes(path: Path, comments: dict[int, Comment]) -> tuple[dict[Key, str], int]:
    """Each participant's last vote per comment, by timestamp; and how many earlier votes it replaced."""
    table = _read_table(path, ("timestamp", "comment-id", "voter-id", "vote"))
    timed = []
    for line, fields in table.rows:
        comment_id = _known_comment(table, line, table.integer(line, fields, "comment-id"), comments)
        timed.append((table.integer(line, fields, "timestamp"), line, table.integer(line, fields, "voter-id"),
                      comment_id, table.vote(line, fields[table.columns["vote"]])))
    timed.sort()  # by time; at the same time, the later line is the later vote
    final = {(voter, comment_id): vote for _, _, voter, comment_id, vote in timed}
    return final, len(timed) - len(final)


def read_participants(path: Path, comments: dict[int, Comment],
                      with_votes: bool) -> tuple[dict[int, str], dict[Key, str]]:
    """Each participant's opinion group ("other" when Polis gave none) and, if asked, their final votes."""
    table = _read_table(path, ("participant", "group-id"))
    comment_columns = _comment_columns(table, comments) if with_votes else []
    groups: dict[int, str] = {}
    votes: dict[Key, str] = {}
    lines: dict[int, int] = {}
    for line, fields in table.rows:
        participant = table.unique(line, fields, "participant", lines)
        has_group = fields[table.columns["group-id"]].strip()
        groups[participant] = str(table.integer(line, fields, "group-id")) if has_group else segments.OTHER
        for comment_id, index in comment_columns:
            if fields[index].strip():  # empty: no vote
                votes[participant, comment_id] = table.vote(line, fields[index], f"the vote on comment {comment_id}")
    return groups, votes


def _comment_columns(table: _Table, comments: dict[int, Comment]) -> list[tuple[int, int]]:
    """(comment id, column index) of each vote column of participants-votes.csv."""
    found = []
    for name, index in table.columns.items():
        if name in PARTICIPANT_COLUMNS:
            continue
        if not name.isdigit():
            raise table.error(table.header_line, f"column {name!r} is neither a Polis column nor a comment id")
        found.append((_known_comment(table, table.header_line, int(name), comments), index))
    return found


def _known_comment(table: _Table, line: int, comment_id: int, comments: dict[int, Comment]) -> int:
    if comment_id not in comments:
        raise table.error(line, f"comment-id {comment_id} is not in comments.csv")
    return comment_id


def read_summary(path: Path) -> dict[str, str]:
    """summary.csv's key, value lines (topic, conversation-description ...); empty when there is none."""
    if not path.is_file():
        return {}
    return {fields[0].strip(): clean_text(fields[1]) for _, fields in _records(path) if len(fields) >= 2}


def _read_table(path: Path, required: tuple[str, ...]) -> _Table:
    records = _records(path)
    if not records:
        raise PolisExportError(f"{path.name} is empty: a Polis export file starts with a header line")
    (header_line, header), rows = records[0], records[1:]
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        if name.strip() in columns:  # a dict would keep the last one and drop the other's values
            raise PolisExportError(f"{path.name} line {header_line}: column {name.strip()!r} appears twice")
        columns[name.strip()] = index
    missing = [name for name in required if name not in columns]
    if missing:
        raise PolisExportError(f"{path.name} line {header_line}: missing column {missing[0]!r}"
                               f" (needed: {', '.join(required)})")
    for line, fields in rows:
        if len(fields) != len(header):
            raise PolisExportError(f"{path.name} line {line}: {len(fields)} fields where the header has {len(header)}")
    return _Table(path.name, header_line, columns, rows)


def _records(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank records of a CSV file, each with the line it starts on (a quoted text may span lines)."""
    reader = csv.reader(io.StringIO(_decode(path), newline=""))
    records, last_line = [], 0
    try:
        for fields in reader:
            if fields:
                records.append((last_line + 1, fields))
            last_line = reader.line_num
    except csv.Error as error:
        raise PolisExportError(f"{path.name} line {last_line + 1}: not valid CSV ({error})") from None
    return records


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise PolisExportError(f"{path.name} line {line}: not UTF-8 text (byte {data[error.start]:#04x});"
                               " export it again or convert it to UTF-8") from None


def store_export(app: Appliance, actor: str, export: PolisExport, title: str | None = None,
                 k: int | None = None, audience: list[str] | None = None) -> ImportReport:
    """Store the export as one closed round, in one transaction, then audit it.

    Its audience (who sees the round, and is mailed when it is published) is the groups given, by
    default the administrators' groups: an import is tried out before the company is told of it.
    """
    k = app.settings.rounds.default_k if k is None else k
    check_limits(k, None)
    title = _title(export, title)
    groups = tuple(app.settings.directory.admin_groups) if audience is None else tuple(g.strip() for g in audience)
    if not groups:  # no audience group would mean everyone in the directory
        raise Invalid("--audience is needed: directory.admin_groups is empty, and an import is not shown to"
                      " everyone unless asked")
    if not all(groups):
        raise Invalid("--audience: a group name must not be empty")
    if audience is not None:  # as round creation does: the directory's spelling, each group once
        spelled = as_in_directory(app, groups)
        unknown = [given for given, name in spelled.items() if name is None]
        if unknown:
            raise Invalid(f"--audience: no group named {', '.join(map(repr, unknown))} in the directory")
        groups = tuple(dict.fromkeys(name for name in spelled.values() if name is not None))
    round_ = _closed_round(app, export, title, k, groups)
    proposal_ids = {comment_id: secrets.token_hex(8) for comment_id in export.comments}
    combos = _voter_combos(export, k)
    counts = Counter((proposal_ids[comment_id], combos[voter], vote)
                     for (voter, comment_id), vote in export.votes.items())
    imports.insert_closed_round(
        app.dbs.ballots, round_, _proposals(export, round_.id, proposal_ids),
        [CountRow(pid, combo, vote, "", n) for (pid, combo, vote), n in counts.items()],
        Counter(combos.values()),
    )
    refused = sum(1 for c in export.comments.values() if c.moderated_out)
    report = ImportReport(round_.id, title, len(export.comments) - refused, refused, len(combos),
                          len(export.votes), export.replaced, proposal_ids, groups)
    audit.record(app.dbs.identity, actor, "round.import", round_.id,
                 f"polis {export.name}: {report.accepted + refused} proposals, {report.voters} voters")
    return report


def _title(export: PolisExport, title: str | None) -> str:
    """The round's title, cleaned: --title, else summary.csv's topic, else the folder name; Invalid as the API."""
    source = "--title" if title is not None else "summary.csv topic" if export.topic else "the folder name"
    cleaned = clean_text((export.topic or export.name) if title is None else title)
    if not cleaned:
        raise Invalid("the title must not be empty")
    if len(cleaned) > TITLE_MAX_CHARS:
        raise Invalid(f"the title ({source}) has {len(cleaned)} characters, at most {TITLE_MAX_CHARS} allowed"
                      + (": give a shorter one with --title" if title is None else ""))
    return cleaned


def _within(text: str, limit: int, what: str) -> str:
    """A text of summary.csv, refused as the API refuses it when too long."""
    if len(text) > limit:
        raise Invalid(f"{what} has {len(text)} characters, at most {limit} allowed: shorten it in summary.csv")
    return text


def _closed_round(app: Appliance, export: PolisExport, title: str, k: int, audience: tuple[str, ...]) -> Round:
    defaults = app.settings.rounds
    question = _within(clean_text(export.topic) or title, QUESTION_MAX_CHARS, "the question (summary.csv topic)")
    description = _within(clean_paragraphs(export.description), DESCRIPTION_MAX_CHARS,
                          "the description (summary.csv conversation-description)")
    return Round(
        id=secrets.token_hex(8), title=title, question=question, description=description,
        audience_groups=audience, dimensions=(DIMENSION,) if export.groups is not None else (), k=k,
        opens_at=None, closes_at=None, proposals_close_at=None, moderation="pre", status="closed",
        proposal_min_chars=defaults.proposal_min_chars, proposal_max_chars=defaults.proposal_max_chars,
        proposal_quota=defaults.proposal_quota, release_interval_seconds=defaults.release_interval_seconds,
    )


def _voter_combos(export: PolisExport, k: int) -> dict[int, str]:
    """Each voter's stored combination, coarsened as at open: every combination holds k voters or more."""
    voters = {voter for voter, _ in export.votes}
    if export.groups is None:
        return dict.fromkeys(voters, segments.combo_key(()))
    raws = {voter: (export.groups.get(voter, segments.OTHER),) for voter in voters}
    mapping = segments.build_coarsening(list(raws.values()), k)
    return {voter: segments.combo_key(mapping[raw]) for voter, raw in raws.items()}


def _proposals(export: PolisExport, round_id: str, proposal_ids: dict[int, str]) -> list[StoredProposal]:
    return [
        StoredProposal(proposal_ids[c.id], round_id, c.text, "refused" if c.moderated_out else "accepted",
                       REFUSAL_REASON if c.moderated_out else None, None)
        for c in export.comments.values()
    ]
