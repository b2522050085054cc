"""A Docker daemon and an offline base image for the tests that build and run the appliance's image.

When no daemon answers, a private `dockerd` is started as root with its own
data root and socket, and without touching the machine's network: no
iptables rules, no forwarding, no masquerading, no bridge. Containers then
run with `--network host` and listen on 127.0.0.1.

No image can be pulled from a registry in CI, so the base image is built from
Debian packages with debootstrap (python3 and python3-venv) and imported as
`local/bookworm-python`. The daemon's data root is kept between runs (in
APPLIANCE_TEST_DOCKER_DIR, by default under /var/tmp), so the base image and
the build cache survive: only the first run pays for them.

Typical fixture::

    @pytest.fixture(scope="session")
    def docker():
        with DockerDaemon() as daemon:
            daemon.ensure_base_image()
            yield daemon
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

BASE_IMAGE = "local/bookworm-python"
DEFAULT_DIR = Path(os.environ.get("APPLIANCE_TEST_DOCKER_DIR", "/var/tmp/appliance-test-docker"))
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# Without these flags dockerd rewrites the machine's firewall and forwarding.
NETWORK_FLAGS = ("--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none")


class DockerUnavailable(Exception):
    """No daemon answers and none can be started here; the message says why."""


def debian_mirror() -> str:
    """The Debian mirror apt already uses (deb822 or one-line sources), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
               *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for url in re.findall(r"(?m)^(?:URIs:|deb(?:\s+\[[^]]*\])?)\s+(\S+)", text):
            if url.rstrip("/").endswith("/debian"):
                return url
    return "http://deb.debian.org/debian"


def debian_suite() -> str:
    """This machine's Debian release (bookworm), for a base image that matches it."""
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return "bookworm"
    found = re.search(r"(?m)^VERSION_CODENAME=(\w+)", text)
    return found.group(1) if found else "bookworm"


class DockerDaemon:
    """The machine's Docker daemon if one answers, else a private one started and stopped here."""

    def __init__(self, root: Path = DEFAULT_DIR) -> None:
        self.root = root
        self.env = dict(os.environ)
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> DockerDaemon:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def docker(self, *args: str, check: bool = True, timeout: float = 600, input: str | None = None
               ) -> subprocess.CompletedProcess:
        """Run the docker client against this daemon; CalledProcessError carries its output."""
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
        return result

    @property
    def started_here(self) -> bool:
        """Whether this object started the daemon (then no other test run was using it)."""
        return self._process is not None

    def answers(self) -> bool:
        try:
            return self.docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def start(self) -> None:
        """Use a running daemon, or start a private one (as root, with the machine's network left alone)."""
        if shutil.which("docker") is None:
            raise DockerUnavailable("no docker client (install docker.io, as ./install.sh --dev does)")
        if self.answers():
            return
        if shutil.which("dockerd") is None or os.geteuid() != 0:
            raise DockerUnavailable("no Docker daemon answers, and starting one needs root and dockerd"
                                    " (install docker.io, as ./install.sh --dev does)")
        for name in ("data", "exec"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        socket = self.root / "docker.sock"
        self.env["DOCKER_HOST"] = f"unix://{socket}"
        if self.answers():  # a private daemon left running by an earlier run
            return
        self._unmount_netns()
        pidfile = self.root / "dockerd.pid"
        pidfile.unlink(missing_ok=True)
        log = open(self.root / "dockerd.log", "ab")
        self._process = subprocess.Popen(
            ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(pidfile), "-H", f"unix://{socket}", *NETWORK_FLAGS],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
                raise DockerUnavailable(f"dockerd did not start; its log ends with:\n{tail}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the private daemon, if this object started one (idempotent)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._unmount_netns()

    def _unmount_netns(self) -> None:
        netns = self.root / "exec" / "netns" / "default"
        if os.path.ismount(netns):
            subprocess.run(["umount", str(netns)], capture_output=True)

    def prune(self, label: str) -> None:
        """Forget what earlier runs left: their stopped containers and unused volumes (by label), old layers."""
        for status in ("created", "exited", "dead"):
            stale = self.docker("ps", "-aq", "--filter", f"label={label}", "--filter", f"status={status}").stdout
            if stale.split():
                self.docker("rm", "-f", *stale.split(), check=False)
        self.docker("volume", "prune", "-f", "--filter", f"label={label}", check=False)
        # Images left untagged by earlier builds (an hour old: never one that a build running now uses).
        self.docker("image", "prune", "-f", "--filter", "until=1h", check=False)

    def has_image(self, name: str) -> bool:
        return self.docker("image", "inspect", name, check=False, timeout=60).returncode == 0

    def ensure_base_image(self, name: str = BASE_IMAGE) -> str:
        """The offline Debian + Python base image, built with debootstrap when missing (about a minute)."""
        if self.has_image(name):
            return name
        if shutil.which("debootstrap") is None:
            raise DockerUnavailable("no debootstrap to build the offline base image (install it, as"
                                    " ./install.sh --dev does)")
        with tempfile.TemporaryDirectory(dir=self.root) as work:
            rootfs = Path(work) / "rootfs"
            subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv",
                            debian_suite(), str(rootfs), debian_mirror()],
                           check=True, capture_output=True, timeout=900)
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            subprocess.run(["docker", "import", "-", name], stdin=tar.stdout, env=self.env, check=True,
                           capture_output=True, timeout=600)
            tar.wait()
        return name
