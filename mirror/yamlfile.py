"""Loading YAML files into pydantic models with errors that name file, line and key.

`load_model(path, Model)` keeps PyYAML's node tree so every key keeps its line,
validates with pydantic, and turns the first problem into one `ConfigError` line:

    policies/site.yaml:12: rules[0].keep_newest: must be >= 1
    mirror.yaml:3: concurency: unknown key (did you mean concurrency?)

Two YAML habits that bite configuration files are refused or avoided: a key given
twice (PyYAML would silently keep the last) and implicit floats (`1.10` stays the
string "1.10", so version lines are not mangled).
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from mirror.errors import ConfigError

if TYPE_CHECKING:
    import yaml

M = TypeVar("M", bound=BaseModel)
KeyPath = tuple[int | str, ...]


@functools.cache
def _loader() -> type[yaml.SafeLoader]:
    """PyYAML's safe loader without implicit floats (imported when a file is read)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:float"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def load_model(path: Path, model: type[M], *, what: str = "file", empty_ok: bool = True) -> M:
    """Read `path` and validate it as `model`; one-line `ConfigError` on any problem."""
    text = read_text(path, what)
    return parse_model(text, str(path), model, what=what, empty_ok=empty_ok)


def read_text(path: Path, what: str = "file") -> str:
    """The text of `path`, or a `ConfigError` saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"{path}: cannot read the {what}: {reason}") from None


def parse_model(
    text: str, source: str, model: type[M], *, what: str = "file", empty_ok: bool = True
) -> M:
    """Validate YAML `text` as `model`; `source` names it in error messages.

    An empty document validates as `{}` (all defaults) when `empty_ok`, else is refused.
    """
    root, data = read_yaml(text, source)
    if root is None:
        if not empty_ok:
            raise ConfigError(f"{source}:1: the {what} file is empty")
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise located(source, root, error["loc"], describe(error, model)) from None


def read_yaml(text: str, source: str) -> tuple[yaml.Node | None, object]:
    """The document's node tree (for line numbers) and its data; None for an empty file."""
    import yaml

    try:
        loader = _loader()(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{source}:{line}: not valid YAML: {exc.reason}") from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_duplicate_keys(root, source, (), set())
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(source, text, exc) from None
    except (ValueError, IndexError, KeyError, AttributeError, TypeError, RecursionError) as exc:
        # PyYAML's constructors let these through for values they cannot build
        # (`!!int abc`, a date such as 2001-13-45)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{source}: not valid YAML: a value cannot be read ({reason})") from None
    finally:
        loader.dispose()


def located(source: str, root: yaml.Node | None, loc: KeyPath, message: str) -> ConfigError:
    line = line_of(root, loc) if root is not None else 1
    return ConfigError(f"{source}:{line}: {path_of(loc)}: {message}")


def line_of(root: yaml.Node, loc: KeyPath) -> int:
    """The line of the deepest node along `loc` (a missing key: its mapping's line)."""
    node, anchor = root, root
    for part in loc:
        found = _child(node, part)
        if found is None:
            break
        anchor, node = found
    return anchor.start_mark.line + 1


def path_of(loc: KeyPath) -> str:
    """`rules[0].keep_newest`; a key that is not plain printable text is quoted."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = str(part)
            text += f".{name}" if name.isprintable() else f".{name!r}"
    return text.lstrip(".") or "(top level)"


def describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    """A short message for one pydantic error, in the words of a config file."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(model, error["loc"])
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a mapping (key: value)"
    if kind in ("tuple_type", "list_type"):
        return "must be a list"
    if kind in ("too_short", "tuple_too_short", "list_too_short"):
        return "must not be empty"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return str(error["msg"]).replace("Input should be", "must be", 1)


def _unknown_key(model: type[BaseModel], loc: KeyPath) -> str:
    owner = _model_at(model, loc[:-1])
    keys = list(owner.model_fields) if owner is not None else []
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    if keys:
        return f"unknown key (expected one of: {', '.join(keys)})"
    return "unknown key"


def _model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, following field types."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            if isinstance(part, int) or part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
            continue
        current = _element_type(current)
        if current is None:
            return None
    current = _element_type(current) if not _is_model(current) else current
    return current if _is_model(current) else None


def _element_type(annotation: Any) -> Any:
    """The model inside `tuple[M, ...]`, `list[M]`, `dict[str, M]` or `M | None`."""
    for arg in typing.get_args(annotation):
        if _is_model(arg):
            return arg
        inner = _element_type(arg) if typing.get_args(arg) else None
        if inner is not None:
            return inner
    if isinstance(annotation, types.UnionType):
        return None
    return None


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _child(node: yaml.Node, part: int | str) -> tuple[yaml.Node, yaml.Node] | None:
    """(the node to point at, the node to descend into) for one step of a location."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(part):
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item, item
    return None


def _yaml_error(source: str, text: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    """One line for a YAML error; at the end of the file, the line of what was left open."""
    mark = exc.problem_mark
    at_end = mark is not None and mark.index >= len(text.rstrip())
    if mark is None or (at_end and exc.context_mark is not None):
        mark = exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = exc.problem or exc.context or "unreadable"
    if "chomping" in problem:
        problem += " (quote values that start with > or |, such as '>=1.5')"
    return ConfigError(f"{source}:{line}: not valid YAML: {problem}")


def _check_duplicate_keys(node: yaml.Node, source: str, loc: KeyPath, visited: set[int]) -> None:
    """PyYAML keeps the last of two equal keys silently; refuse them instead."""
    import yaml

    if id(node) in visited:  # an alias: checked where its anchor is
        return
    visited.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(item, source, (*loc, index), visited)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else f"<{key.tag}>"
        if name in seen:
            line = key.start_mark.line + 1
            raise ConfigError(f"{source}:{line}: {path_of((*loc, name))}: duplicate key")
        seen.add(name)
        _check_duplicate_keys(value, source, (*loc, name), visited)


class Settings(BaseModel):
    """The base of every model read from a file: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
