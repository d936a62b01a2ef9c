"""Helpers to check Kubernetes manifests without a cluster: a minimal Kustomize rendering, a strict schema check
against the `kubernetes` client's model classes, and a simulated kubelet that lays Secret/ConfigMap volumes out
as files the way a pod would see them.

- ``render(directory)`` follows ``kustomization.yaml``'s ``resources`` (files or nested kustomizations) and sets
  ``namespace`` on namespaced objects; any other Kustomize feature is refused, so the rendering cannot silently
  differ from ``kubectl kustomize``.
- ``check_schema(obj)`` walks an object against the model class of its ``apiVersion``/``kind``
  (``openapi_types``/``attribute_map``): an unknown field, a wrong type or a missing required field (the model
  constructors check those) fails with the field's path. The client's own deserializer ignores unknown fields,
  which is why the walk is ours.
- ``materialize(pod_spec, container, root, objects)`` writes the container's Secret and ConfigMap mounts under
  ``root`` (whole volumes, ``items``, ``subPath``), so the files a command line names can be opened by the code
  that reads them in the real pod.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

KUSTOMIZE_KEYS = {"apiVersion", "kind", "namespace", "resources"}
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding", "Node"}
# the client's type strings: `List[V1Container]`, `Dict[str, str]`, `Optional[…]` (older clients: `list[…]`, `dict(…)`)
LIST_TYPE = re.compile(r"^[Ll]ist\[(.+)\]$")
DICT_TYPE = re.compile(r"^(?:Dict\[([^,]+), (.+)\]|dict\(([^,]+), (.+)\))$")
OPTIONAL_TYPE = re.compile(r"^Optional\[(.+)\]$")
PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "object": (object,),
    "datetime": (str,), "date": (str,), "bytes": (str,), "bytearray": (str,),  # (Secret data: base64 text)
}  # fmt: skip


class ManifestError(AssertionError):
    """A manifest does not validate; the message names the file/object and the field path."""


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize directory`` would print (for the features used here)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZE_KEYS
    if unknown:
        raise ManifestError(f"{directory}/kustomization.yaml: {sorted(unknown)} not supported by the test renderer")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        objects += render(path) if path.is_dir() else load_documents(path)
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = namespace
    return objects


def model_class(obj: dict[str, Any]) -> str:
    """``apps/v1`` + ``DaemonSet`` → ``V1DaemonSet``."""
    version = str(obj.get("apiVersion", "")).rpartition("/")[2]
    return f"{version[:1].upper()}{version[1:]}{obj.get('kind', '')}"


def _walk(value: Any, type_name: str, where: str) -> None:
    if value is None:
        return
    if match := OPTIONAL_TYPE.match(type_name):
        type_name = match.group(1)
    if match := LIST_TYPE.match(type_name):
        if not isinstance(value, list):
            raise ManifestError(f"{where}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _walk(item, match.group(1), f"{where}[{i}]")
        return
    if match := DICT_TYPE.match(type_name):
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected a mapping, got {type(value).__name__}")
        for key, item in value.items():
            _walk(item, match.group(2) or match.group(4), f"{where}.{key}")
        return
    if type_name in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[type_name]) and not (type_name == "int" and isinstance(value, bool))
        if not ok:
            raise ManifestError(f"{where}: expected {type_name}, got {type(value).__name__} {value!r}")
        return
    klass = getattr(client.models, type_name, None)
    if klass is None:
        raise ManifestError(f"{where}: unknown model type {type_name}")
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a {type_name} mapping, got {type(value).__name__}")
    by_json = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json:
            raise ManifestError(f"{where}: unknown field {key!r} for {type_name}")
        _walk(item, klass.openapi_types[by_json[key]], f"{where}.{key}")


def check_schema(obj: dict[str, Any], where: str = "") -> Any:
    """Validate ``obj`` strictly against its model class; returns the deserialized model object."""
    name = model_class(obj)
    label = where or f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if getattr(client.models, name, None) is None:
        raise ManifestError(f"{label}: no model class {name} for apiVersion {obj.get('apiVersion')}")
    _walk(obj, name, label)
    try:  # the constructors raise ValueError on a missing required field
        return client.ApiClient()._ApiClient__deserialize(obj, name)  # type: ignore[attr-defined]
    except (ValueError, TypeError) as err:  # (pydantic's ValidationError is a ValueError)
        raise ManifestError(f"{label}: " + " | ".join(str(err).splitlines())) from None


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    return None


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``Kind/name`` → pod spec, for every workload (its template) and bare Pod."""
    specs: dict[str, dict[str, Any]] = {}
    for obj in objects:
        label = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Pod":
            specs[label] = obj["spec"]
        elif obj["kind"] in {"Job", "DaemonSet", "Deployment", "StatefulSet"}:
            specs[label] = obj["spec"]["template"]["spec"]
    return specs


def volume_data(volume: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, bytes] | None:
    """The files of a Secret or ConfigMap volume (after ``items``), or None for other volume kinds."""
    if "secret" in volume:
        source = find(objects, "Secret", volume["secret"]["secretName"])
        if source is None:
            raise ManifestError(f"volume {volume['name']}: no Secret {volume['secret']['secretName']}")
        data = {k: base64.b64decode(v) for k, v in (source.get("data") or {}).items()}
        data |= {k: v.encode() for k, v in (source.get("stringData") or {}).items()}
        items = volume["secret"].get("items")
    elif "configMap" in volume:
        source = find(objects, "ConfigMap", volume["configMap"]["name"])
        if source is None:
            raise ManifestError(f"volume {volume['name']}: no ConfigMap {volume['configMap']['name']}")
        data = {k: v.encode() for k, v in (source.get("data") or {}).items()}
        items = volume["configMap"].get("items")
    else:
        return None
    if items:
        missing = [item["key"] for item in items if item["key"] not in data]
        if missing:
            raise ManifestError(f"volume {volume['name']}: items {missing} are not in its source")
        data = {item["path"]: data[item["key"]] for item in items}
    return data


def materialize(spec: dict[str, Any], container: dict[str, Any], root: Path,
                objects: list[dict[str, Any]]) -> list[str]:
    """Write the container's Secret/ConfigMap mounts under ``root``; returns the mount paths of other volumes."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    others: list[str] = []
    for mount in container.get("volumeMounts", []):
        data = volume_data(volumes[mount["name"]], objects)
        target = root / mount["mountPath"].lstrip("/")
        if data is None:
            others.append(mount["mountPath"])
            continue
        if "subPath" in mount:
            if mount["subPath"] not in data:
                raise ManifestError(f"mount {mount['mountPath']}: subPath {mount['subPath']} not in the volume")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[mount["subPath"]])
            continue
        for path, content in data.items():
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_bytes(content)
    return others


def expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion of command arguments (an unknown variable stays as written)."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), arg)
