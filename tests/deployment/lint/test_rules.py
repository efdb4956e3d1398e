"""Every lint rule: cases that make it fire, and cases that keep it quiet."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from mirror.deployment.lint.catalog import RULE_IDS
from mirror.deployment.lint.finding import Severity
from mirror.deployment.settings import LintSettings
from tests.deployment.helpers import DATA, dumps
from tests.deployment.lint_cases import (
    AGENT,
    CLEAN,
    CREDENTIAL,
    DELETE,
    ENV,
    FILTER,
    HUB,
    LOGS,
    SYSTEM,
    lint,
    options,
    storage,
    vary,
)

DIGEST = "sha256:" + "c" * 64
TEMPLATE = ("$schema-template", "4.0.0")
HUB_SETTINGS = f"{SYSTEM}/edgeHub/settings"
AGENT_SETTINGS = f"{SYSTEM}/edgeAgent/settings"
LAYERED = json.loads((DATA / "07_Azure_azure-iot-cli-extension_layered-dotted.json").read_text())


@dataclass(frozen=True)
class Case:
    rule: str
    name: str
    document: dict[str, Any] | str
    fragment: str = ""
    severity: Severity | None = None
    settings: LintSettings = field(default_factory=LintSettings)
    path: str | None = None


def duplicate_key_text() -> str:
    text = dumps(CLEAN)
    return text.replace(
        '"schemaVersion": "1.1",', '"schemaVersion": "1.0",\n"schemaVersion": "1.1",', 1
    )


FIRES = [
    Case("manifest-shape", "no-edgehub", vary(("modulesContent/$edgeHub", DELETE)), "add $edgeHub"),
    Case(
        "manifest-shape",
        "legacy",
        {"moduleContent": CLEAN["modulesContent"]},
        "rename it to modulesContent",
        Severity.WARNING,
    ),
    Case(
        "manifest-shape",
        "duplicate",
        duplicate_key_text(),
        'duplicate key "schemaVersion"',
        path="modulesContent.$edgeAgent.properties.desired.schemaVersion",
    ),
    Case(
        "manifest-shape", "no-modules", vary((f"{AGENT}/modules", DELETE)), '"modules": {} will do'
    ),
    Case(
        "manifest-shape",
        "no-system-hub",
        vary((f"{SYSTEM}/edgeHub", DELETE)),
        "add systemModules.edgeHub",
    ),
    Case("manifest-shape", "module-not-object", vary((FILTER, "x")), "must be a JSON object"),
    Case(
        "manifest-shape",
        "no-runtime-type",
        vary((f"{AGENT}/runtime/type", DELETE)),
        'set runtime.type to "docker"',
    ),
    Case(
        "manifest-shape",
        "no-desired",
        vary(("modulesContent/$edgeHub", {})),
        'add "properties.desired"',
    ),
    Case(
        "agent-schema-version",
        "1.2",
        vary((f"{AGENT}/schemaVersion", "1.2")),
        "'1.2' is not accepted",
    ),
    Case(
        "agent-schema-version",
        "missing",
        vary((f"{AGENT}/schemaVersion", DELETE)),
        "set $edgeAgent schemaVersion",
    ),
    Case(
        "agent-schema-version",
        "number",
        vary((f"{AGENT}/schemaVersion", 1.1)),
        "write schemaVersion as a string",
    ),
    Case(
        "agent-schema-version",
        "placeholder",
        vary((f"{AGENT}/schemaVersion", "${EDGEAGENT_SCHEMA_VERSION}")),
        "still the placeholder",
    ),
    Case(
        "hub-schema-version", "1.4", vary((f"{HUB}/schemaVersion", "1.4")), "'1.4' is not accepted"
    ),
    Case(
        "hub-schema-version",
        "mqtt-broker",
        vary((f"{HUB}/mqttBroker", {})),
        "mqttBroker needs $edgeHub schemaVersion 1.2",
    ),
    Case(
        "hub-schema-version",
        "integrity",
        vary((f"{HUB}/schemaVersion", "1.2"), (f"{HUB}/integrity", {})),
        "integrity needs $edgeHub schemaVersion 1.3",
    ),
    Case(
        "schema-feature",
        "startup-order",
        vary((f"{AGENT}/schemaVersion", "1.0"), (f"{FILTER}/startupOrder", 1)),
        'startupOrder needs $edgeAgent schemaVersion "1.1"',
    ),
    Case(
        "schema-feature",
        "route-object",
        vary(
            (f"{HUB}/schemaVersion", "1.0"),
            (f"{HUB}/routes/up", {"route": "FROM /* INTO $upstream", "priority": 0}),
        ),
        "route objects",
    ),
    Case(
        "required-field",
        "hub-stopped",
        vary((f"{SYSTEM}/edgeHub/status", "stopped")),
        'edgeHub must have status "running"',
    ),
    Case(
        "required-field",
        "hub-no-restart",
        vary((f"{SYSTEM}/edgeHub/restartPolicy", DELETE)),
        'set edgeHub restartPolicy to "always"',
    ),
    Case(
        "required-field",
        "module-restart",
        vary((f"{FILTER}/restartPolicy", DELETE)),
        'module "filter" needs restartPolicy',
    ),
    Case(
        "required-field",
        "module-image",
        vary((f"{FILTER}/settings/image", DELETE)),
        "needs settings.image",
        path="modulesContent.$edgeAgent.properties.desired.modules.filter.settings.image",
    ),
    Case(
        "required-field",
        "module-settings",
        vary((f"{FILTER}/settings", DELETE)),
        "needs settings.image",
    ),
    Case(
        "required-field",
        "credential-password",
        vary((f"{CREDENTIAL}/password", DELETE)),
        "'myacr' needs password",
    ),
    Case(
        "enum-value",
        "status",
        vary((f"{FILTER}/status", "paused")),
        "status 'paused' of module \"filter\" is not one of: running, stopped",
    ),
    Case(
        "enum-value",
        "pull-policy",
        vary((f"{FILTER}/imagePullPolicy", "always")),
        "imagePullPolicy 'always'",
    ),
    Case("enum-value", "type", vary((f"{FILTER}/type", 1)), "type '1'"),
    Case(
        "enum-value",
        "module-name",
        vary(
            (
                f"{AGENT}/modules/bad.name",
                CLEAN["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["filter"],
            )
        ),
        "module name 'bad.name'",
    ),
    Case(
        "enum-value",
        "env-name",
        vary((f"{FILTER}/env", {"A.B": {"value": "1"}})),
        "environment variable name 'A.B'",
    ),
    Case(
        "enum-value",
        "credential-name",
        vary(
            (
                f"{AGENT}/runtime/settings/registryCredentials",
                {"my$acr": {"username": "u", "password": "p", "address": "myacr.azurecr.io"}},
            )
        ),
        "registry credential name 'my$acr'",
    ),
    Case(
        "enum-value",
        "address",
        vary((f"{CREDENTIAL}/address", "myacr.azurecr.io ")),
        "holds no whitespace",
    ),
    Case(
        "enum-value",
        "runtime-type",
        vary((f"{AGENT}/runtime/type", "moby")),
        'runtime.type must be "docker"',
    ),
    Case(
        "enum-value",
        "startup-order",
        vary((f"{FILTER}/startupOrder", -1)),
        "startupOrder must be a whole number",
    ),
    Case(
        "misplaced-setting",
        "pull-policy-in-settings",
        vary((f"{FILTER}/settings/imagePullPolicy", "never")),
        "imagePullPolicy belongs at the module level",
    ),
    Case(
        "misplaced-setting",
        "env-in-settings",
        vary((f"{FILTER}/settings/env", {})),
        "env belongs at the module level",
    ),
    Case(
        "misplaced-setting",
        "unknown-module-key",
        vary((f"{FILTER}/restartpolicy", "always")),
        "unknown key 'restartpolicy'",
    ),
    Case(
        "misplaced-setting",
        "unknown-settings-key",
        vary((f"{FILTER}/settings/cmd", "x")),
        "holds image, createOptions and digest only",
    ),
    Case(
        "misplaced-setting",
        "image-at-module-level",
        vary((f"{FILTER}/image", "x")),
        "move image into settings",
    ),
    Case(
        "misplaced-setting",
        "hub-keys-on-agent",
        vary((f"{SYSTEM}/edgeAgent/status", "running")),
        "edgeAgent has an unknown key 'status'",
    ),
    Case(
        "misplaced-setting",
        "env-without-value",
        vary((f"{FILTER}/env", {"A": "1"})),
        'write environment variable A as {"value": ...}',
    ),
    Case(
        "misplaced-setting",
        "env-extra-key",
        vary((f"{FILTER}/env", {"A": {"value": "1", "secret": True}})),
        "environment variable A has an unknown key 'secret'",
    ),
    Case(
        "misplaced-setting",
        "runtime-settings",
        vary((f"{AGENT}/runtime/settings/proxy", "x")),
        "runtime.settings has an unknown key 'proxy'",
    ),
    Case(
        "misplaced-setting",
        "credential-key",
        vary((f"{CREDENTIAL}/email", "x")),
        "a registry credential has an unknown key 'email'",
    ),
    Case(
        "create-options-format",
        "object-in-deployable",
        vary((f"{FILTER}/settings/createOptions", {"HostConfig": {"LogConfig": LOGS}})),
        "must be a JSON string in a deployable manifest",
    ),
    Case(
        "create-options-format",
        "invalid-json",
        vary((f"{FILTER}/settings/createOptions", "{HostConfig}")),
        "createOptions is not valid JSON",
    ),
    Case(
        "create-options-format",
        "not-an-object",
        vary((f"{FILTER}/settings/createOptions", "[]")),
        "must hold a JSON object",
    ),
    Case(
        "create-options-format",
        "too-long",
        vary((f"{FILTER}/settings/createOptions", options(Binds=["/a:/b"] * 60))),
        "longer than 512 characters",
    ),
    Case(
        "create-options-format",
        "gap",
        vary((f"{FILTER}/settings/createOptions02", "")),
        "createOptions02 should be createOptions01",
    ),
    Case(
        "create-options-format",
        "number",
        vary((f"{FILTER}/settings/createOptions", 5)),
        "createOptions must be a string",
    ),
    Case(
        "unresolved-placeholder",
        "module-image",
        vary((f"{FILTER}/settings/image", "${MODULES.filter}")),
        "generate the deployment from the template",
        settings=LintSettings(template=False),
    ),
    Case(
        "unresolved-placeholder",
        "credential",
        vary((f"{CREDENTIAL}/password", "$ACR_PASSWORD")),
        "substitute the variables",
    ),
    Case(
        "unresolved-placeholder",
        "pipeline-token",
        vary(
            (f"{SYSTEM}/edgeAgent/settings/image", "<Container_Registry>/azureiotedge-agent:1.5.44")
        ),
        "replace the pipeline tokens",
    ),
    Case(
        "image-reference",
        "tag-and-digest",
        vary((f"{FILTER}/settings/image", f"myacr.azurecr.io/filter:1.2.3@{DIGEST}")),
        "name@sha256:",
    ),
    Case(
        "image-reference",
        "uppercase",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/Filter:1.2.3")),
        "must be lowercase",
    ),
    Case(
        "image-reference",
        "upstream-no-port",
        vary((f"{FILTER}/settings/image", "$upstream/filter:1.2.3")),
        "$upstream:<port>/",
    ),
    Case(
        "image-reference",
        "not-a-string",
        vary((f"{FILTER}/settings/image", 7)),
        "settings.image must be a string",
    ),
    Case(
        "image-reference",
        "bad-digest-setting",
        vary((f"{FILTER}/settings/digest", "sha256:abc")),
        "64 hex digits",
    ),
    Case(
        "mutable-tag",
        "no-tag",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter")),
        "no tag means :latest",
        Severity.WARNING,
    ),
    Case(
        "mutable-tag",
        "latest",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:latest")),
        "tag 'latest' moves",
    ),
    Case(
        "mutable-tag",
        "branch-arch",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:main-arm64v8")),
        "tag 'main-arm64v8' moves",
    ),
    Case(
        "mutable-tag",
        "upstream-latest",
        vary((f"{FILTER}/settings/image", "$upstream:443/filter:latest")),
        "tag 'latest' moves",
    ),
    Case(
        "rolling-runtime-tag",
        "agent-1.5",
        vary(
            (f"{AGENT_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-agent:1.5"),
            (f"{HUB_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-hub:1.5"),
        ),
        "rolling tag 1.5",
        Severity.WARNING,
    ),
    Case(
        "rolling-runtime-tag",
        "per-arch",
        vary((f"{HUB_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-hub:1.5-linux-amd64")),
        "pin a specific 1.5.x version",
    ),
    Case(
        "runtime-version-mismatch",
        "patch",
        vary((f"{HUB_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-hub:1.5.43")),
        "edgeAgent is on 1.5.44 and edgeHub on 1.5.43",
    ),
    Case(
        "runtime-version-mismatch",
        "line",
        vary((f"{HUB_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-hub:1.6")),
        "edgeHub on 1.6",
    ),
    Case(
        "runtime-version-mismatch",
        "daemon",
        CLEAN,
        "does not match the fleet's IoT Edge daemon 1.6",
        settings=LintSettings(expected_daemon_version="1.6"),
    ),
    Case(
        "unsupported-runtime",
        "eol",
        vary((f"{AGENT_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-agent:1.4.43")),
        "1.4 is out of support",
        Severity.WARNING,
    ),
    Case(
        "unsupported-runtime",
        "imageless",
        vary((f"{AGENT_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-agent:1.5.8")),
        "published no edgeAgent/edgeHub image",
        Severity.ERROR,
    ),
    Case(
        "unsupported-runtime",
        "never-released",
        vary((f"{HUB_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-hub:1.4.99")),
        "was never released",
        Severity.ERROR,
    ),
    Case(
        "unsupported-runtime",
        "configured-lines",
        CLEAN,
        "move to 1.6",
        settings=LintSettings(supported_runtime_lines=["1.6"]),
    ),
    Case(
        "debug-image",
        "debug-tag",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:1.2.3-amd64.debug")),
        "uses a debug image",
        Severity.ERROR,
    ),
    Case(
        "debug-image",
        "debug-placeholder",
        vary(TEMPLATE, (f"{FILTER}/settings/image", "${MODULES.filter.debug}")),
        "drop the debugger create options",
    ),
    Case(
        "debug-port",
        "port",
        vary(
            (
                f"{FILTER}/settings/createOptions",
                options(PortBindings={"5678/tcp": [{"HostPort": "5678"}]}),
            )
        ),
        "debugger port 5678",
    ),
    Case(
        "debug-port",
        "exposed",
        vary(
            (
                f"{FILTER}/settings/createOptions",
                json.dumps({"ExposedPorts": {"9229/tcp": {}}, "HostConfig": {"LogConfig": LOGS}}),
            )
        ),
        "debugger port 9229",
    ),
    Case(
        "debug-port",
        "ptrace",
        vary((f"{FILTER}/settings/createOptions", options(CapAdd=["SYS_PTRACE"]))),
        "adds SYS_PTRACE",
    ),
    Case(
        "public-runtime-registry",
        "mcr",
        vary((f"{AGENT_SETTINGS}/image", "mcr.microsoft.com/azureiotedge-agent:1.5.44")),
        "from the public registry: serve it from your private registry",
    ),
    Case(
        "public-runtime-registry",
        "named",
        vary((f"{HUB_SETTINGS}/image", "mcr.microsoft.com/azureiotedge-hub:1.5.44")),
        "serve it from myacr.azurecr.io",
        settings=LintSettings(private_registry="myacr.azurecr.io"),
    ),
    Case(
        "registry-credentials",
        "missing",
        vary((f"{FILTER}/settings/image", "other.azurecr.io/filter:1.2.3")),
        "no registryCredentials entry has the address other.azurecr.io",
        Severity.ERROR,
    ),
    Case(
        "registry-credentials",
        "unused",
        vary(
            (
                f"{AGENT}/runtime/settings/registryCredentials/old",
                {"username": "u", "password": "p", "address": "https://old.azurecr.io/"},
            )
        ),
        "'old' (address https://old.azurecr.io/) is used by no image",
        Severity.INFO,
    ),
    Case(
        "credential-hygiene", "template-secret", vary(TEMPLATE), "the template holds the password"
    ),
    Case(
        "credential-hygiene",
        "admin-user",
        vary((f"{CREDENTIAL}/username", "MyAcr")),
        "uses the registry's admin user",
    ),
    Case(
        "credential-hygiene",
        "push-identity",
        CLEAN,
        "the identity the mirror pushes with",
        settings=LintSettings(push_username="EDGE-PULL"),
    ),
    Case(
        "upstream-protocol-mismatch",
        "agent-only",
        vary((f"{SYSTEM}/edgeHub/env", {"StorageFolder": {"value": "/iotedge/storage"}})),
        "set on edgeAgent only: set the same value (AmqpWs) on edgeHub",
    ),
    Case(
        "upstream-protocol-mismatch",
        "hub-only",
        vary((f"{SYSTEM}/edgeAgent/env", {"StorageFolder": {"value": "/iotedge/storage"}})),
        "set on edgeHub only",
    ),
    Case(
        "upstream-protocol-mismatch",
        "differ",
        vary((f"{SYSTEM}/edgeHub/env/UpstreamProtocol", {"value": "Mqtt"})),
        "edgeHub UpstreamProtocol Mqtt differs from edgeAgent's AmqpWs",
    ),
    Case(
        "upstream-protocol-mismatch",
        "invalid",
        vary(
            (f"{SYSTEM}/edgeHub/env/UpstreamProtocol", {"value": "Http"}),
            (f"{SYSTEM}/edgeAgent/env/UpstreamProtocol", {"value": "Http"}),
        ),
        "'Http' is not one of Amqp, AmqpWs, Mqtt, MqttWs",
    ),
    Case(
        "host-storage",
        "no-folder",
        vary((f"{SYSTEM}/edgeAgent/env", {"UpstreamProtocol": {"value": "AmqpWs"}})),
        "set env StorageFolder",
    ),
    Case(
        "host-storage",
        "not-bound",
        vary(
            (
                f"{HUB_SETTINGS}/createOptions",
                options(PortBindings={"443/tcp": [{"HostPort": "443"}]}),
            )
        ),
        "StorageFolder /iotedge/storage is not on the host",
    ),
    Case(
        "log-limits",
        "none",
        vary((f"{FILTER}/settings/createOptions", "{}")),
        "set HostConfig.LogConfig with Type json-file",
    ),
    Case(
        "log-limits",
        "no-max-file",
        vary(
            (
                f"{FILTER}/settings/createOptions",
                json.dumps(
                    {"HostConfig": {"LogConfig": {"Type": "local", "Config": {"max-size": "10m"}}}}
                ),
            )
        ),
        "logs with local without max-file",
    ),
    Case(
        "log-limits",
        "absent",
        vary((f"{FILTER}/settings/createOptions", DELETE)),
        "has no log size limit",
    ),
    Case(
        "optimize-for-performance",
        "arm32v7",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:1.2.3-arm32v7")),
        "OptimizeForPerformance to false",
        Severity.INFO,
    ),
    Case(
        "optimize-for-performance",
        "configured",
        CLEAN,
        "OptimizeForPerformance",
        settings=LintSettings(constrained_devices=True),
    ),
    Case("optimize-for-performance", "file-name", CLEAN, "OptimizeForPerformance"),
    Case(
        "unused-protocol-head",
        "http",
        vary(
            (
                f"{HUB_SETTINGS}/createOptions",
                options(**storage("edgeHub"), PortBindings={"5671/tcp": [{}], "8883/tcp": [{}]}),
            )
        ),
        "HTTPS head is enabled but port 443",
        Severity.INFO,
    ),
    Case(
        "unused-protocol-head",
        "mqtt-without-modules",
        vary(
            (f"{AGENT}/modules", {}),
            (
                f"{HUB_SETTINGS}/createOptions",
                options(**storage("edgeHub"), PortBindings={"5671/tcp": [{}], "443/tcp": [{}]}),
            ),
        ),
        "mqttSettings__enabled to false",
    ),
    Case(
        "message-ttl",
        "missing",
        vary((f"{HUB}/storeAndForwardConfiguration", DELETE)),
        "set storeAndForwardConfiguration.timeToLiveSecs",
        Severity.WARNING,
    ),
    Case(
        "message-ttl",
        "route-above-global",
        vary((f"{HUB}/routes/up", {"route": "FROM /* INTO $upstream", "timeToLiveSecs": 86400})),
        "route up keeps messages 86400 s",
        Severity.INFO,
    ),
    Case(
        "privileged-module",
        "privileged",
        vary((f"{FILTER}/settings/createOptions", options(Privileged=True))),
        "runs privileged",
    ),
    Case(
        "privileged-module",
        "host-network",
        vary((f"{FILTER}/settings/createOptions", options(NetworkMode="host"))),
        "uses the host network",
    ),
    Case(
        "privileged-module",
        "docker-socket",
        vary(
            (
                f"{FILTER}/settings/createOptions",
                options(Binds=["/var/run/docker.sock:/var/run/docker.sock"]),
            )
        ),
        "mounts the Docker socket",
    ),
    Case(
        "privileged-module",
        "socket-mount",
        vary(
            (
                f"{FILTER}/settings/createOptions",
                options(Mounts=[{"Source": "/run/docker.sock", "Target": "/s"}]),
            )
        ),
        "mounts the Docker socket",
    ),
    Case(
        "twin-size",
        "big",
        vary((f"{FILTER}/env", {f"V{i}": {"value": "x" * 1000} for i in range(30)})),
        "near the 32 KB module twin limit",
    ),
    Case(
        "twin-size",
        "over",
        vary((f"{FILTER}/env", {f"V{i}": {"value": "x" * 1000} for i in range(40)})),
        "over the 32 KB module twin limit",
    ),
    Case(
        "layered-shape",
        "system-modules",
        vary(
            ("content/modulesContent/$edgeAgent/properties.desired.systemModules.edgeHub", {}),
            base=LAYERED,
        ),
        "cannot change system modules",
    ),
    Case(
        "layered-shape",
        "mixed",
        vary(("content/modulesContent/$edgeHub/properties.desired", {}), base=LAYERED),
        "set dotted keys only",
    ),
    Case(
        "layered-shape",
        "no-agent",
        vary(("content/modulesContent/$edgeAgent", DELETE), base=LAYERED),
        "needs $edgeAgent, even empty",
    ),
    Case(
        "signed-manifest",
        "integrity",
        vary((f"{AGENT}/integrity", {"header": {}, "signature": {}})),
        "mirror rewrite will refuse it",
        Severity.INFO,
    ),
]

QUIET = [
    Case("manifest-shape", "clean", CLEAN),
    Case("manifest-shape", "layered", LAYERED),
    Case("agent-schema-version", "1.0", vary((f"{AGENT}/schemaVersion", "1.0"))),
    Case(
        "agent-schema-version",
        "template-placeholder",
        vary(TEMPLATE, (f"{AGENT}/schemaVersion", "${EDGEAGENT_SCHEMA_VERSION}")),
    ),
    Case("agent-schema-version", "layered", LAYERED),
    Case(
        "hub-schema-version",
        "1.3",
        vary((f"{HUB}/schemaVersion", "1.3"), (f"{HUB}/mqttBroker", {}), (f"{HUB}/integrity", {})),
    ),
    Case(
        "hub-schema-version",
        "1.2-broker",
        vary((f"{HUB}/schemaVersion", "1.2"), (f"{HUB}/mqttBroker", {})),
    ),
    Case(
        "schema-feature",
        "1.1",
        vary(
            (f"{FILTER}/startupOrder", 1),
            (f"{HUB}/routes/up", {"route": "FROM /* INTO $upstream", "priority": 1}),
        ),
    ),
    Case("required-field", "clean", CLEAN),
    Case("enum-value", "clean", CLEAN),
    Case(
        "enum-value",
        "on-create",
        vary((f"{FILTER}/imagePullPolicy", "on-create"), (f"{FILTER}/startupOrder", 4294967295)),
    ),
    Case("enum-value", "template-placeholder", vary(TEMPLATE, (f"{FILTER}/status", "${STATUS}"))),
    Case(
        "misplaced-setting",
        "module-level",
        vary(
            (f"{FILTER}/imagePullPolicy", "never"),
            (f"{FILTER}/settings/digest", DIGEST),
            (f"{FILTER}/env", {"A": {"value": "1"}}),
        ),
    ),
    Case(
        "create-options-format",
        "template-object",
        vary(TEMPLATE, (f"{FILTER}/settings/createOptions", {"HostConfig": {"LogConfig": LOGS}})),
    ),
    Case(
        "create-options-format",
        "chunked",
        vary(
            (f"{FILTER}/settings/createOptions", options(Binds=["/a:/b"] * 60)[:512]),
            (f"{FILTER}/settings/createOptions01", options(Binds=["/a:/b"] * 60)[512:]),
        ),
    ),
    Case("create-options-format", "empty-string", vary((f"{FILTER}/settings/createOptions", ""))),
    Case(
        "create-options-format",
        "template-long-string",
        vary(TEMPLATE, (f"{FILTER}/settings/createOptions", options(Binds=["/a:/b"] * 60))),
    ),
    Case(
        "unresolved-placeholder",
        "template",
        vary(
            TEMPLATE,
            (f"{FILTER}/settings/image", "${MODULES.filter}"),
            (f"{CREDENTIAL}/password", "$ACR_PASSWORD"),
        ),
    ),
    Case(
        "unresolved-placeholder",
        "detected-template",
        vary((f"{FILTER}/settings/image", "${MODULES.filter}")),
    ),
    Case(
        "unresolved-placeholder",
        "forced-template",
        vary((f"{CREDENTIAL}/password", "$ACR_PASSWORD")),
        settings=LintSettings(template=True),
    ),
    Case(
        "unresolved-placeholder",
        "upstream",
        vary((f"{FILTER}/settings/image", "$upstream:443/filter:1.2.3")),
    ),
    Case(
        "image-reference",
        "digest-form",
        vary((f"{FILTER}/settings/image", f"myacr.azurecr.io/filter@{DIGEST}")),
    ),
    Case("image-reference", "digest-setting", vary((f"{FILTER}/settings/digest", DIGEST))),
    Case(
        "image-reference",
        "placeholder",
        vary(TEMPLATE, (f"{FILTER}/settings/image", "${MODULES.filter}")),
    ),
    Case(
        "mutable-tag",
        "digest",
        vary((f"{FILTER}/settings/image", f"myacr.azurecr.io/filter@{DIGEST}")),
    ),
    Case(
        "mutable-tag",
        "digest-setting",
        vary(
            (f"{FILTER}/settings/image", "myacr.azurecr.io/filter:latest"),
            (f"{FILTER}/settings/digest", DIGEST),
        ),
    ),
    Case(
        "mutable-tag",
        "placeholder-tag",
        vary(TEMPLATE, (f"{FILTER}/settings/image", "myacr.azurecr.io/filter:${TAG}")),
    ),
    Case(
        "mutable-tag",
        "latest-like-version",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:latency-1")),
    ),
    Case("rolling-runtime-tag", "specific", CLEAN),
    Case(
        "rolling-runtime-tag",
        "digest",
        vary((f"{AGENT_SETTINGS}/image", f"myacr.azurecr.io/azureiotedge-agent@{DIGEST}")),
    ),
    Case(
        "rolling-runtime-tag",
        "module-on-rolling",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/azureiotedge-agent:1.5")),
    ),
    Case(
        "runtime-version-mismatch",
        "same",
        CLEAN,
        settings=LintSettings(expected_daemon_version="1.5"),
    ),
    Case(
        "runtime-version-mismatch",
        "rolling-same-line",
        vary((f"{HUB_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-hub:1.5")),
    ),
    Case("unsupported-runtime", "supported", CLEAN),
    Case(
        "unsupported-runtime",
        "configured",
        vary(
            (f"{AGENT_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-agent:1.4.43"),
            (f"{HUB_SETTINGS}/image", "myacr.azurecr.io/azureiotedge-hub:1.4.43"),
        ),
        settings=LintSettings(supported_runtime_lines=["1.4", "1.5"]),
    ),
    Case("debug-image", "clean", CLEAN),
    Case(
        "debug-image",
        "debugger-name",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/debugger:1.2.3")),
    ),
    Case("debug-port", "clean", CLEAN),
    Case(
        "debug-port",
        "other-ports",
        vary(
            (
                f"{FILTER}/settings/createOptions",
                options(PortBindings={"8080/tcp": [{}]}, CapAdd=["NET_ADMIN"]),
            )
        ),
    ),
    Case("public-runtime-registry", "clean", CLEAN),
    Case(
        "public-runtime-registry",
        "upstream",
        vary((f"{AGENT_SETTINGS}/image", "$upstream:443/azureiotedge-agent:1.5.44")),
    ),
    Case(
        "public-runtime-registry",
        "other-mcr",
        vary((f"{FILTER}/settings/image", "mcr.microsoft.com/oss/v2/docker/registry:v3.0.0")),
    ),
    Case("registry-credentials", "clean", CLEAN),
    Case(
        "registry-credentials",
        "placeholder-address",
        vary(
            (f"{CREDENTIAL}/address", "$ADDRESS"),
            (f"{FILTER}/settings/image", "other.azurecr.io/filter:1.2.3"),
        ),
    ),
    Case(
        "registry-credentials",
        "public",
        vary((f"{FILTER}/settings/image", "docker.io/library/nginx:1.27")),
    ),
    Case(
        "registry-credentials",
        "unknown-image-registry",
        vary(
            TEMPLATE,
            (f"{FILTER}/settings/image", "${MODULES.filter}"),
            (f"{CREDENTIAL}/password", "$P"),
            (
                f"{AGENT}/runtime/settings/registryCredentials/old",
                {"username": "u", "password": "$P", "address": "old.io"},
            ),
        ),
    ),
    Case("credential-hygiene", "clean", CLEAN, settings=LintSettings(push_username="mirror-push")),
    Case(
        "credential-hygiene",
        "template-variable",
        vary(TEMPLATE, (f"{CREDENTIAL}/password", "${ACR_PASSWORD}")),
    ),
    Case("upstream-protocol-mismatch", "same", CLEAN),
    Case(
        "upstream-protocol-mismatch",
        "case",
        vary((f"{SYSTEM}/edgeHub/env/UpstreamProtocol", {"value": "amqpws"})),
    ),
    Case(
        "upstream-protocol-mismatch",
        "neither",
        vary(
            (f"{SYSTEM}/edgeHub/env", {"StorageFolder": ENV["StorageFolder"]}),
            (f"{SYSTEM}/edgeAgent/env", {"StorageFolder": ENV["StorageFolder"]}),
        ),
    ),
    Case("host-storage", "clean", CLEAN),
    Case(
        "host-storage",
        "mount",
        vary(
            (
                f"{HUB_SETTINGS}/createOptions",
                options(
                    Mounts=[{"Type": "bind", "Source": "/srv/hub", "Target": "/iotedge"}],
                    PortBindings={},
                ),
            )
        ),
    ),
    Case("log-limits", "clean", CLEAN),
    Case(
        "log-limits",
        "journald",
        vary(
            (
                f"{FILTER}/settings/createOptions",
                json.dumps({"HostConfig": {"LogConfig": {"Type": "journald"}}}),
            )
        ),
    ),
    Case(
        "log-limits",
        "daemon-policy",
        vary((f"{FILTER}/settings/createOptions", "{}")),
        settings=LintSettings(daemon_log_policy=True),
    ),
    Case("optimize-for-performance", "clean", CLEAN),
    Case(
        "optimize-for-performance",
        "set",
        vary(
            (f"{FILTER}/settings/image", "myacr.azurecr.io/filter:1.2.3-arm32v7"),
            (f"{SYSTEM}/edgeHub/env/OptimizeForPerformance", {"value": "false"}),
        ),
    ),
    Case(
        "optimize-for-performance",
        "configured-off",
        vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:1.2.3-arm32v7")),
        settings=LintSettings(constrained_devices=False),
    ),
    Case("unused-protocol-head", "clean", CLEAN),
    Case(
        "unused-protocol-head",
        "disabled",
        vary(
            (f"{HUB_SETTINGS}/createOptions", options(**storage("edgeHub"))),
            (f"{SYSTEM}/edgeHub/env/httpSettings__enabled", {"value": "false"}),
        ),
    ),
    Case("message-ttl", "clean", CLEAN),
    Case(
        "message-ttl",
        "route-below",
        vary((f"{HUB}/routes/up", {"route": "FROM /* INTO $upstream", "timeToLiveSecs": 60})),
    ),
    Case("privileged-module", "clean", CLEAN),
    Case(
        "privileged-module",
        "devices",
        vary(
            (
                f"{FILTER}/settings/createOptions",
                options(Privileged=False, Devices=[{"PathOnHost": "/dev/video0"}]),
            )
        ),
    ),
    Case("twin-size", "clean", CLEAN),
    Case("layered-shape", "layered", LAYERED),
    Case("layered-shape", "not-layered", CLEAN),
    Case("signed-manifest", "clean", CLEAN),
]


def _case_id(case: Case) -> str:
    return f"{case.rule}:{case.name}"


def _file(case: Case) -> str:
    return "deployment.arm32v7.json" if case.name == "file-name" else "deployment.json"


@pytest.mark.parametrize("case", FIRES, ids=_case_id)
def test_rule_fires(case: Case) -> None:
    findings = [f for f in lint(case.document, case.settings, _file(case)) if f.rule == case.rule]
    assert findings, f"{case.rule} did not fire"
    matching = [f for f in findings if case.fragment in f.message]
    assert matching, [f.message for f in findings]
    if case.severity is not None:
        assert matching[0].severity is case.severity
    if case.path is not None:
        assert matching[0].path == case.path


@pytest.mark.parametrize("case", QUIET, ids=_case_id)
def test_rule_stays_quiet(case: Case) -> None:
    findings = [f for f in lint(case.document, case.settings) if f.rule == case.rule]
    assert findings == []


def test_every_rule_has_cases_both_ways() -> None:
    assert {c.rule for c in FIRES} == set(RULE_IDS)
    assert {c.rule for c in QUIET} == set(RULE_IDS)


def test_the_clean_manifest_is_clean() -> None:
    assert lint(CLEAN) == []
    assert lint(CLEAN, LintSettings(profile="production")) == []


def test_findings_point_at_the_line_of_the_value() -> None:
    document = vary((f"{FILTER}/settings/image", "myacr.azurecr.io/filter:latest"))
    (finding,) = [f for f in lint(document) if f.rule == "mutable-tag"]
    line = dumps(document).splitlines()[finding.line - 1]
    assert '"image": "myacr.azurecr.io/filter:latest"' in line
    assert (
        finding.path == "modulesContent.$edgeAgent.properties.desired.modules.filter.settings.image"
    )
    assert finding.column == line.index('"image"') + 1
