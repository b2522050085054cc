"""A full disk under the data directory: a clear 503 and a line for the operator, readiness says it, nothing lost."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import create_open_round
from tests.integration.test_ops_cli import fill, resize

SIZE = 128 << 20


@contextmanager
def small_disk_at(directory: Path) -> Iterator[Path]:
    """A tmpfs of its own mounted at directory (the tests run as root, see .ci/run), unmounted afterwards."""
    directory.mkdir(mode=0o700)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(directory)],
                             capture_output=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (run the tests as root): {mounted.stderr.decode()}"
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


@pytest.fixture
def data_on_a_small_disk(tmp_path: Path) -> Iterator[Path]:
    """Where the appliance's data directory will be, before the appliance is made."""
    with small_disk_at(tmp_path / "data") as data:
        yield data


def test_a_full_disk_refuses_writes_clearly_and_readiness_says_so(data_on_a_small_disk, api, pages, caplog):
    admin = api("admin")
    round_id = create_open_round(admin, audience_groups=["staff"], moderation="post")
    proposal = api("u01").post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Publish the menu ahead"})
    voter, browser = api("u02"), pages("u03")
    ready = api(None).get("/readyz").json()
    assert ready["status"] == "ready" and ready["disk"].endswith("MiB free")

    resize(data_on_a_small_disk, fill(data_on_a_small_disk))  # not one page left
    with caplog.at_level(logging.ERROR, logger="appliance"):
        vote = voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal.json()["id"],
                                                                      "vote": "agree"})
        page = browser.submit(f"/rounds/{round_id}/ballots", {"proposal": proposal.json()["id"], "choice": "agree"})
    assert vote.status_code == 503 and "its disk is full" in vote.json()["detail"]
    assert vote.headers["retry-after"] == "60"
    assert page.status_code == 503 and "its disk is full, and its operator is told" in page.text
    assert any("disk full" in r.getMessage() and "storage.data_dir" in r.getMessage() for r in caplog.records)
    ready = api(None).get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"  # reading still works
    assert ready.json()["disk"].startswith("almost full: 0 MiB free")

    resize(data_on_a_small_disk, SIZE)
    assert voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal.json()["id"],
                                                                  "vote": "agree"}).status_code == 200
    assert voter.get(f"/api/v1/rounds/{round_id}/sequence").json()["voted"] == 1
    assert api(None).get("/readyz").json()["status"] == "ready"


@pytest.fixture
def keys_on_a_small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk_at(tmp_path / "keys") as keys:
        yield keys


@pytest.mark.parametrize("settings_overrides", [{"storage": {"data_dir": "data", "keys_dir": "keys"}}])
def test_a_round_whose_key_could_not_be_written_opens_once_there_is_room(keys_on_a_small_disk, api, caplog,
                                                                       settings_overrides):
    admin = api("admin")
    created = admin.post("/api/v1/rounds", json={"title": "Canteen", "question": "How could the canteen serve us?",
                                                 "audience_groups": ["staff"]})
    round_id = created.json()["id"]
    (keys_on_a_small_disk / "filler").write_bytes(b"x" * 65536)
    resize(keys_on_a_small_disk, fill(keys_on_a_small_disk))  # the keys' disk is full, the data's is not
    with caplog.at_level(logging.ERROR, logger="appliance"):
        refused = admin.post(f"/api/v1/rounds/{round_id}/open")
    assert refused.status_code == 503 and "its disk is full" in refused.json()["detail"]
    assert any(str(keys_on_a_small_disk) in r.getMessage() for r in caplog.records)  # the disk that is full
    assert list(keys_on_a_small_disk.glob("round-*.key")) == []  # no empty key left to refuse the next attempt
    (keys_on_a_small_disk / "filler").unlink()
    assert admin.post(f"/api/v1/rounds/{round_id}/open").status_code == 200
    assert admin.get(f"/api/v1/rounds/{round_id}").json()["status"] == "open"
