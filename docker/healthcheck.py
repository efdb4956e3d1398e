"""The image's HEALTHCHECK: GET /healthz when the container runs `mirror serve`.

PID 1 is the container's command. When it is `mirror serve`, the address comes from
`--listen HOST:PORT`, else from the config's `service.listen` (`--config FILE` or
`./mirror.yaml` in PID 1's working directory), else 127.0.0.1:8080; a wildcard host
(0.0.0.0, ::) is checked on loopback. Exit 0 when /healthz answers 200 within 3 s,
1 otherwise. Any other command (`mirror sync`, a shell) is not a service: exit 0.
"""

from __future__ import annotations

import http.client
import sys
from pathlib import Path

DEFAULT_LISTEN = "127.0.0.1:8080"
TIMEOUT = 3.0
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}  # noqa: S104


def mirror_args(cmdline: list[str]) -> list[str] | None:
    """The arguments after the `mirror` program (`mirror ...`, `python .../mirror ...`,
    `python -m mirror ...`), or None when the command is not mirror."""
    for index, arg in enumerate(cmdline):
        if Path(arg).name == "mirror":
            return cmdline[index + 1 :]
        if arg == "-m" and index + 1 < len(cmdline) and cmdline[index + 1] == "mirror":
            return cmdline[index + 2 :]
    return None


def option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def configured_listen(args: list[str], cwd: Path) -> str | None:
    """`service.listen` from the config file the service reads, if any."""
    path = Path(option(args, "--config") or "mirror.yaml")
    if not path.is_absolute():
        path = cwd / path
    try:
        import yaml
    except ImportError:
        return None
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    service = config.get("service") if isinstance(config, dict) else None
    listen = service.get("listen") if isinstance(service, dict) else None
    return listen if isinstance(listen, str) else None


def healthz_address(cmdline: list[str], cwd: Path) -> tuple[str, int] | None:
    """(host, port) to check, or None when PID 1 is not `mirror serve`."""
    args = mirror_args(cmdline)
    if not args:
        return None
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command != "serve":
        return None
    listen = option(args, "--listen") or configured_listen(args, cwd) or DEFAULT_LISTEN
    host, _, port = listen.rpartition(":")
    host = WILDCARDS.get(host, host).strip("[]")
    return host, int(port)


def check(host: str, port: int) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def main() -> int:
    proc = Path("/proc/1")
    try:
        cmdline = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        cwd = (proc / "cwd").resolve()
    except OSError:
        return 0
    address = healthz_address([arg for arg in cmdline if arg], cwd)
    if address is None:
        return 0
    healthy = check(*address)
    if not healthy:
        print(f"GET http://{address[0]}:{address[1]}/healthz failed", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
