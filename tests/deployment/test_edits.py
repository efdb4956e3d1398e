"""Surgical edits: splices, string literals in the file's style, inserted members."""

from __future__ import annotations

import pytest

from mirror.deployment.document import Document, JObject, parse_document
from mirror.deployment.edits import (
    Edit,
    Style,
    apply_edits,
    indent_unit,
    insert_member,
    render,
    string_literal,
)


def test_apply_edits_in_any_order() -> None:
    assert apply_edits("abcdef", [Edit(4, 5, "E"), Edit(0, 1, "A")]) == "AbcdEf"
    assert apply_edits("abc", [Edit(1, 1, "x"), Edit(1, 1, "y")]) == "axybc"


def test_overlapping_edits_are_refused() -> None:
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits("abcdef", [Edit(0, 3, "x"), Edit(2, 4, "y")])


@pytest.mark.parametrize(
    ("value", "like", "literal"),
    [
        ("a/b", '"x"', '"a/b"'),
        ("a/b", '"x\\/y"', '"a\\/b"'),
        ('q"\\', '""', '"q\\"\\\\"'),
        ("\x01\n", '""', '"\\u0001\\n"'),
        ("\u00e9", '""', '"\u00e9"'),
        ("\u00e9", '"\\u00e8"', '"\\u00e9"'),
        ("\U0001f600", '"\\u00e8"', '"\\ud83d\\ude00"'),
    ],
)
def test_string_literal_follows_the_source_style(value: str, like: str, literal: str) -> None:
    assert string_literal(value, like) == literal


def obj_at(text: str, *keys: str) -> tuple[Document, JObject]:
    document = parse_document(text, "f.json")
    node = document.root
    for key in keys:
        assert isinstance(node, JObject)
        found = node.get(key)
        assert found is not None
        node = found
    assert isinstance(node, JObject)
    return document, node


@pytest.mark.parametrize(
    ("text", "keys", "expected"),
    [
        (
            '{\n  "a": {}\n}\n',
            ("a",),
            '{\n  "a": {\n    "k": {\n      "u": "v"\n    }\n  }\n}\n',
        ),
        (
            '{\r\n    "a": {\r\n        "x": 1\r\n    }\r\n}',
            ("a",),
            '{\r\n    "a": {\r\n        "x": 1,\r\n        "k": {\r\n            "u": "v"\r\n'
            "        }\r\n    }\r\n}",
        ),
        (
            '{\n\t"a": {\n\t\t"x" : 1\n\t}\n}',
            ("a",),
            '{\n\t"a": {\n\t\t"x" : 1,\n\t\t"k" : {\n\t\t\t"u": "v"\n\t\t}\n\t}\n}',
        ),
        ('{"a":{"x":1}}', ("a",), '{"a":{"x":1, "k":{"u":"v"}}}'),
        ('{"a":{}}', ("a",), '{"a":{"k":{"u":"v"}}}'),
        ('{\n  "a": {"x": 1, "y": 2}\n}', ("a",), '{\n  "a": {"x": 1, "y": 2, "k": {"u": "v"}}\n}'),
    ],
)
def test_insert_member_in_the_file_style(text: str, keys: tuple[str, ...], expected: str) -> None:
    document, node = obj_at(text, *keys)
    edit = insert_member(document, node, "k", {"u": "v"})
    result = apply_edits(text, [edit])
    assert result == expected
    parse_document(result, "f.json")


def test_indent_unit() -> None:
    assert indent_unit(parse_document('{\n    "a": 1\n}', "f")) == "    "
    assert indent_unit(parse_document('{\n\t"a": 1\n}', "f")) == "\t"
    assert indent_unit(parse_document("{}", "f")) == "  "


def test_render_nested() -> None:
    style = Style("\n", "  ", ": ")
    assert render({}, "", style, True) == "{}"
    assert render({"a": {"b": "c"}}, "", style, True) == '{\n  "a": {\n    "b": "c"\n  }\n}'
    assert render({"a": "b"}, "", style, False) == '{"a": "b"}'
