from tests.conftest import create_open_round

def test_explore(api):
    admin = api("admin")
    rid = create_open_round(admin, audience_groups=["staff"])
    u = api("u00")
    for r in [
        u.post(f"/api/v1/rounds/{rid}/proposals", content=b"not json", headers={"content-type": "application/json"}),
        u.post(f"/api/v1/rounds/{rid}/proposals", content=b"not json"),
        u.post(f"/api/v1/rounds/{rid}/proposals", json={"text": 42}),
        u.post(f"/api/v1/rounds/{rid}/proposals", json={"text": "x" * 20, "extra": 1}),
        u.post(f"/api/v1/rounds/{rid}/proposals", json=["a"]),
        u.post(f"/api/v1/rounds/{rid}/proposals"),
        u.post(f"/api/v1/rounds/{rid}/proposals", json={"text": "  abcdefghijk \x00 "}),
        u.post(f"/api/v1/rounds/{rid}/proposals", json={"text": "x" * 20}, headers={"x-csrftoken": "bad"}),
        admin.post("/api/v1/rounds", json={"title": "t", "question": "q", "k": 4}),
        admin.post("/api/v1/rounds", json={"title": "t", "question": "q", "moderation": "none"}),
        admin.post("/api/v1/rounds", json={"title": "t", "question": "q", "opens_at": "2030-01-02T00:00:00Z", "closes_at": "2030-01-01T00:00:00Z"}),
        admin.post("/api/v1/rounds", json={"title": "t", "question": "q", "dimensions": ["site", "site"]}),
        api(None).get("/api/v1/me"),
        api(None).delete("/api/v1/session"),
        api(None).post(f"/api/v1/rounds/{rid}/ballots", json={"proposal": "x", "vote": "agree"}),
        api(None).post("/api/v1/session", json={"username": "nobody", "password": "x"}),
        api(None).post("/api/v1/session", json={"username": "u00", "password": ""}),
        api(None).get("/api/v1/nowhere"),
        u.get("/api/v1/nowhere"),
        u.put(f"/api/v1/rounds/{rid}"),
    ]:
        print(r.status_code, r.headers.get("content-type"), r.text)
    c = api(None)
    del c.client.headers["x-csrftoken"]
    r = c.post("/api/v1/session", json={"username": "u00", "password": "correct-horse-battery"})
    print(r.status_code, r.headers.get("content-type"), r.text)
    assert 0
