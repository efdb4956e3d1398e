"""A module's Docker create options, as written and as meant.

In a deployable manifest `settings.createOptions` is a string holding a JSON object,
split in chunks of at most 512 characters: `createOptions`, `createOptions01`,
`createOptions02`, ... (edgeAgent reads up to 100 chunks). Templates may hold the
object itself. `read_create_options` gathers the chunks of one `settings` object,
joins and parses them, and says what is wrong with their naming or content.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mirror.deployment.document import JObject, JString, Member, Node, to_python

CHUNK_SIZE = 512
MAX_CHUNKS = 100
_CHUNK_KEY = re.compile(r"^(?:createOptions|createoptions)(?P<number>[0-9]*)$")


class Form(StrEnum):
    ABSENT = "absent"
    STRING = "string"  # one or more string chunks
    OBJECT = "object"  # template form: the options object itself
    OTHER = "other"  # neither (a number, an array, mixed chunks...)


@dataclass(frozen=True)
class CreateOptions:
    """The create options of one module: chunks in order, joined text, parsed value."""

    chunks: tuple[Member, ...]
    form: Form
    value: dict[str, Any] | None = None
    error: str | None = None
    naming_problems: tuple[str, ...] = ()

    @property
    def first(self) -> Member | None:
        return self.chunks[0] if self.chunks else None

    @property
    def node(self) -> JObject | None:
        """The options object as written, when the template (object) form is used."""
        first = self.first
        return first.value if first and isinstance(first.value, JObject) else None

    def get(self, *keys: str) -> Any:
        """The value at `keys` in the parsed options (`get("HostConfig", "LogConfig")`)."""
        current: Any = self.value
        for key in keys:
            if not isinstance(current, dict):
                return None
            current = current.get(key)
        return current

    @property
    def oversized(self) -> list[Member]:
        return [
            c
            for c in self.chunks
            if isinstance(c.value, JString) and len(c.value.value) > CHUNK_SIZE
        ]


def chunk_members(settings: JObject) -> list[Member]:
    """The createOptions members of `settings`, in edgeAgent's reading order."""
    found = [(m, _CHUNK_KEY.match(m.key)) for m in settings.members]
    chunks = [(int(match["number"] or 0), m) for m, match in found if match]
    return [m for _, m in sorted(chunks, key=lambda pair: pair[0])]


def read_create_options(settings: JObject | None) -> CreateOptions:
    """Gather, join and parse the create options held by a module's `settings`."""
    chunks = tuple(chunk_members(settings)) if settings is not None else ()
    if not chunks:
        return CreateOptions(chunks, Form.ABSENT, value={})
    problems = tuple(_naming_problems(chunks))
    if len(chunks) == 1 and isinstance(chunks[0].value, JObject):
        value = to_python(chunks[0].value)
        return CreateOptions(chunks, Form.OBJECT, value=value, naming_problems=problems)
    if not all(isinstance(c.value, JString) for c in chunks):
        wrong = "createOptions must be a string (or, in a template, one object)"
        return CreateOptions(chunks, Form.OTHER, error=wrong, naming_problems=problems)
    parsed, error = _parse("".join(_string(c.value) for c in chunks))
    return CreateOptions(chunks, Form.STRING, parsed, error, problems)


def _string(node: Node) -> str:
    assert isinstance(node, JString)
    return node.value


def _parse(text: str) -> tuple[dict[str, Any] | None, str | None]:
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"createOptions is not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(value, dict):
        return None, "createOptions must hold a JSON object"
    return value, None


def _naming_problems(chunks: tuple[Member, ...]) -> list[str]:
    problems = []
    numbers = [_CHUNK_KEY.match(c.key) for c in chunks]
    suffixes = [str(m["number"]) if m else "" for m in numbers]
    if suffixes[0] != "":
        problems.append(f"{chunks[0].key} has no preceding createOptions chunk")
    for position, (chunk, suffix) in enumerate(zip(chunks, suffixes, strict=True)):
        if suffix == "":
            continue
        expected = f"{position:02d}" if suffixes[0] == "" else f"{position + 1:02d}"
        if suffix != expected:
            problems.append(
                f"{chunk.key} should be createOptions{expected} (chunks are contiguous)"
            )
    if len(chunks) > MAX_CHUNKS:
        problems.append(f"{len(chunks)} chunks: edgeAgent reads at most {MAX_CHUNKS}")
    return problems


def split_chunks(text: str, size: int = CHUNK_SIZE) -> list[str]:
    """`text` cut into the chunks edgeAgent expects (for tools that re-split)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
