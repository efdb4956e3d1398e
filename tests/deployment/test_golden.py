"""Golden tests over every manifest of the corpus (tests/data/deployments).

Rewrite output and lint findings are compared with the files in `expected/`; a
second rewrite must change nothing; and once image strings and the registry
credentials member are cut out of input and output, the two must be identical byte
for byte. `MIRROR_REGEN_GOLDEN=1` rewrites the expected files instead of comparing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.deployment.document import Document, JObject, JString, Member, parse_document
from mirror.deployment.edits import Edit, apply_edits
from mirror.deployment.lint.engine import lint_manifest
from mirror.deployment.resolvers import Target
from mirror.deployment.rewrite import RewriteResult, rewrite_manifest
from mirror.deployment.shape import REGISTRY_CREDENTIALS, DeploymentManifest, load_manifest
from tests.deployment.helpers import EXPECTED, REGENERATE, corpus

TARGET = Target.parse("myacr.azurecr.io")
CORPUS = corpus()


def load(data: bytes, name: str) -> DeploymentManifest:
    return load_manifest(parse_document(data, name))


def rewrite(path: Path) -> RewriteResult:
    return rewrite_manifest(load(path.read_bytes(), path.name), TARGET)


def check_golden(expected: Path, actual: bytes) -> None:
    if REGENERATE:
        expected.write_bytes(actual)
    assert expected.exists(), f"{expected.name} is missing: run with MIRROR_REGEN_GOLDEN=1"
    assert actual == expected.read_bytes()


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) == 13


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:2])
def test_rewrite_matches_the_golden_file(path: Path) -> None:
    check_golden(EXPECTED / f"{path.stem}.rewritten.json", rewrite(path).encode())


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:2])
def test_second_rewrite_changes_nothing(path: Path) -> None:
    first = rewrite(path)
    second = rewrite_manifest(load(first.encode(), path.name), TARGET)
    assert not second.changed
    assert second.changes == ()
    assert second.encode() == first.encode()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:2])
def test_only_images_and_the_credentials_entry_change(path: Path) -> None:
    before = load(path.read_bytes(), path.name)
    after = load(rewrite(path).encode(), path.name)
    assert cut_allowed(after) == cut_allowed(before)
    assert other_entries(after) == other_entries(before)
    assert after.document.newline == before.document.newline


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:2])
def test_lint_matches_the_golden_file(path: Path) -> None:
    findings = lint_manifest(load(path.read_bytes(), path.name))
    rendered = json.dumps([f.as_dict() for f in findings], indent=2) + "\n"
    check_golden(EXPECTED / f"{path.stem}.lint.json", rendered.encode())


def cut_allowed(manifest: DeploymentManifest) -> bytes:
    """The text with every image string blanked and the registryCredentials member cut."""
    document = manifest.document
    edits = [
        Edit(m.image.node.start, m.image.node.end, '"<image>"')
        for m in manifest.modules
        if m.image is not None and isinstance(m.image.node, JString)
    ]
    agent = manifest.agent
    if agent is not None:
        settings = agent.find(*REGISTRY_CREDENTIALS[:-1])
        if settings is not None and settings.obj is not None:
            member = settings.obj.member(REGISTRY_CREDENTIALS[-1])
            if member is not None:
                edits.append(member_cut(document, settings.obj, member))
        prefix = ".".join(REGISTRY_CREDENTIALS)
        edits += [
            member_cut(document, agent.node, m)
            for m in agent.node.members
            if m.key.startswith(prefix)
        ]
    return apply_edits(document.text, edits).encode()


def member_cut(document: Document, obj: JObject, member: Member) -> Edit:
    """Remove `member` with the separator that joins it to its neighbours."""
    position = obj.members.index(member)
    if position > 0:
        return Edit(obj.members[position - 1].value.end, member.value.end, "")
    if len(obj.members) > 1:
        return Edit(member.key_start, obj.members[1].key_start, "")
    return Edit(member.key_start, member.value.end, "")


def other_entries(manifest: DeploymentManifest) -> dict[str, str]:
    return {
        c.name: manifest.document.source(c.located.node)
        for c in manifest.credentials
        if c.name != TARGET.credential_name
    }
