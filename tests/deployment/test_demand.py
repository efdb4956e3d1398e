"""What deployments pull (`deployment/demand.py`): the images each manifest of the
corpus names from mcr.microsoft.com, against golden lists, and placeholders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.deployment.demand import collect, read_manifests
from mirror.deployment.errors import DeploymentFileError

DATA = Path(__file__).parents[1] / "data" / "deployments"
GOLDEN = json.loads((DATA / "expected" / "demand.json").read_text())


def summary(path: Path, **values: str) -> dict[str, list[str]]:
    demand = collect(read_manifests([path]), values=values)
    return {
        "named": [
            f"{n.repository}:{n.reference} (line {n.line}, {n.module})" for n in demand.named
        ],
        "unresolved": [f"{p.image} (line {p.line}, {p.module})" for p in demand.unresolved],
        "passed": [f"{p.image}: {p.why}" for p in demand.passed if not p.unresolved],
    }


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_each_manifest_names_what_the_golden_list_says(name: str) -> None:
    assert summary(DATA / name) == GOLDEN[name]


def test_the_golden_lists_cover_the_whole_corpus() -> None:
    assert sorted(GOLDEN) == sorted(p.name for p in DATA.glob("*.json"))


def test_a_directory_stands_for_its_manifests_in_name_order() -> None:
    demand = collect(read_manifests([DATA]))
    assert demand.files == [str(p) for p in sorted(DATA.glob("*.json"))]
    assert "oss/v2/docker/registry" in demand.repositories()


def test_a_value_for_a_placeholder_is_substituted_before_classifying() -> None:
    found = summary(DATA / "04_Azure_iotedgedev_tool-template.json", EDGE_RUNTIME_VERSION="1.5")
    assert found["unresolved"] == []
    assert found["named"][:2] == [
        "azureiotedge-agent:1.5 (line 19, edgeAgent)",
        "azureiotedge-hub:1.5 (line 28, edgeHub)",
    ]


def test_pipeline_tokens_take_values_by_their_name() -> None:
    found = summary(
        DATA / "01_Azure_iotedge_nested-toplayer-base.json",
        **{"Container_Registry": "mcr.microsoft.com", "Build.BuildNumber": "1.5.3"},
    )
    # <Architecture> still has no value: still reported, never guessed
    assert [u.split(" (")[0] for u in found["unresolved"]] == [
        "<Container_Registry>/microsoft/azureiotedge-agent:<Build.BuildNumber>-linux-<Architecture>",
        "<Container_Registry>/microsoft/azureiotedge-hub:<Build.BuildNumber>-linux-<Architecture>",
        "<Container_Registry>/microsoft/azureiotedge-api-proxy:<Build.BuildNumber>-linux-<Architecture>",
    ]
    complete = summary(
        DATA / "01_Azure_iotedge_nested-toplayer-base.json",
        **{"Container_Registry": "mcr.microsoft.com", "Build.BuildNumber": "1.5.3"},
        Architecture="amd64",
    )
    assert (
        complete["named"][0]
        == "microsoft/azureiotedge-agent:1.5.3-linux-amd64 (line 24, edgeAgent)"
    )


def test_a_value_pointing_elsewhere_is_not_mirrored_nor_unresolved() -> None:
    found = summary(
        DATA / "01_Azure_iotedge_nested-toplayer-base.json", Container_Registry="myacr.azurecr.io"
    )
    assert found["unresolved"] == []
    assert found["named"] == ["oss/v2/docker/registry:v3.0.0 (line 65, dockerContainerRegistry)"]
    assert [p.split(": ", 1)[1] for p in found["passed"]] == [
        f"not from a mirrored registry (myacr.azurecr.io/microsoft/{name})"
        for name in ("azureiotedge-agent", "azureiotedge-hub", "azureiotedge-api-proxy")
    ]


def test_registries_are_globs_over_registry_and_repository() -> None:
    manifests = read_manifests([DATA / "03_Azure_iotedge_metrics-collector-example.json"])
    demand = collect(manifests, registries=["mcr.microsoft.com/azureiotedge-*-collector"])
    assert [n.repository for n in demand.named] == ["azureiotedge-metrics-collector"]
    assert [p.why for p in demand.passed] == [
        "not from a mirrored registry (mcr.microsoft.com/azureiotedge-agent)",
        "not from a mirrored registry (mcr.microsoft.com/azureiotedge-hub)",
    ]


def test_a_digest_is_named_as_itself(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    manifest = json.loads(
        (
            DATA / "13_Azure-Samples_iot-central-docs-samples_transparent-gateway-1-4.json"
        ).read_text()
    )
    text = json.dumps(manifest).replace("azureiotedge-agent:1.4", f"azureiotedge-agent@{digest}")
    pinned = tmp_path / "pinned.json"
    pinned.write_text(text)
    demand = collect(read_manifests([pinned]))
    assert demand.references("azureiotedge-agent").keys() == {digest}


def test_a_file_that_is_not_a_manifest_stops_the_list(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "modulesContent": \n')
    with pytest.raises(DeploymentFileError, match=r"broken.json:\d+"):
        read_manifests([broken])
