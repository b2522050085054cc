"""POST .../proposals/similar through HTTP, and the near-duplicate index following moderation and close."""

from __future__ import annotations

from tests.conftest import create_open_round

FRENCH = "Installer des bornes de recharge pour voitures électriques"
ENGLISH = "More bike parking near the main entrance"


def url(round_id: str, path: str) -> str:
    return f"/api/v1/rounds/{round_id}/{path}"


def hints(client, round_id: str, draft: str) -> list[dict]:
    response = client.post(url(round_id, "proposals/similar"), json={"text": draft})
    assert response.status_code == 200, response.text
    return response.json()


def similar_tables(appliance) -> list[str]:
    return [row[0] for row in appliance.dbs.ballots.execute(
        "SELECT name FROM sqlite_master WHERE name LIKE 'similar%'").fetchall()]


def test_accepted_proposals_are_hinted_while_a_draft_is_typed_pending_and_refused_ones_never(api, appliance):
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin, audience_groups=["staff"])
    for author, text in (("u01", FRENCH), ("u02", ENGLISH), ("u03", "Des bornes de recharge sur le parking")):
        assert api(author).post(url(round_id, "proposals"), json={"text": text}).status_code == 201
    ids = {p["text"]: p["id"] for p in mod.get(url(round_id, "moderation")).json()}
    writer = api("u04")
    assert hints(writer, round_id, "des bornes de recharge electrique") == []  # nothing accepted yet

    assert mod.post(url(round_id, f"proposals/{ids[FRENCH]}/accept")).status_code == 200
    assert mod.post(url(round_id, f"proposals/{ids[ENGLISH]}/accept")).status_code == 200
    [hint] = hints(writer, round_id, "des bornes de recharge électrique pour les voitures")
    assert (hint["id"], hint["text"], hint["status"]) == (ids[FRENCH], FRENCH, "accepted")
    assert 0.5 < hint["score"] <= 1
    assert hints(writer, round_id, "BIKE parking near the entrance")[0]["id"] == ids[ENGLISH]
    assert hints(writer, round_id, "A canteen open on Saturdays") == []
    assert hints(writer, round_id, 'bornes" OR NEAR(x* AND (') is not None  # query syntax is only text

    corrected = "Installer des bornes de recharge pour voitures électriques."  # typography: a correction
    assert mod.post(url(round_id, f"proposals/{ids[FRENCH]}/correct"), json={"text": corrected}).status_code == 200
    assert hints(writer, round_id, "recharge pour voitures")[0]["text"] == corrected

    assert api("outsider").post(url(round_id, "proposals/similar"), json={"text": "bornes"}).status_code == 403
    assert similar_tables(appliance)
    assert admin.post(url(round_id, "close")).status_code == 200
    assert similar_tables(appliance) == []  # the index ends with the round
    response = writer.post(url(round_id, "proposals/similar"), json={"text": "bornes"})
    assert response.status_code == 409


def test_in_post_moderation_a_released_proposal_is_hinted_and_a_refused_one_no_longer(api):
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin, audience_groups=["staff"], moderation="post")
    created = api("u01").post(url(round_id, "proposals"), json={"text": ENGLISH}).json()
    assert created["status"] == "accepted"
    writer = api("u02")
    assert [h["id"] for h in hints(writer, round_id, "bike parking")] == [created["id"]]
    refused = mod.post(url(round_id, f"proposals/{created['id']}/refuse"), json={"reason": "duplicate"})
    assert refused.status_code == 200
    assert hints(writer, round_id, "bike parking") == []


def test_a_sequence_never_shows_two_proposals_whose_texts_say_the_same(api):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"], moderation="post")
    texts = [FRENCH, "Installer des bornes de recharge pour les voitures électriques"]
    texts += [f"Une salle de {topic} au rez-de-chaussée" for topic in ("sport", "sieste", "lecture", "musique",
                                                                        "réunion", "jeux", "couture", "yoga",
                                                                        "cinéma", "peinture", "danse", "poterie")]
    for i, text in enumerate(texts):
        assert api(f"u{i % 12:02d}").post(url(round_id, "proposals"), json={"text": text}).status_code == 201
    for _ in range(8):
        shown = [p["text"] for p in api("u05").get(url(round_id, "sequence")).json()["proposals"]]
        assert len(shown) == 12
        assert len([text for text in shown if "bornes de recharge" in text]) <= 1


def test_look_ups_of_similar_proposals_are_limited_per_person(api):
    round_id = create_open_round(api("admin"), audience_groups=["staff"])
    typist, other = api("u04"), api("u05")
    for n in range(60):
        hints(typist, round_id, f"More bike parking {n}")
    refused = typist.post(url(round_id, "proposals/similar"), json={"text": "More bike parking again"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "too many look-ups of similar proposals: at most 60 a minute" in refused.json()["detail"]
    assert hints(other, round_id, "More bike parking") == []  # one person's limit, not everyone's


def test_a_hint_says_whether_the_writer_has_voted_on_it_and_only_the_writer(api):
    round_id = create_open_round(api("admin"), audience_groups=["staff"], moderation="post")
    created = api("u01").post(url(round_id, "proposals"), json={"text": ENGLISH})
    assert created.status_code == 201
    draft = "More bike parking near the entrance"
    writer, other = api("u04"), api("u05")
    assert [h["voted"] for h in hints(writer, round_id, draft)] == [False]
    assert writer.post(url(round_id, "ballots"), json={"proposal": created.json()["id"], "vote": "disagree"}
                       ).status_code == 200
    assert [h["voted"] for h in hints(writer, round_id, draft)] == [True]  # agreeing from it would change that vote
    assert [h["voted"] for h in hints(other, round_id, draft)] == [False]  # another person's votes are not theirs
