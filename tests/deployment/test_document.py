"""The position-keeping JSON reader: values, spans, lines, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.deployment.document import (
    JArray,
    JLiteral,
    JNumber,
    JObject,
    JString,
    parse_document,
    read_document,
    to_python,
    walk,
)
from mirror.deployment.errors import InvalidJson, UnreadableFile
from tests.deployment.helpers import corpus


def test_values_and_spans() -> None:
    text = '{"a": "x\\/y", "b": [1, -2.5e1, true, null], "c": {}}'
    document = parse_document(text, "f.json")
    root = document.root
    assert isinstance(root, JObject)
    a = root.get("a")
    assert isinstance(a, JString)
    assert a.value == "x/y"
    assert document.source(a) == '"x\\/y"'
    b = root.get("b")
    assert isinstance(b, JArray)
    assert [to_python(i) for i in b.items] == [1, -25.0, True, None]
    assert isinstance(b.items[0], JNumber)
    assert isinstance(b.items[3], JLiteral)
    assert to_python(root) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"\\u00e9"', "\u00e9"),
        ('"\\ud83d\\ude00"', "\U0001f600"),
        ('"\\ud800x"', "\ud800x"),
        ('"tab\\there"', "tab\there"),
        ('"\\"quoted\\""', '"quoted"'),
    ],
)
def test_string_escapes(text: str, value: str) -> None:
    node = parse_document(text, "f.json").root
    assert isinstance(node, JString)
    assert node.value == value


def test_lines_and_columns_with_crlf_and_tabs() -> None:
    text = '{\r\n\t"a": 1,\r\n\t"b": "x"\r\n}'
    document = parse_document(text, "f.json")
    root = document.root
    assert isinstance(root, JObject)
    member = root.member("b")
    assert member is not None
    assert document.line_of(member.key_start) == 3
    assert document.column_of(member.key_start) == 2
    assert document.indent_at(member.key_start) == "\t"
    assert document.newline == "\r\n"


def test_bom_is_kept_and_skipped() -> None:
    data = b'\xef\xbb\xbf{"a": 1}\n'
    document = parse_document(data, "f.json")
    assert document.has_bom
    assert to_python(document.root) == {"a": 1}
    assert document.encode() == data


def test_duplicate_keys_keep_all_and_the_last_wins() -> None:
    document = parse_document('{"a": 1, "b": 2, "a": 3}', "f.json")
    root = document.root
    assert isinstance(root, JObject)
    assert len(root.members) == 3
    assert to_python(root) == {"a": 3, "b": 2}
    assert [m.key for m in root.duplicates()] == ["a"]
    assert root.duplicates()[0].value.start == 6


def test_walk_visits_every_node_in_order() -> None:
    document = parse_document('{"a": [1, {"b": 2}]}', "f.json")
    kinds = [type(node).__name__ for node in walk(document.root)]
    assert kinds == ["JObject", "JArray", "JNumber", "JObject", "JNumber"]


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("", 1, 1, "the file is empty"),
        ('{"a": 1,}', 1, 9, "no trailing commas"),
        ('{\n  "a": 1\n  "b": 2\n}', 3, 3, "expected ',' or '}'"),
        ('{"a" 1}', 1, 6, "expected ':'"),
        ("[1, 2,]", 1, 7, "trailing commas"),
        ('{"a": "x}', 1, 7, "unterminated string"),
        ('{"a": tru}', 1, 7, "unexpected character 't'"),
        ('// note\n{"a": 1}', 1, 1, "comments are not allowed"),
        ('{"a": "\\x"}', 1, 8, "invalid escape"),
        ('{"a": "\\\n"}', 1, 8, "invalid escape '\\\\\\n'"),  # found by tests/fuzz/guided.py
        ('{"a": "\\u12"}', 1, 8, "invalid \\u escape"),
        ('{"a": 1} x', 1, 10, "unexpected text after"),
        ('{"a": "line\nbreak"}', 1, 12, "control character"),
        ('{"a": -}', 1, 7, "invalid number"),
        ("[" * 300, 1, 258, "nested more than"),
    ],
)
def test_malformed_json_names_file_line_and_column(
    text: str, line: int, column: int, fragment: str
) -> None:
    with pytest.raises(InvalidJson) as caught:
        parse_document(text, "deploy.json")
    message = str(caught.value)
    assert message.startswith(f"deploy.json:{line}:{column}: not valid JSON: ")
    assert fragment in message
    assert "\n" not in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile) as caught:
        read_document(tmp_path / "missing.json")
    assert str(caught.value).startswith(f"{tmp_path / 'missing.json'}: cannot read: ")


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile):
        read_document(tmp_path)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\xff\xfe{\x00}\x00", "is UTF-16 text: save it as UTF-8"),
        (b'{"a": "\xe9"}', "is not UTF-8 text (byte 7)"),
    ],
)
def test_encodings_other_than_utf8_are_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(UnreadableFile) as caught:
        parse_document(data, "f.json")
    assert str(caught.value) == f"f.json: {fragment}"


def test_display_name_is_used_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(InvalidJson) as caught:
        read_document(path, display_name="x.json")
    assert str(caught.value).startswith("x.json:1:2: ")


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name[:2])
def test_corpus_parses_like_the_standard_library(path: Path) -> None:
    data = path.read_bytes()
    document = parse_document(data, path.name)
    assert to_python(document.root) == json.loads(data)
    assert document.encode() == data


def test_newline_of_a_one_line_file() -> None:
    assert parse_document("{}", "f.json").newline == "\n"
