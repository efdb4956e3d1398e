"""Registry token scopes (`repository:<name>:pull,push`) and what a request needs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

_REPOSITORY_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")
# `/acr/v1/<name>/_tags...`: the name as one `%2F`-encoded segment (what ACR's clients
# send) or with literal slashes; a name component never starts with `_`.
_METADATA_PATH = re.compile(r"^/acr/v1/(?P<name>.+?)/_(?:tags|manifests)(?:[/?]|$)")


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource and the actions wanted on it."""

    type: str
    name: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope:
        """`repository:a/b:pull,push`; the name may itself hold no colon, actions may be empty."""
        type_, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        if not name:
            name, actions = rest, ""
        return cls(type_, name, frozenset(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scopes(texts: Iterable[str]) -> dict[tuple[str, str], frozenset[str]]:
    """Merge scope strings (each possibly space-separated) into resource -> actions."""
    merged: dict[tuple[str, str], frozenset[str]] = {}
    for text in texts:
        for part in text.split():
            scope = Scope.parse(part)
            key = (scope.type, scope.name)
            merged[key] = merged.get(key, frozenset()) | scope.actions
    return merged


def format_scopes(scopes: Mapping[tuple[str, str], frozenset[str]]) -> tuple[str, ...]:
    return tuple(sorted(str(Scope(t, n, a)) for (t, n), a in scopes.items()))


def covers(
    granted: Mapping[tuple[str, str], frozenset[str]],
    needed: Mapping[tuple[str, str], frozenset[str]],
) -> bool:
    """True when every needed action on every needed resource is granted."""
    return all(actions <= granted.get(key, frozenset()) for key, actions in needed.items())


def needed_for(
    method: str, path: str, query: str, *, push: bool
) -> dict[tuple[str, str], frozenset[str]]:
    """The scopes a registry API request will be challenged for.

    `path` is the path as sent (percent-encoded, without the query): ACR's
    `/acr/v1/library%2Fhello-world/_tags/1.0` needs
    `repository:library/hello-world:metadata_read`, which a decoded path would hide.
    A client that pushes asks for `pull,push` on every request to a repository, so one
    token serves the whole copy into it; a cross-repository mount also needs `pull` on
    the repository it mounts from; ACR's `/acr/v1/<repo>/...` needs `metadata_read`
    or `metadata_write`.
    """
    metadata = _METADATA_PATH.match(path)
    if metadata:  # ACR's metadata API: its own actions
        action = "metadata_read" if method in ("GET", "HEAD") else "metadata_write"
        return {("repository", unquote(metadata["name"])): frozenset({action})}
    match = _REPOSITORY_PATH.match(unquote(path))
    if not match:
        return {}
    name = match["name"]
    if method == "DELETE":
        actions = frozenset({"delete"})
    elif push or method not in ("GET", "HEAD"):
        actions = frozenset({"pull", "push"})
    else:
        actions = frozenset({"pull"})
    needed = {("repository", name): actions}
    for source in parse_qs(query).get("from", []):
        key = ("repository", source)
        needed[key] = needed.get(key, frozenset()) | {"pull"}
    return needed
