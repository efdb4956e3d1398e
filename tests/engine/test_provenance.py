"""Which provenance records owed by earlier runs a run attaches (pure: no registry)."""

from __future__ import annotations

import json

from mirror.engine.plan import TagStep, TagWrite
from mirror.engine.provenance import UNLOCKED, due, encode, planned
from mirror.governance.decide import Action, Carry, Governance
from mirror.ledger import Owed
from mirror.manifest import Manifest

AGENT, HUB = "azureiotedge-agent", "azureiotedge-hub"


def index(name: str) -> Manifest:
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
        "annotations": {"n": name},
    }
    return Manifest.parse(json.dumps(document).encode())


A, B = index("a").digest, index("b").digest


def owed(tag: str, digest: str = A, repository: str = AGENT) -> Owed:
    return Owed(repository, tag, digest, encode({"tag": tag, "lock": UNLOCKED}).decode())


def step(tag: str, target: str | None, action: Action = Action.SKIP) -> TagStep:
    """A step that looked at the tag: upstream at A, the target at `target`."""
    return TagStep(AGENT, tag, action, "why", A, target)


def test_a_debt_is_due_where_the_run_saw_the_tag_still_at_its_digest() -> None:
    debts = [owed("1.5.1"), owed("1.5"), owed("1.5.2"), owed("1.5.4")]
    steps = [step("1.5.1", A), step("1.5", B), step("1.5.2", A), step("1.5.4", None)]
    written = [TagWrite(AGENT, "1.5.2", index("a"))]  # written again: a record of its own
    found = due(debts, steps, written, Governance())
    assert [d.tag for d in found.now] == ["1.5.1"]
    # moved in the target, written again, gone from the target
    assert found.settled == [(AGENT, "1.5"), (AGENT, "1.5.2"), (AGENT, "1.5.4")]
    assert found.unseen == []


def test_a_tag_the_run_did_not_look_at_waits_or_is_asked_about() -> None:
    debts = [owed("1.4.0"), owed("1.5.0", repository=HUB)]
    skipped = [TagStep(AGENT, "1.4.0", Action.SKIP, "line 1.4 is not selected")]
    scoped = due(debts, skipped, (), Governance())  # a run scoped to one release
    assert (scoped.now, scoped.settled, scoped.unseen) == ([], [], [])
    whole = due(debts, skipped, (), Governance(), listed=[AGENT])  # agent looked at in full
    assert [d.tag for d in whole.unseen] == ["1.4.0"]  # only the target can say
    assert (whole.now, whole.settled) == ([], [])  # the hub's debt waits


def test_debts_of_a_repository_that_no_longer_asks_for_records_are_dropped() -> None:
    off = Governance(carry={AGENT: Carry(provenance=False)})
    found = due([owed("1.5.1")], [step("1.5.1", A)], (), off)
    assert (found.now, found.settled) == ([], [(AGENT, "1.5.1")])
    assert planned([owed("1.5.1")], [step("1.5.1", A)], off) == []


def test_plan_shows_the_debts_of_tags_it_saw_and_will_not_rewrite() -> None:
    debts = [owed("1.5.1"), owed("1.5")]
    steps = [step("1.5.1", A), step("1.5", A, Action.UPDATE)]  # 1.5 moves: a new record
    assert planned(debts, steps, Governance()) == [owed("1.5.1")]
