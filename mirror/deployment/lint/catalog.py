"""The lint rule catalog: stable ids, default severities, and what each rule checks.

Users name these ids in their configuration (to disable or re-grade a rule) and CI
reads them from JSON and SARIF output, so an id never changes once published.
`checklist` marks the rules that enforce items of the IoT Edge production checklist:
the `production` profile raises their warnings to errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirror.deployment.lint.finding import Severity

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    checklist: bool = False


RULES: tuple[Rule, ...] = (
    Rule("manifest-shape", ERROR, "Top level and required sections of a deployment manifest"),
    Rule("agent-schema-version", ERROR, "$edgeAgent schemaVersion is 1.0 or 1.1"),
    Rule("hub-schema-version", ERROR, "$edgeHub schemaVersion 1.0-1.3, and what needs which"),
    Rule("schema-feature", ERROR, "startupOrder and route objects need schema 1.1"),
    Rule("required-field", ERROR, "Fields edgeAgent and edgeHub require"),
    Rule("enum-value", ERROR, "Allowed values and name patterns"),
    Rule("misplaced-setting", ERROR, "Settings at the wrong level, and unknown keys"),
    Rule("create-options-format", ERROR, "createOptions strings, chunks and their names"),
    Rule("unresolved-placeholder", ERROR, "Placeholders left in a manifest to deploy"),
    Rule("image-reference", ERROR, "Images edgeAgent can parse"),
    Rule("mutable-tag", WARNING, "No tag, latest or a branch-like tag", checklist=True),
    Rule("rolling-runtime-tag", WARNING, "Runtime on a rolling X.Y tag", checklist=True),
    Rule("runtime-version-mismatch", WARNING, "edgeAgent and edgeHub on different versions"),
    Rule("unsupported-runtime", WARNING, "Runtime line out of support, or never released"),
    Rule("debug-image", ERROR, "Debug images", checklist=True),
    Rule("debug-port", WARNING, "Debugger ports or SYS_PTRACE", checklist=True),
    Rule("public-runtime-registry", WARNING, "Runtime not from the private registry", True),
    Rule("registry-credentials", ERROR, "Credentials for every private registry, none unused"),
    Rule("credential-hygiene", WARNING, "Literal, admin or push credentials", checklist=True),
    Rule("upstream-protocol-mismatch", ERROR, "Same UpstreamProtocol on edgeAgent and edgeHub"),
    Rule("host-storage", WARNING, "edgeAgent/edgeHub state on the host", checklist=True),
    Rule("log-limits", WARNING, "Container log size limits", checklist=True),
    Rule("optimize-for-performance", INFO, "OptimizeForPerformance=false on small devices"),
    Rule("unused-protocol-head", INFO, "edgeHub protocol heads nobody uses"),
    Rule("message-ttl", WARNING, "Store-and-forward and route time-to-live"),
    Rule("privileged-module", WARNING, "Privileged, host network, docker socket"),
    Rule("twin-size", WARNING, "$edgeAgent desired properties near the twin size limit"),
    Rule("layered-shape", ERROR, "Layered deployments: dotted keys, no system modules"),
    Rule("signed-manifest", INFO, "Signed manifests (rewrite refuses them)"),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}
RULE_IDS = tuple(RULES_BY_ID)
