"""A JSON document that remembers where every value came from.

`parse_document` reads strict JSON (RFC 8259) into a tree of frozen nodes, each with
the character span of its source text, so that a rewrite can splice single string
values and lint can name the line of a finding. Nothing is normalised: the text is
kept as read (byte order mark, CRLF line endings, tabs, `\\/` escapes), and duplicate
keys are all kept, in order (lookups return the last one, as JSON readers do).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from mirror.deployment.errors import InvalidJson, UnreadableFile

BOM = "\ufeff"
MAX_DEPTH = 256

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_PLAIN_CHARS = re.compile(r'[^"\\\x00-\x1f]*')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_LITERALS: dict[str, bool | None] = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """A JSON value and the span `[start, end)` of its source text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True, eq=False)
class JString(Node):
    value: str


@dataclass(frozen=True, slots=True, eq=False)
class JNumber(Node):
    value: int | float


@dataclass(frozen=True, slots=True, eq=False)
class JLiteral(Node):
    """`true`, `false` or `null`."""

    value: bool | None


@dataclass(frozen=True, slots=True, eq=False)
class JArray(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Member:
    """One `"key": value` pair of an object; `key_start` is the opening quote."""

    key: str
    key_start: int
    key_end: int
    value: Node


@dataclass(frozen=True, slots=True, eq=False)
class JObject(Node):
    members: tuple[Member, ...]
    _index: dict[str, Member] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {m.key: m for m in self.members})

    def member(self, key: str) -> Member | None:
        """The member named `key` (the last one if the key is repeated)."""
        return self._index.get(key)

    def get(self, key: str) -> Node | None:
        found = self._index.get(key)
        return found.value if found else None

    def keys(self) -> list[str]:
        return list(self._index)

    def duplicates(self) -> list[Member]:
        """Members shadowed by a later member of the same name."""
        return [m for m in self.members if self._index[m.key] is not m]


def to_python(node: Node) -> Any:
    """The plain Python value of `node` (dicts keep the last of duplicate keys)."""
    if isinstance(node, JObject):
        return {key: to_python(m.value) for key, m in node._index.items()}
    if isinstance(node, JArray):
        return [to_python(item) for item in node.items]
    if isinstance(node, JString | JNumber | JLiteral):
        return node.value
    raise TypeError(f"not a JSON node: {node!r}")


def walk(node: Node) -> Iterator[Node]:
    """`node` and every node below it, in document order."""
    yield node
    if isinstance(node, JObject):
        for member in node.members:
            yield from walk(member.value)
    elif isinstance(node, JArray):
        for item in node.items:
            yield from walk(item)


@dataclass(frozen=True, eq=False)
class Document:
    """The text of a JSON file (BOM included, if any) and its parsed tree."""

    file: str
    text: str
    root: Node

    @cached_property
    def _line_starts(self) -> list[int]:
        return [0, *(m.end() for m in _LINE_BREAK.finditer(self.text))]

    def line_of(self, offset: int) -> int:
        """1-based line number of the character at `offset`."""
        return bisect.bisect_right(self._line_starts, offset)

    def column_of(self, offset: int) -> int:
        """1-based column (in characters) of the character at `offset`."""
        return offset - self._line_starts[self.line_of(offset) - 1] + 1

    def line_start(self, offset: int) -> int:
        return self._line_starts[self.line_of(offset) - 1]

    def indent_at(self, offset: int) -> str:
        """The leading whitespace of the line holding `offset`."""
        start = self.line_start(offset)
        line = self.text[start:offset]
        return line[: len(line) - len(line.lstrip(" \t"))]

    def source(self, node: Node) -> str:
        return self.text[node.start : node.end]

    @cached_property
    def newline(self) -> str:
        """The line ending the file uses most (`\\n` for a file on one line)."""
        counts: dict[str, int] = {}
        for match in _LINE_BREAK.finditer(self.text):
            counts[match.group()] = counts.get(match.group(), 0) + 1
        return max(counts, key=lambda k: counts[k]) if counts else "\n"

    @property
    def has_bom(self) -> bool:
        return self.text.startswith(BOM)

    def encode(self) -> bytes:
        return self.text.encode("utf-8")


def read_document(path: str | Path, display_name: str | None = None) -> Document:
    """Read and parse the JSON file at `path`; errors name `display_name` (or the path)."""
    name = display_name or str(path)
    return parse_document(read_bytes(path, name), name)


def read_bytes(path: str | Path, name: str) -> bytes:
    """The bytes of the file at `path`; an `UnreadableFile` naming `name` if it cannot be
    read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableFile(name, f"cannot read: {exc.strerror or exc}") from None


def decode(data: bytes, file: str) -> str:
    """The text of `data`, which must be UTF-8 (a byte order mark is kept in the text)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile(file, "is UTF-16 text: save it as UTF-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(file, f"is not UTF-8 text (byte {exc.start})") from None


def parse_document(data: bytes | str, file: str) -> Document:
    """Parse `data` (bytes or text) as strict JSON, keeping every value's position."""
    text = decode(data, file) if isinstance(data, bytes) else data
    return Document(file=file, text=text, root=_Parser(text, file).parse())


class _Parser:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.pos = 1 if text.startswith(BOM) else 0

    def parse(self) -> Node:
        self._skip_whitespace()
        if self.pos >= len(self.text):
            self._fail("the file is empty")
        node = self._value(0)
        self._skip_whitespace()
        if self.pos < len(self.text):
            self._fail("unexpected text after the end of the document")
        return node

    def _fail(self, message: str, at: int | None = None) -> NoReturn:
        offset = self.pos if at is None else at
        before = self.text[:offset]
        line = len(_LINE_BREAK.findall(before)) + 1
        last_break = max(before.rfind("\n"), before.rfind("\r"))
        raise InvalidJson(self.file, message, line, offset - last_break)

    def _skip_whitespace(self) -> None:
        match = _WHITESPACE.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _value(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            self._fail(f"nested more than {MAX_DEPTH} levels deep")
        char = self._peek()
        if char == "{":
            return self._object(depth)
        if char == "[":
            return self._array(depth)
        if char == '"':
            return self._string()
        if char == "-" or char.isdigit():
            return self._number()
        for word, value in _LITERALS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return JLiteral(self.pos - len(word), self.pos, value)
        if char == "/":
            self._fail("comments are not allowed in JSON")
        if char == "":
            self._fail("unexpected end of file")
        self._fail(f"unexpected character {char!r}")

    def _object(self, depth: int) -> JObject:
        start = self.pos
        self.pos += 1
        members: list[Member] = []
        self._skip_whitespace()
        if self._peek() == "}":
            self.pos += 1
            return JObject(start, self.pos, ())
        while True:
            if self._peek() != '"':
                self._fail("expected a quoted key" + (" (no trailing commas)" if members else ""))
            key = self._string()
            self._skip_whitespace()
            if self._peek() != ":":
                self._fail("expected ':' after the key")
            self.pos += 1
            self._skip_whitespace()
            members.append(Member(key.value, key.start, key.end, self._value(depth + 1)))
            self._skip_whitespace()
            if self._peek() == "}":
                self.pos += 1
                return JObject(start, self.pos, tuple(members))
            if self._peek() != ",":
                self._fail("expected ',' or '}' after an object member")
            self.pos += 1
            self._skip_whitespace()

    def _array(self, depth: int) -> JArray:
        start = self.pos
        self.pos += 1
        items: list[Node] = []
        self._skip_whitespace()
        if self._peek() == "]":
            self.pos += 1
            return JArray(start, self.pos, ())
        while True:
            items.append(self._value(depth + 1))
            self._skip_whitespace()
            if self._peek() == "]":
                self.pos += 1
                return JArray(start, self.pos, tuple(items))
            if self._peek() != ",":
                self._fail("expected ',' or ']' after an array item")
            self.pos += 1
            self._skip_whitespace()
            if self._peek() == "]":
                self._fail("trailing commas are not allowed in JSON")

    def _string(self) -> JString:
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        while True:
            match = _PLAIN_CHARS.match(self.text, self.pos)
            assert match is not None
            parts.append(match.group())
            self.pos = match.end()
            char = self._peek()
            if char == '"':
                self.pos += 1
                return JString(start, self.pos, "".join(parts))
            if char == "\\":
                parts.append(self._escape())
            elif char == "":
                self._fail("unterminated string", at=start)
            else:
                self._fail("control character in a string (escape it)")

    def _escape(self) -> str:
        self.pos += 1
        char = self._peek()
        if char in _ESCAPES:
            self.pos += 1
            return _ESCAPES[char]
        if char != "u":
            escape = "\\" + char
            self._fail(f"invalid escape {escape!r}", at=self.pos - 1)
        code = self._hex4()
        if 0xD800 <= code < 0xDC00 and self.text.startswith("\\u", self.pos):
            saved = self.pos
            self.pos += 1
            low = self._hex4()
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
            self.pos = saved
        return chr(code)

    def _hex4(self) -> int:
        match = _HEX4.match(self.text, self.pos + 1)
        if not match:
            self._fail("invalid \\u escape", at=self.pos - 1)
        self.pos = match.end()
        return int(match.group(), 16)

    def _number(self) -> JNumber:
        match = _NUMBER.match(self.text, self.pos)
        if not match:
            self._fail("invalid number")
        start, self.pos = self.pos, match.end()
        raw = match.group()
        try:
            value: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:  # more digits than Python converts (4300)
            self._fail("number too long", at=start)
        return JNumber(start, self.pos, value)
