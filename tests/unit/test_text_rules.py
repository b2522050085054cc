"""Proposal text, the moderation charter, votes with their qualifications, release batches."""

from __future__ import annotations

import pytest

from appliance.domain.errors import Invalid
from appliance.domain.proposals import (
    MAX_NOTE_CHARS,
    REFUSAL_REASONS,
    check_correction,
    check_proposal_text,
    check_refusal,
    clean_text,
    release_period,
    released_status,
)
from appliance.domain.votes import QUALIFICATIONS, VOTES, check_vote

DECOMPOSED_E = "e\u0301"  # "e" + combining acute accent
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_it_normalises_a_decomposed_e_acute_to_one_character() -> None:
    cleaned = clean_text(f"caf{DECOMPOSED_E} cr{DECOMPOSED_E}me")
    assert cleaned == "caf\u00e9 cr\u00e9me"
    assert len(cleaned) == 10


def test_it_removes_control_characters() -> None:
    assert clean_text("Less\x00 paper\x07work\x1b[31m") == "Less paperwork[31m"


@pytest.mark.parametrize("control", list(BIDI_CONTROLS))
def test_it_removes_bidirectional_override_characters(control: str) -> None:
    assert clean_text(f"Fund {control}the canteen") == "Fund the canteen"


INVISIBLE_FORMATS = "\u200b\u2060\ufeff\u00ad\u200e\u200f\u061c\u200c\u180e\u2061"


@pytest.mark.parametrize("invisible", list(INVISIBLE_FORMATS))
def test_it_removes_invisible_format_characters(invisible: str) -> None:
    assert clean_text(f"Photo{invisible}copies {invisible} in colour{invisible}") == "Photocopies in colour"


def test_it_keeps_a_zero_width_joiner_inside_an_emoji_sequence_only() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_text(f"A room for {family} visits") == f"A room for {family} visits"
    assert clean_text("Open\u200d the\u200d\u200d doors \u200dnow\u200d") == "Open the doors now"
    assert clean_text("\u200dOpen the \u200b\u200d doors") == "Open the doors"


def test_a_subdivision_flag_keeps_its_tags_and_stray_tags_are_dropped() -> None:
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert clean_text(f"Meet the {england} office") == f"Meet the {england} office"
    assert clean_text("Pad\U000e0067\U000e0062\U000e007f this") == "Pad this"  # tags without their flag
    assert clean_text("\U0001f3f4\U000e0067\U000e0062 flag") == "\U0001f3f4 flag"  # no cancel tag: no flag


def test_it_refuses_a_proposal_of_invisible_characters_only() -> None:
    with pytest.raises(Invalid, match="too short: 0 characters"):
        check_proposal_text("\u200b" * 12, 12, 280)
    with pytest.raises(Invalid, match="too short: 0 characters"):
        check_proposal_text("\u200d\ufeff\u00ad\u2060" * 3, 12, 280)


@pytest.mark.parametrize("text", ["!!!!!!!!!!!!", "\U0001f6b2\U0001f6b2\U0001f6b2\U0001f6b2\U0001f6b2\U0001f6b2",
                                  "... --- ... ?"])
def test_it_refuses_a_proposal_without_a_letter_or_digit(text: str) -> None:
    with pytest.raises(Invalid, match="^a proposal needs words: it has no letter or digit$"):
        check_proposal_text(text, 6, 280)


def test_it_accepts_a_proposal_with_a_single_letter_or_digit() -> None:
    bikes = "\U0001f6b2\U0001f6b2 x 2 \U0001f6b2\U0001f6b2"
    assert check_proposal_text(bikes, 6, 280) == bikes


def test_it_collapses_runs_of_whitespace_into_one_space_and_trims() -> None:
    assert clean_text("  More \t\tbikes\n\r\nracks\u00a0 please  ") == "More bikes racks please"


def test_it_leaves_no_double_space_where_a_control_character_was_removed() -> None:
    assert clean_text("Open \x00 the doors") == "Open the doors"
    assert clean_text("Open \u202e the doors") == "Open the doors"


def test_it_keeps_html_as_literal_text() -> None:
    text = "<b>Bold</b> &amp; <script>alert('x')</script> <a href=\"x\">link</a>"
    assert clean_text(text) == text


def test_it_returns_the_cleaned_text_of_a_valid_proposal() -> None:
    assert check_proposal_text("  Quieter\topen   spaces  ", 12, 280) == "Quieter open spaces"


def test_it_counts_the_length_after_cleaning() -> None:
    # 24 code points as typed, 12 characters once normalised
    assert check_proposal_text(DECOMPOSED_E * 12, 1, 12) == "\u00e9" * 12
    # 16 characters as typed, 11 once control characters and spaces are gone
    with pytest.raises(Invalid, match=r"^proposal is too short: 11 characters, at least 12 needed$"):
        check_proposal_text("  abcdefghijk\x00\u202e  ", 12, 280)


def test_it_accepts_a_proposal_of_exactly_the_minimum_and_maximum_lengths() -> None:
    assert check_proposal_text("a" * 12, 12, 280) == "a" * 12
    assert check_proposal_text("a" * 280, 12, 280) == "a" * 280


def test_it_refuses_a_proposal_one_character_too_short() -> None:
    with pytest.raises(Invalid, match=r"^proposal is too short: 11 characters, at least 12 needed$"):
        check_proposal_text("a" * 11, 12, 280)


def test_it_refuses_a_proposal_one_character_too_long() -> None:
    with pytest.raises(Invalid, match=r"^proposal is too long: 281 characters, at most 280 allowed$"):
        check_proposal_text("a" * 281, 12, 280)


def test_it_refuses_a_proposal_that_is_only_whitespace_and_controls() -> None:
    with pytest.raises(Invalid, match="too short: 0 characters"):
        check_proposal_text(" \t\x00\u202e \n", 1, 280)


def test_the_charter_lists_the_reasons_a_moderator_may_refuse() -> None:
    assert REFUSAL_REASONS == ("incomprehensible", "off_topic", "discriminatory", "insulting",
                               "targets_a_person", "several_ideas", "advertising", "duplicate")


@pytest.mark.parametrize("reason", REFUSAL_REASONS)
def test_it_accepts_every_reason_of_the_charter(reason: str) -> None:
    assert check_refusal(reason, None) == ""


def test_it_refuses_a_reason_outside_the_charter_and_lists_the_allowed_ones() -> None:
    with pytest.raises(Invalid) as raised:
        check_refusal("boring", None)
    assert str(raised.value) == ("reason must be one of incomprehensible, off_topic, discriminatory, insulting, "
                                 "targets_a_person, several_ideas, advertising, duplicate")


def test_it_cleans_the_note_of_a_refusal() -> None:
    assert check_refusal("duplicate", "  Same as\n\n  \u202ethe bike one ") == "Same as the bike one"
    assert check_refusal("duplicate", "\u200b\ufeff") == ""
    assert check_refusal("duplicate", "") == ""


def test_it_limits_a_refusal_note_to_500_characters_after_cleaning() -> None:
    assert MAX_NOTE_CHARS == 500
    assert check_refusal("off_topic", " " + "n" * 500 + " ") == "n" * 500
    with pytest.raises(Invalid, match="^note is too long: at most 500 characters$"):
        check_refusal("off_topic", "n" * 501)


PAIRS = [(vote, q) for vote, names in QUALIFICATIONS.items() for q in names]


def test_there_are_nine_qualifications_three_per_vote() -> None:
    assert VOTES == ("agree", "disagree", "neutral")
    assert PAIRS == [
        ("agree", "like_it"), ("agree", "doable"), ("agree", "platitude_agree"),
        ("disagree", "no_way"), ("disagree", "impossible"), ("disagree", "platitude_disagree"),
        ("neutral", "do_not_understand"), ("neutral", "no_opinion"), ("neutral", "do_not_care"),
    ]


@pytest.mark.parametrize(("vote", "qualification"), PAIRS)
def test_it_accepts_a_qualification_that_matches_its_vote(vote: str, qualification: str) -> None:
    assert check_vote(vote, qualification) == qualification


@pytest.mark.parametrize(
    ("vote", "qualification"),
    [(vote, q) for vote in VOTES for other, names in QUALIFICATIONS.items() if other != vote for q in names],
)
def test_it_refuses_a_qualification_of_another_vote(vote: str, qualification: str) -> None:
    allowed = ", ".join(QUALIFICATIONS[vote])
    with pytest.raises(Invalid) as raised:
        check_vote(vote, qualification)
    assert str(raised.value) == f"qualification {qualification!r} does not match vote {vote!r} (allowed: {allowed})"


@pytest.mark.parametrize("vote", VOTES)
def test_it_stores_an_empty_qualification_when_none_is_given(vote: str) -> None:
    assert check_vote(vote, None) == ""
    assert check_vote(vote, "") == ""


def test_it_refuses_an_unknown_qualification() -> None:
    with pytest.raises(Invalid, match="qualification 'love_it' does not match vote 'agree'"):
        check_vote("agree", "love_it")


def test_it_refuses_an_unknown_vote_even_without_qualification() -> None:
    with pytest.raises(Invalid, match="^vote must be one of agree, disagree, neutral$"):
        check_vote("maybe", None)
    with pytest.raises(Invalid):
        check_vote("Agree", "like_it")


@pytest.mark.parametrize(
    ("now", "interval", "period"),
    [(0, 3600, 0), (3599.99, 3600, 0), (3600, 3600, 1), (7199.5, 3600, 1), (7200, 3600, 2),
     (1_700_000_000, 3600, 472_222), (1_700_000_000, 0, 0), (12.5, 0, 0)],
)
def test_it_numbers_the_release_period_containing_a_moment(now: float, interval: int, period: int) -> None:
    assert release_period(now, interval) == period


def test_it_sends_a_released_proposal_to_moderation_or_publishes_it() -> None:
    assert released_status("pre") == "pending"
    assert released_status("post") == "accepted"


# --- Spelling corrections: the votes a proposal has must still be about what it says ---------------

@pytest.mark.parametrize(("before", "after"), [
    ("Flexible hours for evryone", "Flexible hours for everyone"),
    ("We recieve alot of emails every day", "We receive a lot of emails every day"),
    ("teh canteen should open earlier", "The canteen should open earlier"),
    ("Hold the the meetings on Monday", "Hold the meetings on Monday"),
    ("Hold fewer and shorter meetings", "Hold fewer and shorter meetings."),
    ("Les reunions du lundi sont trop longue a l'etage", "Les réunions du lundi sont trop longues à l'étage"),
    ("Un e-mail par semaine suffit largement", "Un email par semaine suffit largement"),
    ("Ne pas imprimer les rapport", "Ne pas imprimer les rapports"),
    ("Un parking velo a l'entree", "Un parking vélo à l'entrée"),
    ("L'ete dernier deja", "L'été dernier déjà"),
    ("Plus de coeur a l'ouvrage et de voeux a tous", "Plus de cœur à l'ouvrage et de vœux à tous"),
    ("We dont have enough rooms", "We don't have enough rooms"),
    ("You shouldnt need approval", "You shouldn't need approval"),
    ("Il nest pas possible de travailler", "Il n'est pas possible de travailler"),
    ("Plsu de télétravail le vendredi", "Plus de télétravail le vendredi"),
    ("hte canteen should open earlier", "the canteen should open earlier"),
    ("Send it ofr approval quickly", "Send it for approval quickly"),
    ("Il est pas possible de venir", "Il n'est pas possible de venir"),
    ("Le 2ème étage et le 3eme", "Le 2e étage et le 3e"),
    ("Un budget de 1 000 euros", "Un budget de 1000 euros"),
])
def test_a_correction_may_fix_spelling_accents_case_punctuation_and_run_together_words(before, after) -> None:
    assert check_correction(before, after, 5, 280) == after


@pytest.mark.parametrize(("before", "after", "message"), [
    ("Allow everyone to leave early on Fridays in the summer",
     "Do not allow everyone to leave early on Fridays in the summer", "not add or remove a negation"),
    ("On peut travailler le vendredi de chez soi", "On ne peut pas travailler le vendredi de chez soi",
     "not add or remove a negation"),
    ("We can work from home on friday", "We can't work from home on Friday", "not add or remove a negation"),
    ("Ne pas imprimer les rapports", "Ne par imprimer les rapports", "not add or remove a negation"),
    ("Mettre des fontaines à eau à chaque étage", "Retirer des fontaines à eau à chaque étage",
     "\u201cmettre\u201d became \u201cretirer\u201d"),
    ("Increase the budget for training", "Decrease the budget for training", "\u201cincrease\u201d became"),
    ("Make parking possible for everyone", "Make parking impossible for everyone", "\u201cpossible\u201d became"),
    ("Hold fewer and much shorter meetings", "Hold fewer and shorter meetings", "not remove words (\u201cmuch\u201d)"),
    ("Open the gym on every day", "Open the gym on every other day", "not add words (\u201cother\u201d)"),
    ("Free pizza on Fridays for all", "Free pasta on Fridays for all", "\u201cpizza\u201d became \u201cpasta\u201d"),
    ("Allow 10 days of remote work", "Allow 100 days of remote work", "not change a number"),
    ("Cut costs by 10% this year", "Cut costs by 15% this year", "not change a number"),
    ("Baisser le prix à 3,50 € par repas", "Baisser le prix à 350 € par repas", "not change a number"),
    ("Limit meetings to 1.5 hours", "Limit meetings to 15 hours", "not change a number"),
    ("Open the gym 2-3 days a week", "Open the gym 23 days a week", "not change a number"),
    ("Heat the offices +2 degrees", "Heat the offices -2 degrees", "not change a number"),
    ("A bonus of 10 % for everyone", "A bonus of 10 € for everyone", "not change a number"),
    ("Un parking à l'ouest du site", "Un parking à l'est du site", "\u201couest\u201d became \u201cest\u201d"),
    ("We need teh cars in the morning", "We need the bars in the morning", "\u201cteh cars\u201d became"),
    ("Un parking ouvert la nuit", "Un parking couvert la nuit", "\u201couvert\u201d became \u201ccouvert\u201d"),
    ("More nformation on the intranet", "More information on the intranet", "\u201cnformation\u201d became"),
    ("Minimum deux jours de télétravail", "Maximum deux jours de télétravail", "\u201cminimum\u201d became"),
    ("Meet at six on Fridays", "Meet at sic on Fridays", "\u201csix\u201d became"),
    ("Meet at 7am on Mondays", "Meet at 7pm on Mondays", "\u201c7am\u201d became \u201c7pm\u201d"),
    ("Install more kitchn equipment now", "Install more kitchen a equipment now", "\u201ckitchn\u201d became"),
    ("Moins de réunions le lundi matin", "Mois de réunions le lundi matin", "\u201cmoins\u201d became"),
    ("Plus de réunions le lundi matin", "Moins de réunions le lundi matin", "\u201cplus\u201d became"),
    ("More meetings on mondays please", "Less meetings on mondays please", "\u201cmore\u201d became"),
])
def test_a_correction_may_not_change_add_remove_or_negate_a_word(before, after, message) -> None:
    with pytest.raises(Invalid) as refused:
        check_correction(before, after, 5, 280)
    assert message in str(refused.value)


def test_a_correction_of_a_long_text_of_one_repeated_letter_is_decided_at_once() -> None:
    with pytest.raises(Invalid):  # one 10,000-letter word changed: a rewrite, said without a quadratic search
        check_correction("x" * 10_000, "x" * 9_999 + "y", 5, 10_000)
