"""Near-duplicates among accepted proposals: the FTS5 index of a round, on a real ballots.db."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from appliance.domain.similarity import (NEAR_DUPLICATE_THRESHOLD, group_terms, near_duplicate_groups, similarity,
                                         terms)
from appliance.storage import similar
from appliance.storage.connection import checkpoint, connect, fetch_all, write
from appliance.storage import migrations
from appliance.storage.migrations import apply_migrations

ROUND = "0123456789abcdef"
BORNES = "Installer des bornes de recharge pour voitures électriques"
BORNES_AGAIN = "des bornes de recharge electrique pour les voitures"
BIKES = "More bike parking near the entrance"
BICYCLES = "more bicycle parking at the entrance"
CANTEEN = "Un menu végétarien chaque jour à la cantine"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """ballots.db opened and migrated as the appliance does it."""
    identity, ballots = connect(tmp_path / "identity.db"), connect(tmp_path / "ballots.db")
    apply_migrations(identity, ballots)
    yield ballots
    identity.close()
    ballots.close()


def pid() -> str:
    return secrets.token_hex(8)


def indexed(db: Database, *texts: str) -> list[str]:
    """Index texts as accepted proposals of ROUND; their ids, in the texts' order."""
    ids = [pid() for _ in texts]
    similar.index_accepted(db, ROUND, zip(ids, texts))
    return ids


def segments(db: Database) -> int:
    """Index segments of ROUND's table (FTS5 keeps a segment's id in the high bits of its pages' ids)."""
    return len({row_id >> 37 for (row_id,) in fetch_all(db, f"SELECT id FROM similar_{ROUND}_data WHERE id > 10")})


def file_bytes(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_it_finds_french_near_duplicates_whatever_plurals_and_accents(db):
    bornes, canteen = indexed(db, BORNES, CANTEEN)
    found = similar.similar(db, ROUND, BORNES_AGAIN)
    assert [p for p, _ in found] == [bornes]
    assert found[0][1] >= NEAR_DUPLICATE_THRESHOLD


def test_it_groups_french_near_duplicates(db):
    bornes, again, canteen = indexed(db, BORNES, BORNES_AGAIN, CANTEEN)
    groups = similar.groups(db, ROUND)
    assert groups[bornes] == groups[again] == min(bornes, again)
    assert groups[canteen] == canteen


def test_it_hints_at_a_synonym_but_does_not_group_it(db):
    # bike and bicycle are different words: a hint for the author, a decision for moderators.
    bikes, bicycles = indexed(db, BIKES, BICYCLES)
    assert [p for p, _ in similar.similar(db, ROUND, BIKES)] == [bikes, bicycles]
    assert similar.groups(db, ROUND) == {bikes: bikes, bicycles: bicycles}


def test_it_does_not_offer_unrelated_proposals(db):
    indexed(db, BORNES, BIKES, CANTEEN)
    assert similar.similar(db, ROUND, "Des plantes vertes dans les bureaux") == []
    assert similar.similar(db, ROUND, "Fewer meetings on Monday mornings") == []


def test_it_ignores_accents_and_case(db):
    (bornes,) = indexed(db, BORNES)
    (p, score), = similar.similar(db, ROUND, "INSTALLER DES BORNES DE RECHARGE POUR VOITURES ÉLECTRIQUES")
    assert (p, score) == (bornes, 1.0)
    (p, score), = similar.similar(db, ROUND, "installer des bornes de recharge pour voitures electriques")
    assert (p, score) == (bornes, 1.0)


def test_a_soft_hyphen_or_zero_width_space_inside_a_word_does_not_split_it(db):
    # pasted from a word processor: invisible in the text, a word break for the index
    assert terms("Installer des bor\u00adnes de re\u200bcharge") == terms("Installer des bornes de recharge")
    bornes, again = indexed(db, BORNES, BORNES_AGAIN.replace("recharge", "re\u00adcharge"))
    assert similar.groups(db, ROUND)[again] == min(bornes, again)
    assert [p for p, _ in similar.similar(db, ROUND, "ins\u00adtaller des bornes de re\u2060charge")][0] == bornes


def test_a_few_words_already_give_hints_even_the_unfinished_last_one(db):
    bornes, bikes = indexed(db, BORNES, BIKES)
    assert [p for p, _ in similar.similar(db, ROUND, "bornes de rech")] == [bornes]
    assert [p for p, _ in similar.similar(db, ROUND, "bike park")] == [bikes]


def test_a_word_on_its_way_meets_its_term_and_a_finished_word_is_no_prefix(db):
    organise, papers = indexed(db, "Améliorer l'organisation des réunions", "Plus de journaux gratuits à la cafétéria")
    for typed in ("organis", "organisa", "organisat", "organisatio", "organisation"):
        assert [p for p, _ in similar.similar(db, ROUND, f"la meilleure {typed}")] == [organise], typed
    assert [p for p, _ in similar.similar(db, ROUND, "Plus de jour")] == [papers]  # maybe "journaux", coming
    assert similar.similar(db, ROUND, "Plus de jours ") == []  # a space after it: "jours" is finished
    assert similar.similar(db, ROUND, "Plus de parking") == []  # "plus" alone is not enough in common
    # A proposal in the moderation queue is a finished text: its last word is no prefix.
    assert similar.similar(db, ROUND, "Plus de jour", typing=False) == []


def test_french_plurals_in_aux_and_hyphenated_words_meet_their_other_forms(db):
    for one, other in (("Rénover les locaux du siège", "rénover le local du siège"),
                       ("réseaux sociaux internes", "un réseau social interne"),
                       ("nouveaux bureaux", "un nouveau bureau"),
                       ("le travail du week-end", "le travail du weekend"),
                       ("répondre aux e-mails", "répondre à un email")):
        assert terms(one) == terms(other), (one, other)
    locaux, = indexed(db, "Rénover les locaux du siège")
    assert similar.similar(db, ROUND, "rénover le local du siège ") == [(locaux, 1.0)]


def indexed_before(path: Path, migration: str, text: str, terms: str) -> Database:
    """ballots.db migrated up to `migration`, an open round's accepted `text` indexed as `terms`, as then."""
    ballots = connect(path / "ballots.db")
    migrations.ballots.apply(ballots, stop_before=migration)
    with write(ballots):
        ballots.conn.execute(
            "INSERT INTO rounds (id, title, question, description, audience_groups, dimensions, k, moderation,"
            " status, proposal_min_chars, proposal_max_chars, proposal_quota, release_interval_seconds)"
            f" VALUES ('{ROUND}', 'T', 'Q', '', '[]', '[]', 5, 'post', 'open', 12, 280, 5, 3600)")
        ballots.conn.execute("INSERT INTO proposals (id, round_id, text, status, author_label)"
                             f" VALUES ('00000000000000aa', '{ROUND}', ?, 'accepted', x'00')", (text,))
        ballots.conn.execute(f"CREATE VIRTUAL TABLE [similar_{ROUND}] USING fts5(terms,"
                             " tokenize = 'unicode61 remove_diacritics 2')")
        ballots.conn.execute(f"INSERT INTO [similar_{ROUND}] (rowid, terms) VALUES (?, ?)",
                             (int("00000000000000aa", 16) - (1 << 63), terms))
    return ballots


def test_an_upgrade_writes_open_rounds_indexes_again_with_todays_terms(tmp_path):
    ballots = indexed_before(tmp_path, "0005_similar_terms_again", "Rénover les locaux", "renov locau")
    assert similar.similar(ballots, ROUND, "rénover le local ") == [("00000000000000aa", 0.5)]
    migrations.ballots.apply(ballots)
    assert similar.similar(ballots, ROUND, "rénover le local ") == [("00000000000000aa", 1.0)]
    ballots.close()


def test_filler_words_make_no_likeness_and_an_upgrade_takes_them_out_of_the_open_rounds_indexes(tmp_path):
    """"Ajouter ... au plus vite" and "Ajouter ... de plus" shared two words and were offered as alike."""
    ballots = indexed_before(tmp_path, "0006_similar_without_filler_words",
                             "Ajouter des salles insonorisées au plus vite", "ajout sall insonori plu vit")
    migrations.ballots.apply(ballots)
    assert fetch_all(ballots, f"SELECT terms FROM [similar_{ROUND}]") == [("sall insonori plu",)]
    assert similar.similar(ballots, ROUND, "Ajouter un micro-ondes de plus à la cafétéria ") == []
    assert similar.similar(ballots, ROUND, "Give everyone a second monitor as soon as possible ") == []
    ballots.close()


def test_a_negated_draft_scores_below_its_opposite(db):
    meetings, = indexed(db, "Des réunions d'équipe le vendredi matin")
    ((same, score),) = similar.similar(db, ROUND, "Des réunions d'équipe le vendredi matin")
    ((opposite, negated),) = similar.similar(db, ROUND, "Pas de réunions d'équipe le vendredi matin")
    assert same == opposite == meetings and score == 1.0 and negated < 0.5  # "related", never "the same"


def test_hints_come_best_first_with_scores_between_0_and_1(db):
    bornes, again, bikes = indexed(db, BORNES, BORNES_AGAIN, BIKES)
    found = similar.similar(db, ROUND, "bornes de recharge électriques")
    assert [p for p, _ in found] == [again, bornes]
    assert all(0 < score <= 1 for _, score in found)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    assert len(similar.similar(db, ROUND, "bornes de recharge électriques", limit=1)) == 1


NASTY_DRAFTS = [
    'bornes" OR "x', "bornes NEAR(recharge, 2)", "NEAR", "recharge*", "* * *", "(((bornes", "bornes)))",
    "AND OR NOT", "borne^", "terms: bornes", "{terms} : bornes", '"', "''", "-bornes", "+", "bornes \x00 recharge",
    "🔌 bornes ⚡️ recharge 🚗", "🔌⚡️🚗", "", "   ", "bornes " * 5000, "ǅ ß ﬁ Ⅻ ² ⁂", "rowid = 1; DROP TABLE proposals",
]


@pytest.mark.parametrize("draft", NASTY_DRAFTS)
def test_query_syntax_in_a_draft_is_read_as_text(db, draft):
    indexed(db, BORNES, BIKES)
    for p, score in similar.similar(db, ROUND, draft):
        assert len(p) == 16 and 0 <= score <= 1


def test_an_operator_typed_in_a_draft_is_an_ordinary_word(db):
    (bornes,) = indexed(db, BORNES)
    assert [p for p, _ in similar.similar(db, ROUND, 'bornes" OR (recharge NEAR voitures')] == [bornes]


SYNTAX = st.sampled_from(['"', "'", "(", ")", "{", "}", "*", ":", "^", "+", "-", "NEAR", "AND", "OR", "NOT",
                          "terms", "rowid", "bornes", "recharge", "voitures", "🔌", " ", ",", "NEAR(", "\x00"])
DRAFTS = st.one_of(st.text(max_size=400), st.lists(SYNTAX, max_size=40).map("".join),
                   st.lists(st.one_of(SYNTAX, st.text(max_size=5)), max_size=30).map(" ".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(draft=DRAFTS)
def test_no_draft_ever_raises(db, draft):
    if not similar.groups(db, ROUND):  # first example: fill the index once
        indexed(db, BORNES, BIKES, CANTEEN, "Réunions « courtes » : 30 min (max) !")
    for p, score in similar.similar(db, ROUND, draft):
        assert 0 <= score <= 1


def test_a_round_without_index_has_no_hints_and_no_groups(db):
    assert similar.similar(db, ROUND, BORNES) == []
    assert similar.groups(db, ROUND) == {}
    similar.remove(db, ROUND, pid())
    similar.optimize(db, ROUND)
    similar.drop(db, ROUND)


def test_ids_that_are_not_ids_are_refused(db):
    with pytest.raises(ValueError):
        similar.index_accepted(db, "x]; DROP TABLE proposals; --", [(pid(), BORNES)])
    with pytest.raises(ValueError):
        similar.index_accepted(db, ROUND, [("not-an-id", BORNES)])
    assert fetch_all(db, "SELECT count(*) FROM proposals") == [(0,)]


def test_rowids_follow_the_random_ids_not_insertion_order(db):
    ids = sorted(pid() for _ in range(40))
    inserted = ids[::2][::-1] + ids[1::2]  # neither ascending nor descending
    for proposal_id in inserted:  # one transaction each, as acceptances come
        similar.index_accepted(db, ROUND, [(proposal_id, f"Proposal about topic {proposal_id}")])
    for table in (f"similar_{ROUND}", f"similar_{ROUND}_content", f"similar_{ROUND}_docsize"):
        rowids = [r for (r,) in fetch_all(db, f"SELECT rowid FROM [{table}] ORDER BY rowid")]
        assert rowids == [int(i, 16) - 2**63 for i in ids]
    assert segments(db) == 1  # no segment per transaction, which would keep their order
    assert not fetch_all(db, "SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'")


def test_the_index_holds_terms_only_no_author_no_date(db):
    indexed(db, BORNES)
    columns = [row[1] for row in fetch_all(db, f"PRAGMA table_info(similar_{ROUND})")]
    assert columns == ["terms"]
    assert fetch_all(db, f"SELECT terms FROM similar_{ROUND}") == [("install born recharg voitur electriqu",)]


def test_reindexing_a_corrected_proposal_replaces_its_text(db):
    (p,) = indexed(db, "Des bornes de recharge au parking")
    similar.index_accepted(db, ROUND, [(p, "Un menu végétarien à la cantine")])
    assert similar.similar(db, ROUND, "bornes de recharge") == []
    assert [q for q, _ in similar.similar(db, ROUND, "menu végétarien")] == [p]


def test_a_proposal_refused_after_acceptance_leaves_no_trace(db, tmp_path):
    keep, refused = indexed(db, BORNES, "Capybaras fantastiques dans le hall")
    similar.remove(db, ROUND, refused)
    assert similar.similar(db, ROUND, "capybaras fantastiques") == []
    assert similar.groups(db, ROUND) == {keep: keep}
    checkpoint(db)
    assert b"capybara" not in file_bytes(tmp_path / "ballots.db")


def test_indexing_joins_the_callers_write_transaction(db):
    with pytest.raises(RuntimeError):
        with write(db):
            similar.index_accepted(db, ROUND, [(pid(), BORNES)])
            raise RuntimeError("the moderation decision failed")
    assert similar.similar(db, ROUND, BORNES) == []
    with write(db):
        similar.index_accepted(db, ROUND, [(pid(), BORNES)])
    assert len(similar.similar(db, ROUND, BORNES)) == 1


def test_optimize_merges_the_index_into_one_segment(db):
    ids = indexed(db, BORNES, BIKES)
    for text in (CANTEEN, BORNES_AGAIN, BICYCLES):  # written straight to the table: one segment each
        with write(db):
            db.conn.execute(f"INSERT INTO similar_{ROUND} (rowid, terms) VALUES (?, ?)",
                            (int(pid(), 16) - 2**63, " ".join(terms(text))))
    assert segments(db) == 4
    similar.optimize(db, ROUND)
    assert segments(db) == 1
    assert [p for p, _ in similar.similar(db, ROUND, BORNES)][0] == ids[0]


def test_drop_leaves_no_table_and_no_text_after_vacuum(db, tmp_path):
    other = "fedcba9876543210"
    indexed(db, "Xylophones quokkas partout", BORNES)
    similar.index_accepted(db, other, [(pid(), BIKES)])
    checkpoint(db)
    path = tmp_path / "ballots.db"
    assert b"quokka" in file_bytes(path)  # the check below would mean nothing otherwise
    similar.drop(db, ROUND)
    db.conn.execute("VACUUM")
    checkpoint(db)
    names = [name for (name,) in fetch_all(db, "SELECT name FROM sqlite_master")]
    assert not [name for name in names if ROUND in name]
    assert b"quokka" not in file_bytes(path) and b"xylophon" not in file_bytes(path)
    assert [p for p, _ in similar.similar(db, other, BIKES)]  # other rounds keep theirs
    assert similar.similar(db, ROUND, BORNES) == []


def test_a_negated_proposal_is_no_duplicate_of_its_opposite():
    ids = {"a" * 16: "Supprimer les réunions du lundi matin",
           "b" * 16: "Ne pas supprimer les réunions du lundi matin",
           "c" * 16: "Stop the Monday morning meetings",
           "d" * 16: "Do not stop the Monday morning meetings"}
    groups = near_duplicate_groups(list(ids.items()))
    assert groups == {p: p for p in ids}


def test_groups_are_connected_components_named_by_their_smallest_id():
    proposals = [
        ("e" * 16, "Des bornes de recharge pour les voitures électriques du parking"),
        ("3" * 16, "Des bornes de recharge pour voitures électriques"),
        ("9" * 16, "Bornes de recharge électriques"),  # like the second, not like the first
        ("1" * 16, "Un menu végétarien à la cantine"),
        ("7" * 16, "Des menus végétariens à la cantine"),
        ("5" * 16, "More bike parking near the entrance"),
    ]
    assert similarity(frozenset(terms(proposals[0][1])), frozenset(terms(proposals[2][1]))) < NEAR_DUPLICATE_THRESHOLD
    groups = near_duplicate_groups(proposals)
    assert groups == {"e" * 16: "3" * 16, "3" * 16: "3" * 16, "9" * 16: "3" * 16,
                      "1" * 16: "1" * 16, "7" * 16: "1" * 16, "5" * 16: "5" * 16}


def brute_force_groups(term_sets: dict[str, frozenset[str]], threshold: float) -> dict[str, str]:
    groups = {p: p for p in term_sets}
    for a, b in combinations(sorted(term_sets), 2):
        if similarity(term_sets[a], term_sets[b]) >= threshold:
            old, new = max(groups[a], groups[b]), min(groups[a], groups[b])
            groups = {p: new if g == old else g for p, g in groups.items()}
    return groups


@settings(max_examples=200, deadline=None)
@given(sets=st.lists(st.frozensets(st.sampled_from("abcdefghij"), max_size=7), max_size=25),
       threshold=st.sampled_from([0.3, 0.5, 0.7, NEAR_DUPLICATE_THRESHOLD, 1.0]))
def test_grouping_without_comparing_all_pairs_misses_no_pair(sets, threshold):
    term_sets = {f"{i:016x}": s for i, s in enumerate(sets)}
    assert group_terms(term_sets, threshold) == brute_force_groups(term_sets, threshold)


def test_groups_of_5000_generated_proposals(db):
    rng = random.Random(5000)
    subjects = ["bornes de recharge", "menu végétarien", "parking vélo", "télétravail", "réunions courtes",
                "salle de sport", "navette gare", "plantes vertes", "café équitable", "horaires souples"]
    places = ["au siège", "à l'usine", "dans chaque étage", "près de l'entrée", "à la cantine", "le vendredi"]
    extra = [f"mot{n}" for n in range(3000)]
    texts: list[str] = []
    for _ in range(5000):
        if texts and rng.random() < 0.3:  # a rewording of an earlier proposal
            texts.append("Il faudrait des " + rng.choice(texts).upper())
        else:
            texts.append(f"{rng.choice(subjects)} {rng.choice(places)} {' '.join(rng.sample(extra, 3))}")
    proposals = [(pid(), text) for text in texts]
    similar.index_accepted(db, ROUND, proposals)
    groups = similar.groups(db, ROUND)
    assert groups == near_duplicate_groups(proposals)
    assert set(groups) == {p for p, _ in proposals}
    assert all(groups[g] == g and g <= p for p, g in groups.items())
    assert len(set(groups.values())) < len(proposals)
