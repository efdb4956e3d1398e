"""createOptions: chunks gathered in order, joined, parsed, their names checked."""

from __future__ import annotations

import json

import pytest

from mirror.deployment.create_options import (
    Form,
    chunk_members,
    read_create_options,
    split_chunks,
)
from mirror.deployment.document import JObject, parse_document


def settings(text: str) -> JObject:
    root = parse_document(text, "f.json").root
    assert isinstance(root, JObject)
    return root


def test_chunks_are_joined_in_number_order() -> None:
    whole = json.dumps({"HostConfig": {"Privileged": True}})
    first, second = whole[:10], whole[10:]
    node = settings(json.dumps({"createOptions01": second, "image": "x", "createOptions": first}))
    options = read_create_options(node)
    assert [c.key for c in options.chunks] == ["createOptions", "createOptions01"]
    assert options.form is Form.STRING
    assert options.get("HostConfig", "Privileged") is True
    assert options.naming_problems == ()


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        (["createOptions01"], "createOptions01 has no preceding createOptions chunk"),
        (["createOptions", "createOptions02"], "createOptions02 should be createOptions01"),
        (["createOptions", "createOptions1"], "createOptions1 should be createOptions01"),
    ],
)
def test_chunk_naming_problems(keys: list[str], problem: str) -> None:
    node = settings(json.dumps(dict.fromkeys(keys, "")))
    assert problem in read_create_options(node).naming_problems[0]


def test_too_many_chunks() -> None:
    keys = ["createOptions"] + [f"createOptions{i:02d}" for i in range(1, 101)]
    node = settings(json.dumps(dict.fromkeys(keys, "")))
    assert any("at most 100" in p for p in read_create_options(node).naming_problems)


@pytest.mark.parametrize(
    ("value", "form", "parsed", "error"),
    [
        ('""', Form.STRING, {}, None),
        ('"{}"', Form.STRING, {}, None),
        ('"{\\"a\\": 1}"', Form.STRING, {"a": 1}, None),
        ('"[1]"', Form.STRING, None, "createOptions must hold a JSON object"),
        ('"{"', Form.STRING, None, "createOptions is not valid JSON"),
        ('{"a": 1}', Form.OBJECT, {"a": 1}, None),
        ("12", Form.OTHER, None, "createOptions must be a string"),
    ],
)
def test_forms(value: str, form: Form, parsed: object, error: str | None) -> None:
    options = read_create_options(settings('{"createOptions": ' + value + "}"))
    assert options.form is form
    assert options.value == parsed
    if error is None:
        assert options.error is None
    else:
        assert options.error is not None
        assert options.error.startswith(error)


def test_absent_options_are_empty() -> None:
    options = read_create_options(settings('{"image": "x"}'))
    assert options.form is Form.ABSENT
    assert options.value == {}
    assert options.first is None
    assert read_create_options(None).form is Form.ABSENT


def test_object_form_keeps_its_node() -> None:
    options = read_create_options(settings('{"createOptions": {"HostConfig": {}}}'))
    assert options.node is not None
    assert options.get("HostConfig", "Missing") is None
    assert options.get("HostConfig", "Missing", "Deeper") is None


def test_oversized_chunks() -> None:
    node = settings(json.dumps({"createOptions": "x" * 513, "createOptions01": "y"}))
    assert [c.key for c in read_create_options(node).oversized] == ["createOptions"]


def test_lowercase_spelling_is_a_chunk() -> None:
    node = settings('{"createoptions": "{}", "image": "x"}')
    assert [m.key for m in chunk_members(node)] == ["createoptions"]


def test_split_chunks() -> None:
    assert split_chunks("") == [""]
    assert split_chunks("abcde", size=2) == ["ab", "cd", "e"]
