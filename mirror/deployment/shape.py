"""The shapes a deployment manifest comes in, and what it declares.

Top level: `modulesContent` (deployable), the same with `$schema-template` (a template),
`content.modulesContent` (at-scale and layered deployments) and the legacy
`moduleContent`. Under `$edgeAgent`/`$edgeHub` the desired properties are either one
`properties.desired` object or, in layered deployments, dotted keys such as
`properties.desired.modules.X`; `Twin` resolves a logical path across both spellings.
`load_manifest` recognises the shape and lists the runtime and user modules (image,
env, create options) and the registry credentials, each with its JSON path and
source position.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePath

from mirror.deployment.create_options import CreateOptions, read_create_options
from mirror.deployment.document import Document, JLiteral, JNumber, JObject, JString, Member, Node
from mirror.deployment.errors import NotADeploymentManifest
from mirror.deployment.images import ImageString, PlaceholderKind, classify

DESIRED = ("properties", "desired")
SYSTEM_MODULES = (*DESIRED, "systemModules")
MODULES = (*DESIRED, "modules")
REGISTRY_CREDENTIALS = (*DESIRED, "runtime", "settings", "registryCredentials")


class Shape(StrEnum):
    MODULES_CONTENT = "modulesContent"
    CONTENT_WRAPPER = "content.modulesContent"
    LEGACY = "moduleContent"


class Role(StrEnum):
    AGENT = "edgeAgent"
    HUB = "edgeHub"
    MODULE = "module"


@dataclass(frozen=True, slots=True)
class Located:
    """A node, its JSON path, and the offset a finding about it points at (its key)."""

    node: Node
    path: str
    anchor: int

    def child(self, key: str) -> Located | None:
        """The member `key` of this node, if the node is an object holding it."""
        if not isinstance(self.node, JObject):
            return None
        member = self.node.member(key)
        return at_member(member, f"{self.path}.{key}") if member else None

    @property
    def obj(self) -> JObject | None:
        return self.node if isinstance(self.node, JObject) else None

    @property
    def text(self) -> str | None:
        return self.node.value if isinstance(self.node, JString) else None


def at_member(member: Member, path: str) -> Located:
    return Located(member.value, path, member.key_start)


@dataclass(frozen=True)
class Twin:
    """`$edgeAgent` or `$edgeHub`: desired properties reached by logical path.

    A logical path such as `("properties", "desired", "modules")` matches both
    `{"properties.desired": {"modules": ...}}` and a layered key
    `"properties.desired.modules.X"`; only keys directly under the twin are dotted.
    """

    name: str
    located: Located

    @property
    def node(self) -> JObject:
        assert isinstance(self.located.node, JObject)
        return self.located.node

    def find(self, *segments: str) -> Located | None:
        """The node at `segments` (the last definition wins), or None."""
        for member in reversed(self.node.members):
            split = tuple(member.key.split("."))
            if segments[: len(split)] != split:
                continue
            found: Located | None = at_member(member, f"{self.located.path}.{member.key}")
            for key in segments[len(split) :]:
                found = found.child(key) if found else None
            if found is not None:
                return found
        return None

    def children(self, *segments: str) -> dict[str, Located]:
        """The members of the object at `segments`, from every spelling."""
        result: dict[str, Located] = {}
        for member in self.node.members:
            split = tuple(member.key.split("."))
            if len(split) > len(segments) and split[: len(segments)] == segments:
                if len(split) == len(segments) + 1:
                    result[split[-1]] = at_member(member, f"{self.located.path}.{member.key}")
                continue
            if segments[: len(split)] != split:
                continue
            parent: Located | None = at_member(member, f"{self.located.path}.{member.key}")
            for key in segments[len(split) :]:
                parent = parent.child(key) if parent else None
            if parent is not None and parent.obj is not None:
                for child in parent.obj.members:
                    result[child.key] = at_member(child, f"{parent.path}.{child.key}")
        return result

    def dotted_keys(self) -> list[Member]:
        return [m for m in self.node.members if m.key.startswith("properties.desired.")]


@dataclass(frozen=True)
class ModuleEntry:
    """edgeAgent, edgeHub or a user module, as declared."""

    name: str
    role: Role
    located: Located
    settings: Located | None
    image: Located | None
    create_options: CreateOptions

    @property
    def obj(self) -> JObject | None:
        return self.located.obj

    @property
    def image_string(self) -> ImageString | None:
        text = self.image.text if self.image else None
        return classify(text) if text is not None else None

    def field(self, key: str) -> Located | None:
        return self.located.child(key)

    @property
    def env(self) -> dict[str, Located]:
        """Environment variables by name (each located at its `{"value": ...}` entry)."""
        env = self.located.child("env")
        if env is None or env.obj is None:
            return {}
        return {m.key: at_member(m, f"{env.path}.{m.key}") for m in env.obj.members}

    def env_value(self, name: str) -> tuple[str, Located] | None:
        """The value of env variable `name` (compared case-insensitively) as text."""
        for key, entry in self.env.items():
            if key.lower() != name.lower():
                continue
            value = entry.child("value")
            if value is None:
                return None
            node = value.node
            text = node.value if isinstance(node, JString) else _scalar_text(node)
            return (text, value) if text is not None else None
        return None


def _scalar_text(node: Node) -> str | None:
    if isinstance(node, JNumber):
        return str(node.value)
    if isinstance(node, JLiteral) and node.value is not None:
        return "true" if node.value else "false"
    return None


@dataclass(frozen=True)
class CredentialEntry:
    """One `runtime.settings.registryCredentials.<name>` entry."""

    name: str
    located: Located

    def field(self, key: str) -> Located | None:
        return self.located.child(key)

    def text(self, key: str) -> str | None:
        found = self.field(key)
        return found.text if found else None


@dataclass(frozen=True)
class DeploymentManifest:
    """A recognised deployment manifest and what it declares."""

    document: Document
    shape: Shape
    content: Located
    is_template: bool
    is_layered: bool
    agent: Twin | None
    hub: Twin | None
    modules: tuple[ModuleEntry, ...]
    credentials: tuple[CredentialEntry, ...]

    @property
    def file(self) -> str:
        return self.document.file

    def line(self, located: Located) -> int:
        return self.document.line_of(located.anchor)

    def module(self, role: Role) -> ModuleEntry | None:
        return next((m for m in self.modules if m.role is role), None)

    @property
    def integrity(self) -> list[Located]:
        """Every `integrity` signature block in the desired properties."""
        found = [twin.find(*DESIRED, "integrity") for twin in (self.agent, self.hub) if twin]
        return [located for located in found if located is not None]


def load_manifest(document: Document, template: bool | None = None) -> DeploymentManifest:
    """Recognise the shape of `document`; `template` forces (or denies) template mode.

    Raises `NotADeploymentManifest` when the document holds no deployment at all.
    """
    root = document.root
    if not isinstance(root, JObject):
        raise NotADeploymentManifest(
            document.file, "is not a deployment manifest: the top level is not a JSON object"
        )
    shape, content = _content(document, root)
    agent = _twin(content, "$edgeAgent")
    hub = _twin(content, "$edgeHub")
    modules = tuple(_modules(agent)) if agent else ()
    credentials = tuple(
        CredentialEntry(name, located)
        for name, located in (agent.children(*REGISTRY_CREDENTIALS) if agent else {}).items()
    )
    return DeploymentManifest(
        document=document,
        shape=shape,
        content=content,
        is_template=_is_template(document, root, modules) if template is None else template,
        is_layered=_is_layered(agent, hub),
        agent=agent,
        hub=hub,
        modules=modules,
        credentials=credentials,
    )


def _content(document: Document, root: JObject) -> tuple[Shape, Located]:
    wrapper = root.member("content")
    candidates = [
        (Shape.MODULES_CONTENT, root.member("modulesContent"), "modulesContent"),
        (Shape.LEGACY, root.member("moduleContent"), "moduleContent"),
    ]
    if wrapper and isinstance(wrapper.value, JObject):
        inner = wrapper.value.member("modulesContent") or wrapper.value.member("moduleContent")
        candidates.append((Shape.CONTENT_WRAPPER, inner, f"content.{inner.key}" if inner else ""))
    for shape, member, path in candidates:
        if member is None:
            continue
        if not isinstance(member.value, JObject):
            line = document.line_of(member.key_start)
            raise NotADeploymentManifest(
                document.file, f"is not a deployment manifest: {path} is not an object", line
            )
        return shape, at_member(member, path)
    raise NotADeploymentManifest(
        document.file,
        "is not a deployment manifest: no modulesContent (nor content.modulesContent)",
    )


def _twin(content: Located, name: str) -> Twin | None:
    located = content.child(name)
    return Twin(name, located) if located and located.obj is not None else None


def _modules(agent: Twin) -> list[ModuleEntry]:
    system = agent.children(*SYSTEM_MODULES)
    entries = [
        _module(name, role, system[name])
        for name, role in (("edgeAgent", Role.AGENT), ("edgeHub", Role.HUB))
        if name in system
    ]
    entries += [
        _module(name, Role.MODULE, located) for name, located in agent.children(*MODULES).items()
    ]
    return entries


def _module(name: str, role: Role, located: Located) -> ModuleEntry:
    settings = located.child("settings")
    image = settings.child("image") if settings else None
    options = read_create_options(settings.obj if settings else None)
    return ModuleEntry(name, role, located, settings, image, options)


def _is_layered(agent: Twin | None, hub: Twin | None) -> bool:
    if any(twin.dotted_keys() for twin in (agent, hub) if twin):
        return True
    return agent is not None and not agent.node.members


def _is_template(document: Document, root: JObject, modules: tuple[ModuleEntry, ...]) -> bool:
    content = root.get("content")
    marked = root.member("$schema-template") or (
        isinstance(content, JObject) and content.member("$schema-template")
    )
    if marked or PurePath(document.file).name.endswith(".template.json"):
        return True
    module_kinds = (PlaceholderKind.MODULE, PlaceholderKind.MODULE_DIR)
    for module in modules:
        image = module.image_string
        placeholders = image.placeholders if image else ()
        if any(p.kind in module_kinds for p in placeholders):
            return True
    return False
