"""deploy/kubernetes/: valid for Kubernetes (strictly: no unknown fields), consistent with itself and
with the image, and locked down.

kubernetes-validate carries the API schemas of each Kubernetes release, so this runs offline.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deployment.tools import DEPLOY, ROOT, venv_tool

MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
#: The image's user (Dockerfile: USER 10001:10001) and port (EXPOSE 8000).
IMAGE_UID = 10001
IMAGE_PORT = 8000


def validate(*paths: Path, version: str | None = None) -> subprocess.CompletedProcess[str]:
    options = ["--kubernetes-version", version] if version else []
    return subprocess.run(
        [venv_tool("kubernetes-validate"), "--strict", *options, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    """Every manifest's documents, by kind (one of each)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in by_kind, f"a second {document['kind']} in {path.name}"
            by_kind[document["kind"]] = document
    return by_kind


@pytest.fixture(scope="module")
def deployment(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return resources["Deployment"]


@pytest.fixture(scope="module")
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=[path.name for path in MANIFESTS])
def test_manifest_is_valid_kubernetes(path: Path) -> None:
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout + result.stderr


def test_manifests_are_valid_on_older_clusters_too() -> None:
    # autoscaling/v2 and policy/v1 are GA since 1.23 and 1.21; nothing newer is used.
    result = validate(*MANIFESTS, version="1.27.0")
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The check above means something: a misspelt security field is refused."""
    text = (DEPLOY / "kubernetes" / "deployment.yaml").read_text()
    assert "readOnlyRootFilesystem:" in text
    misspelt = tmp_path / "deployment.yaml"
    misspelt.write_text(text.replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"))
    result = validate(misspelt)
    assert result.returncode != 0
    assert "readOnlyRootFileSystem" in result.stdout + result.stderr


def test_one_of_each_resource(resources: dict[str, dict[str, Any]]) -> None:
    assert {kind: resource["apiVersion"] for kind, resource in resources.items()} == {
        "Deployment": "apps/v1",
        "Service": "v1",
        "HorizontalPodAutoscaler": "autoscaling/v2",
        "PodDisruptionBudget": "policy/v1",
    }


def test_pods_run_as_the_image_user_locked_down(
    deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == IMAGE_UID
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in security or security["privileged"] is False


def test_tmp_is_a_writable_empty_dir(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    (mount,) = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mount["name"]]
    assert not mount.get("readOnly", False)


def test_one_uvicorn_process_per_pod_on_the_image_port(container: dict[str, Any]) -> None:
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["XENT_WORKERS"] == "1"
    assert all(name.startswith("XENT_") for name in env)
    assert int(env["XENT_PORT"]) == IMAGE_PORT
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", IMAGE_PORT)
    # The image's own entry point starts the service: no command or args override it.
    assert "command" not in container and "args" not in container
    assert container["image"].startswith("xent-service:")


def test_probes_ask_liveness_and_readiness(container: dict[str, Any]) -> None:
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    # Readiness notices draining (503) sooner than liveness gives up on a busy pod.
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < (
        liveness["periodSeconds"] * liveness["failureThreshold"]
    )


def quantity(value: str | int) -> float:
    """A Kubernetes CPU or memory quantity as a number (cores, bytes)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?", str(value))
    assert match, f"unexpected quantity {value!r}"
    scale = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[match.group(2)]
    return float(match.group(1)) * scale


def test_resources_are_requested_and_limited(container: dict[str, Any]) -> None:
    resources = container["resources"]
    for name in ("cpu", "memory"):
        request, limit = quantity(resources["requests"][name]), quantity(resources["limits"][name])
        assert 0 < request <= limit, name
    # Two of the largest requests at once (XENT_COMPUTE_CONCURRENCY=2) were seen near 1 GB: leave room.
    assert quantity(resources["limits"]["memory"]) >= 1.5 * 2**30


def test_termination_grace_covers_the_pre_stop_pause(
    deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert grace >= int(command[1]) + 15


def test_service_hpa_and_pdb_point_at_the_pods(resources: dict[str, dict[str, Any]]) -> None:
    deployment = resources["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    service = resources["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"

    hpa = resources["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]

    pdb = resources["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # A budget that the smallest deployment can honour while a node drains.
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_the_image_user_and_port_are_those_of_the_dockerfile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^USER {IMAGE_UID}(:\d+)?$", dockerfile, re.MULTILINE)
    assert re.search(rf"^EXPOSE {IMAGE_PORT}$", dockerfile, re.MULTILINE)
