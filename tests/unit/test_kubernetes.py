"""The Kubernetes and KServe deployment, checked without a cluster: every kustomization renders,
every object validates against the schemas of a stated Kubernetes version (custom resources
against their CRDs'), and the manifests agree with docker-compose.yml and the local server's
settings. The probes and metrics against a real server are in tests/e2e/test_kubernetes.py."""

from __future__ import annotations

import copy
import functools
import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from emoserve.config import EXIT_TIMEOUT_SECS, STANDARD_ENDPOINTS
from emotriton.cli import parse

from ..manifests import (
    ADAPTER,
    GPU,
    KSERVE,
    KUBERNETES,
    KUSTOMIZATIONS,
    LOADTEST,
    MODEL_REPOSITORY,
    OBJECT_STORAGE,
    SERVICES,
    Object,
    by_kind_and_name,
    claims,
    container,
    find,
    flag,
    health_probes,
    pod_spec,
    render,
    render_in_python,
    render_with_kubectl,
    triton,
    with_defaults,
    without_address,
)
from ..support import ROOT

KUBERNETES_VERSION = "1.32"  # the schemas every object is validated against
SCALE_OUT = ROOT / "docs/scale-out.md"
# Custom resources' schemas, keyed by apiVersion/kind; the file names its sources.
CUSTOM_RESOURCES = json.loads((Path(__file__).parent / "schemas/custom-resources.json").read_text())


# --- validation -----------------------------------------------------------------------------------


def closed(schema: Any) -> Any:
    """A CRD schema that refuses unknown fields, as the API server does (kubectl validates
    strictly by default), except where the schema preserves them."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@functools.cache
def custom_validator(resource: str) -> jsonschema.protocols.Validator:
    """`jsonschema.validate`'s validator for a custom resource's closed schema (the schemas'
    own validity, seconds each, is tests/e2e/test_kubernetes.py's)."""
    schema = closed(CUSTOM_RESOURCES[resource])
    return jsonschema.validators.validator_for(schema)(schema)


def validate(document: Object) -> None:
    resource = f"{document['apiVersion']}/{document['kind']}"
    if resource not in CUSTOM_RESOURCES:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    elif error := jsonschema.exceptions.best_match(
        custom_validator(resource).iter_errors(document)
    ):
        raise error  # as jsonschema.validate raises it


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_object_validates_against_the_stated_kubernetes_version(directory: Path) -> None:
    objects = render(directory)
    assert objects
    for document in objects:
        validate(document)


def test_strict_validation_refuses_an_unknown_field() -> None:
    deployment = copy.deepcopy(find(KUBERNETES, "Deployment", "triton"))
    triton(deployment)["readinesProbe"] = triton(deployment)["readinessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    service = copy.deepcopy(find(KSERVE, "InferenceService", "emotriton"))
    service["spec"]["predictor"]["model"]["storageURI"] = "pvc://emotriton-models"
    with pytest.raises(jsonschema.ValidationError):
        validate(service)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda d: str(d.relative_to(ROOT)))
def test_the_python_renderer_agrees_with_kubectl(directory: Path) -> None:
    """Where kubectl is missing, the Python renderer stands in for it."""
    assert by_kind_and_name(render_in_python(directory)) == by_kind_and_name(
        render_with_kubectl(directory)
    )


# --- agreement with docker-compose.yml ------------------------------------------------------------


def test_triton_runs_the_compose_image_and_flags() -> None:
    server = triton(find(KUBERNETES, "Deployment", "triton"))
    compose = SERVICES["triton"]
    assert server["image"] == compose["image"]
    assert without_address(server["args"]) == without_address(compose["command"])
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    assert mounts["models"] == flag(server["args"], "--repository")


def test_the_pods_way_in_is_the_launchers_guards() -> None:
    """As in compose: the launcher's ports are the pod's, its guards in front of Triton's HTTP
    and metrics servers on the pod's loopback; no proxy container, no ConfigMap of rules."""
    objects = render(KUBERNETES)
    deployment = by_kind_and_name(objects)["Deployment", "triton"]
    (server,) = pod_spec(deployment)["containers"]
    args = parse(server["args"][1:])
    assert args.host == "0.0.0.0"
    compose = SERVICES["triton"]
    published = {int(with_defaults(p).rsplit(":", 1)[1]) for p in compose["ports"]}
    assert {p["containerPort"] for p in server["ports"]} == published
    assert {args.http_port, args.grpc_port, args.metrics_port, args.api_port} == published
    policy = by_kind_and_name(objects)["NetworkPolicy", "triton"]["spec"]
    assert [p["port"] for p in policy["ingress"][0]["ports"]] == [
        p["name"] for p in server["ports"]
    ]
    assert not [o for o in objects if o["kind"] == "ConfigMap"]


def test_the_kserve_runtime_runs_the_compose_image_and_flags() -> None:
    (runtime,) = find(KSERVE, "ServingRuntime", "emotriton-triton")["spec"]["containers"]
    compose = SERVICES["triton"]
    assert runtime["image"] == compose["image"]
    # KServe mounts the repository at /mnt/models. Every other flag is the same.
    repository = "--repository=/mnt/models"
    assert runtime["args"] == [repository if a.startswith("--repository=") else a
                               for a in compose["command"]]  # fmt: skip
    assert [p["containerPort"] for p in runtime["ports"]] == [8000]


def test_shared_memory_is_the_size_compose_gives() -> None:
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}

    def size(text: str) -> int:
        number, unit = re.fullmatch(r"(\d+)([a-zA-Z]*)", str(text)).groups()
        return int(number) * units[unit] if unit else int(number)

    compose = size(SERVICES["triton"]["shm_size"])
    deployment = find(KUBERNETES, "Deployment", "triton")
    runtime = find(KSERVE, "ServingRuntime", "emotriton-triton")["spec"]
    for spec, mounts in [
        (pod_spec(deployment), triton(deployment)["volumeMounts"]),
        (runtime, runtime["containers"][0]["volumeMounts"]),
    ]:
        (shm,) = [m["name"] for m in mounts if m["mountPath"] == "/dev/shm"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == shm]
        assert volume["emptyDir"]["medium"] == "Memory"
        assert size(volume["emptyDir"]["sizeLimit"]) == compose


def test_the_export_job_runs_the_compose_export_into_the_served_volume() -> None:
    job = find(MODEL_REPOSITORY, "Job", "emotriton-export")
    export = container(job)
    compose = SERVICES["export"]
    assert export["image"] == compose["image"]
    mounts = {m["name"]: m["mountPath"] for m in export["volumeMounts"]}
    assert flag(export["args"], "--repository") == mounts["models"]
    same = [a for a in compose["command"] if not a.startswith("--repository=")]
    assert [a for a in export["args"] if not a.startswith("--repository=")] == same
    # The image copies the project's models/ to /src.
    assert (ROOT / export["args"][1] / "config.json").is_file()
    assert "COPY models models" in (ROOT / "deploy/export.Dockerfile").read_text()
    assert export["workingDir"] == "/src"

    (claim,) = [o for o in render(MODEL_REPOSITORY) if o["kind"] == "PersistentVolumeClaim"]
    name = claim["metadata"]["name"]
    assert claims(job) == claims(find(KUBERNETES, "Deployment", "triton")) == [name]
    inference = find(KSERVE, "InferenceService", "emotriton")["spec"]["predictor"]["model"]
    assert inference["storageUri"] == f"pvc://{name}"


def test_the_locust_job_is_the_compose_load_test_headless() -> None:
    objects = by_kind_and_name(render(LOADTEST))
    master = container(objects["Job", "locust-master"])
    worker_deployment = objects["Deployment", "locust-worker"]
    worker = container(worker_deployment)
    # The names compose's services have are the Services' names in Kubernetes.
    compose_master = shlex.split(SERVICES["locust-master"]["command"])
    compose_worker = shlex.split(SERVICES["locust-worker"]["command"])
    assert master["image"] == worker["image"] == SERVICES["locust-master"]["image"]
    assert master["args"][: len(compose_master)] == compose_master
    assert "--headless" in master["args"]
    assert int(flag(master["args"], "--expect-workers")) == worker_deployment["spec"]["replicas"]
    assert worker["args"] == compose_worker
    # The names compose's services have are the Services' names here.
    master_host = worker["args"][worker["args"].index("--master-host") + 1]
    assert ("Service", master_host) in objects
    host, port = master["args"][master["args"].index("--host") + 1].split(":")
    service = find(KUBERNETES, "Service", host)
    assert int(port) in [p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"]
    assert "/mnt/locust" in (ROOT / "deploy/locust.Dockerfile").read_text()


# --- how the objects fit together -----------------------------------------------------------------


def test_services_budget_and_monitor_select_the_triton_pods() -> None:
    objects = by_kind_and_name(render(KUBERNETES))
    deployment = objects["Deployment", "triton"]
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"]: p["containerPort"] for p in triton(deployment)["ports"]}
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pods.items()
    for name in ("triton", "triton-headless"):
        service = objects["Service", name]["spec"]
        assert service["selector"].items() <= pods.items()
        for port in service["ports"]:
            assert ports[port["targetPort"]] == port["port"]
    grpc = [p for p in objects["Service", "triton"]["spec"]["ports"] if p["name"] == "grpc"]
    assert [p["appProtocol"] for p in grpc] == ["grpc"]
    budget = objects["PodDisruptionBudget", "triton"]["spec"]["selector"]["matchLabels"]
    assert budget.items() <= pods.items()
    monitor = objects["ServiceMonitor", "triton"]["spec"]
    watched = monitor["selector"]["matchLabels"].items()
    monitored = [
        service
        for (kind, _), service in objects.items()
        if kind == "Service" and watched <= service["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in monitored] == ["triton"]  # scraped once per pod
    assert [e["port"] for e in monitor["endpoints"]] == ["metrics"]


def test_the_autoscaler_scales_the_deployment_on_the_adapters_metric() -> None:
    objects = by_kind_and_name(render(KUBERNETES))
    hpa = objects["HorizontalPodAutoscaler", "triton"]["spec"]
    assert (hpa["scaleTargetRef"]["kind"], hpa["scaleTargetRef"]["name"]) in objects
    (metric,) = hpa["metrics"]
    (rule,) = ADAPTER["rules"]["custom"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == rule["name"]["as"]
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    budget = objects["PodDisruptionBudget", "triton"]["spec"]["minAvailable"]
    assert budget < hpa["minReplicas"]  # a drain can always evict one pod


def test_in_flight_requests_finish_before_the_pod_is_killed() -> None:
    """The preStop sleep (the Service stops routing) and Triton's exit timeout (in-flight
    requests) both fit in the grace period."""
    deployment = find(KUBERNETES, "Deployment", "triton")
    sleep, seconds = triton(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    # The launcher drains, then gives Triton EXIT_TIMEOUT_SECS, then 5 s before it kills.
    drain_and_exit = EXIT_TIMEOUT_SECS + 5
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > int(seconds) + drain_and_exit


def test_the_pods_run_unprivileged() -> None:
    for directory in (KUBERNETES, MODEL_REPOSITORY, LOADTEST):
        for workload in render(directory):
            if workload["kind"] not in ("Deployment", "Job"):
                continue
            spec = pod_spec(workload)
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["runAsUser"] != 0
            assert spec["automountServiceAccountToken"] is False
            for each in spec["containers"]:
                assert each["securityContext"]["readOnlyRootFilesystem"] is True
                assert each["securityContext"]["capabilities"]["drop"] == ["ALL"]
                assert each["securityContext"]["allowPrivilegeEscalation"] is False
                assert each["resources"]["limits"]["memory"]


def test_the_gpu_overlay_only_adds_a_gpu_and_its_nodes() -> None:
    gpu = find(GPU, "Deployment", "triton")
    spec = pod_spec(gpu)
    assert triton(gpu)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert [t["key"] for t in spec["tolerations"]] == ["nvidia.com/gpu"]
    del triton(gpu)["resources"]["limits"]["nvidia.com/gpu"], spec["nodeSelector"]
    del spec["tolerations"]
    assert gpu == find(KUBERNETES, "Deployment", "triton")
    assert by_kind_and_name(render(GPU)).keys() == by_kind_and_name(render(KUBERNETES)).keys()


def test_the_object_storage_overlay_only_moves_the_repository() -> None:
    deployment = find(OBJECT_STORAGE, "Deployment", "triton")
    server = triton(deployment)
    base = triton(find(KUBERNETES, "Deployment", "triton"))["args"]
    assert flag(server["args"], "--repository").startswith("s3://")
    assert [a for a in server["args"] if not a.startswith("--repository=")] == [
        a for a in base if not a.startswith("--repository=")
    ]
    spec = pod_spec(deployment)
    assert claims(deployment) == []
    mounted = {m["name"] for each in spec["containers"] for m in each["volumeMounts"]}
    assert mounted == {v["name"] for v in spec["volumes"]}
    assert {v["name"]: v for v in spec["volumes"]}["tmp"]["emptyDir"]["sizeLimit"] == "10Gi"
    assert [e["secretRef"]["name"] for e in server["envFrom"]] == ["emotriton-object-storage"]


def test_the_guides_apply_only_kustomizations_validated_here() -> None:
    def applied(text: str) -> set[Path]:
        return {ROOT / p for p in re.findall(r"kubectl (?:apply|delete) -k ([\w/-]+)", text)}

    guide, readme = SCALE_OUT.read_text(), (ROOT / "README.md").read_text()
    assert applied(guide) == set(KUSTOMIZATIONS)
    assert KUBERNETES in applied(readme) <= set(KUSTOMIZATIONS)
    for path in re.findall(r"\b(deploy/[\w./-]+)", guide + readme):
        assert (ROOT / path.rstrip(".")).exists(), path


# --- the probes -----------------------------------------------------------------------------------


def test_the_probes_ask_tritons_health() -> None:
    """The pods and KServe ask through the launcher's guard, as clients come in: a pod takes
    traffic only when the whole way in serves."""
    probes = health_probes()
    assert all(path in ("/v2/health/ready", "/v2/health/live") for path, _ in probes.values())
    ports = {where.rsplit(".", 1)[0]: port for where, (_, port) in probes.items()}
    assert ports == {"deployment.triton": STANDARD_ENDPOINTS.http_port, "kserve": 8000}
    assert probes["deployment.triton.readinessProbe"][0] == "/v2/health/ready"
    compose_check = " ".join(SERVICES["triton"]["healthcheck"]["test"])
    assert f":{STANDARD_ENDPOINTS.http_port}/v2/health/ready" in compose_check
