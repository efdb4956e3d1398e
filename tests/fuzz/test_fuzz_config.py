"""Fuzzing the configuration and policy loaders.

`mirror.yaml` and policy files are read by `load_config` / `parse_policy` (through
`yamlfile.parse_model`). On any text, arbitrary or YAML built from random structures
(bounded in size and depth), they either load or raise `ConfigError` whose message
is one line starting with the name of the source; nothing else, and nothing hangs.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from mirror.errors import ConfigError
from mirror.governance.policy import DEFAULT_POLICY, Policy, parse_policy
from mirror.settings.config import Config, load_config
from mirror.yamlfile import parse_model
from tests.fuzz.strategies import FAST, QUICK, check_message, texts

# Keys the models know, so that random documents reach past the first unknown key.
CONFIG_KEYS = [*Config.model_fields, "registries", "service", "rewrite", "lint"]
NESTED_KEYS = [
    "insecure", "ca_bundle", "address", "username", "password_env", "acr", "push", "pull",
    "type", "tenant_id", "client_id", "client_secret_env", "token_realms",
    "listen", "timezone", "grace_period", "misfire_grace", "schedules", "cron", "every",
    "jitter", "release_feed", "github_releases", "webhooks", "notify", "url", "max_body_bytes",
    "sources", "platforms", "credentials", "credential_name", "username_variable",
    "disabled", "severity", "profile", "template", "supported_runtime_lines",
]  # fmt: skip
POLICY_KEYS = ["version", "description", "rules"]
RULE_KEYS = [
    "repositories", "lines", "versions", "kinds", "prereleases", "per_architecture",
    "keep_newest", "allow", "deny", "on_rebuild",
]  # fmt: skip
YAML_CHARS = "ab01.:-_ \n\t[]{},&*!|>'\"#%@`?~=<\\/$\x00\x85é"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(),
    texts,
    st.sampled_from(
        [
            "1.5", "1.10", ">=1.5,<1.7", "1.5.*", "feed", "*", "[", "(?P<x", "specific",
            "rolling", "hold", "mcr.microsoft.com", "oci:./store", "0 3 * * 1-5", "15m",
            "2001-13-45", "Europe/Paris", "127.0.0.1:8080", "$MIRROR_PULL_PASSWORD",
            "service-principal", "basic", "azureiotedge-agent", "Azure/azure-iotedge",
        ]
    ),
)  # fmt: skip


def documents(top_keys: list[str], inner_keys: list[str]) -> st.SearchStrategy[Any]:
    """Mappings keyed mostly by known keys, with random nested values."""
    keys = st.one_of(st.sampled_from(inner_keys), texts)
    values = st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=25,
    )
    return st.dictionaries(st.one_of(st.sampled_from(top_keys), texts), values, max_size=6)


@st.composite
def dumped(draw: st.DrawFn, structure: st.SearchStrategy[Any]) -> str:
    value = draw(structure)
    return yaml.safe_dump(
        value,
        default_flow_style=draw(st.sampled_from([None, False, True])),
        allow_unicode=draw(st.booleans()),
        width=draw(st.sampled_from([20, 80])),
    )


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """`text` with a few characters inserted, deleted or replaced."""
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(YAML_CHARS))
        cut = draw(st.integers(0, 2))
        text = text[:position] + char + text[position + cut :]
    return text


VALID_CONFIG = """\
version: 1
source: mcr.microsoft.com
target: oci:./mirror-store
repositories: [azureiotedge-agent, azureiotedge-hub]
lines: ["1.5"]
registries:
  myacr.azurecr.io:
    username: mirror
    password_env: MIRROR_PASSWORD
service:
  schedules:
    - cron: "17 */6 * * *"
      jitter: 5m
"""
VALID_POLICY = DEFAULT_POLICY.read_text(encoding="utf-8")

config_texts = st.one_of(
    texts,
    st.text(alphabet=st.sampled_from(YAML_CHARS), max_size=80),
    dumped(documents(CONFIG_KEYS, NESTED_KEYS)),
    mutated(VALID_CONFIG),
)
policy_documents = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), scalars),
        "description": scalars,
        "rules": st.lists(documents(RULE_KEYS, RULE_KEYS), max_size=3),
    },
)
policy_texts = st.one_of(
    texts,
    st.text(alphabet=st.sampled_from(YAML_CHARS), max_size=80),
    dumped(st.one_of(policy_documents, documents(POLICY_KEYS, RULE_KEYS))),
    mutated(VALID_POLICY),
)

# Explicit YAML tags whose constructors raise ValueError, KeyError, AttributeError or
# IndexError rather than a yaml.MarkedYAMLError; an impossible date is read as a date.
CONSTRUCTOR_ERRORS = [
    "ledger: 2001-13-45\n",
    "concurrency: !!int abc\n",
    "concurrency: !!int 0x\n",
    "concurrency: !!int -\n",
    "source: !!float abc\n",
    "source: !!bool maybe\n",
    "source: !!timestamp yesterday\n",
]
# A billion laughs: eight levels of eight aliases, anchored inside a known key.
ALIAS_BOMB = (
    "[&a [x, x, x, x, x, x, x, x], "
    + ", ".join(
        f"&{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]"
        for a, b in itertools.pairwise("abcdefgh")
    )
    + "]"
)


@FAST
@given(config_texts)
@example(CONSTRUCTOR_ERRORS[0])
@example(CONSTRUCTOR_ERRORS[1])
@example(CONSTRUCTOR_ERRORS[2])
@example(CONSTRUCTOR_ERRORS[3])
@example(CONSTRUCTOR_ERRORS[4])
@example(CONSTRUCTOR_ERRORS[5])
@example(CONSTRUCTOR_ERRORS[6])
@example('"con\\ncurrency": 1\n')  # a key holding a line break, echoed in the message
@example('"\\r": 1\n')
@example("registries: {'a\\n': {}, 'A': {}}\n")
@example(f"lines: {ALIAS_BOMB}\n")
@example(f"rewrite: {{sources: {ALIAS_BOMB}}}\n")
@example(f"service: {{schedules: {ALIAS_BOMB}}}\n")
def test_parse_model_config(text: str) -> None:
    try:
        config = parse_model(text, "mirror.yaml", Config, what="config")
    except ConfigError as error:
        check_message(error, "mirror.yaml:")
        return
    assert isinstance(config, Config)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config")


@QUICK
@given(st.one_of(config_texts, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
@example("\udc80")  # not encodable: written as bytes that are not UTF-8
@example(CONSTRUCTOR_ERRORS[0])
def test_load_config(config_dir: Path, text: str) -> None:
    path = config_dir / "mirror.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    try:
        config = load_config(path)
    except ConfigError as error:
        check_message(error, f"{path}:")
        return
    assert isinstance(config, Config)


@FAST
@given(policy_texts)
@example("version: 1\nrules: [{repositories: [a], versions: '>=1.7,<1.5'}]\n")
@example("version: 1\nrules: [{repositories: [a], allow: ['(']}]\n")
@example("version: 1\nrules: [{repositories: [a]}, {repositories: [a]}]\n")
@example("version: 1\nrules: [{repositories: [a], keep_newest: !!int 0x}]\n")
@example("version: 1\n'rules\\n': []\n")
@example(f"version: 1\nrules: [{{repositories: {ALIAS_BOMB}}}]\n")
def test_parse_policy(text: str) -> None:
    try:
        policy = parse_policy(text, "policies/site.yaml")
    except ConfigError as error:
        check_message(error, "policies/site.yaml:")
        return
    assert isinstance(policy, Policy)
    assert policy.rules
