"""Coverage-guided fuzzing with atheris (libFuzzer's engine for Python) of the parsers
that read untrusted bytes: image references, manifests, deployment documents (read,
rewritten, linted), `mirror.yaml` and policy files.

Where the hypothesis tests (`test_fuzz_*.py`) generate inputs from grammars, libFuzzer
mutates bytes towards code not yet covered, starting from real files (the deployment
corpus, the manifests and configs below). Every target allows the project's own errors
only, each with a one-line message; anything else is a finding, and libFuzzer stops
with the input that caused it.

    python -m tests.fuzz.guided TARGET CORPUS_DIR -runs=5000 -seed=1 -max_len=8192

`test_guided.py` runs every target this way, seeded, in CI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["mirror"]):
    from mirror.deployment.document import parse_document
    from mirror.deployment.lint.engine import lint_source
    from mirror.deployment.resolvers import Target
    from mirror.deployment.rewrite import rewrite_source
    from mirror.errors import ConfigError, MirrorError
    from mirror.governance.policy import parse_policy
    from mirror.manifest import Manifest
    from mirror.reference import ImageReference
    from mirror.settings.config import Config
    from mirror.yamlfile import parse_model

DEPLOYMENTS = Path(__file__).resolve().parents[1] / "data" / "deployments"
TARGET = Target.parse("myacr.azurecr.io")


def _one_line(error: BaseException) -> None:
    message = str(error)
    if "\n" in message or "\r" in message:
        raise AssertionError(f"a message spans several lines: {message!r}")


def reference(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        parsed = ImageReference.parse(text)
    except MirrorError as error:
        _one_line(error)
        return
    if ImageReference.parse(str(parsed)) != parsed:
        raise AssertionError(f"{text!r} does not round-trip")


def manifest(data: bytes) -> None:
    try:
        parsed = Manifest.parse(data, None, None)
        parsed.children() if parsed.is_index else parsed.blobs()
        parsed.subject()
    except MirrorError as error:
        _one_line(error)


def document(data: bytes) -> None:
    try:
        parsed = parse_document(data, "deployment.json")
    except MirrorError as error:
        _one_line(error)
        return
    if parsed.encode() != data:
        raise AssertionError("reading and writing back changed the bytes")


def rewrite(data: bytes) -> None:
    try:
        once = rewrite_source(data, "deployment.json", TARGET)
    except MirrorError as error:
        _one_line(error)
        return
    twice = rewrite_source(once.text, "deployment.json", TARGET)
    if twice.text != once.text:
        raise AssertionError("rewriting twice differs from rewriting once")


def lint(data: bytes) -> None:
    try:
        lint_source(data, "deployment.json")
    except MirrorError as error:
        _one_line(error)


def config(data: bytes) -> None:
    try:
        parse_model(data.decode("utf-8", "replace"), "mirror.yaml", Config, what="config")
    except ConfigError as error:
        _one_line(error)


def policy(data: bytes) -> None:
    try:
        parse_policy(data.decode("utf-8", "replace"), "policy.yaml")
    except ConfigError as error:
        _one_line(error)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "reference": reference,
    "manifest": manifest,
    "document": document,
    "rewrite": rewrite,
    "lint": lint,
    "config": config,
    "policy": policy,
}

_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "a" * 64,
            "size": 500,
            "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
        }
    ],
}
_SEEDS: dict[str, list[bytes]] = {
    "reference": [
        b"mcr.microsoft.com/azureiotedge-agent:1.5",
        b"myacr.azurecr.io:443/edge/azureiotedge-hub@sha256:" + b"0" * 64,
        b"$upstream:443/azureiotedge-agent:1.5.3-linux-arm64v8",
    ],
    "manifest": [json.dumps(_MANIFEST).encode()],
    "config": [
        b"version: 1\nsource: mcr.microsoft.com\ntarget: myacr.azurecr.io/edge\n"
        b"repositories: [azureiotedge-agent]\nconcurrency: 4\n",
    ],
    "policy": [
        b"rules:\n  - repository: azureiotedge-*\n    versions: '>=1.4'\n"
        b"    lines: ['1.5']\n    debug: false\n",
    ],
}


def seeds(target: str) -> list[bytes]:
    """Where the mutation starts: real files for the deployment targets."""
    if target in ("document", "rewrite", "lint"):
        return [path.read_bytes() for path in sorted(DEPLOYMENTS.glob("*.json"))]
    return _SEEDS[target]


def main() -> None:
    """`TARGET CORPUS [libFuzzer flags]`: the corpus directory gets the seeds, then the
    inputs libFuzzer finds that reach new code."""
    name, corpus, flags = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    corpus.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(seeds(name)):
        (corpus / f"seed-{number}").write_bytes(seed)
    atheris.Setup([sys.argv[0], *flags, str(corpus)], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
