"""Recognising manifest shapes and enumerating what they declare."""

from __future__ import annotations

import pytest

from mirror.deployment.create_options import Form
from mirror.deployment.document import parse_document
from mirror.deployment.errors import NotADeploymentManifest
from mirror.deployment.shape import REGISTRY_CREDENTIALS, Role, Shape, load_manifest
from tests.deployment.helpers import DATA, dumps, manifest

AGENT = {
    "properties.desired": {
        "schemaVersion": "1.1",
        "runtime": {"type": "docker", "settings": {}},
        "systemModules": {
            "edgeAgent": {"type": "docker", "settings": {"image": "a:1"}},
            "edgeHub": {"type": "docker", "settings": {"image": "h:1"}},
        },
        "modules": {"m": {"settings": {"image": "m:1"}, "env": {"Mode": {"value": 3}}}},
    }
}


@pytest.mark.parametrize(
    ("document", "shape", "path"),
    [
        ({"modulesContent": {"$edgeAgent": AGENT}}, Shape.MODULES_CONTENT, "modulesContent"),
        (
            {"content": {"modulesContent": {"$edgeAgent": AGENT}}},
            Shape.CONTENT_WRAPPER,
            "content.modulesContent",
        ),
        ({"moduleContent": {"$edgeAgent": AGENT}}, Shape.LEGACY, "moduleContent"),
        (
            {"content": {"moduleContent": {"$edgeAgent": AGENT}}},
            Shape.CONTENT_WRAPPER,
            "content.moduleContent",
        ),
    ],
)
def test_shapes(document: dict[str, object], shape: Shape, path: str) -> None:
    loaded = manifest(dumps(document))
    assert loaded.shape is shape
    assert loaded.content.path == path
    assert [(m.name, m.role) for m in loaded.modules] == [
        ("edgeAgent", Role.AGENT),
        ("edgeHub", Role.HUB),
        ("m", Role.MODULE),
    ]
    assert loaded.modules[2].image is not None
    assert (
        loaded.modules[2].image.path
        == f"{path}.$edgeAgent.properties.desired.modules.m.settings.image"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1]", "the top level is not a JSON object"),
        ('{"a": 1}', "no modulesContent (nor content.modulesContent)"),
        ('{\n"modulesContent": []}', "modulesContent is not an object"),
    ],
)
def test_not_a_deployment_manifest(text: str, fragment: str) -> None:
    with pytest.raises(NotADeploymentManifest) as caught:
        manifest(text, file="x.json")
    assert str(caught.value).startswith("x.json")
    assert fragment in str(caught.value)


def test_line_of_a_non_object_modules_content() -> None:
    with pytest.raises(NotADeploymentManifest) as caught:
        manifest('{\n"modulesContent": []}', file="x.json")
    assert str(caught.value).startswith("x.json:2: ")


def test_layered_dotted_keys_are_resolved() -> None:
    text = (DATA / "07_Azure_azure-iot-cli-extension_layered-dotted.json").read_text()
    loaded = manifest(text)
    assert loaded.is_layered
    assert loaded.shape is Shape.CONTENT_WRAPPER
    (module,) = loaded.modules
    assert module.name == "mymodule0"
    assert module.located.path == (
        "content.modulesContent.$edgeAgent.properties.desired.modules.mymodule0"
    )
    assert module.env_value("ENVVAR0") == ("envvarval0", module.env["envvar0"].child("value"))
    assert loaded.hub is not None
    route = loaded.hub.find("properties", "desired", "routes", "route0")
    assert route is not None
    assert route.text == "from /messages/* INTO $upstream"


def test_twin_merges_dotted_and_nested_spellings() -> None:
    agent = {
        "properties.desired.runtime.settings": {"registryCredentials": {"a": {"address": "x"}}},
        "properties.desired.runtime.settings.registryCredentials.b": {"address": "y"},
    }
    loaded = manifest(dumps({"modulesContent": {"$edgeAgent": agent}}))
    assert loaded.agent is not None
    assert sorted(loaded.agent.children(*REGISTRY_CREDENTIALS)) == ["a", "b"]
    assert [c.name for c in loaded.credentials] == ["a", "b"]
    found = loaded.agent.find(*REGISTRY_CREDENTIALS, "b", "address")
    assert found is not None
    assert found.text == "y"
    assert loaded.agent.find(*REGISTRY_CREDENTIALS, "c") is None


def test_empty_agent_is_layered() -> None:
    assert manifest(dumps({"modulesContent": {"$edgeAgent": {}}})).is_layered
    assert not manifest(dumps({"modulesContent": {"$edgeAgent": AGENT}})).is_layered


@pytest.mark.parametrize(
    ("document", "file", "template"),
    [
        ({"$schema-template": "4.0.0", "modulesContent": {}}, "d.json", True),
        ({"content": {"$schema-template": "2.0.0", "modulesContent": {}}}, "d.json", True),
        ({"modulesContent": {}}, "deployment.template.json", True),
        ({"modulesContent": {}}, "deployment.json", False),
    ],
)
def test_template_detection(document: dict[str, object], file: str, template: bool) -> None:
    assert manifest(dumps(document), file=file).is_template is template


def test_module_placeholders_make_a_template() -> None:
    agent = {"properties.desired": {"modules": {"m": {"settings": {"image": "${MODULES.M}"}}}}}
    loaded = manifest(dumps({"modulesContent": {"$edgeAgent": agent}}))
    assert loaded.is_template
    assert not manifest(
        dumps({"modulesContent": {"$edgeAgent": agent}}), template=False
    ).is_template


def test_env_values_are_text_and_compared_case_insensitively() -> None:
    loaded = manifest(dumps({"modulesContent": {"$edgeAgent": AGENT}}))
    module = loaded.modules[2]
    found = module.env_value("mode")
    assert found is not None
    assert found[0] == "3"
    assert module.env_value("Other") is None


def test_corpus_modules_and_lines() -> None:
    path = DATA / "23_toolboc_IntelligentEdgeHOL_resolved-chunked-createoptions.json"
    loaded = load_manifest(parse_document(path.read_bytes(), path.name))
    yolo = loaded.modules[2]
    assert yolo.image is not None
    assert loaded.line(yolo.image) == 45
    assert yolo.create_options.form is Form.STRING
    assert len(yolo.create_options.chunks) == 2
    assert yolo.create_options.get("HostConfig", "PortBindings") == {"80/tcp": [{"HostPort": "80"}]}
    assert [c.name for c in loaded.credentials] == ["bootcampfy19acr"]
    assert loaded.module(Role.HUB) is loaded.modules[1]


def test_integrity_blocks_are_found() -> None:
    integrity: dict[str, object] = {"header": {}, "signature": {}}
    agent = {"properties.desired": {"integrity": integrity}}
    loaded = manifest(dumps({"modulesContent": {"$edgeAgent": agent}}))
    assert [b.path for b in loaded.integrity] == [
        "modulesContent.$edgeAgent.properties.desired.integrity"
    ]
