"""Surgical edits of a JSON document's text.

A manifest is never re-serialised: an edit replaces the source span of one value, or
inserts one member into an object, in the style the file already uses (line ending,
indent unit, `": "` spacing, `\\/` escapes). Everything outside the spans stays
byte-for-byte as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from mirror.deployment.document import Document, JObject, JString

Rendered: TypeAlias = str | Mapping[str, "Rendered"]

_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_SHORT_ESCAPES["\t"] = "\\t"
_INDENT = re.compile(r"^([ \t]+)\S", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace `text[start:end]` with `replacement`."""

    start: int
    end: int
    replacement: str


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """`text` with every edit applied; edits must not overlap."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    pieces, position = [], 0
    for edit in ordered:
        if edit.start < position:
            raise ValueError(f"overlapping edits at offset {edit.start}")
        pieces += [text[position : edit.start], edit.replacement]
        position = edit.end
    pieces.append(text[position:])
    return "".join(pieces)


def string_literal(value: str, like: str = '""') -> str:
    """`value` as a JSON string literal, escaped the way the literal `like` is.

    A source that writes `/` as `\\/` gets `\\/` again; one that writes non-ASCII
    characters as `\\uXXXX` gets that again.
    """
    escape_slash = "\\/" in like
    ascii_only = bool(re.search(r"\\u00[8-9a-fA-F]|\\u0[1-9a-fA-F]|\\u[1-9a-fA-F]", like))
    out = []
    for char in value:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char == "/" and escape_slash:
            out.append("\\/")
        elif ord(char) < 0x20 or (ascii_only and ord(char) > 0x7E):
            out.append(_unicode_escape(char))
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _unicode_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def replace_string(document: Document, node: JString, value: str) -> Edit:
    """Replace the string `node` with `value`, keeping the literal's escaping style."""
    literal = string_literal(value, like=document.source(node))
    return Edit(node.start, node.end, literal)


@dataclass(frozen=True, slots=True)
class Style:
    """How a file lays out its JSON."""

    newline: str
    unit: str
    colon: str

    @classmethod
    def of(cls, document: Document) -> Style:
        return cls(document.newline, indent_unit(document), _colon(document))


def indent_unit(document: Document) -> str:
    """The indent step of the file: the smallest indent in use (tab, 2 or 4 spaces...)."""
    indents = {m.group(1) for m in _INDENT.finditer(document.text)}
    if not indents:
        return "  "
    if any("\t" in i for i in indents):
        return "\t"
    return min(indents, key=len)


def _colon(document: Document) -> str:
    found = re.search(r'"[ \t]*:([ \t]*)["{\[0-9tfn-]', document.text)
    before = re.search(r'"([ \t]*):[ \t]*["{\[0-9tfn-]', document.text)
    if not found or not before:
        return ": "
    return f"{before.group(1)}:{found.group(1)}"


def render(value: Rendered, indent: str, style: Style, multiline: bool) -> str:
    """`value` (a string or nested mapping) as JSON text, starting at `indent`."""
    if isinstance(value, str):
        return string_literal(value)
    if not value:
        return "{}"
    if not multiline:
        inner = ", ".join(
            f"{string_literal(k)}{style.colon}{render(v, '', style, False)}"
            for k, v in value.items()
        )
        return "{" + inner + "}"
    child = indent + style.unit
    lines = [
        f"{child}{string_literal(k)}{style.colon}{render(v, child, style, True)}"
        for k, v in value.items()
    ]
    return "{" + style.newline + ("," + style.newline).join(lines) + style.newline + indent + "}"


def insert_member(document: Document, obj: JObject, key: str, value: Rendered) -> Edit:
    """Add `"key": value` as the last member of `obj`, laid out like its neighbours."""
    style = Style.of(document)
    multiline = "\n" in document.text or "\r" in document.text
    if obj.members:
        return _append_member(document, obj, key, value, style)
    own_indent = document.indent_at(obj.start)
    if not multiline:
        member = f"{string_literal(key)}{style.colon}{render(value, '', style, False)}"
        return Edit(obj.start, obj.end, "{" + member + "}")
    child = own_indent + style.unit
    member = f"{string_literal(key)}{style.colon}{render(value, child, style, True)}"
    text = "{" + style.newline + child + member + style.newline + own_indent + "}"
    return Edit(obj.start, obj.end, text)


def insert_members(document: Document, obj: JObject, members: dict[str, Rendered]) -> list[Edit]:
    """Add several members to `obj` (one edit for an empty object: each insertion into
    `{}` would replace the same two characters)."""
    if obj.members or len(members) <= 1:
        return [insert_member(document, obj, key, value) for key, value in members.items()]
    multiline = "\n" in document.text or "\r" in document.text
    text = render(members, document.indent_at(obj.start), Style.of(document), multiline)
    return [Edit(obj.start, obj.end, text)]


def _append_member(
    document: Document, obj: JObject, key: str, value: Rendered, style: Style
) -> Edit:
    last = obj.members[-1]
    same_line = document.line_of(obj.start) == document.line_of(last.key_start)
    if same_line:
        separator = _member_separator(document, obj)
        member = f"{string_literal(key)}{style.colon}{render(value, '', style, False)}"
        return Edit(last.value.end, last.value.end, "," + separator + member)
    indent = document.indent_at(last.key_start)
    colon = document.text[last.key_end : last.value.start]
    member = f"{string_literal(key)}{colon}{render(value, indent, style, True)}"
    return Edit(last.value.end, last.value.end, "," + style.newline + indent + member)


def _member_separator(document: Document, obj: JObject) -> str:
    if len(obj.members) < 2:
        return " "
    previous, current = obj.members[-2], obj.members[-1]
    between = document.text[previous.value.end : current.key_start]
    return between.replace(",", "", 1)


class ChangeKind(StrEnum):
    IMAGE = "image"
    CREDENTIAL = "credential"


@dataclass(frozen=True, slots=True)
class Change:
    """One value the rewrite changed or added; `line` is its line in the input."""

    kind: ChangeKind
    path: str
    line: int
    old: str | None
    new: str
    note: str | None = None
