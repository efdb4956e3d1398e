"""The layering of `mirror/`: every import points down, never up.

    data        mirror, errors, reference, digest, manifest, yamlfile, files, logs, redact
    transport   mirror.transport (registries, OCI layouts, auth, ACR)
    governance  mirror.governance (the tag grammar, policies, decisions, audit rules)
    ledger      mirror.ledger
    deployment  mirror.deployment (rewrite and lint of deployment manifests)
    settings    mirror.settings (the mirror.yaml model, composed from the layers below)
    engine      mirror.engine (the phases of a run, stores opened from settings)
    edges       mirror.cli, mirror.service

A module may import its own layer and the layers below it. Every import counts,
including those inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "mirror"
LAYERS = (
    (
        "data",
        (
            "errors",
            "reference",
            "digest",
            "manifest",
            "yamlfile",
            "files",
            "logs",
            "redact",
            "referrers",
        ),
    ),
    ("transport", ("transport",)),
    ("governance", ("governance",)),
    ("ledger", ("ledger",)),
    ("deployment", ("deployment",)),
    ("settings", ("settings",)),
    ("engine", ("engine",)),
    ("edges", ("cli", "service", "__main__")),
)
RANK = {top: rank for rank, (_, tops) in enumerate(LAYERS) for top in tops}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The rank of a `mirror...` module; the package itself (`__version__`) is data."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    if parts[1] not in RANK:
        raise AssertionError(f"{module}: not in any layer; add it to LAYERS")
    return RANK[parts[1]]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every `mirror` module `path` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("mirror")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "mirror":
                found += [(node.lineno, f"mirror.{a.name}") for a in node.names]
            elif node.module.startswith("mirror."):
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[1] != "__version__"]


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_point_down(path: Path) -> None:
    here = layer_of(module_name(path))
    upward = [
        f"line {line}: {name} ({LAYERS[layer_of(name)][0]})"
        for line, name in imports_of(path)
        if layer_of(name) > here
    ]
    assert not upward, f"{module_name(path)} ({LAYERS[here][0]}) imports upward: {upward}"


def test_every_package_has_a_layer() -> None:
    tops = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in MODULES}
    assert tops - {"__init__"} <= set(RANK)


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The guard itself: a transport module importing the engine is reported."""
    module = tmp_path / "probe.py"
    module.write_text("from mirror.engine.sync import sync\n")
    assert [layer_of(name) for _, name in imports_of(module)] == [RANK["engine"]]
