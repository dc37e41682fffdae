"""The deployment files (compose.yaml, deploy/kubernetes/) checked without a container engine:
valid Kubernetes resources, commands the image really has, settings the project really reads,
probes that really answer, and the pieces pointing at one another."""

import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.test import Client

from tests.fixtures.servers import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest release still supported by the large clouds


def _kustomization() -> dict:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())


def _resources() -> list[dict]:
    return [
        document
        for name in _kustomization()["resources"]
        for document in yaml.safe_load_all((KUBERNETES / name).read_text())
        if document
    ]


def _resource(kind: str, name: str) -> dict:
    [found] = [r for r in _resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def _pod_specs() -> dict[str, dict]:
    return {
        r["metadata"]["name"]: r["spec"]["template"]["spec"]
        for r in _resources()
        if r["kind"] in ("Deployment", "Job")
    }


def _containers() -> list[dict]:
    return [c for spec in _pod_specs().values() for c in spec["containers"]]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _aurax_commands() -> list[list[str]]:
    """Every command an AURAX container runs, in Kubernetes and in compose."""
    commands = [c["command"] for c in _containers()]
    for service in _compose()["services"].values():
        if service.get("build"):
            command = service["command"]
            commands.append(shlex.split(command) if isinstance(command, str) else command)
    return commands


def _simple_commands(command: list[str]) -> list[list[str]]:
    """`sh -c "a && b"` as [a, b]; any other command as itself."""
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def test_every_manifest_is_a_valid_kubernetes_resource_and_listed():
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk

    resources = _resources()
    assert {r["kind"] for r in resources} >= {"ConfigMap", "Job", "Deployment", "Service"}
    for resource in resources:
        # strict: a misspelt field is an error, not silently dropped by the API server
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validation_would_catch_a_misspelt_field():
    web = _resource("Deployment", "aurax-web")
    web["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSION, strict=True)


def test_every_container_runs_a_command_the_image_has():
    management = get_commands()
    checked = set()
    for command in _aurax_commands():
        for simple in _simple_commands(command):
            program, *arguments = simple
            if program == "python" and arguments[0] == "manage.py":
                name, *options = arguments[1:]
                assert name in management, f"no management command {name!r}"
                parser = load_command_class(management[name], name).create_parser("manage.py", name)
                parser.parse_args(options)  # an unknown option exits with an error
            elif program == "celery":
                # click parses every option before it acts on --help: an unknown one fails
                done = subprocess.run(
                    [str(Path(sys.executable).parent / "celery"), *arguments, "--help"],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert done.returncode == 0, done.stderr
            else:
                assert simple == ["bin/serve"], simple
                assert (ROOT / "bin" / "serve").stat().st_mode & 0o111
            checked.add(program)
    assert checked == {"python", "celery", "bin/serve"}


def _read_in_project(name: str) -> bool:
    """Whether the settings, an app or bin/serve reads the variable."""
    from providers.services import ENVIRONMENT_PROVIDERS

    prefix, _, suffix = name.partition("_")
    if prefix in ENVIRONMENT_PROVIDERS and suffix in ("API_KEY", "BASE_URL"):
        return True  # providers.services reads <PREFIX>_API_KEY and <PREFIX>_BASE_URL
    if "${" + name in (ROOT / "bin" / "serve").read_text():
        return True
    return any(
        f'"{name}"' in path.read_text()
        for app in ("aurax", "accounts", "providers", "billing", "gateway", "chat", "api")
        for path in (ROOT / app).rglob("*.py")
    )


def test_every_setting_given_is_one_the_project_reads():
    config = _resource("ConfigMap", "aurax")["data"]
    given = set(config)
    for container in _containers():
        given |= {e["name"].removesuffix("_FILE") for e in container.get("env", [])}
        assert container["envFrom"] == [{"configMapRef": {"name": "aurax"}}]
    given |= {name.removesuffix("_FILE") for name in _compose()["x-aurax"]["environment"]}
    unread = sorted(name for name in given if not _read_in_project(name))
    assert not unread, f"read nowhere: {unread}"
    assert not _read_in_project("AURAX_WEB_PROCESSES")  # the check can fail


def test_the_secret_files_named_are_mounted_from_the_secret():
    for name, spec in _pod_specs().items():
        secret_volumes = {v["name"] for v in spec["volumes"] if "secret" in v}
        for container in spec["containers"]:
            mounted = {
                m["mountPath"]: m["name"]
                for m in container["volumeMounts"]
                if m["name"] in secret_volumes
            }
            files = [e["value"] for e in container["env"] if e["name"].endswith("_FILE")]
            assert files, name
            for path in files:
                assert mounted.get(str(Path(path).parent)), f"{name}: {path} is not mounted"


def test_the_probes_answer_through_the_host_they_name(settings, db):
    settings.ALLOWED_HOSTS = _resource("ConfigMap", "aurax")["data"]["ALLOWED_HOSTS"].split(",")
    [web] = _pod_specs()["aurax-web"]["containers"]
    client = Client()
    for probe in ("readinessProbe", "livenessProbe"):
        request = web[probe]["httpGet"]
        headers = {h["name"]: h["value"] for h in request["httpHeaders"]}
        response = client.get(request["path"], headers={"Host": headers["Host"]})
        assert response.status_code == 200, (probe, response.content)
        # Without it the kubelet would name the pod's address, which Django refuses.
        assert client.get(request["path"], headers={"Host": "10.1.2.3:8000"}).status_code == 400


def test_the_service_and_the_ingress_reach_the_web_pods():
    web = _resource("Deployment", "aurax-web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    [container] = web["spec"]["template"]["spec"]["containers"]
    [port] = container["ports"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"PORT={port['containerPort']}" in dockerfile and "HOST=0.0.0.0" in dockerfile

    service = _resource("Service", "aurax-web")
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [port["name"]]

    ingress = _resource("Ingress", "aurax")
    [backend] = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backend["name"] == "aurax-web"
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_beat_runs_once_even_during_a_rollout():
    beat = _resource("Deployment", "aurax-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    others = [c for c in _containers() if "beat" in c["command"] and c["name"] != "beat"]
    assert not others


def test_start_up_beside_running_servers_spares_their_answers():
    """The migrate steps run while the previous release still serves (see
    tests/chat/test_views.py for what the option does)."""
    [job] = _pod_specs()["aurax-migrate"]["containers"]
    compose = shlex.split(_compose()["services"]["migrate"]["command"])
    for command in (job["command"], compose):
        steps = _simple_commands(command)
        assert ["python", "manage.py", "aurax_startup", "--servers-running"] in steps


def test_the_migrate_job_deletes_itself_so_the_next_release_can_create_it_again():
    """A Job's template cannot change: a finished Job still there refuses the next release's
    apply. It stays a few minutes, for its logs."""
    job = _resource("Job", "aurax-migrate")
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 3600
