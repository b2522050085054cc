"""Anonymity at rest: ARCHITECTURE.md, "Anonymity model (normative)", storage rules 1 to 5.

One round is played through the HTTP API with known people, in a known order of
proposals and votes. Then both SQLite files are read the way someone holding a
copy of the data directory would read them: every table, and the raw bytes of
the files and their WAL (free pages included). Voter pseudonyms and author
labels are recomputed from the instance secret and the round key while the
round is open, and every search is first shown to find what it looks for where
it must be, so that "not found" means something.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import struct
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.directory import Person
from appliance.domain.pseudonyms import author_label, voter_pseudonym
from appliance.domain.votes import OPTIONS, QUALIFICATIONS, VOTES
from appliance.services import sign_in
from appliance.storage import keys, people
from tests.conftest import Api, add_person, create_open_round

IDENTITY_FILES = ("identity.db", "identity.db-wal")
BALLOT_FILES = ("ballots.db", "ballots.db-wal")
BALLOT_SIDE = ("voters", "ballots", "proposals")
SEPARATOR = b"\0" * 64

# Staff added before open. With u00..u11 (two people per department and site pair),
# every pair but (Finance, Lyon) stays under k = 5 and must be coarsened, while whole
# departments such as IT reach k: the stored combinations are not all "other".
EXTRAS = {"fin-lyon-1": ("Finance", "Lyon"), "fin-lyon-2": ("Finance", "Lyon"), "fin-lyon-3": ("Finance", "Lyon"),
          "it-lyon-1": ("IT", "Lyon"), "sales-paris-1": ("Sales", "Paris"), "bystander": ("IT", "Paris")}
BYSTANDER = "bystander"  # in the audience, signs in, never proposes nor votes
PROPOSALS = [  # (author, text), in submission order
    ("u03", "Hold fewer and shorter meetings"),
    ("u07", "Publish the cafeteria menu a week ahead"),
    ("u00", "Let teams choose their own tools"),
    ("u10", "Answer internal tickets within two days"),
    ("u05", "Share the annual budget with every team"),
    ("fin-lyon-2", "Offer a quiet room on every floor"),
    ("u08", "Print fewer reports and archive them online"),
    ("it-lyon-1", "Allow remote work on Fridays"),
]
VOTING_ORDER = ["u05", "fin-lyon-2", "u00", "u11", "u02", "it-lyon-1", "u09", "u06", "u01",
                "sales-paris-1", "u10", "u03", "fin-lyon-1", "u08", "u04", "fin-lyon-3", "u07"]
WORDS = (*VOTES, *(q for quals in QUALIFICATIONS.values() for q in quals))  # every vote and qualification


def read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def raw_bytes(data_dir: Path, names: tuple[str, ...] = IDENTITY_FILES + BALLOT_FILES) -> bytes:
    """The files as a copy of the data directory holds them: live rows, free pages and the WAL."""
    return SEPARATOR.join(read(data_dir / name) for name in names)


def page_contents(data_dir: Path, names: tuple[str, ...], noise: list[bytes]) -> bytes:
    """raw_bytes without WAL frame headers (salts, checksums) and with the known random values blanked.

    What is left holds no random bytes, so a three-character needle such as a
    username cannot match by chance.
    """
    parts = []
    for name in names:
        data = read(data_dir / name)
        if name.endswith("-wal") and data:
            size = int.from_bytes(data[8:12], "big")
            data = b"".join(data[i + 24:i + 24 + size] for i in range(32, len(data), 24 + size))
        parts.append(data)
    data = SEPARATOR.join(parts)
    for value in noise:
        data = data.replace(value, b"\0" * len(value))
    return data


def found(needles: list, haystack: bytes) -> list:
    """Those of the needles (str or bytes) that occur in haystack."""
    return [n for n in needles if (n.encode() if isinstance(n, str) else n) in haystack]


def row_bytes(row: dict) -> bytes:
    """One row's values, for searching."""
    return b"\0".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values() if v is not None)


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)


def tables(path: Path) -> dict[str, list[dict]]:
    """Every row of every table of one SQLite file, through a separate read-only connection."""
    with closing(read_only(path)) as conn:
        names = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        result = {}
        for name in names:
            cursor = conn.execute(f'SELECT * FROM "{name}"')
            columns = [d[0] for d in cursor.description]
            result[name] = [dict(zip(columns, row)) for row in cursor.fetchall()]
    return result


def mentions(value, person: Person) -> bool:
    """Whether one stored value names this person."""
    if isinstance(value, str):
        return value in (person.username, person.display_name) or person.id in value or person.email in value
    if isinstance(value, bytes):
        return person.id.encode() in value or person.email.encode() in value
    return False


def footprint(identity: dict[str, list[dict]], person: Person) -> dict[str, list[tuple[str, ...]]]:
    """The rows of identity.db that name this person, each as the columns it fills, per table."""
    result = {}
    for table, rows in identity.items():
        filled = sorted(tuple(c for c, v in row.items() if v not in (None, "", b""))
                        for row in rows if any(mentions(v, person) for v in row.values()))
        if filled:
            result[table] = filled
    return result


def looks_like_time(value) -> bool:
    """A date, a clock time, or an integer in the range of Unix times in seconds or milliseconds."""
    if isinstance(value, str):
        return re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}", value) is not None
    if isinstance(value, (int, float)):
        return 10**9 <= value < 10**14
    return False


def ballot_for(j: int, p: int) -> tuple[str, str]:
    """The vote and qualification ('' for none) that voter number j casts on proposal number p."""
    vote = VOTES[(j + p) % 3]
    return vote, QUALIFICATIONS[vote][j % 3] if (j + p) % 2 == 0 else ""


@dataclass
class Story:
    round_id: str
    k: int
    data_dir: Path
    keys_dir: Path
    admin: Api
    everyone: list[Person]  # the whole directory: admin, moderator, outsider and staff
    audience: dict[str, Person]  # username -> person
    proposal_ids: list[str]  # in the order of PROPOSALS
    ballots: dict[tuple[str, str], tuple[str, str]]  # (username, proposal id) -> (vote, qualification), final
    identity_states: dict[str, tuple[str, str, int]]  # step -> sha256 of identity.db, of its WAL, data_version
    pseudonyms: dict[str, bytes]  # username -> voter pseudonym, for the whole audience
    labels: dict[str, bytes]  # username -> author label, for the whole audience
    round_key: bytes

    def url(self, *parts: str) -> str:
        return "/".join([f"/api/v1/rounds/{self.round_id}", *parts])


@pytest.fixture
def story(api, appliance) -> Story:
    """The round described at the top of this file, still open."""
    for username, (department, site) in EXTRAS.items():
        add_person(appliance, username, {"staff"}, {"department": department, "site": site})
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin, dimensions=["department", "site"], audience_groups=["staff"])
    url = f"/api/v1/rounds/{round_id}"
    audience = {p.username: p for p in appliance.directory.audience(["staff"])}
    clients = {name: api(name) for name in audience}  # everyone signs in, the bystander too
    data_dir, keys_dir = appliance.settings.storage.data_dir, appliance.settings.storage.round_keys_dir

    with closing(read_only(data_dir / "identity.db")) as watcher:
        def identity_state() -> tuple[str, str, int]:
            (version,) = watcher.execute("PRAGMA data_version").fetchone()  # moves on any other commit
            return (*(hashlib.sha256(read(data_dir / name)).hexdigest() for name in IDENTITY_FILES), version)

        states = {"signed in": identity_state()}
        for author, text in PROPOSALS:
            response = clients[author].post(f"{url}/proposals", json={"text": text})
            assert response.status_code == 201, response.text
        states["proposed"] = identity_state()
        ids = {p["text"]: p["id"] for p in mod.get(f"{url}/moderation").json()}
        proposal_ids = [ids[text] for _, text in PROPOSALS]
        for pid in proposal_ids:
            assert mod.post(f"{url}/proposals/{pid}/accept").status_code == 200
        states["moderated"] = identity_state()

        ballots = {}
        def cast(name: str, pid: str, vote: str, qualification: str) -> None:
            body = {"proposal": pid, "vote": vote} | ({"qualification": qualification} if qualification else {})
            assert clients[name].post(f"{url}/ballots", json=body).json() == {"recorded": True}
            ballots[(name, pid)] = (vote, qualification)

        for j, name in enumerate(VOTING_ORDER):
            for p in (j, j + 3, j + 5):
                cast(name, proposal_ids[p % len(proposal_ids)], *ballot_for(j, p))
        cast(VOTING_ORDER[0], proposal_ids[0], "disagree", "no_way")  # a changed vote replaces the first
        states["voted"] = identity_state()

    instance_secret = (data_dir / keys.INSTANCE_SECRET_FILE).read_bytes().strip()
    assert instance_secret == appliance.instance_secret
    round_key = keys.key_path(keys_dir, round_id).read_bytes()
    return Story(
        round_id=round_id, k=admin.get(url).json()["k"], data_dir=data_dir, keys_dir=keys_dir, admin=admin,
        everyone=people.list_people(appliance.dbs.identity), audience=audience, proposal_ids=proposal_ids,
        ballots=ballots, identity_states=states, round_key=round_key,
        pseudonyms={n: voter_pseudonym(instance_secret, round_key, p.id) for n, p in audience.items()},
        labels={n: author_label(instance_secret, round_key, p.id) for n, p in audience.items()},
    )


def stored_labels(story: Story) -> list[bytes]:
    """The pseudonyms of those who voted and the labels of those who proposed."""
    return [story.pseudonyms[n] for n in VOTING_ORDER] + [story.labels[a] for a, _ in PROPOSALS]


def test_no_row_pairs_a_person_with_a_vote_or_a_proposal(story):
    identity, ballots_tables = tables(story.data_dir / "identity.db"), tables(story.data_dir / "ballots.db")
    identity_raw, ballots_raw = raw_bytes(story.data_dir, IDENTITY_FILES), raw_bytes(story.data_dir, BALLOT_FILES)
    texts = [text for _, text in PROPOSALS]
    labels = stored_labels(story)  # pseudonyms and author labels
    labels_hex = [value.hex() for value in labels]
    used_words = sorted({word for ballot in story.ballots.values() for word in ballot if word})
    ids_and_emails = [value for p in story.everyone for value in (p.id, p.email)]
    names = [value for p in story.audience.values() for value in (p.username, p.display_name)]

    # The searches find what they look for where it is stored.
    assert found(ids_and_emails + names, identity_raw) == ids_and_emails + names
    assert found(labels + texts + used_words, ballots_raw) == labels + texts + used_words

    # ballots.db: no one's id, username, email or display name, in any row or byte.
    for table, rows in ballots_tables.items():
        for row in rows:
            assert not any(mentions(v, p) for v in row.values() for p in story.everyone), (table, row)
    assert found(ids_and_emails, ballots_raw) == []
    quiet = page_contents(story.data_dir, BALLOT_FILES, noise=labels)
    assert found(texts, quiet) == texts  # blanking the random values left the rest readable
    assert found(names, quiet) == []

    # identity.db: no proposal text, vote, qualification, pseudonym or label, in any row or byte;
    # a moderator's audited act may name a proposal, but no row that names an audience member does.
    for table, rows in identity.items():
        for row in rows:
            assert found(texts + list(WORDS) + labels + labels_hex, row_bytes(row)) == [], (table, row)
            if any(mentions(v, p) for v in row.values() for p in story.audience.values()):
                assert found(story.proposal_ids, row_bytes(row)) == [], (table, row)
    assert found(texts + list(WORDS) + labels + labels_hex, identity_raw) == []


def test_who_took_part_cannot_be_read(story):
    identity = tables(story.data_dir / "identity.db")
    bystander = footprint(identity, story.audience[BYSTANDER])
    assert {"people", "audience_snapshots"} <= set(bystander)  # the footprint does see rows
    assert identity["sessions"] and "sessions" not in bystander  # who signed in is sealed: no one's footprint
    for name, person in story.audience.items():
        assert footprint(identity, person) == bystander, name  # proposers, voters and the bystander alike

    raw = raw_bytes(story.data_dir, BALLOT_FILES)
    instance_secret = (story.data_dir / keys.INSTANCE_SECRET_FILE).read_bytes().strip()
    derived = []  # what anyone with the instance secret but without the round key could compute
    for person in story.audience.values():
        pid = person.id.encode()
        derived += [pid] + [hashlib.new(name, pid).digest() for name in ("md5", "sha1", "sha256", "sha512")]
        derived += [hmac.new(instance_secret, message, hashlib.sha256).digest() for message in (pid, b"author" + pid)]
    assert found(derived + [value.hex() for value in derived], raw) == []
    # Only with the round key does a person's value appear: the voters' pseudonyms, not the bystander's.
    voters = [story.pseudonyms[name] for name in VOTING_ORDER]
    assert found(voters, raw) == voters
    assert found([story.pseudonyms[BYSTANDER], story.labels[BYSTANDER]], raw) == []


def test_nothing_is_written_to_identity_db_when_someone_votes_or_proposes(story):
    states = story.identity_states
    for before, after in (("signed in", "proposed"), ("moderated", "voted")):
        for part, old, new in zip(("identity.db", "identity.db-wal", "data_version"), states[before], states[after]):
            assert old == new, f"{part} changed between {before!r} and {after!r}"
    # The comparison does see a write: accepting proposals is an audited moderator act.
    assert states["moderated"][1] != states["proposed"][1]
    assert states["moderated"][2] != states["proposed"][2]


def test_no_stored_segment_combination_narrows_a_voter_below_k_audience_members(story):
    ballots_tables = tables(story.data_dir / "ballots.db")
    mine = lambda table: [r for r in ballots_tables[table] if r["round_id"] == story.round_id]  # noqa: E731
    headcounts = {r["combo"]: r["members"] for r in mine("headcounts")}
    coarsening = {tuple(json.loads(r["raw"])): tuple(json.loads(r["combo"])) for r in mine("coarsening")}
    raw_pairs = Counter((p.attributes["department"], p.attributes["site"]) for p in story.audience.values())

    small = [pair for pair, n in raw_pairs.items() if n < story.k]
    assert small, "the audience must hold pairs under k for coarsening to have work"
    assert all("other" in coarsening[pair] for pair in small)  # no small pair is stored as it is
    assert any(set(json.loads(combo)) != {"other"} for combo in headcounts)  # nor is everything collapsed
    assert sum(headcounts.values()) == len(story.audience)
    assert all(n >= story.k for n in headcounts.values()), headcounts

    snapshot = {r["person_id"]: r["combo"] for r in tables(story.data_dir / "identity.db")["audience_snapshots"]
                if r["round_id"] == story.round_id}
    who = {pseudonym: name for name, pseudonym in story.pseudonyms.items()}
    voters = mine("voters")
    assert sorted(who[r["pseudonym"]] for r in voters) == sorted(VOTING_ORDER)
    for row in voters:
        assert headcounts[row["combo"]] >= story.k, row
        assert row["combo"] == snapshot[story.audience[who[row["pseudonym"]]].id]


def test_storage_order_does_not_follow_voting_order(story):
    # Rows keyed by random values come out in a random order, which matches one of the two
    # orders below by chance with a probability of 2/8! for the proposals, less for the others.
    who = {pseudonym: name for name, pseudonym in story.pseudonyms.items()}
    author = {label: name for name, label in story.labels.items()}
    with closing(read_only(story.data_dir / "ballots.db")) as conn:
        conn.row_factory = sqlite3.Row  # SELECT *: the table itself is scanned, not a covering index
        voters = [who[row["pseudonym"]] for row in conn.execute("SELECT * FROM voters")]
        ballots = list(dict.fromkeys(who[row["pseudonym"]] for row in conn.execute("SELECT * FROM ballots")))
        proposals = [author[row["author_label"]] for row in conn.execute("SELECT * FROM proposals")]
    submission = [name for name, _ in PROPOSALS]
    for stored, order in ((voters, VOTING_ORDER), (ballots, VOTING_ORDER), (proposals, submission)):
        assert sorted(stored) == sorted(order)  # every row mapped back to its person: the orders compare
        assert stored != order and stored != order[::-1], stored


def test_ballot_side_rows_have_no_rowid_and_no_date_or_time(story):
    with closing(read_only(story.data_dir / "ballots.db")) as conn:
        conn.execute("SELECT rowid FROM _sqlite_migrations").fetchall()  # the probe works on a rowid table
        for table in BALLOT_SIDE:
            with pytest.raises(sqlite3.OperationalError, match="rowid"):
                conn.execute(f"SELECT rowid FROM {table}")
            declared = [row[2].upper() for row in conn.execute(f"PRAGMA table_info({table})")]
            assert not any("DATE" in t or "TIME" in t for t in declared), (table, declared)
    ballots_tables = tables(story.data_dir / "ballots.db")
    assert ballots_tables["_sqlite_migrations"]  # migration names, without the times sqlite-utils records
    for table in [*BALLOT_SIDE, "_sqlite_migrations"]:
        assert ballots_tables[table], table
        for row in ballots_tables[table]:
            assert not any(looks_like_time(v) for v in row.values()), (table, row)


def test_after_close_only_counts_remain_and_no_link_to_a_person(story):
    def everything() -> bytes:  # every file of the data directory, key files and -shm included
        return SEPARATOR.join(read(p) for p in sorted(story.data_dir.rglob("*")) if p.is_file())

    key_file = keys.key_path(story.keys_dir, story.round_id)
    snapshot = {r["person_id"]: r["combo"] for r in tables(story.data_dir / "identity.db")["audience_snapshots"]
                if r["round_id"] == story.round_id}
    assert len(snapshot) == len(story.audience)
    assert key_file.exists() and found([story.round_key], everything()) == [story.round_key]
    assert found(stored_labels(story), raw_bytes(story.data_dir, BALLOT_FILES)) == stored_labels(story)

    response = story.admin.post(story.url("close"))
    assert response.status_code == 200 and response.json()["status"] == "closed", response.text

    ballots_tables = tables(story.data_dir / "ballots.db")
    assert ballots_tables["ballots"] == [] and ballots_tables["voters"] == []
    mine = [r for r in ballots_tables["proposals"] if r["round_id"] == story.round_id]
    assert len(mine) == len(PROPOSALS) and all(r["author_label"] is None for r in mine)
    assert not key_file.exists() and keys.round_ids_with_keys(story.keys_dir) == []
    identity = tables(story.data_dir / "identity.db")
    assert [r for r in identity["audience_snapshots"] if r["round_id"] == story.round_id] == []

    combo_of = {name: snapshot[p.id] for name, p in story.audience.items()}
    expected_counts = Counter((pid, combo_of[name], vote, qualification)
                              for (name, pid), (vote, qualification) in story.ballots.items())
    counts = {(r["proposal_id"], r["combo"], r["vote"], r["qualification"]): r["n"]
              for r in ballots_tables["counts"] if r["round_id"] == story.round_id}
    assert counts == dict(expected_counts)
    assert sum(counts.values()) == len(VOTING_ORDER) * 3
    combo_voters = {r["combo"]: r["voters"] for r in ballots_tables["combo_voters"] if r["round_id"] == story.round_id}
    assert combo_voters == dict(Counter(combo_of[name] for name in VOTING_ORDER))

    # The packed counts the results read hold the same numbers, and nothing else.
    [combos] = [json.loads(r["combos"]) for r in ballots_tables["pack_combos"] if r["round_id"] == story.round_id]
    packed: Counter[tuple[str, str, str]] = Counter()
    for row in ballots_tables["count_packs"]:
        if row["round_id"] == story.round_id:
            for combo, option, n in struct.iter_unpack("<3i", row["pack"]):
                packed[row["proposal_id"], combos[combo], OPTIONS[option]] += n
    by_option: Counter[tuple[str, str, str]] = Counter()
    for (pid, combo, vote, qualification), n in expected_counts.items():
        by_option[pid, combo, vote] += n
        if qualification:
            by_option[pid, combo, qualification] += n
    assert packed == by_option
    with closing(read_only(story.data_dir / "ballots.db")) as conn:
        for table in ("count_packs", "pack_combos"):
            with pytest.raises(sqlite3.OperationalError, match="rowid"):
                conn.execute(f"SELECT rowid FROM {table}")

    links = [story.round_key, *story.pseudonyms.values(), *story.labels.values()]
    assert found(links + [value.hex() for value in links], everything()) == []


def test_the_write_ahead_log_keeps_no_order_of_votes_or_proposals(story):
    """WAL frames are appended in commit order: after each vote batch and proposal the WAL is truncated."""
    wal = read(story.data_dir / "ballots.db-wal")
    database = read(story.data_dir / "ballots.db")
    found = [name for name, pseudonym in story.pseudonyms.items() if pseudonym in database]
    assert found, "the pseudonyms must be in the database file itself"
    leaked = [name for name, value in {**story.pseudonyms, **story.labels}.items() if value in wal]
    assert leaked == []


def test_compaction_leaves_no_arrival_order_inside_the_pages(story, appliance):
    """SQLite places new cells in arrival order; the writer rewrites the file in key order within a minute."""
    voters = [name for name in dict.fromkeys(VOTING_ORDER)]

    def order_in_file() -> list[str]:
        database = read(story.data_dir / "ballots.db")
        return sorted(voters, key=lambda name: database.find(story.pseudonyms[name]))

    before = order_in_file()
    assert before in (voters, voters[::-1]), "the check must see the arrival order SQLite leaves"
    appliance.ballot_writer.close()  # as at shutdown, or once the compaction delay has passed
    after = order_in_file()
    assert after not in (voters, voters[::-1])
    assert sorted(after) == sorted(voters)


def test_a_proposal_leaves_nothing_in_the_write_ahead_log(api, appliance):
    round_id = create_open_round(api("admin"))
    response = api("u07").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Nothing left in the log"})
    assert response.status_code == 201
    assert read(appliance.settings.storage.data_dir / "ballots.db-wal") == b""


def test_a_sign_in_leaves_no_key_of_its_username_in_identity_db_or_its_log(api, appliance):
    # Every attempt is counted under HMAC(instance secret, username) before the password is checked. Whoever
    # holds the data directory can compute that key for every username: a successful sign-in must not leave it.
    data_dir = appliance.settings.storage.data_dir
    name_key = sign_in._key(appliance, "user", "u04").encode()
    browser = api(None)
    assert browser.sign_in("u04", "not the password").status_code == 401
    assert name_key in raw_bytes(data_dir, IDENTITY_FILES)  # a failure is kept, and the search finds it
    assert browser.sign_in("u04").status_code == 200
    assert name_key not in raw_bytes(data_dir, IDENTITY_FILES)
    assert api(None).sign_in("u06").status_code == 200  # a first attempt that succeeds
    assert sign_in._key(appliance, "user", "u06").encode() not in raw_bytes(data_dir, IDENTITY_FILES)
