"""What deployments pull: the images their manifests name from a mirrored registry.

`mirror sync --from-manifests` mirrors exactly these. Every module of every manifest
(each shape `mirror rewrite` reads) is looked at, edgeAgent and edgeHub included:

    named       a literal image from a mirrored registry (by default all of
                mcr.microsoft.com): its repository and tag, or its digest
    unresolved  an image whose registry, repository or tag holds a placeholder
                (`${VAR}`, `$VAR`, `<Token>`, `__TOKEN__`, `#{Token}#`) that no value
                was given for (`--set NAME=VALUE`, or the environment): reported and
                skipped, never guessed
    elsewhere   an image from another registry, the parent device's (`$upstream`), or
                one the build tool makes (`${MODULES.X}`): not mirrored

A value given for a placeholder is substituted before the image is classified, so
`mcr.microsoft.com/azureiotedge-agent:${EDGE_RUNTIME_VERSION}` with
`EDGE_RUNTIME_VERSION=1.5` names `azureiotedge-agent:1.5`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mirror.deployment.document import read_document
from mirror.deployment.images import (
    ImageKind,
    ImageString,
    Placeholder,
    PlaceholderKind,
    classify,
)
from mirror.deployment.settings import matches_any
from mirror.deployment.shape import DeploymentManifest, ModuleEntry, load_manifest

DEFAULT_REGISTRIES = ("mcr.microsoft.com",)
_BUILT = (PlaceholderKind.MODULE, PlaceholderKind.MODULE_DIR)


@dataclass(frozen=True, slots=True)
class Named:
    """An image a manifest names from a mirrored registry: `reference` is its tag, or
    its digest (`sha256:...`)."""

    file: str
    line: int
    module: str
    image: str
    repository: str
    reference: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line} ({self.module})"


@dataclass(frozen=True, slots=True)
class Passed:
    """An image not mirrored, and why: a placeholder without a value, or not from a
    mirrored registry."""

    file: str
    line: int
    module: str
    image: str
    why: str
    unresolved: bool


@dataclass
class Demand:
    """What the manifests name, per file, in the order they were read."""

    files: list[str] = field(default_factory=list)
    named: list[Named] = field(default_factory=list)
    passed: list[Passed] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Passed]:
        return [p for p in self.passed if p.unresolved]

    def repositories(self) -> list[str]:
        """The repositories named, in first-seen order."""
        return list(dict.fromkeys(n.repository for n in self.named))

    def references(self, repository: str) -> dict[str, list[Named]]:
        """Each tag or digest of `repository` named, with every place that names it."""
        found: dict[str, list[Named]] = {}
        for named in self.named:
            if named.repository == repository:
                found.setdefault(named.reference, []).append(named)
        return found


def collect(
    manifests: Iterable[DeploymentManifest],
    *,
    registries: Sequence[str] = DEFAULT_REGISTRIES,
    values: Mapping[str, str] | None = None,
) -> Demand:
    """The images `manifests` name from `registries` (globs over `registry/repository`
    are allowed, e.g. `mcr.microsoft.com/azureiotedge-*`)."""
    demand = Demand()
    patterns = [r if "/" in r else f"{r}/*" for r in registries]
    for manifest in manifests:
        demand.files.append(manifest.file)
        for module in manifest.modules:
            if module.image is None or module.image.text is None:
                continue
            line = manifest.line(module.image)
            seen = _look(manifest.file, line, module, module.image.text, patterns, values or {})
            if isinstance(seen, Named):
                demand.named.append(seen)
            else:
                demand.passed.append(seen)
    return demand


def read_manifests(paths: Iterable[Path]) -> list[DeploymentManifest]:
    """The manifests at `paths`, a directory standing for the `*.json` files in it.
    Raises the first file's `DeploymentFileError`: a list to mirror from must be whole."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return [load_manifest(read_document(file)) for file in files]


def _look(
    file: str,
    line: int,
    module: ModuleEntry,
    text: str,
    patterns: list[str],
    values: Mapping[str, str],
) -> Named | Passed:
    def passed(why: str, *, unresolved: bool = False) -> Passed:
        return Passed(file, line, module.name, text, why, unresolved)

    image = classify(_substitute(text, values))
    if image.kind is ImageKind.UPSTREAM:
        return passed("from the parent device's registry ($upstream)")
    if image.kind is ImageKind.INVALID:
        return passed(f"not an image edgeAgent can pull: {image.problem}")
    if any(p.kind in _BUILT for p in image.placeholders):
        return passed("built by the build tool (a ${MODULES...} placeholder)")
    if image.placeholders:
        if image.name is not None and not matches_any(image.name, patterns):
            return passed(f"not from a mirrored registry ({image.name})")
        names = ", ".join(dict.fromkeys(p.text for p in image.placeholders))
        return passed(f"no value for {names} (give --set NAME=VALUE)", unresolved=True)
    return _named(file, line, module, text, image, patterns) or passed(
        f"not from a mirrored registry ({image.name})"
    )


def _named(
    file: str,
    line: int,
    module: ModuleEntry,
    text: str,
    image: ImageString,
    patterns: list[str],
) -> Named | None:
    if image.name is None or image.repository is None or not matches_any(image.name, patterns):
        return None
    reference = image.digest or image.tag or "latest"
    return Named(file, line, module.name, text, image.repository, reference)


def _substitute(text: str, values: Mapping[str, str]) -> str:
    """`text` with each placeholder that has a value replaced by it."""
    from mirror.deployment.images import find_placeholders

    out, end = [], 0
    for placeholder in find_placeholders(text):
        value = values.get(_name(placeholder))
        if value is None:
            continue
        out += [text[end : placeholder.start], value]
        end = placeholder.end
    return "".join(out) + text[end:]


def _name(placeholder: Placeholder) -> str:
    """The name a value is given under: `VAR` for `${VAR}` and `$VAR`, `Token` for
    `<Token>` and `#{Token}#`, `TOKEN` for `__TOKEN__`."""
    text = placeholder.text
    for prefix, suffix in (("${", "}"), ("#{", "}#"), ("<", ">"), ("__", "__"), ("$", "")):
        if text.startswith(prefix) and text.endswith(suffix):
            return text[len(prefix) : len(text) - len(suffix)]
    return text
