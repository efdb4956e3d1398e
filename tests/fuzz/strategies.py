"""Shared hypothesis strategies and settings for the fuzz tests.

Everything here is bounded (text length, nesting depth, document size) so that each
fuzz test stays within its deadline and the whole `tests/fuzz` directory runs in a
few seconds: these tests belong to the fast tier.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# No example database: a failure found here is pinned with `@example` in the test.
# The suite is derandomized, so CI runs the same examples every time; set
# MIRROR_FUZZ_RANDOM=1 to explore new ones (and MIRROR_FUZZ_EXAMPLES=N for more).
# No deadline: sizes are bounded above, and a busy machine must not fail a test.
EXPLORE = os.environ.get("MIRROR_FUZZ_RANDOM") == "1"
FAST = settings(
    max_examples=int(os.environ.get("MIRROR_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=not EXPLORE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
QUICK = settings(FAST, max_examples=max(FAST.max_examples * 2 // 5, 1))

JSON = Any  # a JSON value as Python objects

# --- text -------------------------------------------------------------------------

# Characters that matter to the grammars under test, plus the ones that must be refused.
GRAMMAR_CHARS = "abcxyzAZ0159._-/:@$ {}<>#\n\t\r\x00\x7f\u00e9\u00c4\u0661\u01c5\u2028"

grammar_text = st.text(alphabet=st.sampled_from(GRAMMAR_CHARS), max_size=40)
any_text = st.text(max_size=60)
texts = st.one_of(grammar_text, any_text)

# --- image references ---------------------------------------------------------------

_component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,4}){0,2}", fullmatch=True)
repositories = st.lists(_component, min_size=1, max_size=3).map("/".join)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
digests = hex64.map(lambda h: f"sha256:{h}")
hosts = st.sampled_from(
    [
        "mcr.microsoft.com",
        "docker.io",
        "myacr.azurecr.io",
        "MyAcr.azurecr.io",
        "localhost:5000",
        "10.0.0.5:5000",
        "registry.example.com:443",
        "xn--bcher-kva.example",
    ]
)


@st.composite
def references(draw: st.DrawFn) -> str:
    """A valid image reference string, in any of its spellings."""
    host = draw(st.one_of(st.none(), hosts))
    text = (f"{host}/" if host else "") + draw(repositories)
    if draw(st.booleans()):
        text += ":" + draw(tags)
    if draw(st.booleans()):
        text += "@" + draw(digests)
    return text


@st.composite
def odd_digest_references(draw: st.DrawFn) -> str:
    """A reference whose digest part has any algorithm, length or case."""
    algorithm = draw(st.sampled_from(["sha256", "sha384", "sha512", "md5", "SHA256", "sha256+b64"]))
    hexdigits = draw(st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=130))
    return draw(references()).split("@")[0] + f"@{algorithm}:{hexdigits}"


@st.composite
def mutated_references(draw: st.DrawFn) -> str:
    """A valid reference with a character inserted, removed or replaced."""
    text = draw(references())
    position = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(GRAMMAR_CHARS))
    action = draw(st.sampled_from(["insert", "delete", "replace"]))
    if action == "insert":
        return text[:position] + char + text[position:]
    if action == "delete":
        return text[:position] + text[position + 1 :]
    return text[:position] + char + text[position + 1 :]


placeholders = st.sampled_from(
    [
        "${MODULES.SampleModule}",
        "${MODULES.SampleModule.arm32v7}",
        "${MODULEDIR<./modules/m>.debug}",
        "$EDGE_RUNTIME_VERSION",
        "${EDGE_RUNTIME_VERSION}",
        "${CONTAINER_REGISTRY_ADDRESS}",
        "<Container_Registry>",
        "<Build.BuildNumber>",
        "__TAG__",
        "#{Token}#",
        "$upstream",
        "${",
        "$",
    ]
)


@st.composite
def image_strings(draw: st.DrawFn) -> str:
    """What a deployment manifest may hold as `settings.image`."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(references())
    if kind == 1:
        return draw(mutated_references())
    if kind == 2:  # a nested-edge image
        port = draw(st.sampled_from(["443", "5000", "", "x"]))
        return f"$upstream:{port}/" + draw(repositories) + ":" + draw(tags)
    if kind == 3:  # placeholders spliced into a reference, possibly nested
        text = draw(references())
        for _ in range(draw(st.integers(1, 3))):
            position = draw(st.integers(0, len(text)))
            text = text[:position] + draw(placeholders) + text[position:]
        return text
    if kind == 4:  # a runtime image, upstream or already in the mirror
        registry = draw(
            st.sampled_from(["mcr.microsoft.com", "myacr.azurecr.io", "MyAcr.azurecr.io"])
        )
        name = draw(st.sampled_from(["azureiotedge-agent", "azureiotedge-hub", "edge/other"]))
        tag = draw(st.sampled_from(["1.5", "1.4.27", "1.5.0-rc1", "${EDGE_RUNTIME_VERSION}"]))
        return f"{registry}/{name}:{tag}"
    return draw(texts)


# --- JSON and YAML documents --------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)


def json_values(max_leaves: int = 30) -> st.SearchStrategy[JSON]:
    """Nested JSON values (bounded by `max_leaves`, so by size and depth)."""
    keys = st.one_of(
        texts,
        st.sampled_from(["image", "settings", "mediaType", "digest", "size", "version"]),
    )
    return st.recursive(
        json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def one_line(message: str) -> bool:
    return "\n" not in message and "\r" not in message


def check_message(error: BaseException, source: str | None = None) -> None:
    """A project error's message is one line (naming `source` first, if given)."""
    message = str(error)
    assert one_line(message), f"the message spans several lines: {message!r}"
    if source is not None:
        assert message.startswith(source), f"the message does not name {source}: {message!r}"


def dumps(value: JSON, style: int) -> str:
    """`value` as JSON text in one of a few layouts real files use."""
    if style == 0:
        return json.dumps(value)
    if style == 1:
        return json.dumps(value, indent=2) + "\n"
    if style == 2:
        return json.dumps(value, indent=4, ensure_ascii=False).replace("\n", "\r\n")
    return json.dumps(value, indent="\t").replace("/", "\\/")
