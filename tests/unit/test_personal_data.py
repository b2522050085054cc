"""Personal data flagged for a moderator: e-mail addresses, phone numbers and colleagues' full names."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appliance.domain.personal_data import Flag, NameIndex, find_personal_data, fold, name_spellings

DIRECTORY = NameIndex([
    "Marie-Hélène Dupont",
    "Jean de La Fontaine",
    "O'Brien, Sean",
    "Rose Berg",
    "Pierre",  # a single word: never flagged
    "Zoë Lefèvre",
])
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def flagged(text: str, names: NameIndex | None = DIRECTORY) -> list[tuple[str, str]]:
    """(kind, text) of each flag, for tests about what is found rather than where."""
    return [(flag.kind, flag.text) for flag in find_personal_data(text, names)]


def only_flag(kind: str, text: str, span: str) -> list[Flag]:
    """The single flag expected when `span` occurs once in `text`."""
    start = text.index(span)
    return [Flag(kind, start, start + len(span), span)]


# --- E-mail addresses -------------------------------------------------------------------------------

def test_it_flags_an_email_address_in_a_french_sentence_with_its_exact_span() -> None:
    assert find_personal_data("Écrivez à marie.dupont@corp.fr pour en savoir plus.") == [
        Flag("email", 10, 30, "marie.dupont@corp.fr")]


def test_it_flags_an_address_with_subdomains_and_plus_addressing_but_not_the_final_full_stop() -> None:
    text = "Send your ideas to jane.doe+ideas@mail.hr.example.co.uk."
    assert find_personal_data(text) == [Flag("email", 19, 55, "jane.doe+ideas@mail.hr.example.co.uk")]


@pytest.mark.parametrize("address", [
    "jean [at] corp [dot] fr",
    "jean (at) corp (dot) fr",
    "jean.dupont at corp dot fr",
    "jean_dupont AT mail DOT corp DOT com",
    "jean arobase corp point fr",
    "jean [arobase] corp [point] fr",
    "jean@corp [dot] fr",
])
def test_it_flags_an_obfuscated_email_address(address: str) -> None:
    text = f"Mon adresse : {address}, merci."
    assert find_personal_data(text) == only_flag("email", text, address)


@pytest.mark.parametrize("text, address", [
    ("Contact me at jean.dupont@example.org to discuss the parking.", "jean.dupont@example.org"),
    ("Reach us at it.support@corp.example.com today.", "it.support@corp.example.com"),
])
def test_it_flags_an_address_after_a_word_that_reads_like_a_spelled_out_at(text: str, address: str) -> None:
    assert find_personal_data(text) == only_flag("email", text, address)
    assert flagged(f"Write to me at {address} or at jean.martin@corp.fr.") == [
        ("email", address), ("email", "jean.martin@corp.fr")]


@pytest.mark.parametrize("text", [
    "Take a look at this dot com bubble.",
    "We meet at noon dot the canteen.",
    "Ping @marie.dupont on the chat.",
    "Rendez-vous @ la cantine à midi.",
    "Budget 2024@5 %",
])
def test_it_does_not_flag_english_words_or_mentions_as_an_email_address(text: str) -> None:
    assert flagged(text) == []


# --- Phone numbers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [
    "06 12 34 56 78",
    "06.12.34.56.78",
    "06-12-34-56-78",
    "0612345678",
    "01\u00a023\u00a045\u00a067\u00a089",
    "+33 6 12 34 56 78",
    "+33 (0)6 12 34 56 78",
    "+33612345678",
    "0033 1 23 45 67 89",
])
def test_it_flags_a_french_phone_number_with_its_exact_span(number: str) -> None:
    text = f"Appelez-moi au {number}, merci."
    assert find_personal_data(text) == [Flag("phone", 15, 15 + len(number), number)]


@pytest.mark.parametrize("number", [
    "+44 20 7946 0958",
    "+1 (555) 123-4567",
    "+1 555 123 4567",
    "+49 30 123456",
    "+44 (0)20 7946 0958",
])
def test_it_flags_an_international_phone_number_with_its_exact_span(number: str) -> None:
    text = f"Call me on {number} tomorrow."
    assert find_personal_data(text) == [Flag("phone", 11, 11 + len(number), number)]


@pytest.mark.parametrize("number", ["(555) 123-4567", "(555)123-4567", "555-123-4567", "555.123.4567"])
def test_it_flags_a_north_american_number_written_with_its_separators(number: str) -> None:
    text = f"Call me on {number} tomorrow."
    assert find_personal_data(text) == [Flag("phone", 11, 11 + len(number), number)]


@pytest.mark.parametrize("number", ["06 12 34 56 78", "+33 1 23 45 67 89", "+1 555 123 4567", "(555) 123-4567"])
def test_it_flags_a_number_written_in_parentheses(number: str) -> None:
    text = f"Call me ({number}) please."
    assert find_personal_data(text) == only_flag("phone", text, number)


@pytest.mark.parametrize("extension", ["ext. 1234", "ext 1234", "Ext. 12345", "poste 1234", "Poste : 12345"])
def test_it_flags_an_internal_extension_written_with_its_keyword(extension: str) -> None:
    text = f"Joignable au {extension} le matin."
    assert find_personal_data(text) == only_flag("phone", text, extension)


def test_it_flags_a_number_and_its_extension_separately() -> None:
    text = "Standard : 01 23 45 67 89 poste 1234."
    assert find_personal_data(text) == [Flag("phone", 11, 25, "01 23 45 67 89"), Flag("phone", 26, 36, "poste 1234")]


@pytest.mark.parametrize("text", [
    "Objectif 2024 : moins de papier.",
    "Un budget de 1 500 € pour la cantine.",
    "Une hausse de 3,5 % des salaires.",
    "Réunion le 12/05/2024 à 14h.",
    "Réunion le 05-12-2024 10:00.",
    "Réunion le 05.12.2024 10h30.",
    "We are 10 000 employees in 12 countries.",
    "Nous sommes 10 000 salariés.",
    "Upgrade to version 3.10.12 or v1.2.3 please.",
    "Sales grew +12 345 678 € and +15 % in 2023.",
    "A plus of +10 000 000 visitors.",
    "Call 1234 for help.",
    "Créer 40 postes 2024.",
    "Room 06 on floor 12.",
    "Order number 061234567890.",
    "Part 555-123.4567 of the catalogue.",
    "Serial 100-200-3000-4000.",
    "From 2019-2020 to 2021-2022.",
])
def test_it_does_not_flag_years_amounts_dates_counts_or_versions_as_phone_numbers(text: str) -> None:
    assert flagged(text) == []


def test_it_does_not_flag_a_phone_shaped_tail_of_a_longer_run_of_digits() -> None:
    assert flagged("Référence 1 06 12 34 56 78.") == []
    assert flagged("Référence 06 12 34 56 78 90.") == []


# --- Colleagues' names ------------------------------------------------------------------------------

def test_it_flags_a_colleagues_full_name_with_its_exact_span() -> None:
    assert find_personal_data("Merci à Marie-Hélène Dupont pour son aide.", DIRECTORY) == [
        Flag("name", 8, 27, "Marie-Hélène Dupont")]


@pytest.mark.parametrize("name", [
    "Marie-Hélène Dupont",
    "marie-helene dupont",
    "MARIE HÉLÈNE DUPONT",
    "Marie Helene Dupont",
    "Marie-He\u0301le\u0300ne Dupont",  # decomposed accents
    "Dupont Marie-Hélène",
    "DUPONT Marie Helene",
    "Dupont, Marie-Hélène",
    "Zoe Lefevre",
    "LEFÈVRE Zoë",
])
def test_it_flags_a_name_whatever_its_accents_case_hyphens_or_order(name: str) -> None:
    text = f"I talked to {name} yesterday."
    assert find_personal_data(text, DIRECTORY) == only_flag("name", text, name)


@pytest.mark.parametrize("name", ["Sean O'Brien", "Sean O’Brien", "sean obrien", "O'Brien Sean", "O'Brien, Sean"])
def test_it_flags_a_name_from_a_last_comma_first_directory_entry(name: str) -> None:
    text = f"Ask {name} about it."
    assert find_personal_data(text, DIRECTORY) == only_flag("name", text, name)


@pytest.mark.parametrize("name", ["Jean de La Fontaine", "jean de la fontaine", "La Fontaine Jean",
                                  "La Fontaine, Jean de", "de La Fontaine Jean"])
def test_it_flags_a_name_with_a_particle_in_either_order(name: str) -> None:
    text = f"Une idée signée {name} pour l'atelier."
    assert find_personal_data(text, DIRECTORY) == only_flag("name", text, name)


@pytest.mark.parametrize("text", [
    "Marie-Hélène a proposé un atelier.",
    "Dupont a raison.",
    "Sean is right.",
    "La Fontaine du parc est en panne.",
    "Une rose rouge pour la fête.",
    "Pierre Dupont aime la pierre.",
])
def test_it_does_not_flag_a_first_or_last_name_alone(text: str) -> None:
    assert flagged(text) == []


def test_it_ignores_single_word_names_in_the_directory() -> None:
    names = NameIndex(["Pierre", "Rose", "Jean-Pierre"])
    assert flagged("Pierre Rose et Jean-Pierre", names) == []
    assert name_spellings("Pierre") == set()


@pytest.mark.parametrize("text", [
    "Rosenberg wrote the report.",
    "Roseberg wrote the report.",
    "Rose Bergman wrote the report.",
    "Primrose Berg wrote the report.",
    "Rose Berg2 wrote the report.",
    "See rose_berg in the wiki.",
    "See Rose.Berg in the wiki.",
])
def test_it_matches_whole_words_only(text: str) -> None:
    assert flagged(text) == []


def test_it_flags_the_name_next_to_those_look_alikes() -> None:
    text = "Rosenberg and Rose Berg met."
    assert find_personal_data(text, DIRECTORY) == [Flag("name", 14, 23, "Rose Berg")]


def test_it_accepts_a_comma_only_between_a_last_and_a_first_name() -> None:
    assert flagged("Berg, Rose is right.") == [("name", "Berg, Rose")]
    assert flagged("For Rose, Berg is right.") == []


def test_it_flags_the_longest_name_starting_at_a_word() -> None:
    names = NameIndex(["Jean Pierre", "Jean Pierre Martin"])
    assert find_personal_data("Voir Jean Pierre Martin.", names) == [Flag("name", 5, 23, "Jean Pierre Martin")]


def test_it_flags_no_name_without_a_directory() -> None:
    assert flagged("Merci à Marie-Hélène Dupont.", None) == []


def test_it_folds_accents_case_and_compatibility_characters() -> None:
    assert fold("Marie-HÉLÈNE") == "marie-helene"
    assert fold("Stra\u00dfe \ufb01n") == "strasse fin"
    assert fold("He\u0301le\u0300ne") == "helene"


# --- Several kinds together ---------------------------------------------------------------------------

def test_it_returns_flags_of_every_kind_sorted_by_start() -> None:
    text = "Rose Berg (rose.berg@corp.fr, 06 12 34 56 78) backs this."
    assert find_personal_data(text, DIRECTORY) == [
        Flag("name", 0, 9, "Rose Berg"),
        Flag("email", 11, 28, "rose.berg@corp.fr"),
        Flag("phone", 30, 44, "06 12 34 56 78"),
    ]


def test_it_keeps_the_email_address_when_a_name_is_inside_it() -> None:
    text = "Écrire à marie-helene-dupont [at] corp [dot] fr svp."
    assert find_personal_data(text, DIRECTORY) == only_flag("email", text, "marie-helene-dupont [at] corp [dot] fr")


def test_it_keeps_the_longer_of_two_overlapping_names() -> None:
    names = NameIndex(["Marie Dupont", "Dupont Jean-Luc"])
    assert names.find("Marie Dupont Jean-Luc") == [
        Flag("name", 0, 12, "Marie Dupont"), Flag("name", 6, 21, "Dupont Jean-Luc")]
    assert find_personal_data("Marie Dupont Jean-Luc", names) == [Flag("name", 6, 21, "Dupont Jean-Luc")]


# --- Properties ---------------------------------------------------------------------------------------

INTERESTING = st.sampled_from(list("0123456789 .-+()@,[]'’\u00a0\u0301éÉeEaAtTdDoOrRsS") + [
    "06 12 34 56 78", "+33 ", "ext. ", "poste ", " at ", " dot ", "[at]", "Rose", "Berg", "Marie-Hélène", "Dupont",
    "corp.fr", "\u202f", "€", "%",
])


def check_flags(text: str, flags: list[Flag]) -> None:
    assert all(flag.kind in ("email", "phone", "name") for flag in flags)
    assert all(0 <= flag.start < flag.end <= len(text) and flag.text == text[flag.start:flag.end] for flag in flags)
    assert all(before.end <= after.start for before, after in zip(flags, flags[1:]))


@PROPERTY
@given(st.text(max_size=400))
@example("Rose Berg rose.berg@corp.fr +33 (0)6 12 34 56 78 poste 1234")
def test_it_never_raises_and_returns_sorted_non_overlapping_spans_of_the_text(text: str) -> None:
    check_flags(text, find_personal_data(text, DIRECTORY))


@PROPERTY
@given(st.lists(INTERESTING, max_size=60).map("".join))
def test_it_returns_sorted_non_overlapping_spans_on_text_dense_in_candidates(text: str) -> None:
    check_flags(text, find_personal_data(text, DIRECTORY))


@PROPERTY
@given(names=st.lists(st.text(max_size=30), max_size=20), text=st.text(max_size=200))
def test_it_builds_an_index_from_any_directory_names(names: list[str], text: str) -> None:
    index = NameIndex(names)
    check_flags(text, find_personal_data(text, index))
    for name in names:
        check_flags(name, find_personal_data(name, index))


@pytest.mark.parametrize("name", ["M. Dupont", "Mme Dupont", "Madame Dupont", "monsieur DUPONT", "Mr Berg", "Dr. Berg",
                                  "M.Dupont", "M. de La Fontaine", "Mme La Fontaine", "R. Berg", "S. O'Brien"])
def test_it_flags_a_last_name_after_a_title_or_an_initial(name: str) -> None:
    text = f"Le problème, c'est {name} du service RH."
    assert find_personal_data(text, DIRECTORY) == only_flag("name", text, name)


@pytest.mark.parametrize("text", [
    "M Dupont a raison.",  # "m" is a title only with its full stop
    "Je parle à Dupont demain.",  # "à" is no initial: it needs the full stop
    "Le plan B Berg est prêt.",
    "Voir Rose.Berg dans le wiki.",
    "Mme. est partie, Dupont reste.",
    "We miss Berg already.",
])
def test_it_does_not_take_a_word_before_a_last_name_for_a_title_or_an_initial(text: str) -> None:
    assert flagged(text) == []
