"""deploy/kubernetes without a cluster: every manifest against the `kubernetes` client's schema, and every
cross-reference a cluster would only report at run time.

- Schema: the base (rendered like ``kubectl kustomize``, compared with it when kubectl is installed), the
  Secrets ``make_secrets.py`` writes and the tools/ pod deserialize strictly into V1Job, V1DaemonSet, V1Service,
  V1Secret, V1ConfigMap, V1PersistentVolumeClaim, V1Pod… (unknown field, wrong type, missing required field).
- References: every Secret, ConfigMap and PVC a pod uses exists, every volumeMount names a pod volume, the
  Service selects the controller pod and targets its named port, the agents' ``--controller`` is that Service
  and port, the controller listens on the container port.
- Command lines: each container's args parse with the real click commands (``profile``, ``agent``): every flag
  exists and every value converts; the profile config in the ConfigMap loads with the Job's flags.
- Keys: real keys from ``modelyzer keys generate``, Secrets from ``make_secrets.py``, mounted as the kubelet
  would (whole volume, ``subPath``) under a temp root: the controller's ``--agent-keys`` directory loads with
  ``load_controller_keys`` and admits exactly the nodes' keys, and each node's agent loads its pair
  (``--key $(NODE_NAME)``) and the controller's public key with ``load_agent_keys``.
- The example overlay (images, JSON patches: needs ``kubectl kustomize``, skipped without kubectl) renders into
  valid objects with its image, GPU count and config.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from modelyzer.frontends.cli.main import cli
from modelyzer.kernel.config import config_from_dict
from modelyzer.plugins.agents.keys import authorized_keys, load_agent_keys, load_controller_keys
from tests.conftest import ROOT
from tests.deploy import kube

pytest.importorskip("kubernetes", reason="pip install kubernetes (the dev extra)")

DEPLOY = ROOT / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
NODES = ("gpu-a", "gpu-b.example")


def make_secrets(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DEPLOY / "make_secrets.py"), *args], capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys") / "keys"
    result = CliRunner().invoke(cli, ["keys", "generate", str(directory), "--agents", str(len(NODES))])
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture(scope="module")
def secrets(keys_dir: Path) -> list[dict[str, Any]]:
    proc = make_secrets(str(keys_dir), "--nodes", ",".join(NODES))
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kube.render(BASE)


@pytest.fixture(scope="module")
def objects(base: list[dict[str, Any]], secrets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return base + secrets


def container(objects: list[dict[str, Any]], workload: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = kube.pod_specs(objects)[workload]
    return spec, next(c for c in spec["containers"] if c["name"] == name)


def env_of(c: dict[str, Any], node: str = "") -> dict[str, str]:
    env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
    for e in c.get("env", []):
        if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            env[e["name"]] = node
    return env


def parse_command(c: dict[str, Any], node: str = "") -> click.Context:
    """The container's command line parsed by the real click command (unknown flag or bad value: UsageError)."""
    argv = [kube.expand(a, env_of(c, node)) for a in [*c.get("command", []), *c.get("args", [])]]
    assert argv[0] == "modelyzer", argv
    root = click.Context(cli, info_name="modelyzer")
    command = cli.get_command(root, argv[1])
    assert command is not None, f"modelyzer has no command {argv[1]!r}"
    try:
        return command.make_context(argv[1], argv[2:], parent=root)
    except click.UsageError as err:
        raise AssertionError(f"{' '.join(argv)}: {err.format_message()}") from None


def flag(ctx: click.Context, name: str) -> Any:
    return ctx.params[name]


# --- schema ----------------------------------------------------------------------------------------------------
def test_base_renders_the_expected_objects(base: list[dict[str, Any]]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in base)
    assert kinds == [
        ("ConfigMap", "modelyzer-config"),
        ("DaemonSet", "modelyzer-agent"),
        ("Job", "modelyzer-controller"),
        ("Namespace", "modelyzer"),
        ("PersistentVolumeClaim", "modelyzer-models"),
        ("PersistentVolumeClaim", "modelyzer-results"),
        ("Service", "modelyzer-controller"),
    ]
    assert all(o["metadata"].get("namespace") == "modelyzer" for o in base if o["kind"] != "Namespace")


def test_render_matches_kubectl_kustomize(base: list[dict[str, Any]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the test renderer is checked against it where it is")
    out = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True, check=True).stdout

    def canonical(objs: list[dict[str, Any]]) -> list[str]:
        return sorted(json.dumps(o, sort_keys=True) for o in objs)

    assert canonical([d for d in yaml.safe_load_all(out) if d]) == canonical(base)


def test_every_manifest_validates_against_the_kubernetes_schema(objects: list[dict[str, Any]]) -> None:
    tools = [d for p in sorted((DEPLOY / "tools").glob("*.yaml")) for d in kube.load_documents(p)]
    checked = {kube.model_class(o): kube.check_schema(o) for o in [*objects, *tools]}
    assert {"V1Job", "V1DaemonSet", "V1Service", "V1Secret", "V1ConfigMap", "V1PersistentVolumeClaim",
            "V1Namespace", "V1Pod"} <= set(checked)
    job = checked["V1Job"]
    assert job.spec.template.spec.restart_policy == "Never"  # podFailurePolicy needs it
    assert job.spec.pod_failure_policy.rules[0].on_exit_codes.values == [2]  # bad input fails the Job at once


@pytest.mark.parametrize("broken, message", [
    ({"spec": {"template": {"spec": {"containers": [{"name": "c", "imagePullPolicy": "Always", "cmd": ["x"]}]}}}},
     "unknown field 'cmd' for V1Container"),
    ({"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "5555"}]}]}}}},
     "expected int, got str"),
    # (the client's constructors check required fields: older clients raise "Invalid value for `name`, must not be
    # `None`", pydantic-based ones (kubernetes ≥ 35) a ValidationError naming the model and the field)
    ({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
     r"`name`, must not be `None`|V1Container \| name \|"),
    ({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}},
     r"`selector`, must not be `None`|V1DaemonSetSpec \| selector \|"),
])  # fmt: skip
def test_the_schema_check_catches_typos_types_and_missing_fields(broken: dict[str, Any], message: str) -> None:
    obj = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "x"}, **broken}
    with pytest.raises(kube.ManifestError, match=message):
        kube.check_schema(obj)


# --- references ----------------------------------------------------------------------------------------------------
def test_pods_reference_only_existing_volumes_secrets_configmaps_and_claims(objects: list[dict[str, Any]]) -> None:
    specs = kube.pod_specs(objects)
    assert set(specs) == {"Job/modelyzer-controller", "DaemonSet/modelyzer-agent"}
    for label, spec in specs.items():
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in spec["containers"]:
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{label}: mount of unknown volume {mount['name']}"
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert kube.find(objects, "PersistentVolumeClaim", claim), f"{label}: no PVC {claim}"
            kube.volume_data(volume, objects)  # Secret/ConfigMap exist, items are in them
        used = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        assert used == set(volumes), f"{label}: unused volumes {set(volumes) - used}"


def test_the_service_selects_the_controller_and_the_agents_dial_it(objects: list[dict[str, Any]]) -> None:
    service = kube.find(objects, "Service", "modelyzer-controller")
    assert service is not None
    job = kube.find(objects, "Job", "modelyzer-controller")
    ds = kube.find(objects, "DaemonSet", "modelyzer-agent")
    assert job is not None and ds is not None
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert not service["spec"]["selector"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    _, controller = container(objects, "Job/modelyzer-controller", "controller")
    ports = {p["name"]: p["containerPort"] for p in controller["ports"]}
    assert port["targetPort"] in ports
    # the controller binds the container port; the agents dial the Service's name and port
    listen = flag(parse_command(controller), "agents")
    assert listen == f"tcp://0.0.0.0:{ports[port['targetPort']]}"
    _, agent = container(objects, "DaemonSet/modelyzer-agent", "agent")
    assert flag(parse_command(agent, NODES[0]), "controller") == f"tcp://{service['metadata']['name']}:{port['port']}"
    assert service["metadata"]["namespace"] == ds["metadata"]["namespace"]  # the short name resolves


def test_agents_run_on_gpu_nodes_with_gpus(objects: list[dict[str, Any]]) -> None:
    spec, agent = container(objects, "DaemonSet/modelyzer-agent", "agent")
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert int(agent["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert flag(parse_command(agent, NODES[0]), "gpus") == "all"


# --- command lines and config ------------------------------------------------------------------------------------
def test_command_lines_are_real_modelyzer_flags_and_the_config_loads(objects: list[dict[str, Any]],
                                                                    tmp_path: Path) -> None:
    spec, controller = container(objects, "Job/modelyzer-controller", "controller")
    ctx = parse_command(controller)
    chosen = {k: v for k, v in ctx.params.items()
              if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    assert chosen.keys() >= {"config_file", "agents", "agent_keys", "export_path", "results_db"}
    kube.materialize(spec, controller, tmp_path, objects)
    config_path = tmp_path / str(chosen.pop("config_file")).lstrip("/")
    assert config_path.is_file(), "--config-file is not where the ConfigMap is mounted"
    config = config_from_dict(yaml.safe_load(config_path.read_text()), chosen, check_paths=False)
    assert config.agents == "tcp://0.0.0.0:5555" and config.executor == "agents"
    mounts = {m["mountPath"]: m for m in controller["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert str(config.model_repository) in mounts, "model_repository is not the models PVC mount"
    assert "persistentVolumeClaim" in volumes[mounts[str(config.model_repository)]["name"]]
    assert Path(chosen["results_db"]).parent == Path(chosen["export_path"]) in {Path(p) for p in mounts}
    results = volumes[mounts[str(chosen["export_path"])]["name"]]["persistentVolumeClaim"]["claimName"]
    assert results == "modelyzer-results" and not mounts[str(chosen["export_path"])].get("readOnly")

    spec, agent = container(objects, "DaemonSet/modelyzer-agent", "agent")
    actx = parse_command(agent, NODES[0])
    overrides = dict(s.split("=", 1) for s in actx.params["settings"])
    agent_mounts = {m["mountPath"] for m in agent["volumeMounts"]}
    assert overrides["model_repository"] == str(config.model_repository) in agent_mounts
    assert str(actx.params["workdir"]).startswith(tuple(f"{p}/" for p in agent_mounts))


# --- keys ---------------------------------------------------------------------------------------------------------
def test_mounted_secrets_give_the_layout_keys_generate_writes_and_the_code_reads(
    objects: list[dict[str, Any]], keys_dir: Path, tmp_path: Path
) -> None:
    spec, controller = container(objects, "Job/modelyzer-controller", "controller")
    kube.materialize(spec, controller, tmp_path / "controller", objects)
    keys_flag = parse_command(controller).params["agent_keys"]
    ckeys = load_controller_keys(tmp_path / "controller" / str(keys_flag).lstrip("/"))
    assert ckeys.public == load_controller_keys(keys_dir).public
    admitted = authorized_keys(ckeys.authorized)
    assert sorted(admitted.values()) == sorted(NODES)  # a node name is the agent's name in the controller's logs

    spec, agent = container(objects, "DaemonSet/modelyzer-agent", "agent")
    for node in NODES:
        root = tmp_path / node
        kube.materialize(spec, agent, root, objects)
        actx = parse_command(agent, node)
        assert actx.params["key_name"] == node
        akeys = load_agent_keys(root / str(actx.params["keys"]).lstrip("/"), actx.params["key_name"])
        assert akeys.controller_public == ckeys.public
        assert admitted[akeys.public] == node
    # each node got its own pair, and a controller's secret key never reaches an agent
    agent_secret = kube.find(objects, "Secret", "modelyzer-agent-keys")
    assert agent_secret is not None and "controller.key_secret" not in agent_secret["data"]
    assert len({load_agent_keys(tmp_path / n / "keys", n).public for n in NODES}) == len(NODES)


def test_make_secrets_refuses_bad_mappings(keys_dir: Path, tmp_path: Path) -> None:
    cases = {
        ("--nodes", "a,b,c"): "3 nodes but 2 agent key pairs",
        ("--node", "a=agent-9"): "no key pair 'agent-9'",
        ("--node", "a=agent-1", "--node", "b=agent-1"): "mapped to several nodes",
        ("--nodes", "Bad_Name"): "is not a Kubernetes node name",
        (): "name the GPU nodes",
    }
    for args, message in cases.items():
        proc = make_secrets(str(keys_dir), *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    proc = make_secrets(str(tmp_path / "none"), "--node", "a=agent")
    assert proc.returncode == 2 and "no key pair 'agent'" in proc.stderr
    out = tmp_path / "secrets.yaml"
    proc = make_secrets(str(keys_dir), "--node", "late-node=agent-2", "-o", str(out), "-n", "profiling")
    assert proc.returncode == 0, proc.stderr
    docs = list(yaml.safe_load_all(out.read_text()))
    assert {d["metadata"]["namespace"] for d in docs} == {"profiling"} and out.stat().st_mode & 0o077 == 0
    assert set(kube.find(docs, "Secret", "modelyzer-agent-keys")["data"]) == {  # type: ignore[index]
        "controller.key", "late-node.key_secret"}


def test_the_example_overlay_renders_and_validates(secrets: list[dict[str, Any]], tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the overlay uses Kustomize features the test renderer does not have")
    out = subprocess.run([kubectl, "kustomize", str(DEPLOY / "overlays" / "example")], capture_output=True,
                         text=True, check=True).stdout
    rendered = [d for d in yaml.safe_load_all(out) if d]
    for obj in rendered:
        kube.check_schema(obj)
    _, agent = container(rendered, "DaemonSet/modelyzer-agent", "agent")
    _, controller = container(rendered, "Job/modelyzer-controller", "controller")
    assert agent["image"] == controller["image"] == "registry.example.com/modelyzer/agent:0.1.0"
    assert agent["resources"]["limits"]["nvidia.com/gpu"] == "8"
    config_map = kube.find(rendered, "ConfigMap", "modelyzer-config")
    assert config_map is not None
    config = config_from_dict(yaml.safe_load(config_map["data"]["config.yaml"]), {"agents": "tcp://0.0.0.0:5555"},
                              check_paths=False)
    assert config.min_agents == 4
