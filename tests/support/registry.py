"""Real CNCF distribution registries (Debian's `docker-registry`) on 127.0.0.1 for tests.

Each `Registry` is its own process with its own storage directory, config file and
access log, so a test can count the requests a sync sent to it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REGISTRY_BIN = os.environ.get("REGISTRY_BIN", "/usr/bin/docker-registry")


class ServerGuard:
    """Whether the running test may start a server process: only one marked `registry`
    (set per test by an autouse fixture in `tests/conftest.py`), so that the fast tier,
    `pytest -m "not registry"`, never starts one by accident."""

    allowed = True

    @classmethod
    def check(cls, what: str) -> None:
        if not cls.allowed:
            raise RuntimeError(f"this test starts {what}: mark it @pytest.mark.registry")


IDENTITY_HEADER = "X-Test-Registry"  # each registry answers with its own `identity`


class PortTaken(Exception):
    """Another server answered on the port a registry was to listen on."""


_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, nested mappings key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int


@dataclass
class Registry:
    """A running `docker-registry serve` process bound to 127.0.0.1:<port>."""

    root: Path
    name: str = "registry"
    extra_config: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    identity: str = field(default_factory=lambda: uuid.uuid4().hex)
    _log_start: int = field(default=0, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.address,
                "secret": f"test-{self.name}-secret",
                "headers": {IDENTITY_HEADER: [self.identity]},
            },
        }
        return _merged(config, self.extra_config)

    def start(self) -> Registry:
        """Start on `port`, or on a free one when `port` is 0. A free port can be taken
        by another test process before this registry binds it: then another is tried."""
        ServerGuard.check("a docker-registry")
        if not Path(REGISTRY_BIN).exists():
            raise RuntimeError(
                f"{REGISTRY_BIN} not found: install Debian's docker-registry package"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        if self.port:
            self._start()
            return self
        for _ in range(5):
            self.port = free_port()
            try:
                self._start()
                return self
            except PortTaken:
                continue
        raise RuntimeError(f"registry {self.name}: every free port tried was taken")

    def _start(self) -> None:
        try:
            self._launch()
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> None:
        config_file = self.root / "config.yml"
        config_file.write_text(yaml.safe_dump(self.config()))
        stdout = self.access_log.open("ab")
        stderr = self.log.open("ab")
        self._log_start = stderr.tell()
        self.process = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config_file)],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
        stdout.close()
        stderr.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Wait until this registry answers: an answer from another server on the port
        (it lacks this one's identity header) means the port was taken."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = self.log.read_text()[self._log_start :][-2000:]
                if "address already in use" in log:
                    raise PortTaken(self.address)
                raise RuntimeError(f"registry {self.name} exited: {log}")
            try:
                response = httpx.get(f"{self.url}/v2/", timeout=0.5)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if response.headers.get(IDENTITY_HEADER) != self.identity:
                raise PortTaken(self.address)
            return
        raise RuntimeError(f"registry {self.name} did not start on {self.address}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start on the same port (needed after touching storage)."""
        self.stop()
        self.start()

    def wipe(self) -> None:
        """Forget everything stored (restarts: the blob descriptor cache would be stale)."""
        self.stop()
        shutil.rmtree(self.storage, ignore_errors=True)
        self.start()

    def requests(self) -> list[Request]:
        """Every request logged so far, oldest first."""
        if not self.access_log.exists():
            return []
        found = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            match = _ACCESS.search(line)
            if match:
                found.append(Request(match["method"], match["path"], int(match["status"])))
        return found

    def requests_since(self, mark: int) -> list[Request]:
        """Requests logged after `mark` (a previous `len(self.requests())`).

        The registry writes its access log after answering, so wait for it to settle.
        """
        previous = -1
        for _ in range(50):
            current = len(self.requests())
            if current == previous:
                break
            previous = current
            time.sleep(0.05)
        return self.requests()[mark:]
