"""`mirror doctor` against the ACR stand-in.

Real: the registry refusing what a token does not allow (so "the pull identity
cannot push" is the registry's own answer). Stand-ins (see tests/support/acr.py):
ACR's token service and metadata API, and Entra ID, reached through azure-identity's
real `ClientSecretCredential` in the CLI test and an injected credential elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from mirror.engine.connect import open_registry
from mirror.engine.doctor import Access, CheckResult, CheckStatus, diagnose
from mirror.settings.config import Config
from mirror.transport.acr.tokens import AcrTokens
from mirror.transport.auth import DistributionTokens, TokenSource
from mirror.transport.store import RegistryLocation, parse_location
from tests.conftest import client_for
from tests.support.acr import ACR_PUSH, RequestRecord
from tests.support.acr_fixtures import AcrSetup
from tests.support.entra import EntraApp
from tests.support.registry import Registry

REPO = "azureiotedge-agent"
EMPTY_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_OPENED: list[Access] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    """Every registry client a test opened (through `side`) is closed after it."""
    yield
    while _OPENED:
        _OPENED.pop().client.close()


def side(
    acr: AcrSetup, source: TokenSource, describe: str, *, push: bool, username: str | None = None
) -> Access:
    config = Config.model_validate({"registries": {acr.name: {"acr": True}}})
    location = parse_location(acr.url)
    assert isinstance(location, RegistryLocation)
    client = open_registry(location, config.registry(acr.name), config, push=push, source=source)
    access = Access(client, describe, username, source if isinstance(source, AcrTokens) else None)
    _OPENED.append(access)
    return access


def entra_side(acr: AcrSetup, app: EntraApp, describe: str, *, push: bool) -> Access:
    return side(acr, AcrTokens(acr.credential(app)), describe, push=push)


def by_check(findings: list[CheckResult]) -> dict[str, CheckResult]:
    return {finding.check: finding for finding in findings}


def test_a_least_privilege_pull_identity_passes(acr: AcrSetup) -> None:
    push = entra_side(acr, acr.push, "push", push=True)
    pull = entra_side(acr, acr.pull, "pull", push=False)
    found = by_check(diagnose(push, pull, REPO, acr=True))
    assert found["reach"].status is CheckStatus.WARN  # plain http on loopback
    assert found["push-can-push"].status is CheckStatus.PASS
    assert found["pull-can-pull"].status is CheckStatus.PASS
    assert found["pull-least-privilege"].status is CheckStatus.PASS
    assert found["push-can-lock"].status is CheckStatus.INFO  # no tags yet
    assert "refresh token valid" in found["push-token"].message
    assert "devices must reach" in found["device-endpoints"].message
    assert not [f for f in found.values() if f.status is CheckStatus.FAIL]


def test_a_pull_identity_that_can_push_fails(acr: AcrSetup) -> None:
    push = entra_side(acr, acr.push, "push", push=True)
    pull = entra_side(acr, acr.pull_can_push, "pull", push=False)
    found = by_check(diagnose(push, pull, REPO, acr=True))
    assert found["pull-least-privilege"].status is CheckStatus.FAIL
    assert "acrPull only" in found["pull-least-privilege"].advice


def test_a_repository_token_and_the_admin_user_rule(acr: AcrSetup) -> None:
    push = entra_side(acr, acr.push, "push", push=True)
    token = acr.pull_token
    pull = side(
        acr,
        DistributionTokens(token.name, token.password),
        "token",
        push=False,
        username=token.name,
    )
    found = by_check(diagnose(push, pull, REPO, acr=True))
    assert found["pull-least-privilege"].status is CheckStatus.PASS
    assert "pull-not-admin" not in found

    admin_name = acr.name.split(".")[0]
    admin = acr.service.add_token(admin_name, {"*": ["pull"]})
    looks_admin = side(
        acr,
        DistributionTokens(admin.name, admin.password),
        "admin",
        push=False,
        username=admin.name,
    )
    assert (
        by_check(diagnose(push, looks_admin, REPO, acr=True))["pull-not-admin"].status
        is CheckStatus.FAIL
    )


def test_a_push_identity_without_push_fails(acr: AcrSetup) -> None:
    push = entra_side(acr, acr.pull, "push", push=True)
    found = by_check(diagnose(push, None, REPO, acr=True))
    assert found["push-can-push"].status is CheckStatus.FAIL
    assert found["pull-configured"].status is CheckStatus.WARN


def test_cli_with_real_client_secret_credentials(tmp_path: Path, acr: AcrSetup) -> None:
    """azure-identity's ClientSecretCredential gets tokens from the Entra stand-in; the
    secrets and tokens never appear in the output."""
    entra = acr.entra

    def principal(app: EntraApp, variable: str) -> dict[str, object]:
        return {
            "type": "service-principal",
            "tenant_id": entra.tenant_id,
            "client_id": app.client_id,
            "client_secret_env": variable,
            "authority": entra.authority,
            "ca_bundle": str(entra.ca_bundle),
        }

    config = {
        "target": acr.url,
        "repositories": [REPO],
        "registries": {
            acr.name: {
                "acr": True,
                "push": principal(acr.push, "PUSH_SECRET"),
                "pull": principal(acr.pull_can_push, "PULL_SECRET"),
            }
        },
    }
    (tmp_path / "mirror.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PUSH_SECRET": acr.push.secret, "PULL_SECRET": acr.pull_can_push.secret}
    result = subprocess.run(
        [sys.executable, "-m", "mirror", "doctor", "--output", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    found = {f["check"]: f for f in json.loads(result.stdout)}
    assert found["push-can-push"]["status"] == "pass"
    assert found["pull-least-privilege"]["status"] == "fail"
    output = result.stdout + result.stderr
    for secret in (acr.push.secret, acr.pull_can_push.secret):
        assert secret not in output
    assert "eyJ" not in output  # no JWT (Entra, refresh or access token) printed
    assert entra.counters.token_requests >= 2  # the real credential went to the stand-in


def test_the_push_probe_needs_no_delete_and_leaves_no_upload_session(acr: AcrSetup) -> None:
    """acrPush has no `delete`, which cancelling an upload needs: the probe completes the
    session with the empty blob instead, so nothing is left open and nothing refused."""
    push = entra_side(acr, acr.push, "push", push=True)
    pull = entra_side(acr, acr.pull, "pull", push=False)
    mark = len(acr.service.registry.requests())
    found = by_check(diagnose(push, pull, REPO, acr=True))

    assert found["push-can-push"].status is CheckStatus.PASS
    assert found["pull-least-privilege"].status is CheckStatus.PASS
    assert acr.service.open_uploads == {}
    uploads = [r for r in acr.service.registry.requests_since(mark) if "/blobs/uploads/" in r.path]
    assert not [r for r in uploads if r.method == "DELETE"]
    completed = [(r.method, r.status, unquote(r.path)) for r in uploads if r.method == "PUT"]
    assert len(completed) == 1 and completed[0][:2] == ("PUT", 201)
    assert completed[0][2].endswith(f"digest={EMPTY_DIGEST}")  # the empty blob, nothing else


def test_a_push_identity_without_push_fails_with_the_reason(acr: AcrSetup) -> None:
    push = entra_side(acr, acr.pull, "the push identity", push=True)
    finding = by_check(diagnose(push, None, REPO, acr=True))["push-can-push"]
    assert finding.status is CheckStatus.FAIL
    assert finding.message.startswith(f"the push identity cannot push to {REPO}: ")
    assert "the credentials were accepted but do not allow" in finding.message
    assert "check the identity's role" in finding.message
    assert acr.service.open_uploads == {}


def test_a_push_refused_after_the_upload_started_is_no_pass(acr: AcrSetup) -> None:
    """The role is taken away between starting the upload and completing it: the probe
    was refused a step, so it fails (the old probe's refused cancel still passed)."""
    service = acr.service

    def revoke_after_the_start(record: RequestRecord) -> None:
        if record.method == "POST" and "/blobs/uploads/" in record.path and record.status == 202:
            service.unassign(acr.push, ACR_PUSH)
            service.expire_access_tokens()

    service.hooks.append(revoke_after_the_start)
    push = entra_side(acr, acr.push, "push", push=True)
    finding = by_check(diagnose(push, None, REPO, acr=True))["push-can-push"]
    assert finding.status is CheckStatus.FAIL
    assert "do not allow" in finding.message
    assert len(service.open_uploads) == 1  # left to expire, as on ACR; reported as a failure


def test_a_plain_registry_gets_no_azure_advice_and_a_well_formed_endpoint(
    target: Registry,
) -> None:
    client = client_for(target, push=True)
    try:
        found = by_check(diagnose(Access(client, "the push identity"), None, REPO, acr=False))
    finally:
        client.close()
    said = " ".join(f"{f.message} {f.advice}" for f in found.values())
    assert "Entra" not in said and "blob.core.windows.net" not in said, said
    assert found["device-endpoints"].message == f"devices must reach {target.address}"
