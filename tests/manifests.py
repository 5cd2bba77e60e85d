"""The deployment files read as data: docker-compose.yml's services, and each Kubernetes and
KServe kustomization rendered as `kubectl apply -k` would apply it."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from .support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
MONITORING = yaml.safe_load((ROOT / "docker-compose.monitoring.yml").read_text())["services"]
DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")

KUBERNETES = ROOT / "deploy/kubernetes"
GPU = KUBERNETES / "gpu"
OBJECT_STORAGE = KUBERNETES / "object-storage"
MODEL_REPOSITORY = KUBERNETES / "model-repository"
LOADTEST = KUBERNETES / "loadtest"
KSERVE = ROOT / "deploy/kserve"
KUSTOMIZATIONS = [KUBERNETES, GPU, OBJECT_STORAGE, MODEL_REPOSITORY, LOADTEST, KSERVE]
ADAPTER = yaml.safe_load((KUBERNETES / "prometheus-adapter-values.yaml").read_text())

Object = dict[str, Any]


# --- docker-compose.yml ---------------------------------------------------------------------------


def with_defaults(value: str) -> str:
    """A compose string with each ${VAR:-default} replaced by its default."""
    return DEFAULT.sub(lambda match: match.group(2), value)


# --- Kubernetes: rendering ------------------------------------------------------------------------


def json_patch(document: Object, operations: list[Object]) -> None:
    """RFC 6902 add, replace and remove, in place: the patch operations the overlays use."""
    for operation in operations:
        assert operation["op"] in ("add", "replace", "remove"), operation
        *parents, last = [
            part.replace("~1", "/").replace("~0", "~") for part in operation["path"][1:].split("/")
        ]
        node = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if operation["op"] == "add":
                node.insert(index, operation["value"])
            elif operation["op"] == "replace":
                node[index] = operation["value"]
            else:
                del node[index]
        elif operation["op"] in ("add", "replace"):
            node[last] = operation["value"]
        else:
            del node[last]


def name_suffix(data: dict[str, str]) -> str:
    """kustomize's hash suffix of a generated ConfigMap (api/hasher): sha256 of Go's JSON of its
    kind, data and name, whose lookup ("metadata/name" as one key) finds no name."""
    encoded = json.dumps(
        {"kind": "ConfigMap", "name": "", "data": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for character, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(character, escaped)  # Go escapes HTML characters
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def generated_config_maps(directory: Path, generators: list[Object]) -> list[Object]:
    """configMapGenerator entries made of `files` (KEY=PATH or PATH) and `options.labels`."""
    objects = []
    for generator in generators:
        assert set(generator) <= {"name", "files", "options"}, generator
        data = {}
        for entry in generator["files"]:
            key, _, path = entry.rpartition("=")
            data[key or Path(path).name] = (directory / path).read_text()
        metadata = {"name": f"{generator['name']}-{name_suffix(data)}"}
        if "options" in generator:
            metadata["labels"] = generator["options"]["labels"]
        config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
        objects.append(config_map)
    return objects


def refer_to_generated_names(objects: list[Object]) -> None:
    """kustomize's name references to generated ConfigMaps, for the one kind ours have: a pod's
    configMap volume."""
    generated = {}
    for config_map in (o for o in objects if o["kind"] == "ConfigMap"):
        name = config_map["metadata"]["name"]
        base = name.rsplit("-", 1)[0]
        if name == f"{base}-{name_suffix(config_map['data'])}":
            generated[base] = name
    for workload in (o for o in objects if "template" in o.get("spec", {})):
        for volume in pod_spec(workload).get("volumes", []):
            name = volume.get("configMap", {}).get("name")
            if name in generated:
                volume["configMap"]["name"] = generated[name]


def render_in_python(directory: Path) -> list[Object]:
    """`kubectl kustomize` for kustomizations made of resources, ConfigMap generators, a
    namespace (for namespaced objects: all of ours are) and JSON 6902 patches only."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    handled = {"apiVersion", "kind", "resources", "configMapGenerator", "namespace", "patches"}
    unsupported = set(kustomization) - handled
    assert not unsupported, f"{directory}: the Python renderer does not handle {unsupported}"
    objects: list[Object] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects += render_in_python(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    objects += generated_config_maps(directory, kustomization.get("configMapGenerator", []))
    refer_to_generated_names(objects)
    for patch in kustomization.get("patches", []):
        operations = yaml.safe_load((directory / patch["path"]).read_text())
        target = patch["target"]
        matched = [
            o
            for o in objects
            if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]
        ]
        assert matched, f"{directory}: patch {patch['path']} matches nothing"
        for document in matched:
            json_patch(document, operations)
    if "namespace" in kustomization:
        for document in objects:
            document["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def render_with_kubectl(directory: Path) -> list[Object]:
    run = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


@functools.cache
def _rendered(directory: Path) -> list[Object]:
    return (
        render_with_kubectl(directory) if shutil.which("kubectl") else render_in_python(directory)
    )


def render(directory: Path) -> list[Object]:
    """What `kubectl apply -k` would apply: kubectl's own kustomize where it is installed.
    Rendered once per session; each call gets its own copy, to change as it likes."""
    return copy.deepcopy(_rendered(directory))


def by_kind_and_name(objects: list[Object]) -> dict[tuple[str, str], Object]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def find(directory: Path, kind: str, name: str) -> Object:
    return by_kind_and_name(render(directory))[kind, name]


def pod_spec(workload: Object) -> Object:
    return workload["spec"]["template"]["spec"]


def container(workload: Object, name: str | None = None) -> Object:
    """The workload's container called `name`, or its only one."""
    containers = pod_spec(workload)["containers"]
    (found,) = containers if name is None else [c for c in containers if c["name"] == name]
    return found


def triton(workload: Object) -> Object:
    return container(workload, "triton")


def claims(workload: Object) -> list[str]:
    volumes = pod_spec(workload)["volumes"]
    return [
        v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
    ]


def flag(arguments: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in arguments if a.startswith(f"{name}=")]
    return value


# Where Triton listens: the one thing in which the pods' flags differ from compose's.
ADDRESS_FLAGS = ("--host=", "--http-port=", "--grpc-port=", "--metrics-port=")


def without_address(arguments: list[str]) -> list[str]:
    return [a for a in arguments if not a.startswith(ADDRESS_FLAGS)]


# --- the probes -----------------------------------------------------------------------------------


def health_probes() -> dict[str, tuple[str, int]]:
    """where → (path, port number) of every probe that asks Triton's health: an httpGet on a
    container port, or a curl on loopback (a tcpSocket probe asks no health)."""
    deployment = find(KUBERNETES, "Deployment", "triton")
    (runtime,) = find(KSERVE, "ServingRuntime", "emotriton-triton")["spec"]["containers"]
    owners = [(f"deployment.{c['name']}", c) for c in pod_spec(deployment)["containers"]]
    found = {}
    for where, owner in [*owners, ("kserve", runtime)]:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = owner.get(kind, {})
            if "httpGet" in probe:
                port = probe["httpGet"]["port"]
                (number,) = [
                    p["containerPort"]
                    for p in owner["ports"]
                    if port in (p.get("name"), p["containerPort"])
                ]
                found[f"{where}.{kind}"] = (probe["httpGet"]["path"], number)
            elif "exec" in probe:
                curl, *_, url = probe["exec"]["command"]
                address = urllib.parse.urlsplit(url)
                assert curl == "curl" and address.hostname == "127.0.0.1", where
                found[f"{where}.{kind}"] = (address.path, address.port)
    return found
