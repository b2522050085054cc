"""The whole story through HTTP: launch, propose, moderate, vote, close, publish, read results."""

from __future__ import annotations

from tests.conftest import create_open_round


def test_a_round_goes_from_launch_to_published_results(api):
    admin, mod = api("admin"), api("mod")
    round_id = create_open_round(admin, dimensions=["department"], audience_groups=["staff"])
    voters = [api(f"u{i:02d}") for i in range(12)]

    texts = ["Hold fewer and shorter meetings", "Publish the cafeteria menu a week ahead",
             "Let teams choose their own tools"]
    for voter, text in zip(voters, texts):
        response = voter.post(f"/api/v1/rounds/{round_id}/proposals", json={"text": text})
        assert response.status_code == 201
        assert response.json()["status"] == "pending"

    queue = mod.get(f"/api/v1/rounds/{round_id}/moderation").json()
    assert sorted(p["text"] for p in queue) == sorted(texts)
    assert all(set(p) == {"id", "text", "status", "held_until", "flags", "similar"} for p in queue)  # never an author
    by_text = {p["text"]: p["id"] for p in queue}
    for text in texts[:2]:
        assert mod.post(f"/api/v1/rounds/{round_id}/proposals/{by_text[text]}/accept").json()["status"] == "accepted"
    refused = mod.post(f"/api/v1/rounds/{round_id}/proposals/{by_text[texts[2]]}/refuse",
                       json={"reason": "off_topic", "note": "about tools, not daily work"})
    assert refused.json()["status"] == "refused"

    accepted = voters[5].get(f"/api/v1/rounds/{round_id}/proposals").json()
    assert sorted(p["text"] for p in accepted) == sorted(texts[:2])
    meetings = by_text[texts[0]]
    menu = by_text[texts[1]]
    for i, voter in enumerate(voters):
        vote = "agree" if i < 9 else "disagree"
        assert voter.post(f"/api/v1/rounds/{round_id}/ballots",
                          json={"proposal": meetings, "vote": vote}).json() == {"recorded": True}
        if i < 4:
            voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": menu, "vote": "neutral"})
    # a changed vote replaces the earlier one
    voters[11].post(f"/api/v1/rounds/{round_id}/ballots",
                    json={"proposal": meetings, "vote": "agree", "qualification": "like_it"})

    mine = voters[2].get(f"/api/v1/rounds/{round_id}/proposals/mine").json()
    assert mine == [{"id": by_text[texts[2]], "text": texts[2], "status": "refused",
                     "refusal_reason": "off_topic", "refusal_note": "about tools, not daily work", "published": False}]

    assert admin.post(f"/api/v1/rounds/{round_id}/close").json()["status"] == "closed"
    results = admin.get(f"/api/v1/rounds/{round_id}/results").json()
    assert results["shown"] and results["voters"] == 12
    first, second = results["proposals"]
    assert first["text"] == texts[0] and first["rank"] == 1 and first["voters"] == 12
    assert first["zone"] == "consensus"
    assert first["rates"]["agree"]["value"] == round((10 + 0.33) / 13, 4)
    assert second["text"] == texts[1] and second["rank"] is None and second["rates"] is None
    assert second["note"] == "not enough responses"

    assert voters[0].get(f"/api/v1/rounds/{round_id}/results").status_code == 403
    assert admin.post(f"/api/v1/rounds/{round_id}/publish").json()["status"] == "published"
    assert voters[0].get(f"/api/v1/rounds/{round_id}/results").json() == results | {"status": "published"}
    csv_text = voters[0].get(f"/api/v1/rounds/{round_id}/results.csv").text
    assert csv_text.splitlines()[1].startswith(f"1,{texts[0]},,all,12,consensus,")
