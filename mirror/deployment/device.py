"""The device's own configuration (`/etc/aziot/config.toml`): the edgeAgent it starts with.

Before any deployment reaches it, a device starts the edgeAgent that `[agent.config]`
names, pulling it with the credentials of `[agent.config.auth]` (`serveraddress`,
`username`, `password`). A device that must not reach mcr.microsoft.com needs that
first image in the mirror too.

`DeviceConfig` is one such file, read with tomlkit so that a rewrite keeps every
comment, blank line and table order; it also says on which line a key is, for error
messages and lint findings. `rewrite_device_config` points the agent image at the
mirror with the same `Resolver` the manifests use, and sets `[agent.config.auth]` to
the target and the pull identity's placeholders (the `RewriteSettings` variables),
adding the table when it is absent. Nothing else in the file changes, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import InlineTable, Item, String, StringType, Table
from tomlkit.toml_document import TOMLDocument

from mirror.deployment.document import Document, decode, parse_document, read_bytes
from mirror.deployment.edits import Change, ChangeKind
from mirror.deployment.errors import DeploymentFileError
from mirror.deployment.images import classify, find_placeholders
from mirror.deployment.resolvers import PinMode, Resolver, TagResolver, Target
from mirror.deployment.rewrite import LeftAlone, Reason, RewriteResult, image_outcome
from mirror.deployment.settings import RewriteSettings

AGENT = ("agent",)
AGENT_CONFIG = ("agent", "config")
IMAGE = ("agent", "config", "image")
AUTH = ("agent", "config", "auth")
CREATE_OPTIONS = ("agent", "config", "createOptions")
AUTH_KEYS = ("serveraddress", "username", "password")

_LOCATOR = "mirror-locates-this-value"
_TOML_POSITION = re.compile(r" at line [0-9]+ col [0-9]+$")


class InvalidToml(DeploymentFileError):
    """The file is not well-formed TOML."""

    def __init__(self, file: str, message: str, line: int) -> None:
        super().__init__(file, f"not valid TOML: {message}", line)


class NoAgentImage(DeploymentFileError):
    """The device config names no `[agent.config] image` to point at the mirror."""


@dataclass(frozen=True, eq=False)
class DeviceConfig:
    """The text of a config.toml and its tomlkit document (which keeps the layout)."""

    file: str
    text: str
    document: TOMLDocument

    def value(self, *keys: str) -> Any:
        """The plain Python value at `keys` (`"agent", "config", "image"`), or None."""
        node = _find(self.document, keys)
        unwrap = getattr(node, "unwrap", None)
        return unwrap() if callable(unwrap) else node

    @property
    def image(self) -> str | None:
        """The bootstrap edgeAgent image, when it is a string."""
        image = self.value(*IMAGE)
        return image if isinstance(image, str) else None

    @property
    def has_agent(self) -> bool:
        return isinstance(self.value(*AGENT), dict)

    @property
    def auth(self) -> dict[str, Any] | None:
        auth = self.value(*AUTH)
        return auth if isinstance(auth, dict) else None

    @cached_property
    def _line_starts(self) -> list[int]:
        return [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", self.text))]

    def offset(self, *keys: str) -> int:
        """Where the key at `keys` is written (a table: its header); the nearest
        enclosing table that is written when the key is absent; 0 at the very least."""
        for depth in range(len(keys), 0, -1):
            line = _line_of(self.text, keys[:depth])
            if line is not None:
                start = self._line_starts[line - 1]
                return start + len(self._line(line)) - len(self._line(line).lstrip(" \t"))
        return 0

    def line(self, *keys: str) -> int:
        return self.line_of(self.offset(*keys))

    def line_of(self, offset: int) -> int:
        return sum(1 for start in self._line_starts if start <= offset)

    def column_of(self, offset: int) -> int:
        return offset - self._line_starts[self.line_of(offset) - 1] + 1

    def _line(self, number: int) -> str:
        start = self._line_starts[number - 1]
        end = self._line_starts[number] if number < len(self._line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")


def is_device_config(path: str | Path, text: str) -> bool:
    """Whether a file is a device config: named `*.toml`, or not JSON-looking and
    TOML with an `[agent]` table."""
    if str(path).lower().endswith(".toml"):
        return True
    if text.lstrip("\ufeff \t\r\n").startswith("{"):
        return False
    try:
        return isinstance(tomlkit.parse(text).get("agent"), Table | InlineTable)
    except ParseError:
        return False


def parse_device_config(data: bytes | str, file: str) -> DeviceConfig:
    """Parse a config.toml; an `InvalidToml` naming the file and line when it is not TOML."""
    text = decode(data, file) if isinstance(data, bytes) else data
    try:
        document = tomlkit.parse(text)
    except ParseError as exc:
        message = _TOML_POSITION.sub("", str(exc))
        raise InvalidToml(file, message, exc.line) from None
    return DeviceConfig(file, text, document)


def read_device_config(path: str | Path) -> DeviceConfig:
    return parse_device_config(read_bytes(path, str(path)), str(path))


def read_deployment_file(path: str | Path) -> DeviceConfig | Document:
    """The file at `path`, read once: a device config, or else a deployment manifest's
    JSON; raises `DeploymentFileError` for a file that cannot be read or parsed."""
    text = decode(read_bytes(path, str(path)), str(path))
    if is_device_config(path, text):
        return parse_device_config(text, str(path))
    return parse_document(text, str(path))


def read_if_device_config(path: str | Path) -> DeviceConfig | None:
    """The device config at `path`, or None when the file is something else; raises
    `DeploymentFileError` for a config that cannot be read or parsed."""
    text = decode(read_bytes(path, str(path)), str(path))
    return parse_device_config(text, str(path)) if is_device_config(path, text) else None


# Keys whose values a printed diff must not show: the pull password, and the device's
# own identity secrets that three lines of context can bring along.
_SECRET_KEYS = frozenset({"password", "connection_string", "symmetric_key", "value"})


def device_secrets(config: DeviceConfig) -> tuple[str, ...]:
    """Every secret in the file as written (quotes included): `[agent.config.auth]`
    password, `[provisioning]` connection string, symmetric keys. What a printed diff
    must not show; placeholders are not secrets."""
    found: list[str] = []
    _collect_secrets(config.document, found, inside_key=False)
    return tuple(dict.fromkeys(found))


def _collect_secrets(table: Any, found: list[str], *, inside_key: bool) -> None:
    for key, value in table.items():
        secret = key in _SECRET_KEYS and (key != "value" or inside_key)
        if isinstance(value, String) and secret and value.value:
            if not find_placeholders(value.value):
                found.append(value.as_string())
        elif isinstance(value, dict):
            _collect_secrets(value, found, inside_key=key == "symmetric_key")


# -- the rewrite ---------------------------------------------------------------------------


def rewrite_device_config(
    config: DeviceConfig,
    target: Target,
    *,
    pin: PinMode = PinMode.TAG,
    resolver: Resolver | None = None,
    settings: RewriteSettings | None = None,
) -> RewriteResult:
    """Point the bootstrap edgeAgent of `config` at `target` (see the module docstring).

    Raises `NoAgentImage` when the file has no `[agent.config] image`: the device then
    runs the default edgeAgent from mcr.microsoft.com, and the section has to be added
    by its author.
    """
    settings = settings or RewriteSettings()
    document = tomlkit.parse(config.text)  # a copy: `config` stays as read
    agent_config = _container(document, AGENT_CONFIG)
    image = config.image
    if agent_config is None or image is None:
        raise NoAgentImage(
            config.file,
            "no [agent.config] image: the device starts the default edgeAgent from"
            " mcr.microsoft.com; add the [agent] section (as in the aziot-edge template)"
            " to pull it from the mirror",
            config.line(*IMAGE),
        )
    outcome = _new_image(config, image, target, pin, resolver or TagResolver(target), settings)
    changes: list[Change] = []
    left: tuple[LeftAlone, ...] = ()
    if isinstance(outcome, LeftAlone):
        left = (outcome,)
    elif outcome is not None:
        _set_string(agent_config, "image", outcome.new)
        changes.append(outcome)
    on_target = bool(changes) or any(a.reason is Reason.ALREADY_MIRRORED for a in left)
    if settings.credentials and on_target:
        changes += _set_auth(config, agent_config, target, settings)
    text = _tidy(tomlkit.dumps(document), config.text) if changes else config.text
    return RewriteResult(config.file, config.text, text, tuple(changes), left)


def _new_image(
    config: DeviceConfig,
    text: str,
    target: Target,
    pin: PinMode,
    resolve: Resolver,
    settings: RewriteSettings,
) -> LeftAlone | Change | None:
    """What the agent image becomes: a change, a reason to leave it, or None (as is)."""
    path, line = ".".join(IMAGE), config.line(*IMAGE)
    outcome = image_outcome(
        classify(text),
        target=target,
        pin=pin,
        resolve=resolve,
        settings=settings,
        placeholders=False,
    )
    if isinstance(outcome, tuple):
        return LeftAlone(path, line, text, *outcome)
    return None if outcome is None else Change(ChangeKind.IMAGE, path, line, text, outcome)


def _set_auth(
    config: DeviceConfig,
    agent_config: MutableMapping[str, Any],
    target: Target,
    settings: RewriteSettings,
) -> list[Change]:
    """`[agent.config.auth]` for the pull identity, the table added when absent."""
    wanted = {
        "serveraddress": target.registry,
        "username": settings.username_variable,
        "password": settings.password_variable,
    }
    auth = agent_config.get("auth")
    if not isinstance(auth, dict):
        agent_config["auth"] = _new_table(agent_config, wanted, config.text)
        return [
            Change(ChangeKind.CREDENTIAL, ".".join(AUTH), config.line(*AUTH), None, str(wanted))
        ]
    changes = []
    for key, value in wanted.items():
        old = auth.get(key)
        if isinstance(old, String) and old.value == value:
            continue
        _set_string(auth, key, value, newline=_newline(config.text))
        before = str(old.unwrap()) if isinstance(old, Item) else None
        line = config.line(*AUTH, key)
        changes.append(
            Change(ChangeKind.CREDENTIAL, f"{'.'.join(AUTH)}.{key}", line, before, value)
        )
    return changes


def _new_table(
    parent: MutableMapping[str, Any], values: dict[str, str], text: str
) -> Table | InlineTable:
    newline = _newline(text)
    table: Table | InlineTable = (
        tomlkit.inline_table() if isinstance(parent, InlineTable) else tomlkit.table()
    )
    for key, value in values.items():
        table[key] = _string(value, StringType.SLB, newline)
    if isinstance(table, Table):
        table.trivia.trail = newline
    return table


def _set_string(
    container: MutableMapping[str, Any], key: str, value: str, newline: str | None = None
) -> None:
    """Set `key` to `value`, quoted as the old value was (basic or literal); its comment
    stays where it was."""
    old = container.get(key)
    kind = old.type if isinstance(old, String) else StringType.SLB
    if kind in (StringType.MLB, StringType.MLL):
        kind = StringType.SLB if kind is StringType.MLB else StringType.SLL
    container[key] = _string(value, kind, None if isinstance(old, Item) else newline)


def _string(value: str, kind: StringType, newline: str | None) -> String:
    if kind is StringType.SLL and "'" in value:
        kind = StringType.SLB
    item = String.from_raw(value, type_=kind)
    if newline is not None:
        item.trivia.trail = newline
    return item


def _newline(text: str) -> str:
    return "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"


def _tidy(output: str, original: str) -> str:
    """tomlkit's output with the added `[agent.config.auth]` set off by blank lines like
    the file's other tables, and the file's ending kept."""
    newline = _newline(original)
    header = re.search(r"^\[agent\.config\.auth\][ \t]*\r?\n", output, re.MULTILINE)
    if header is not None and not re.search(r"^\[agent\.config\.auth\]", original, re.MULTILINE):
        start, end = header.start(), _block_end(output, header.end())
        before = "" if start == 0 or output[:start].endswith(newline * 2) else newline
        after = newline if end < len(output) and output[end] == "[" else ""
        output = output[:start] + before + output[start:end] + after + output[end:]
    return output


def _block_end(text: str, start: int) -> int:
    """Where the key lines that follow a table header end."""
    position = start
    for match in re.finditer(r"[^\r\n]*(?:\r\n|\n|$)", text[start:]):
        line = match.group()
        if not re.match(r"^[ \t]*[A-Za-z0-9_\"'-]", line):
            break
        position = start + match.end()
    return position


# -- where a key is written ---------------------------------------------------------------


def _find(document: TOMLDocument, keys: tuple[str, ...]) -> Any:
    """The item at `keys`, or None. Tables (tomlkit's containers, and the proxy it
    gives for a table written in several places) are all dicts."""
    node: Any = document
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _container(document: TOMLDocument, keys: tuple[str, ...]) -> MutableMapping[str, Any] | None:
    node = _find(document, keys)
    return node if isinstance(node, dict) else None


def _line_of(text: str, keys: tuple[str, ...]) -> int | None:
    """The line that writes `keys`: a table's header, or the line of a key's value
    (found by writing a marker in its place in a copy of the document)."""
    header = _header_line(text, keys)
    if header is not None:
        return header
    document = tomlkit.parse(text)
    parent = _find(document, keys[:-1])
    if not isinstance(parent, dict) or keys[-1] not in parent:
        return None
    value = parent[keys[-1]]
    if isinstance(value, Table):  # an implicit table: where its first key is written
        first = next(iter(value), None)
        return _line_of(text, (*keys, first)) if first is not None else None
    parent[keys[-1]] = _LOCATOR
    marked = tomlkit.dumps(document)
    return marked.count("\n", 0, marked.index(_LOCATOR)) + 1


def _header_line(text: str, keys: tuple[str, ...]) -> int | None:
    names = r"[ \t]*\.[ \t]*".join(
        rf"(?:{re.escape(k)}|\"{re.escape(k)}\"|'{re.escape(k)}')" for k in keys
    )
    found = re.search(
        rf"^[ \t]*\[[ \t]*{names}[ \t]*\][ \t]*(?:#[^\r\n]*)?\r?$", text, re.MULTILINE
    )
    return text.count("\n", 0, found.start()) + 1 if found else None
