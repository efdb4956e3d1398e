"""Pointing manifests at the mirror: resolvers, splices, credentials, refusals."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from mirror.deployment.document import JObject, parse_document, walk
from mirror.deployment.edits import ChangeKind
from mirror.deployment.errors import (
    AmbiguousManifest,
    InvalidJson,
    NotADeploymentManifest,
    SignedManifest,
)
from mirror.deployment.images import ImageString, classify
from mirror.deployment.resolvers import (
    PinMode,
    PinningResolver,
    Resolution,
    Resolved,
    TagResolver,
    Target,
    Unresolved,
    format_image,
)
from mirror.deployment.rewrite import (
    Reason,
    rewrite_manifest,
    rewrite_source,
    rewritten_references,
    secret_literals,
)
from mirror.deployment.settings import RewriteSettings
from mirror.errors import ConfigError, InvalidReference
from mirror.reference import ImageReference
from tests.deployment.helpers import deployment, dumps, manifest

TARGET = Target.parse("myacr.azurecr.io")
DIGEST = "sha256:" + "b" * 64


def images_of(text: str) -> dict[str, str]:
    return {m.name: m.image.text or "" for m in manifest(text).modules if m.image is not None}


@pytest.mark.parametrize(
    ("text", "registry", "prefix"),
    [
        ("myacr.azurecr.io", "myacr.azurecr.io", ""),
        ("https://MyAcr.azurecr.io/", "myacr.azurecr.io", ""),
        ("myacr.azurecr.io/mirror/edge", "myacr.azurecr.io", "mirror/edge"),
        ("localhost:5000", "localhost:5000", ""),
    ],
)
def test_target_parse(text: str, registry: str, prefix: str) -> None:
    assert Target.parse(text) == Target(registry, prefix)


def test_target_prints_as_written_in_image_strings() -> None:
    assert str(Target.parse("http://127.0.0.1:5000/edge/")) == "127.0.0.1:5000/edge"
    assert str(TARGET) == "myacr.azurecr.io"


@pytest.mark.parametrize("text", ["myacr", "", "my acr.io", "-x.io"])
def test_target_parse_refuses_non_hosts(text: str) -> None:
    with pytest.raises(ConfigError, match="not a registry host"):
        Target.parse(text)


def test_target_parse_refuses_bad_prefix() -> None:
    with pytest.raises(InvalidReference):
        Target.parse("myacr.azurecr.io/Upper")


def test_target_credential_name() -> None:
    assert TARGET.credential_name == "myacr"
    assert Target.parse("localhost:5000").credential_name == "localhost"
    assert Target.parse("http://10.0.0.5:5000/edge").credential_name == "10-0-0-5"


@pytest.mark.parametrize(
    ("tag", "digest", "image"),
    [
        ("1.5", None, "r.io/a:1.5"),
        (None, DIGEST, f"r.io/a@{DIGEST}"),
        ("1.5", DIGEST, f"r.io/a@{DIGEST}"),
        (None, None, "r.io/a"),
    ],
)
def test_format_image_never_writes_tag_and_digest(
    tag: str | None, digest: str | None, image: str
) -> None:
    assert format_image("r.io", "a", tag, digest) == image


@pytest.mark.parametrize(
    ("source", "pin", "outcome"),
    [
        (
            "mcr.microsoft.com/azureiotedge-agent:1.5",
            PinMode.TAG,
            "myacr.azurecr.io/azureiotedge-agent:1.5",
        ),
        (
            f"mcr.microsoft.com/azureiotedge-agent@{DIGEST}",
            PinMode.TAG,
            f"myacr.azurecr.io/azureiotedge-agent@{DIGEST}",
        ),
        (
            f"mcr.microsoft.com/azureiotedge-agent@{DIGEST}",
            PinMode.DIGEST,
            f"myacr.azurecr.io/azureiotedge-agent@{DIGEST}",
        ),
        (
            "mcr.microsoft.com/azureiotedge-agent:1.5.3",
            PinMode.SPECIFIC,
            "myacr.azurecr.io/azureiotedge-agent:1.5.3",
        ),
        (
            "mcr.microsoft.com/oss/v2/docker/registry:v3.0.0",
            PinMode.SPECIFIC,
            "myacr.azurecr.io/oss/v2/docker/registry:v3.0.0",
        ),
        (
            "mcr.microsoft.com/azureiotedge-agent:1.5",
            PinMode.SPECIFIC,
            "needs the ledger or the registry",
        ),
        ("mcr.microsoft.com/azureiotedge-agent:1.5.3", PinMode.DIGEST, "index digest"),
        (
            "mcr.microsoft.com/azureiotedge-agent:${V}",
            PinMode.TAG,
            "myacr.azurecr.io/azureiotedge-agent:${V}",
        ),
        ("mcr.microsoft.com/azureiotedge-agent:${V}", PinMode.SPECIFIC, "needs a literal tag"),
        ("${MODULES.X}", PinMode.TAG, "the repository name is a placeholder"),
    ],
)
def test_tag_resolver(source: str, pin: PinMode, outcome: str) -> None:
    resolution = TagResolver(TARGET)(classify(source), pin)
    if isinstance(resolution, Resolved):
        assert resolution.image == outcome
    else:
        assert outcome in resolution.reason


def test_tag_resolver_uses_the_prefix() -> None:
    resolver = TagResolver(Target.parse("myacr.azurecr.io/edge"))
    resolution = resolver(classify("mcr.microsoft.com/azureiotedge-hub:1.5"), PinMode.TAG)
    assert resolution == Resolved("myacr.azurecr.io/edge/azureiotedge-hub:1.5")


@dataclass
class Ledger:
    """A VersionLookup over fixed answers."""

    specific: dict[str, str]
    digests: dict[str, str]

    def specific_tag(self, source: ImageReference) -> str | None:
        return self.specific.get(str(source))

    def index_digest(self, source: ImageReference) -> str | None:
        return self.digests.get(str(source))


LEDGER = Ledger(
    specific={"mcr.microsoft.com/azureiotedge-agent:1.5": "1.5.44"},
    digests={"mcr.microsoft.com/azureiotedge-agent:1.5": DIGEST},
)


@pytest.mark.parametrize(
    ("source", "pin", "outcome"),
    [
        (
            "mcr.microsoft.com/azureiotedge-agent:1.5",
            PinMode.SPECIFIC,
            Resolved("myacr.azurecr.io/azureiotedge-agent:1.5.44"),
        ),
        (
            "mcr.microsoft.com/azureiotedge-agent:1.5",
            PinMode.DIGEST,
            Resolved(f"myacr.azurecr.io/azureiotedge-agent@{DIGEST}"),
        ),
        (
            "mcr.microsoft.com/azureiotedge-agent:1.5",
            PinMode.TAG,
            Resolved("myacr.azurecr.io/azureiotedge-agent:1.5"),
        ),
        (
            "mcr.microsoft.com/azureiotedge-hub:1.5",
            PinMode.SPECIFIC,
            Unresolved("no specific version is known for mcr.microsoft.com/azureiotedge-hub:1.5"),
        ),
        (
            "mcr.microsoft.com/azureiotedge-hub:1.5",
            PinMode.DIGEST,
            Unresolved("no index digest is known for mcr.microsoft.com/azureiotedge-hub:1.5"),
        ),
    ],
)
def test_pinning_resolver(source: str, pin: PinMode, outcome: Resolution) -> None:
    assert PinningResolver(TARGET, LEDGER)(classify(source), pin) == outcome


def test_pinning_resolver_says_where_it_looked() -> None:
    resolver = PinningResolver(TARGET, LEDGER, origin="myacr.azurecr.io/edge")
    hub = classify("mcr.microsoft.com/azureiotedge-hub:1.5")
    assert resolver(hub, PinMode.DIGEST) == Unresolved(
        "no index digest is known for mcr.microsoft.com/azureiotedge-hub:1.5"
        " in myacr.azurecr.io/edge"
    )


def test_rewrite_changes_only_the_mirrored_images() -> None:
    text = deployment(
        {
            "edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5",
            "edgeHub": "$upstream:443/azureiotedge-hub:1.5",
            "sensor": "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5",
            "other": "docker.io/library/nginx:1.27",
            "built": "${MODULES.Built}",
            "broken": "a/b:1@" + DIGEST,
            "mirrored": "myacr.azurecr.io/azureiotedge-api-proxy:1.1.27",
        },
        credentials={},
    )
    result = rewrite_manifest(manifest(text), TARGET)
    assert images_of(result.text) == {
        "edgeAgent": "myacr.azurecr.io/azureiotedge-agent:1.5",
        "edgeHub": "$upstream:443/azureiotedge-hub:1.5",
        "sensor": "myacr.azurecr.io/azureiotedge-simulated-temperature-sensor:1.5",
        "other": "docker.io/library/nginx:1.27",
        "built": "${MODULES.Built}",
        "broken": "a/b:1@" + DIGEST,
        "mirrored": "myacr.azurecr.io/azureiotedge-api-proxy:1.1.27",
    }
    reasons = {a.path.split(".")[-3]: a.reason for a in result.left_alone}
    assert reasons == {
        "edgeHub": Reason.UPSTREAM,
        "other": Reason.OTHER_REGISTRY,
        "built": Reason.PLACEHOLDER,
        "broken": Reason.INVALID,
        "mirrored": Reason.ALREADY_MIRRORED,
    }
    image_changes = [c for c in result.changes if c.kind is ChangeKind.IMAGE]
    assert [(c.line, c.old, c.new) for c in image_changes] == [
        (17, "mcr.microsoft.com/azureiotedge-agent:1.5", "myacr.azurecr.io/azureiotedge-agent:1.5"),
        (
            30,
            "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5",
            "myacr.azurecr.io/azureiotedge-simulated-temperature-sensor:1.5",
        ),
    ]
    assert rewritten_references(result) == (
        ImageReference("myacr.azurecr.io", "azureiotedge-agent", "1.5"),
        ImageReference("myacr.azurecr.io", "azureiotedge-simulated-temperature-sensor", "1.5"),
    )
    assert len(rewritten_references(result, include_mirrored=True)) == 3


def test_sources_can_name_every_mcr_image() -> None:
    text = deployment(
        {
            "edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5",
            "edgeHub": "mcr.microsoft.com/azureiotedge-hub:1.5",
            "registry": "mcr.microsoft.com/oss/v2/docker/registry:v3.0.0",
        }
    )
    settings = RewriteSettings(sources=["mcr.microsoft.com/*"])
    result = rewrite_manifest(manifest(text), TARGET, settings=settings)
    assert images_of(result.text)["registry"] == "myacr.azurecr.io/oss/v2/docker/registry:v3.0.0"


def test_credentials_entry_is_added_with_placeholders() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"}
    )
    result = rewrite_manifest(manifest(text), TARGET)
    credentials = json.loads(result.text)["modulesContent"]["$edgeAgent"]["properties.desired"][
        "runtime"
    ]["settings"]["registryCredentials"]
    assert credentials == {
        "myacr": {
            "username": "$MIRROR_PULL_USERNAME",
            "password": "$MIRROR_PULL_PASSWORD",
            "address": "myacr.azurecr.io",
        }
    }
    (change,) = [c for c in result.changes if c.kind is ChangeKind.CREDENTIAL]
    assert change.path.endswith("runtime.settings.registryCredentials.myacr")
    assert change.old is None


def test_existing_entry_for_the_target_is_updated_in_place() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"},
        credentials={
            "mirror": {"username": "admin", "password": "s3cret", "address": "myacr.azurecr.io"},
            "other": {"username": "u", "password": "p", "address": "other.io"},
        },
    )
    settings = RewriteSettings(username_variable="${PULL_USER}", password_variable="$PULL_PASS")
    result = rewrite_manifest(manifest(text), TARGET, settings=settings)
    entries = json.loads(result.text)["modulesContent"]["$edgeAgent"]["properties.desired"][
        "runtime"
    ]["settings"]["registryCredentials"]
    assert entries["mirror"] == {
        "username": "${PULL_USER}",
        "password": "$PULL_PASS",
        "address": "myacr.azurecr.io",
    }
    assert entries["other"] == {"username": "u", "password": "p", "address": "other.io"}
    credential_changes = [
        (c.path.rsplit(".", 1)[-1], c.old, c.new)
        for c in result.changes
        if c.kind is ChangeKind.CREDENTIAL
    ]
    assert credential_changes == [
        ("username", "admin", "${PULL_USER}"),
        ("password", "s3cret", "$PULL_PASS"),
    ]


def test_missing_fields_of_an_entry_are_added() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"},
        credentials={"myacr": {"address": 7}},
    )
    result = rewrite_manifest(manifest(text), TARGET)
    entry = json.loads(result.text)["modulesContent"]["$edgeAgent"]["properties.desired"][
        "runtime"
    ]["settings"]["registryCredentials"]["myacr"]
    assert entry == {
        "address": "myacr.azurecr.io",
        "username": "$MIRROR_PULL_USERNAME",
        "password": "$MIRROR_PULL_PASSWORD",
    }


def test_credentials_can_be_left_out() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"}
    )
    result = rewrite_manifest(manifest(text), TARGET, settings=RewriteSettings(credentials=False))
    assert "registryCredentials" not in result.text
    assert [c.kind for c in result.changes] == [ChangeKind.IMAGE]


def test_no_credentials_when_nothing_points_at_the_target() -> None:
    text = deployment({"edgeAgent": "a.io/agent:1", "edgeHub": "h.io/h:1"})
    result = rewrite_manifest(manifest(text), TARGET)
    assert not result.changed
    assert result.changes == ()
    assert result.diff() == ""


def test_layered_manifest_gets_a_dotted_credentials_key() -> None:
    agent = {
        "properties.desired.modules.sensor": {
            "settings": {"image": "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5"}
        }
    }
    text = dumps({"content": {"modulesContent": {"$edgeAgent": agent}}})
    result = rewrite_manifest(manifest(text), TARGET)
    written = json.loads(result.text)["content"]["modulesContent"]["$edgeAgent"]
    assert written["properties.desired.runtime.settings.registryCredentials.myacr"] == {
        "username": "$MIRROR_PULL_USERNAME",
        "password": "$MIRROR_PULL_PASSWORD",
        "address": "myacr.azurecr.io",
    }
    assert written["properties.desired.modules.sensor"]["settings"]["image"] == (
        "myacr.azurecr.io/azureiotedge-simulated-temperature-sensor:1.5"
    )
    again = rewrite_manifest(manifest(result.text), TARGET)
    assert not again.changed


def test_missing_runtime_settings_are_created() -> None:
    desired = {
        "runtime": {"type": "docker"},
        "systemModules": {
            "edgeAgent": {"settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5"}}
        },
    }
    text = dumps({"modulesContent": {"$edgeAgent": {"properties.desired": desired}}})
    result = rewrite_manifest(manifest(text), TARGET)
    runtime = json.loads(result.text)["modulesContent"]["$edgeAgent"]["properties.desired"][
        "runtime"
    ]
    assert runtime["settings"]["registryCredentials"]["myacr"]["address"] == "myacr.azurecr.io"


def test_escapes_and_line_endings_are_kept() -> None:
    text = (
        '{\r\n\t"modulesContent": {\r\n\t\t"$edgeAgent": {\r\n\t\t\t"properties.desired": {\r\n'
        '\t\t\t\t"systemModules": {\r\n\t\t\t\t\t"edgeAgent": {"settings": {"image":'
        ' "mcr.microsoft.com\\/azureiotedge-agent:1.5", "createOptions": "{\\"a\\":\\"\\/x\\"}"}}'
        "\r\n\t\t\t\t}\r\n\t\t\t}\r\n\t\t}\r\n\t}\r\n}"
    )
    result = rewrite_manifest(manifest(text), TARGET, settings=RewriteSettings(credentials=False))
    assert result.text == text.replace(
        "mcr.microsoft.com\\/azureiotedge-agent", "myacr.azurecr.io\\/azureiotedge-agent"
    )


def test_byte_order_mark_is_kept() -> None:
    text = "\ufeff" + deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"}
    )
    loaded = manifest(text)
    result = rewrite_manifest(loaded, TARGET)
    assert result.encode().startswith(b"\xef\xbb\xbf")
    assert parse_document(result.encode(), "f.json").has_bom


def test_signed_manifest_is_refused() -> None:
    desired = {
        "systemModules": {
            "edgeAgent": {"settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5"}}
        },
        "integrity": {"header": {"signercert": []}, "signature": {"bytes": "x"}},
    }
    text = dumps({"modulesContent": {"$edgeAgent": {"properties.desired": desired}}})
    with pytest.raises(SignedManifest) as caught:
        rewrite_manifest(manifest(text, file="signed.json"), TARGET)
    message = str(caught.value)
    assert message.startswith("signed.json:12: refusing to rewrite a signed manifest")
    assert "breaks the signature" in message


def test_no_entry_is_added_where_the_path_to_it_is_not_an_object() -> None:
    """`runtime.settings` given as a string: adding `settings` again would name the key
    twice, so the images are rewritten and the entry is left for the author to fix."""
    desired = {
        "runtime": {"type": "docker", "settings": "0"},
        "systemModules": {
            "edgeAgent": {"settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5"}}
        },
    }
    text = dumps({"modulesContent": {"$edgeAgent": {"properties.desired": desired}}})
    result = rewrite_manifest(manifest(text), TARGET)
    assert "myacr.azurecr.io/azureiotedge-agent:1.5" in result.text
    assert not [c for c in result.changes if c.kind is ChangeKind.CREDENTIAL]
    root = parse_document(result.text, "out.json").root
    assert isinstance(root, JObject)
    assert not [node for node in walk(root) if isinstance(node, JObject) and node.duplicates()]
    rewrite_manifest(manifest(result.text), TARGET)  # its own output is not refused


def test_a_key_given_twice_is_refused_as_lint_reports_it() -> None:
    text = (
        '{"modulesContent": {"$edgeAgent": {"properties.desired": {"systemModules": '
        '{"edgeAgent": {"settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.5",\n'
        '"image": "mcr.microsoft.com/azureiotedge-agent:1.4"}}}}}}}'
    )
    with pytest.raises(AmbiguousManifest) as caught:
        rewrite_manifest(manifest(text, file="twice.json"), TARGET)
    assert str(caught.value).startswith("twice.json:1: duplicate key 'image'")


@dataclass
class FixedResolver:
    answer: Resolution

    def __call__(self, source: ImageString, pin: PinMode) -> Resolution:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Unresolved("the ledger has no entry"), "the ledger has no entry"),
        (Resolved("r.io/a:1@" + DIGEST), "the resolver produced"),
        (Resolved("${X}"), "no name"),
    ],
)
def test_resolver_failures_leave_the_image_alone(answer: Resolution, reason: str) -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"}
    )
    result = rewrite_manifest(manifest(text), TARGET, resolver=FixedResolver(answer))
    assert not result.changed
    (left,) = [a for a in result.left_alone if a.reason is Reason.UNRESOLVED]
    assert reason in left.detail


def test_pin_digest_through_the_lookup() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"}
    )
    resolver = PinningResolver(TARGET, LEDGER)
    result = rewrite_manifest(manifest(text), TARGET, pin=PinMode.DIGEST, resolver=resolver)
    assert images_of(result.text)["edgeAgent"] == f"myacr.azurecr.io/azureiotedge-agent@{DIGEST}"
    assert rewritten_references(result) == (
        ImageReference("myacr.azurecr.io", "azureiotedge-agent", digest=DIGEST),
    )


def test_placeholder_tags_are_kept_and_not_listed_for_checking() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:${V}", "edgeHub": "h.io/h:1"}
    )
    result = rewrite_manifest(manifest(text), TARGET)
    (change,) = [c for c in result.changes if c.kind is ChangeKind.IMAGE]
    assert change.new == "myacr.azurecr.io/azureiotedge-agent:${V}"
    assert change.note is not None
    assert rewritten_references(result) == ()


def test_diff_is_unified() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"}
    ).rstrip("\n")
    result = rewrite_manifest(
        manifest(text, file="d.json"), TARGET, settings=RewriteSettings(credentials=False)
    )
    diff = result.diff()
    assert diff.startswith("--- d.json\n+++ d.json\n@@ ")
    assert '-              "image": "mcr.microsoft.com/azureiotedge-agent:1.5"\n' in diff
    assert '+              "image": "myacr.azurecr.io/azureiotedge-agent:1.5"\n' in diff
    assert result.diff("a/d.json", "b/d.json").startswith("--- a/d.json\n+++ b/d.json\n")


def test_diff_marks_a_missing_final_newline() -> None:
    module = {"settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.5"}}
    desired = {"properties.desired": {"modules": {"m": module}}}
    text = json.dumps({"modulesContent": {"$edgeAgent": desired}})
    result = rewrite_manifest(manifest(text), TARGET, settings=RewriteSettings(credentials=False))
    assert result.diff().endswith("\n\\ No newline at end of file\n")


def test_an_entry_of_another_registry_keeps_its_name() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"},
        credentials={"myacr": {"username": "u", "password": "p", "address": "$OTHER_REGISTRY"}},
    )
    result = rewrite_manifest(manifest(text), TARGET)
    entries = json.loads(result.text)["modulesContent"]["$edgeAgent"]["properties.desired"][
        "runtime"
    ]["settings"]["registryCredentials"]
    assert entries["myacr"] == {"username": "u", "password": "p", "address": "$OTHER_REGISTRY"}
    assert entries["myacr2"]["address"] == "myacr.azurecr.io"
    assert not rewrite_manifest(manifest(result.text), TARGET).changed


def test_configured_entry_name() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"}
    )
    settings = RewriteSettings(credential_name="edge-mirror")
    result = rewrite_manifest(manifest(text), TARGET, settings=settings)
    assert '"edge-mirror": {' in result.text


def test_rewrite_source_reads_bytes_and_names_the_file_in_errors() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"}
    )
    result = rewrite_source(text.encode(), "d.json", TARGET)
    assert result.changed
    assert result.file == "d.json"
    with pytest.raises(InvalidJson, match=r"^d\.json:1:1: "):
        rewrite_source(b"]", "d.json", TARGET)
    with pytest.raises(NotADeploymentManifest, match=r"^d\.json: "):
        rewrite_source(b"{}", "d.json", TARGET)


def test_diff_can_hide_the_passwords_of_every_entry() -> None:
    text = deployment(
        {"edgeAgent": "mcr.microsoft.com/azureiotedge-agent:1.5", "edgeHub": "h.io/h:1"},
        credentials={
            "myacr": {"username": "admin", "password": "s3cret", "address": "myacr.azurecr.io"},
            "other": {"username": "u", "password": "hunter\\2", "address": "other.io"},
            "templated": {"username": "u", "password": "${PASS}", "address": "t.io"},
        },
    )
    loaded = manifest(text)
    assert secret_literals(loaded) == ('"s3cret"', '"hunter\\\\2"')
    result = rewrite_manifest(loaded, TARGET)
    assert '"s3cret"' in result.diff()
    hidden = result.diff(redact=secret_literals(loaded))
    assert "s3cret" not in hidden
    assert "hunter" not in hidden
    assert '-                "password": "***",' in hidden
    assert '+                "password": "$MIRROR_PULL_PASSWORD",' in hidden


def test_pinning_an_image_rewritten_earlier_with_its_tag() -> None:
    text = deployment(
        {
            "edgeAgent": "myacr.azurecr.io/edge/azureiotedge-agent:1.5",
            "edgeHub": "myacr.azurecr.io/other/azureiotedge-hub:1.5",
            "filter": "myacr.azurecr.io/edge/filter:1.0",
        }
    )
    target = Target.parse("myacr.azurecr.io/edge")
    bare = RewriteSettings(credentials=False)
    resolver = PinningResolver(target, LEDGER)
    kept = rewrite_manifest(manifest(text), target, resolver=resolver, settings=bare)
    assert not kept.changed
    pinned = rewrite_manifest(
        manifest(text), target, pin=PinMode.DIGEST, resolver=resolver, settings=bare
    )
    assert images_of(pinned.text) == {
        "edgeAgent": f"myacr.azurecr.io/edge/azureiotedge-agent@{DIGEST}",
        "edgeHub": "myacr.azurecr.io/other/azureiotedge-hub:1.5",  # not under the prefix
        "filter": "myacr.azurecr.io/edge/filter:1.0",  # the fleet's own: no source names it
    }
    (change,) = [c for c in pinned.changes if c.kind is ChangeKind.IMAGE]
    assert change.old == "myacr.azurecr.io/edge/azureiotedge-agent:1.5"
    again = rewrite_manifest(
        manifest(pinned.text), target, pin=PinMode.DIGEST, resolver=resolver, settings=bare
    )
    assert not again.changed
    specific = rewrite_manifest(
        manifest(text), target, pin=PinMode.SPECIFIC, resolver=resolver, settings=bare
    )
    assert (
        images_of(specific.text)["edgeAgent"] == "myacr.azurecr.io/edge/azureiotedge-agent:1.5.44"
    )
    offline = rewrite_manifest(manifest(text), target, pin=PinMode.DIGEST, settings=bare)
    (left,) = [a for a in offline.left_alone if a.reason is Reason.UNRESOLVED]
    assert "mcr.microsoft.com/azureiotedge-agent:1.5 needs the ledger" in left.detail
