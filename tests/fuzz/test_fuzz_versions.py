"""Fuzzing the IoT Edge tag grammar and scopes.

Properties: `parse_tag` never raises and keeps the text; a specific tag's version is a
prefix of the tag; sort keys are a total order; `Version.parse`, `Line.parse` and
`VersionRange.parse` raise only `ValueError` and what they accept prints back as
read; a scope survives its JSON form and a union of scopes covers what either covers.
"""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from mirror.governance.scope import Scope
from mirror.governance.versions import (
    ARCHITECTURES,
    Line,
    Tag,
    TagKind,
    Version,
    VersionRange,
    parse_tag,
    sort_tags,
)
from tests.fuzz.strategies import FAST, texts

numbers = st.one_of(st.integers(0, 12), st.integers(0, 10**30)).map(str)
zero_padded = st.sampled_from(["00", "01", "007"])


@st.composite
def version_texts(draw: st.DrawFn, min_parts: int = 3, max_parts: int = 4) -> str:
    count = draw(st.integers(min_parts, max_parts))
    parts = [draw(st.one_of(numbers, zero_padded)) for _ in range(count)]
    text = ".".join(parts)
    if draw(st.booleans()):
        text += draw(st.sampled_from(["-rc", "-rc.", "-RC", "-rc-"])) + draw(numbers)
    return text


@st.composite
def tag_texts(draw: st.DrawFn) -> str:
    """Tags in (and near) the IoT Edge grammar."""
    text = draw(version_texts(1, 5))
    if draw(st.booleans()):
        text += "-" + draw(st.sampled_from([*ARCHITECTURES, "linux-x86", "arm32v7"]))
    if draw(st.booleans()):
        text += draw(st.sampled_from([".debug", "-debug", ".DEBUG"]))
    if draw(st.integers(0, 4)) == 0:
        text = draw(st.sampled_from(["v", " ", "", "latest-"])) + text
    return text


tag_inputs = st.one_of(tag_texts(), st.just("latest"), texts)


@FAST
@given(tag_inputs)
def test_parse_tag(text: str) -> None:
    tag = parse_tag(text)
    assert tag.text == text
    assert str(tag) == text
    if tag.kind is TagKind.SPECIFIC:
        assert tag.version is not None
        assert tag.line == tag.version.line
        assert text.startswith(tag.version.text)
        assert Version.parse(tag.version.text) == tag.version
        assert tag.release == tag.version.text
    elif tag.kind is TagKind.ROLLING:
        assert tag.version is None
        assert tag.line is not None
        assert text.startswith(str(tag.line))
    else:
        assert tag.version is None
        assert tag.line is None
    assert parse_tag(text) == tag


@FAST
@given(st.lists(tag_inputs, max_size=12), st.randoms(use_true_random=False))
def test_sort_keys_are_a_total_order(texts_: list[str], shuffler: random.Random) -> None:
    tags = [parse_tag(text) for text in texts_]
    once = sort_tags(tags)
    assert sort_tags(once) == once
    shuffled = list(tags)
    shuffler.shuffle(shuffled)
    assert [t.sort_key for t in sort_tags(shuffled)] == [t.sort_key for t in once]
    for a in tags:
        for b in tags:
            ka, kb = a.sort_key, b.sort_key
            assert (ka < kb) + (ka == kb) + (ka > kb) == 1, (a, b)
            assert (ka == kb) == (a.text == b.text), (a, b)


@FAST
@given(st.one_of(version_texts(), version_texts(1, 5), texts))
def test_version_parse(text: str) -> None:
    try:
        version = Version.parse(text)
    except ValueError:
        return
    assert str(version) == text
    assert len(version.numbers) in (3, 4)
    assert Version.parse(text) == version
    assert parse_tag(text).version == version


@FAST
@given(st.one_of(version_texts(2, 2), texts, version_texts(1, 3).map(lambda t: f" {t}\n")))
def test_line_parse(text: str) -> None:
    try:
        line = Line.parse(text)
    except ValueError:
        return
    assert Line.parse(str(line)) == line
    assert str(line).isascii()


@st.composite
def range_texts(draw: st.DrawFn) -> str:
    clauses = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["", ">=", "<=", "==", "!=", ">", "<", "=>", "~="]))
        version = draw(version_texts(1, 5))
        wildcard = draw(st.sampled_from(["", "", ".*", "*"]))
        clauses.append(op + draw(st.sampled_from(["", " "])) + version + wildcard)
    return ",".join(clauses)


@FAST
@given(st.one_of(range_texts(), st.just("*"), texts), st.lists(version_texts(), max_size=5))
def test_version_range_parse(text: str, versions: list[str]) -> None:
    try:
        parsed = VersionRange.parse(text)
    except ValueError:
        return
    assert str(parsed) == text
    for version_text in versions:
        try:
            version = Version.parse(version_text)
        except ValueError:
            continue
        inside = version in parsed
        assert isinstance(inside, bool)
        assert parsed.admits(parse_tag(version_text)) == inside
        if inside:
            assert parsed.admits_line(version.line)


@st.composite
def valid_versions(draw: st.DrawFn) -> Version:
    parts = draw(st.lists(st.integers(0, 50), min_size=3, max_size=4))
    text = ".".join(map(str, parts))
    if draw(st.booleans()):
        text += draw(st.sampled_from(["-rc", "-rc."])) + str(draw(st.integers(0, 9)))
    return Version.parse(text)


scopes = st.builds(
    Scope,
    repositories=st.one_of(
        st.none(), st.frozensets(st.sampled_from(["azureiotedge-agent", "azureiotedge-hub"]))
    ),
    versions=st.one_of(st.none(), st.frozensets(valid_versions(), max_size=3)),
    lines=st.one_of(
        st.none(), st.frozensets(st.builds(Line, st.integers(0, 3), st.integers(0, 9)), max_size=3)
    ),
    tags=st.one_of(st.none(), st.frozensets(tag_inputs, max_size=3)),
)


def _same_values(a: Scope, b: Scope) -> bool:
    """Equal, and every version spelled the same (equality ignores `-rc1` vs `-rc.1`)."""
    spelled = sorted(v.text for v in a.versions or ()) == sorted(v.text for v in b.versions or ())
    return a == b and spelled


@FAST
@given(scopes)
def test_scope_json_round_trip(scope: Scope) -> None:
    data = json.loads(json.dumps(scope.to_json()))
    again = Scope.from_json(data)
    assert _same_values(again, scope)
    assert again.to_json() == scope.to_json()


@FAST
@given(scopes, scopes, st.lists(tag_inputs, max_size=8))
def test_scope_union_covers_both(a: Scope, b: Scope, texts_: list[str]) -> None:
    union = a | b
    for text in texts_:
        tag: Tag = parse_tag(text)
        if a.covers(tag) or b.covers(tag):
            assert union.covers(tag), (a, b, text)
    for repository in ("azureiotedge-agent", "azureiotedge-hub"):
        configured = [repository]
        if a.repositories_of(configured) or b.repositories_of(configured):
            assert union.repositories_of(configured) == configured
    # What either run would have looked at, the merged run looks at.
    narrowed = set(union.narrow(texts_))
    assert set(a.narrow(texts_)) <= narrowed
    assert set(b.narrow(texts_)) <= narrowed
