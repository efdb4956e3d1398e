"""Which owed provenance records a run attaches (pure: no registry)."""

from __future__ import annotations

import json

from mirror.engine.plan import TagStep, TagWrite
from mirror.engine.provenance import LOCKED, UNLOCKED, due, encode, relocked
from mirror.governance.decide import Action
from mirror.ledger import Owed
from mirror.manifest import Manifest

AGENT = "azureiotedge-agent"


def index(name: str) -> Manifest:
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
        "annotations": {"n": name},
    }
    return Manifest.parse(json.dumps(document).encode())


A, B = index("a"), index("b")


def owed(tag: str, digest: str) -> Owed:
    return Owed(AGENT, tag, digest, encode({"tag": tag, "lock": UNLOCKED}).decode())


def up_to_date(tag: str, digest: str) -> TagStep:
    return TagStep(AGENT, tag, Action.SKIP, "up to date", digest, digest)


def test_a_debt_is_due_only_where_the_run_saw_the_tag_still_at_its_digest() -> None:
    debts = [
        owed("1.5.1", A.digest),
        owed("1.5", A.digest),
        owed("1.5.2", A.digest),
        owed("1.4.0", A.digest),
    ]
    steps = [
        up_to_date("1.5.1", A.digest),
        up_to_date("1.5", B.digest),
        up_to_date("1.5.2", A.digest),
    ]
    written = [TagWrite(AGENT, "1.5.2", A)]  # written again: a new record of its own
    found = due(debts, steps, written)
    assert [d.tag for d in found.owed] == ["1.5.1"]
    assert found.settled == [(AGENT, "1.5"), (AGENT, "1.5.2")]  # moved; rewritten
    # 1.4.0 was not looked at (a scoped run): it stays owed for a later run, untouched


def test_a_tag_locked_by_the_attaching_run_is_recorded_locked() -> None:
    debt = relocked(owed("1.5.1", A.digest))
    assert json.loads(debt.document) == {"tag": "1.5.1", "lock": LOCKED}
    assert (debt.repository, debt.tag, debt.digest) == (AGENT, "1.5.1", A.digest)
