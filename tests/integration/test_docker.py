"""The real image: built, run on a volume, used through HTTP, stopped with SIGTERM, run again on the same volume.

The daemon and the offline base image come from tests/services/docker.py; the
build is cached by the daemon, so only the first run builds everything. One
volume and one container at a time serve the whole module, in file order.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services.docker import BASE_IMAGE, DockerDaemon, DockerUnavailable

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "consultation-appliance:test"
LABEL = "consultation-appliance-test"
ADMIN_PASSWORD = "first-admin-password-1"
PEOPLE_PASSWORD = "staff-password-2024"
STAFF = ("ana", "ben", "chloe", "david", "emma")
ADDED_SIZE_LIMIT = 130 * 10**6  # over the base: python:3.12-slim (about 120 MB) + this stays under 250 MB
STOP_LIMIT_SECONDS = 10.0

METRICS_TOKEN = "scrape-token-0123456789"
PROPOSAL_QUOTA = 7  # in the configuration file mounted at /etc/appliance/appliance.toml (the default is 5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def local_certificate_authorities() -> str:
    """The CAs this machine added itself (a TLS-inspecting proxy's), for pip inside the build."""
    return "\n".join(p.read_text() for p in sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt")))


@pytest.fixture(scope="module")
def docker() -> Iterator[DockerDaemon]:
    try:
        daemon = DockerDaemon()
        daemon.start()
        daemon.ensure_base_image()
    except DockerUnavailable as error:  # `./install.sh --dev`, as root, installs and can start it
        pytest.fail(f"Docker is needed for these tests: {error}")
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def image(docker: DockerDaemon) -> str:
    if docker.started_here:  # another test run may be using a daemon that was running already
        docker.prune(LABEL)
    docker.docker("build", "--quiet", "-f", str(ROOT / "docker" / "Dockerfile"), "--network", "host",
                  "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
                  "--build-arg", f"EXTRA_CA_CERTS={local_certificate_authorities()}",
                  "-t", IMAGE, str(ROOT), timeout=1800)
    return IMAGE


class Appliance:
    """One container of the image at a time, on one volume, answering on 127.0.0.1:port."""

    def __init__(self, docker: DockerDaemon, image: str, secrets: Path) -> None:
        self.docker, self.image, self.secrets = docker, image, secrets
        self.volume = f"appliance-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.name = ""

    def run(self) -> None:
        """Start a new container on the volume (the one before must be gone)."""
        self.name = f"{self.volume}-{uuid.uuid4().hex[:4]}"
        self.docker.docker("volume", "create", "--label", LABEL, self.volume)
        self.docker.docker(
            "run", "-d", "--name", self.name, "--label", LABEL, "--network", "host", "-v", f"{self.volume}:/data",
            "-v", f"{self.secrets}:/run/secrets:ro",
            "-v", f"{self.secrets / 'appliance.toml'}:/etc/appliance/appliance.toml:ro",
            "-e", "APPLIANCE_ADMIN_PASSWORD_FILE=/run/secrets/admin_password",
            "-e", "APPLIANCE_SERVER__HOST=127.0.0.1", "-e", f"APPLIANCE_SERVER__PORT={self.port}",
            "-e", "APPLIANCE_ROUNDS__RELEASE_INTERVAL_SECONDS=0",
            "-e", f"APPLIANCE_SERVER__METRICS_TOKEN={METRICS_TOKEN}",
            "--health-interval", "1s", "--health-start-period", "30s", self.image)

    def health(self) -> str:
        return self.docker.docker("inspect", "--format", "{{.State.Health.Status}}", self.name).stdout.strip()

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while (status := self.health()) != "healthy":
            assert status in ("starting", "unhealthy") and time.monotonic() < deadline, \
                f"health {status}; logs:\n{self.logs()}"
            time.sleep(0.5)

    def logs(self) -> str:
        result = self.docker.docker("logs", self.name)
        return result.stdout + result.stderr

    def exec(self, *command: str, input: str | None = None, check: bool = True):
        return self.docker.docker("exec", "-i", self.name, *command, input=input, check=check, timeout=120)

    def stop(self) -> tuple[float, int]:
        """docker stop (SIGTERM, then SIGKILL after 10 s): how long it took, and the exit code."""
        started = time.monotonic()
        self.docker.docker("stop", "--time", "15", self.name, timeout=60)
        took = time.monotonic() - started
        code = int(self.docker.docker("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout)
        self.docker.docker("rm", self.name)
        return took, code

    def remove(self) -> None:
        self.docker.docker("rm", "-f", self.name, check=False)
        self.docker.docker("volume", "rm", "-f", self.volume, check=False)

    def client(self, username: str, password: str) -> httpx.Client:
        """An HTTP client signed in as username, with its CSRF header."""
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        client.get("/healthz")
        client.headers["x-csrftoken"] = client.cookies.get("csrftoken", "")
        response = client.post("/api/v1/session", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return client


@pytest.fixture(scope="module")
def appliance(docker: DockerDaemon, image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "admin_password").write_text(ADMIN_PASSWORD + "\n")
    secrets.chmod(0o755)
    (secrets / "admin_password").chmod(0o644)  # the container's user is not this machine's
    (secrets / "appliance.toml").write_text(f"[rounds]\nproposal_quota = {PROPOSAL_QUOTA}\n")
    (secrets / "appliance.toml").chmod(0o644)
    container = Appliance(docker, image, secrets)
    container.run()
    yield container
    container.remove()


@pytest.fixture(scope="module")
def state() -> dict[str, object]:
    """What one test of the module leaves for the next."""
    return {}


def test_the_image_adds_at_most_130_mb_to_its_base(docker: DockerDaemon, image: str) -> None:
    sizes = [int(docker.docker("image", "inspect", "--format", "{{.Size}}", name).stdout) for name in (image, BASE_IMAGE)]
    added = sizes[0] - sizes[1]
    print(f"image {sizes[0] / 1e6:.0f} MB, of which {added / 1e6:.0f} MB over the base image")
    assert added <= ADDED_SIZE_LIMIT


def test_an_empty_volume_gets_the_admin_of_the_password_file_and_turns_healthy(appliance: Appliance) -> None:
    appliance.wait_healthy()
    logs = appliance.logs()
    entries = [json.loads(line) for line in logs.splitlines() if line.strip()]  # every line is JSON
    assert any("first admin 'admin' created" in e["message"] for e in entries)
    assert ADMIN_PASSWORD not in logs
    assert appliance.exec("id", "-u").stdout.strip() == "10001"
    appliance.client("admin", ADMIN_PASSWORD).close()


def test_a_round_opens_and_takes_proposals_and_votes(appliance: Appliance, state: dict) -> None:
    script = "; ".join(f"printf '%s\\n' '{PEOPLE_PASSWORD}' | appliance user add {name} --group staff"
                       f" --attribute department=D{i % 2} --password-stdin" for i, name in enumerate(STAFF))
    appliance.exec("sh", "-ec", script)
    admin = appliance.client("admin", ADMIN_PASSWORD)
    created = admin.post("/api/v1/rounds", json={"title": "Day-to-day work", "moderation": "post",
                                                 "question": "How could we make our day-to-day work easier?"})
    assert created.status_code == 201, created.text
    round_id = created.json()["id"]
    assert admin.post(f"/api/v1/rounds/{round_id}/open").json()["status"] == "open"
    voters = [appliance.client(name, PEOPLE_PASSWORD) for name in STAFF]
    proposal = voters[0].post(f"/api/v1/rounds/{round_id}/proposals", json={"text": "Hold fewer meetings"})
    assert proposal.status_code == 201, proposal.text
    for voter in voters[:3]:
        vote = voter.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": proposal.json()["id"], "vote": "agree"})
        assert vote.status_code == 200, vote.text
    state.update(round_id=round_id, proposal=proposal.json()["id"])
    scraped = admin.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert "appliance_votes_cast_total 3" in scraped.text


def test_sigterm_stops_it_within_10_seconds(appliance: Appliance) -> None:
    took, code = appliance.stop()
    assert code == 0 and took < STOP_LIMIT_SECONDS, (took, code)


def test_a_new_container_on_the_same_volume_finds_the_open_round_and_its_key(appliance: Appliance,
                                                                             state: dict) -> None:
    appliance.run()
    appliance.wait_healthy()
    round_id = state["round_id"]
    admin = appliance.client("admin", ADMIN_PASSWORD)
    assert admin.get(f"/api/v1/rounds/{round_id}").json()["status"] == "open"
    assert not any("first admin" in line for line in appliance.logs().splitlines())  # made once only
    for name in STAFF[3:]:
        voter = appliance.client(name, PEOPLE_PASSWORD)
        proposals = voter.get(f"/api/v1/rounds/{round_id}/proposals").json()
        assert [p["id"] for p in proposals] == [state["proposal"]]
        assert voter.post(f"/api/v1/rounds/{round_id}/ballots",
                          json={"proposal": state["proposal"], "vote": "agree"}).status_code == 200
    admin.post(f"/api/v1/rounds/{round_id}/ballots", json={"proposal": state["proposal"], "vote": "disagree"})
    assert admin.post(f"/api/v1/rounds/{round_id}/close").json()["status"] == "closed"
    results = admin.get(f"/api/v1/rounds/{round_id}/results").json()
    assert results["shown"] and results["voters"] == 6


def test_doctor_and_backup_work_inside_the_running_container(appliance: Appliance) -> None:
    doctor = appliance.exec("appliance", "doctor", check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "ok    configuration: /etc/appliance/appliance.toml" in doctor.stdout
    assert "ok    identity.db: integrity ok" in doctor.stdout
    assert "warn  storage.keys_dir: /data/keys is inside the data directory" in doctor.stdout
    backup = appliance.exec("appliance", "backup", "/data/backups/first")
    assert "backup written to /data/backups/first" in backup.stdout
    listed = appliance.exec("ls", "/data/backups/first").stdout.split()
    assert sorted(listed) == ["backup.json", "ballots.db", "identity.db", "instance_secret"]



def test_docker_exec_reads_the_mounted_configuration_file(appliance: Appliance) -> None:
    read = appliance.exec("python", "-c", "from appliance.settings import load_settings as s;"
                          " print(s().rounds.proposal_quota)")
    assert read.stdout.strip() == str(PROPOSAL_QUOTA)


def test_without_a_password_file_the_log_says_once_how_to_make_the_first_admin(docker: DockerDaemon,
                                                                                image: str) -> None:
    name = f"appliance-test-{uuid.uuid4().hex[:8]}"
    docker.docker("run", "-d", "--name", name, "--label", LABEL, "--network", "host",
                  "-e", "APPLIANCE_SERVER__HOST=127.0.0.1", "-e", f"APPLIANCE_SERVER__PORT={free_port()}", image)
    try:
        deadline = time.monotonic() + 60
        while "serving on" not in (logs := docker.docker("logs", name).stdout) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "serving on" in logs, logs
        hints = [line for line in logs.splitlines() if "no admin yet" in line]
        assert len(hints) == 1 and "docker exec -it CONTAINER appliance user add admin" in hints[0], logs
    finally:
        docker.docker("rm", "-f", "-v", name, check=False)


def test_the_image_carries_its_software_bill_of_materials(appliance: Appliance) -> None:
    sbom = json.loads(appliance.exec("cat", "/opt/appliance/sbom.cdx.json").stdout)
    assert sbom["bomFormat"] == "CycloneDX"
    names = {component["name"].lower() for component in sbom["components"]}
    assert {"litestar", "numpy", "sqlite-utils", "consultation-appliance"} <= names


def test_one_command_makes_the_release_bundle_with_checksums_and_sbom(docker: DockerDaemon, image: str,
                                                                    tmp_path: Path) -> None:
    import subprocess
    import tarfile

    env = docker.env | {"BASE_IMAGE": BASE_IMAGE, "BUILD_NETWORK": "host",
                        "EXTRA_CA_CERTS": local_certificate_authorities()}
    out = tmp_path / "bundle"
    made = subprocess.run([str(ROOT / "docker" / "release.sh"), str(out)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert made.returncode == 0, made.stdout + made.stderr
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out).returncode == 0
    version = docker.docker("run", "--rm", image, "--version").stdout.split()[-1]
    sbom = json.loads((out / f"consultation-appliance-{version}.sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    with tarfile.open(out / f"consultation-appliance-{version}.tar.gz") as bundle:
        manifest = json.load(bundle.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [f"consultation-appliance:{version}"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["SHA256SUMS", "compose.yaml", f"consultation-appliance-{version}.tar.gz",
         f"consultation-appliance-{version}.sbom.cdx.json"])
