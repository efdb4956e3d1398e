"""What a lint rule sees (the manifest, the settings, the runtime catalog) and returns.

A rule is a function from `LintContext` to `Issue`s; an issue names its location
(JSON path and source offset) and may carry its own severity when the rule has two
(e.g. `registry-credentials`: error for a missing entry, info for an unused one). The
engine turns issues into findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from mirror.deployment.images import ImageString, find_placeholders
from mirror.deployment.lint.finding import Severity
from mirror.deployment.runtime import DEFAULT_CATALOG, RuntimeCatalog
from mirror.deployment.settings import LintSettings
from mirror.deployment.shape import DeploymentManifest, Located, ModuleEntry, Role


@dataclass(frozen=True, slots=True)
class Issue:
    rule: str
    path: str
    anchor: int
    message: str
    severity: Severity | None = None


@dataclass(frozen=True)
class LintContext:
    manifest: DeploymentManifest
    settings: LintSettings
    catalog: RuntimeCatalog = DEFAULT_CATALOG

    @property
    def deployable(self) -> bool:
        return not self.manifest.is_template

    def issue(
        self, rule: str, located: Located, message: str, severity: Severity | None = None
    ) -> Issue:
        return Issue(rule, located.path, located.anchor, message, severity)

    def missing(
        self, rule: str, parent: Located, key: str, message: str, severity: Severity | None = None
    ) -> Issue:
        """An issue about `key`, absent from `parent`: reported at the parent's line."""
        return Issue(rule, f"{parent.path}.{key}", parent.anchor, message, severity)

    def images(self) -> Iterator[tuple[ModuleEntry, Located, ImageString]]:
        """Every module whose `settings.image` is a string, with the string classified."""
        for module in self.manifest.modules:
            image = module.image_string
            if module.image is not None and image is not None:
                yield module, module.image, image

    def runtime(self, role: Role) -> ModuleEntry | None:
        return self.manifest.module(role)


Check = Callable[[LintContext], Iterable[Issue]]


def has_placeholder(text: str | None) -> bool:
    return bool(text) and bool(find_placeholders(text or ""))


def describe(module: ModuleEntry) -> str:
    """How messages name a module: `edgeAgent`, `edgeHub` or `module "name"`."""
    return module.name if module.role is not Role.MODULE else f'module "{module.name}"'
