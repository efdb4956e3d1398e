"""Fuzzing the deployment manifest reader, `rewrite` and `lint`.

Inputs are arbitrary bytes and the real manifests of `tests/data/deployments`
mutated: image strings replaced by generated references, placeholders (nested) and
`$upstream` images, keys inserted (layered dotted keys, credentials, `integrity`),
values changed or removed, laid out in a few styles (CRLF, tabs, `\\/` escapes); all
bounded in size and depth.

Properties: only `MirrorError`s (`DeploymentFileError` for the file) are raised;
the reader agrees with `json.loads` on valid JSON; rewriting twice equals rewriting
once; outside the image strings and the registryCredentials entries (and the place
where a new entry goes) the text is unchanged byte for byte; the output is valid JSON;
every string the output holds that the input did not is a rewritten image, the
target's address or a credential placeholder (never a secret); lint findings point
into the file and are one line each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import assume, example, given
from hypothesis import strategies as st

from mirror.deployment.document import JString, parse_document, to_python
from mirror.deployment.errors import DeploymentFileError
from mirror.deployment.lint.engine import lint_source
from mirror.deployment.lint.finding import Severity
from mirror.deployment.resolvers import Target
from mirror.deployment.rewrite import RewriteResult, rewrite_source
from mirror.deployment.settings import RewriteSettings
from mirror.deployment.shape import REGISTRY_CREDENTIALS, DeploymentManifest, load_manifest
from mirror.errors import MirrorError
from tests.deployment.helpers import deployment
from tests.fuzz.strategies import (
    FAST,
    JSON,
    QUICK,
    check_message,
    dumps,
    hosts,
    image_strings,
    json_values,
    one_line,
    placeholders,
    texts,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "deployments"
CORPUS = {path.name: path.read_bytes() for path in sorted(DATA.glob("*.json"))}
TARGET = Target.parse("myacr.azurecr.io")
SETTINGS = RewriteSettings()
MAX_BYTES = 20_000
SECRET = "S3cr3t-in-the-input"

KEYS = [
    "image", "settings", "env", "value", "createOptions", "type", "status", "version",
    "modules", "systemModules", "runtime", "registryCredentials", "username", "password",
    "address", "properties.desired", "properties.desired.modules.fuzz",
    "properties.desired.systemModules.edgeHub", "properties.desired.runtime.settings",
    "properties.desired.runtime.settings.registryCredentials.myacr",
    "properties.desired.integrity", "integrity", "$edgeAgent", "$edgeHub", "modulesContent",
    "moduleContent", "content", "$schema-template", "schemaVersion", "routes", "myacr",
]  # fmt: skip


def _paths(value: JSON, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value below `value` (object keys and array indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _at(value: JSON, path: tuple[Any, ...]) -> JSON:
    for part in path:
        value = value[part]
    return value


def credential_entries() -> st.SearchStrategy[JSON]:
    return st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "username": st.one_of(st.just("pull-user"), placeholders, texts),
                "password": st.one_of(st.just(SECRET), placeholders, json_values(3)),
                "address": st.one_of(hosts, st.just("https://MyAcr.azurecr.io/"), texts),
            },
        ),
        json_values(3),
    )


def new_values() -> st.SearchStrategy[JSON]:
    return st.one_of(
        image_strings(),
        json_values(8),
        st.dictionaries(st.sampled_from(KEYS), json_values(4), max_size=3),
        st.fixed_dictionaries({"settings": st.fixed_dictionaries({"image": image_strings()})}),
        st.dictionaries(st.sampled_from(["myacr", "other", "myacr2"]), credential_entries()),
    )


@st.composite
def mutated_manifests(draw: st.DrawFn) -> JSON:
    """A corpus manifest, parsed, with a few random changes."""
    name = draw(st.sampled_from(sorted(CORPUS)))
    document = json.loads(CORPUS[name])
    for _ in range(draw(st.integers(0, 6))):
        paths = _paths(document)
        images = [p for p in paths if p and p[-1] == "image"]
        containers = [p for p in paths if isinstance(_at(document, p), dict | list)]
        action = draw(st.integers(0, 4))
        if action == 0 and images:  # an image string replaced
            path = draw(st.sampled_from(images))
            _at(document, path[:-1])[path[-1]] = draw(image_strings())
        elif action == 1:  # a key inserted (or a value appended to an array)
            parent = _at(document, draw(st.sampled_from(containers)))
            value = draw(new_values())
            if isinstance(parent, dict):
                parent[draw(st.one_of(st.sampled_from(KEYS), texts))] = value
            else:
                parent.append(value)
        elif action == 2 and len(paths) > 1:  # a value changed
            path = draw(st.sampled_from(paths[1:]))
            _at(document, path[:-1])[path[-1]] = draw(new_values())
        elif action == 3 and len(paths) > 1:  # a value removed
            path = draw(st.sampled_from(paths[1:]))
            del _at(document, path[:-1])[path[-1]]
        elif action == 4:  # a credential entry added or changed
            parents = [p for p in paths if p and p[-1] == "registryCredentials"]
            parents = [p for p in parents if isinstance(_at(document, p), dict)]
            if parents:
                entries = _at(document, draw(st.sampled_from(parents)))
                key = draw(st.sampled_from(["myacr", "other", "myacr2", *list(entries)]))
                entries[key] = draw(credential_entries())
    return document


@st.composite
def manifest_texts(draw: st.DrawFn) -> bytes:
    """A mutated corpus manifest as JSON text, in one of a few layouts."""
    text = dumps(draw(mutated_manifests()), draw(st.integers(0, 3)))
    if draw(st.booleans()):
        text = "\ufeff" + text
    data = text.encode()
    assume(len(data) <= MAX_BYTES)
    return data


@st.composite
def damaged(draw: st.DrawFn, data: st.SearchStrategy[bytes]) -> bytes:
    """Valid manifest bytes with a few bytes replaced, inserted or cut."""
    raw = bytearray(draw(data))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(raw)))
        byte = draw(st.sampled_from(b'{}[]",:\\/ \n0e-.tfnu\x00\xff'))
        raw[position : position + draw(st.integers(0, 3))] = bytes([byte])
    return bytes(raw)


corpus_files = st.sampled_from(sorted(CORPUS)).map(CORPUS.__getitem__)
any_input = st.one_of(
    st.binary(max_size=400),
    texts.map(str.encode),
    manifest_texts(),
    damaged(st.one_of(manifest_texts(), corpus_files)),
)

# Found by this suite (each pinned below with @example):
# a number of more than 4300 digits is a ValueError of int() in the reader;
LONG_NUMBER = b'{"modulesContent": {"n": ' + b"1" * 5000 + b"}}"
# an image whose digest has the wrong length escapes `classify` as docker-image-py's
# DigestInvalidLength;
AGENT = "mcr.microsoft.com/azureiotedge-agent:1.5"
HUB = "mcr.microsoft.com/azureiotedge-hub:1.5"
LONG_DIGEST = deployment(
    {"edgeAgent": f"mcr.microsoft.com/azureiotedge-agent@sha256:{'a' * 65}", "edgeHub": HUB}
).encode()
# the target's registryCredentials entry present but empty: three members inserted into
# one empty object are three overlapping edits (ValueError from apply_edits);
EMPTY_ENTRY = deployment({"edgeAgent": AGENT, "edgeHub": HUB}, credentials={"myacr": {}}).encode()
# an image refused with docker-image-py's message, which holds the raw image text;
UPPER_CASE_BREAK = deployment({"edgeAgent": "A\r", "edgeHub": HUB}).encode()
# a key holding a line break is echoed in a finding's path, which lint prints on one line.
KEY_WITH_BREAK = deployment({"edgeAgent": AGENT, "edgeHub": HUB, "mod\nule": HUB}).encode()


def _python_json(data: bytes) -> JSON | None:
    """`data` read by Python's json (the reference), or None if it is not strict JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    try:
        text = data.decode("utf-8")
        return json.loads(text.removeprefix("\ufeff"), parse_constant=refuse)
    except (ValueError, RecursionError):
        return None


@FAST
@given(any_input)
@example(LONG_NUMBER)
@example(b'"\\ud800"')
@example(b"[" * 300)
def test_parse_document(data: bytes) -> None:
    expected = _python_json(data)
    try:
        document = parse_document(data, "deployment.json")
    except DeploymentFileError as error:
        check_message(error, "deployment.json")
        refused_valid = expected is not None and "nested more than" not in str(error)
        if refused_valid:
            raise AssertionError(f"valid JSON refused: {error}") from error
        return
    assert expected is not None, "accepted what json.loads refuses"
    assert to_python(document.root) == expected
    assert document.encode() == data


# --- rewrite ------------------------------------------------------------------------


def rewrite(data: bytes | str) -> RewriteResult | None:
    """The rewrite of `data`, or None for a file it refuses (with a one-line error)."""
    try:
        return rewrite_source(data, "deployment.json", TARGET)
    except MirrorError as error:
        check_message(error, "deployment.json")
        return None


def editable(manifest: DeploymentManifest) -> list[tuple[int, int]]:
    """The spans a rewrite may change: module image strings, credential entries, and the
    end (or whole, if empty) of each object where a new entry may go."""
    spans = [
        (m.image.node.start, m.image.node.end)
        for m in manifest.modules
        if m.image is not None and isinstance(m.image.node, JString)
    ]
    spans += [(c.located.node.start, c.located.node.end) for c in manifest.credentials]
    agent = manifest.agent
    if agent is not None:
        parents = [agent.find(*REGISTRY_CREDENTIALS[:depth]) for depth in range(2, 6)]
        for parent in [*parents, agent.located]:
            obj = parent.obj if parent is not None else None
            if obj is None:
                continue
            if obj.members:
                end = obj.members[-1].value.end
                spans.append((end, end))
            else:
                spans.append((obj.start, obj.end))
    return sorted(spans)


def unchanged_outside(original: str, output: str, spans: list[tuple[int, int]]) -> bool:
    """Whether `output` is `original` with only the text of `spans` replaced."""
    pieces, position = [], 0
    for start, end in spans:
        if start >= position:
            pieces.append(original[position:start])
        position = max(position, end)
    pieces.append(original[position:])
    if len(pieces) == 1:
        return output == original
    if not output.startswith(pieces[0]) or not output.endswith(pieces[-1]):
        return False
    cursor = len(pieces[0])
    for piece in pieces[1:-1]:
        found = output.find(piece, cursor)
        if found < 0:
            return False
        cursor = found + len(piece)
    return cursor <= len(output) - len(pieces[-1])


def strings_of(value: JSON) -> set[str]:
    """Every string in `value`, keys included."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set(value).union(*(strings_of(child) for child in value.values()))
    if isinstance(value, list):
        return set().union(*(strings_of(child) for child in value))
    return set()


def _pairs(pairs: list[tuple[str, JSON]]) -> dict[str, list[JSON]]:
    """An object hook keeping every value of a repeated key."""
    merged: dict[str, list[JSON]] = {}
    for key, value in pairs:
        merged.setdefault(key, []).append(value)
    return merged


NEW_KEY = re.compile(
    r"(?:properties\.desired(?:\.runtime(?:\.settings(?:\.registryCredentials(?:\.myacr[0-9]*)?)?)?)?"
    r"|runtime|settings|registryCredentials|username|password|address|myacr[0-9]*)"
)


@FAST
@given(st.one_of(manifest_texts(), manifest_texts(), any_input))
@example(CORPUS["07_Azure_azure-iot-cli-extension_layered-dotted.json"])
@example(LONG_NUMBER)
@example(LONG_DIGEST)
@example(EMPTY_ENTRY)
def test_rewrite(data: bytes) -> None:
    result = rewrite(data)
    if result is None:
        return
    manifest = load_manifest(parse_document(data, "deployment.json"))
    # Idempotent: the output rewritten again is the output.
    again = rewrite(result.text)
    assert again is not None, "the rewrite's own output is refused"
    assert again.text == result.text, "rewriting twice differs from rewriting once"
    assert not again.changes
    # Nothing outside the image strings and the credential entries changed.
    assert unchanged_outside(result.original, result.text, editable(manifest)), (
        "text outside the image strings and credentials changed"
    )
    assert result.encode().startswith(b"\xef\xbb\xbf") == data.startswith(b"\xef\xbb\xbf")
    # The output is JSON, and holds no string the input did not but what a rewrite writes.
    before = json.loads(data.decode().removeprefix("\ufeff"), object_pairs_hook=_pairs)
    after = json.loads(result.text.removeprefix("\ufeff"), object_pairs_hook=_pairs)
    allowed = {c.new for c in result.changes}
    allowed |= {SETTINGS.username_variable, SETTINGS.password_variable, TARGET.registry}
    added = strings_of(after) - strings_of(before) - allowed
    assert all(NEW_KEY.fullmatch(text) for text in added), f"new strings: {added}"
    # A secret of the input is never copied anywhere else.
    assert result.text.count(SECRET) <= result.original.count(SECRET)
    if not result.changes:
        assert result.text == result.original


# --- lint ---------------------------------------------------------------------------


@QUICK
@given(st.one_of(manifest_texts(), any_input))
@example(LONG_NUMBER)
@example(LONG_DIGEST)
@example(UPPER_CASE_BREAK)
@example(KEY_WITH_BREAK)
def test_lint(data: bytes) -> None:
    try:
        findings = lint_source(data, "deployment.json")
    except MirrorError as error:
        check_message(error, "deployment.json")
        return
    text = data.decode("utf-8")
    lines = len(re.findall(r"\r\n|\r|\n", text)) + 1
    for finding in findings:
        assert finding.severity in Severity
        assert 1 <= finding.line <= lines, finding
        assert finding.column >= 1, finding
        assert finding.file == "deployment.json"
        assert one_line(finding.message), f"a finding over several lines: {finding.message!r}"
        assert one_line(finding.path), f"a finding's path over several lines: {finding.path!r}"
