"""Pages in English and French: Accept-Language, the switch's cookie, and a complete French catalogue."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from appliance.i18n import LOCALES_DIR
from appliance.web.i18n import choose_language, parse_accept_language
from tests.conftest import create_open_round

ROOT = Path(__file__).resolve().parents[2]


def test_the_browser_language_is_chosen_when_no_switch_was_used(pages):
    browser = pages(None)
    french = browser.get("/sign-in", headers={"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8"})
    assert '<html lang="fr">' in french.text and "Se connecter" in french.text
    assert french.headers["content-language"] == "fr"
    english = browser.get("/sign-in", headers={"Accept-Language": "de, en;q=0.5"})
    assert '<html lang="en">' in english.text and "Sign in" in english.text


def test_the_language_switch_is_remembered_and_goes_back_to_the_page(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    browser = pages("u01")
    switched = browser.submit("/language", {"lang": "fr", "next": f"/rounds/{round_id}"})
    assert switched.status_code == 303 and switched.headers["location"] == f"/rounds/{round_id}"
    page = browser.get(f"/rounds/{round_id}", headers={"Accept-Language": "en"})
    assert "Faire une proposition" in page.text and "D’accord" in page.text
    assert "0 votées, 0 à voter" in page.text
    browser.submit("/language", {"lang": "xx", "next": "/rounds"})  # an unknown language changes nothing
    assert "Mes consultations" in browser.get("/rounds").text


def test_the_switch_never_sends_anyone_to_another_site(pages):
    response = pages(None).submit("/language", {"lang": "fr", "next": "https://evil.example/"})
    assert response.headers["location"] == "/rounds"


def test_accept_language_is_read_by_quality():
    assert parse_accept_language("en;q=0.5, fr-FR, *;q=0.1, de;q=0") == ["fr_FR", "en"]
    assert choose_language(None, "en;q=0.5, fr") == "fr"
    assert choose_language("en", "fr") == "en"
    assert choose_language(None, "") == "en" and choose_language("xx", "es") == "en"


def test_every_message_of_the_pages_is_translated_into_french():
    extracted = {
        message for _, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map=[("appliance/web/pages/**.py", "python"), ("appliance/web/i18n.py", "python"),
                                   ("appliance/web/api/digests.py", "python"),
                                   ("appliance/domain/proposals.py", "python"),
                                   ("appliance/domain/rounds.py", "python"), ("appliance/domain/digests.py", "python"),
                                   ("appliance/domain/disclosure.py", "python"), ("appliance/i18n.py", "python"),
                                   ("appliance/domain/votes.py", "python"),
                                   ("appliance/services/participation.py", "python"),
                                   ("appliance/services/rounds.py", "python"),
                                   ("appliance/services/notifications.py", "python"),
                                   ("appliance/web/pages/admin.py", "python"),
                                   ("appliance/templates/**.html", "jinja2")],
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "Invalid": None,
                      "Conflict": None, "Forbidden": None, "NotFound": None, "_within_limit": (4,)})
    }
    with (LOCALES_DIR / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="fr")
    translated = {message.id if isinstance(message.id, str) else tuple(message.id)
                  for message in catalog if message.id and message.string and all(message.string)
                  and not message.fuzzy}
    assert len(extracted) > 100
    missing = {m if isinstance(m, str) else tuple(m) for m in extracted} - translated
    assert not missing, f"untranslated (see README, Web interface): {sorted(map(str, missing))}"
    problems = [(message.id, errors) for message, errors in catalog.check()]
    assert not problems  # placeholders match in every translation


def test_french_punctuation_never_starts_a_line_of_its_own():
    """French puts a space before : ; ? ! and inside « »; an ordinary one lets a phone wrap the sign alone."""
    with (LOCALES_DIR / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="fr")
    texts = [text for message in catalog if message.id
             for text in (message.string if isinstance(message.string, tuple) else (message.string,))]
    breakable = [text for text in texts if re.search(r"[ \n][:;?!»]|«[ \n]", text)]
    assert not breakable, f"use a no-break space (U+00A0 before :, U+202F before ; ? !): {breakable}"
    assert any("\u00a0:" in text for text in texts) and any("\u202f?" in text for text in texts)


def test_a_label_quoted_in_a_sentence_is_translated_as_the_label_itself():
    """"I like it" is « J’aime » on the chip: a sentence explaining it must not call it « J’adore »."""
    from appliance.web.pages.labels import QUALIFICATIONS, VOTES, ZONES

    with (LOCALES_DIR / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="fr")
    labels = {label: catalog[label].string for label in [*QUALIFICATIONS.values(), *VOTES.values(), *ZONES.values()]}
    quoting = [m for m in catalog if isinstance(m.id, str) and m.string and "\u201c" in m.id]
    checked = 0
    for message in quoting:
        for label in re.findall(r"\u201c([^\u201d%]+)\u201d", message.id):
            if label in labels:
                assert f"\u00ab\u00a0{labels[label]}\u00a0\u00bb" in message.string, (label, message.string)
                checked += 1
    assert checked >= 6  # the results' explanation of the score names six


def test_dates_and_numbers_are_written_the_language_s_way(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], closes_at="2099-01-05T14:30:00Z")
    browser = pages("u01")  # server.time_zone: Europe/Paris, an hour ahead of UTC in January
    assert "Closes Jan 5, 2099, 3:30\u202fPM CET" in browser.get(f"/rounds/{round_id}").text
    browser.submit("/language", {"lang": "fr", "next": "/rounds"})
    assert "Se termine le 5 janv. 2099, 15:30 CET" in browser.get(f"/rounds/{round_id}").text


def test_dates_follow_the_organisation_s_time_zone_and_forms_are_read_in_it(pages, api, monkeypatch):
    from appliance.settings import SettingsError, load_settings
    round_id = create_open_round(api("admin"), audience_groups=["staff"], closes_at="2099-07-05T14:30:00Z")
    assert "4:30\u202fPM CEST" in pages("u01").get(f"/rounds/{round_id}").text  # summer time
    created = pages("admin").submit("/admin/rounds/new", {
        "title": "Canteen", "question": "How could the canteen serve us better?", "audience_groups": "staff",
        "k": "5", "moderation": "pre", "closes_at": "2099-07-05T18:00"})
    new_id = created.headers["location"].split("?")[0].rsplit("/", 1)[1]
    assert api("admin").get(f"/api/v1/rounds/{new_id}").json()["closes_at"].startswith("2099-07-05T16:00:00")
    monkeypatch.setenv("APPLIANCE_SERVER__TIME_ZONE", "Mars/Olympus")
    try:
        load_settings()
    except SettingsError as error:
        assert "server.time_zone" in str(error) and "Mars/Olympus" in str(error)
    else:
        raise AssertionError("an unknown time zone was accepted")


def test_an_error_an_employee_meets_is_said_in_their_language(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    browser = pages("u01")
    browser.submit("/language", {"lang": "fr", "next": "/rounds"})
    refused = browser.submit(f"/rounds/{round_id}/proposals", {"text": "Trop court"})
    assert refused.status_code == 400
    assert "Proposition trop courte\u00a0: 10 caractères, 12 au moins" in refused.text
    api_answer = api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Trop court"})
    assert api_answer.json()["detail"] == "proposal is too short: 10 characters, at least 12 needed"  # the API: English


def test_an_error_an_admin_meets_is_said_in_their_language(api, pages):
    admin = pages("admin")
    admin.submit("/language", {"lang": "fr", "next": "/admin/rounds"})
    refused = admin.submit("/admin/rounds/new", {
        "title": "Canteen", "question": "How could the canteen serve us better?", "audience_groups": "staff",
        "k": "5", "moderation": "pre", "opens_at": "2099-01-10T09:00", "closes_at": "2099-01-05T18:00"})
    assert refused.status_code == 400 and 'value="Canteen"' in refused.text
    assert "La date de clôture doit être postérieure à la date d’ouverture" in refused.text
    assert "closes_at must be after opens_at" not in refused.text
    lifecycle = admin.submit("/admin/rounds/nowhere/close")
    assert lifecycle.status_code == 404 and "Aucune consultation &#39;nowhere&#39;" in lifecycle.text
    opened = create_open_round(api("admin"), audience_groups=["staff"])
    again = admin.submit(f"/admin/rounds/{opened}/open")
    assert again.status_code == 409  # the statuses it names, as the pages name them
    assert ("Action «\u00a0ouvrir\u00a0» impossible\u00a0: la consultation est à l’état «\u00a0Ouverte\u00a0» (il faut"
            " l’état «\u00a0Brouillon\u00a0»)") in again.text
    api_answer = api("admin").post("/api/v1/rounds", json={
        "title": "Canteen", "question": "How could the canteen serve us better?",
        "opens_at": "2099-01-10T08:00:00Z", "closes_at": "2099-01-05T17:00:00Z"})
    assert api_answer.json()["detail"] == "closes_at must be after opens_at"  # the API: English
    assert api("admin").post("/api/v1/rounds/nowhere/close").json()["detail"] == "no round 'nowhere'"


def test_a_refused_form_names_its_fields_as_the_form_does_in_french(pages):
    admin = pages("admin")
    admin.submit("/language", {"lang": "fr", "next": "/admin/rounds/new"})
    refused = admin.submit("/admin/rounds/new", {"title": "Cantine", "question": "Comment mieux nous servir ?",
                                                 "closes_at": "2020-01-01T12:00"})
    assert refused.status_code == 400
    alert = refused.text.split('role="alert">', 1)[1].split("</p>", 1)[0]
    assert alert == "La date de clôture est déjà passée\u00a0: indiquez une date à venir"  # not "closes_at"


def test_an_action_address_opened_as_a_link_is_explained_in_the_page_s_language(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    admin = pages("admin")
    english = admin.get(f"/admin/rounds/{round_id}/close", headers={"accept": "text/html"})
    assert english.status_code == 405 and "Go back to the page and use its button." in english.text
    admin.submit("/language", {"lang": "fr", "next": "/rounds"})
    french = admin.get(f"/admin/rounds/{round_id}/close", headers={"accept": "text/html"})
    assert "Revenez à la page et utilisez son bouton." in french.text and "Method Not Allowed" not in french.text


def test_a_page_for_another_role_says_who_has_it(api, pages):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    admin = pages("admin")  # an admin, not a moderator
    desk = admin.get(f"/rounds/{round_id}/moderation")
    assert desk.status_code == 403 and "This page is for moderators: the members of moderators" in desk.text
    employee = pages("u01").get("/admin/rounds")
    assert employee.status_code == 403 and "This page is for administrators: the members of admins" in employee.text
    assert "needs the" not in desk.text + employee.text  # not the API's words
