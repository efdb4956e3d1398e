"""`mirror plan` and `mirror sync` into the ACR stand-in, as processes, with service
principals configured the way an operator would (secrets in environment variables).

Real: the registry enforcing scopes, azure-identity's `ClientSecretCredential` and
the `mirror` processes. Stand-ins: ACR's token/metadata service and Entra ID (see
tests/support/acr.py and tests/support/entra.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.acr_fixtures import AcrSetup
from tests.support.entra import EntraApp
from tests.support.images import Seeder
from tests.support.registry import Registry

REPO = "azureiotedge-agent"


def write_config(tmp_path: Path, acr: AcrSetup, upstream: Registry, push: EntraApp) -> None:
    entra = acr.entra
    config = {
        "source": upstream.url,
        "target": acr.url,
        "repositories": [REPO],
        "registries": {
            acr.name: {
                "acr": True,
                "push": {
                    "type": "service-principal",
                    "tenant_id": entra.tenant_id,
                    "client_id": push.client_id,
                    "client_secret_env": "MIRROR_PUSH_SECRET",
                    "authority": entra.authority,
                    "ca_bundle": str(entra.ca_bundle),
                },
            }
        },
    }
    (tmp_path / "mirror.yaml").write_text(yaml.safe_dump(config))


def mirror(tmp_path: Path, secret: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MIRROR_PUSH_SECRET": secret}
    return subprocess.run(
        [sys.executable, "-m", "mirror", *args, "--all-tags"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plan_sync_plan_with_locks_and_no_secret_in_any_output(
    tmp_path: Path, acr: AcrSetup, upstream: Registry, seeder: Seeder
) -> None:
    releases = [seeder.push_release(REPO, v) for v in ("1.5.0", "1.5.1")]
    seeder.tag(REPO, "1.5.1", "1.5")
    write_config(tmp_path, acr, upstream, acr.push)
    secret = acr.push.secret
    outputs = []

    before = mirror(tmp_path, secret, "plan", "--output", "json")
    outputs.append(before)
    assert before.returncode == 3, before.stderr
    locks = {e["tag"]: e["lock"] for e in json.loads(before.stdout)}
    assert locks == {
        "1.5": None,
        "1.5.0": "lock: new specific tag",
        "1.5.1": "lock: new specific tag",
    }

    synced = mirror(tmp_path, secret, "sync")
    outputs.append(synced)
    assert synced.returncode == 0, synced.stderr
    for release in releases:
        assert acr.service.attributes(REPO, release.tag).locked

    after = mirror(tmp_path, secret, "plan")
    outputs.append(after)
    assert after.returncode == 0, after.stdout + after.stderr

    acr.service.unlock(REPO, "1.5.0")
    relock = mirror(tmp_path, secret, "plan")
    outputs.append(relock)
    assert relock.returncode == 3
    assert "lock    azureiotedge-agent:1.5.0  lock: specific tag is not locked" in relock.stdout

    for result in outputs:
        text = result.stdout + result.stderr
        assert secret not in text
        assert "eyJ" not in text  # no Entra, refresh or access token


def test_a_wrong_secret_is_one_clear_line(
    tmp_path: Path, acr: AcrSetup, upstream: Registry, seeder: Seeder
) -> None:
    seeder.push_release(REPO, "1.5.0")
    write_config(tmp_path, acr, upstream, acr.push)
    result = mirror(tmp_path, "not-the-secret", "sync")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("mirror: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "not-the-secret" not in result.stdout + result.stderr
