"""The docker launcher against a real private dockerd: the real Triton 2.51 in a self-contained image, and the
stand-in ``tritonserver`` in a near-empty one where only a stand-in can show the behaviour.

Both images are ``docker import``-ed and named with a registry on a closed loopback port, so any pull would fail:
tests that start containers from them also show that a present image is never pulled.

- ``TRITON_IMAGE`` (``tests/support/triton_image.py``) holds the setup's Triton 2.51 (CPU, Python backend), the
  ldd closure of its files, bash, python3.11 and numpy, and nothing else of the host; its containers get no host
  mounts but the model repository and the output model repository the launcher mounts itself, and run the
  launcher's default command ``tritonserver …``. It serves the whole profiles (plain, after a SIGKILLed profile
  whose orphan container the next start removes, and Ctrl-C), the readiness timeout (a Python model whose
  initialize() sleeps, loaded with ``--load-model`` before Triton opens its endpoints) and the server that exits
  (``--load-model`` of a missing model).
- ``IMAGE`` is a ~10 KB rootfs; the host's Python, the project and its venvs are bind-mounted read-only
  (``tests/support/dockerd.host_mounts``) so the stand-in (``tests/support/fake_tritonserver.py``) runs inside.
  It stays for ``test_container_mounts_labels_args_loads_and_restarts`` only, because the stand-in records the
  argv and environment it was started with (``FAKE_TRITON_RECORD``, in a read-write shared mount), which Triton
  cannot. GPU device requests are checked as ``containers.run`` keywords only (no docker test): no GPU can be
  passed into a container here, so neither server could show them.

Pure keyword-merging rules are tested without docker.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError, ModelLoadError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, GpuDevice, LoadSpec, RunConfig
from modelyzer.plugins.codecs.pbtxt import PbtxtCodec
from modelyzer.plugins.launchers import docker as dl
from modelyzer.plugins.launchers import docker_support as ds
from tests.conftest import QUICK_START, ROOT, modelyzer_cmd, real_server_available
from tests.support import triton_image
from tests.support.configs import profile_config
from tests.support.dockerd import PrivateDockerd, host_mounts, private_dockerd
from tests.support.fake_tritonserver import make_executable

IMAGE = "127.0.0.1:1/modelyzer/tritonserver:test"  # present locally; nothing listens on its registry's port
ABSENT = "127.0.0.1:1/modelyzer/absent:1"
# the self-contained real Triton (tests/support/triton_image.py), also present locally only
TRITON_IMAGE = "127.0.0.1:1/modelyzer/triton-cpu:2.51"
REPO = QUICK_START / "model_repository"
TRITON_REPO = ROOT / "examples" / "triton-cpu" / "model_repository"
log = logging.getLogger("test.docker")


# --- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine() -> Iterator[PrivateDockerd]:
    reason = real_server_available()
    if reason:
        pytest.skip(reason)
    with private_dockerd() as started:
        started.import_rootfs_image(IMAGE)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DOCKER_HOST", started.host)
            mp.delenv(ds.ENV_DOCKER_HOST, raising=False)
            ds._clients.clear()
            yield started
            ds._clients.clear()


@pytest.fixture(scope="module")
def triton(engine: PrivateDockerd) -> str:
    """The self-contained real Triton image, imported into the private engine (built once, cached on disk)."""
    started = time.monotonic()
    try:
        built = triton_image.build_rootfs()
    except triton_image.ImageError as err:
        pytest.skip(f"no real Triton image: {err}")
    built_s = time.monotonic() - started
    triton_image.import_image(engine.client(), TRITON_IMAGE, built)
    log.warning(
        "triton image %s: %.0f MB, %s in %.1f s, imported in %.1f s", built.tar.name, built.size / 1e6,
        "cached" if built.cached else "built", built_s, time.monotonic() - started - built_s,
    )  # fmt: skip
    return TRITON_IMAGE


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A directory mounted read-write at its own path in the container (stand-in wrapper, record file)."""
    (tmp_path / "bin").mkdir()
    make_executable(tmp_path / "bin", python=sys.executable)
    return tmp_path


def config(shared: Path, **overrides: Any) -> ProfileConfig:
    """The endpoints keep their defaults (not user-set: the launcher takes free ports)."""
    values: dict[str, Any] = dict(
        client_protocol="grpc",
        client_max_retries=60,
        reload_model_disable=False,
        monitoring_interval=0.5,
        model_repository=REPO,
        triton_launch_mode="docker",
        triton_docker_image=IMAGE,
        triton_server_path=str(shared / "bin" / "tritonserver"),
        triton_docker_mounts=[*host_mounts(), f"{shared}:{shared}:rw"],
        triton_docker_shm_size="128m",
        triton_docker_labels={"team": "ml"},
        triton_docker_args={},
        triton_server_flags={},
        triton_server_environment={"FAKE_TRITON_RECORD": str(shared / "record.json")},
        triton_output_path=None,
    )
    values.update(overrides)
    return profile_config(**values)


def launcher(tmp_path: Path, cfg: ProfileConfig, gpus: list[GpuDevice] | None = None) -> dl.DockerLauncher:
    context = RunContext(export_path=tmp_path, output_model_repository=tmp_path / "omr", gpus=gpus or [])
    return dl.DockerLauncher(cfg, context)


def variant(max_batch_size: int, name: str) -> ConfigVariant:
    base = PbtxtCodec().read(REPO / "add_sub" / "config.pbtxt")
    return ConfigVariant("add_sub", {**base, "max_batch_size": max_batch_size}, name=name)


def run_config(v: ConfigVariant, env: dict[str, str]) -> RunConfig:
    return RunConfig("add_sub", v, LoadSpec(concurrency=1), server_env=env)


def containers(engine: PrivateDockerd, label: str) -> list[Any]:
    return list(engine.client().containers.list(all=True, filters={"label": label}))


# --- pure rules (no docker) --------------------------------------------------------------------------------
def test_user_docker_args_merge_without_colliding() -> None:
    own = {
        "image": "mine", "command": ["tritonserver"], "init": True, "network_mode": "host", "detach": True,
        "labels": {"modelyzer.run": "r1", "modelyzer.owner": "1@h", "team": "a"},
        "volumes": ["/models:/models:ro", "/out:/out:rw"],
        "environment": {"CUDA_VISIBLE_DEVICES": "", "A": "1"},
    }  # fmt: skip
    user = {
        "image": "theirs", "shm_size": "1g", "detach": False,
        "labels": {"team": "b", "modelyzer.run": "hijack", "x": 1},
        "volumes": {"/elsewhere": {"bind": "/models", "mode": "ro"}, "/data": {"bind": "/data", "mode": "rw"}},
        "environment": ["A=2", "B=3"], "network": "mynet",
    }  # fmt: skip
    merged = ds.merge_run_kwargs(own, user, log)
    assert merged["image"] == "theirs" and merged["shm_size"] == "1g" and merged["detach"] is True
    assert merged["labels"] == {"modelyzer.run": "r1", "modelyzer.owner": "1@h", "team": "b", "x": "1"}
    assert merged["volumes"] == ["/out:/out:rw", "/elsewhere:/models:ro", "/data:/data:rw"]
    assert merged["environment"] == {"CUDA_VISIBLE_DEVICES": "", "A": "2", "B": "3"}
    assert merged["network"] == "mynet" and "network_mode" not in merged and not ds.is_host_network(merged)
    assert ds.merge_run_kwargs(own, None, log) == own


def test_run_kwargs_gpus_ports_and_mounts(tmp_path: Path) -> None:
    gpu = GpuDevice("GPU-1234", "A100", 0)
    cfg = config(tmp_path, triton_docker_args={"network_mode": "bridge", "cap_add": ["SYS_PTRACE"]})
    lau = launcher(tmp_path, cfg, gpus=[gpu])
    ports = {"http": 18000, "grpc": 18001, "metrics": 18002}
    kwargs = lau.run_kwargs({"log-verbose": 1}, {"X": "$HOME"}, dict(cfg.triton_docker_args), ports)
    assert kwargs["ports"] == {"18000/tcp": 18000, "18001/tcp": 18001, "18002/tcp": 18002}
    assert kwargs["network_mode"] == "bridge" and kwargs["cap_add"] == ["SYS_PTRACE"]
    (request,) = kwargs["device_requests"]
    assert request["DeviceIDs"] == ["GPU-1234"] and request["Capabilities"] == [["gpu"]]
    assert kwargs["environment"] == {"CUDA_VISIBLE_DEVICES": "GPU-1234", "X": "$HOME"}
    assert f"{REPO.resolve()}:{REPO.resolve()}:ro" in kwargs["volumes"]
    assert f"{tmp_path / 'omr'}:{tmp_path / 'omr'}:rw" in kwargs["volumes"]
    assert kwargs["command"][0] == str(tmp_path / "bin" / "tritonserver")
    assert "--http-port=18000" in kwargs["command"] and "--log-verbose=1" in kwargs["command"]
    assert "--model-control-mode=explicit" in kwargs["command"]
    assert "--metrics-interval-ms=500" in kwargs["command"]
    assert kwargs["labels"]["team"] == "ml" and kwargs["labels"][ds.LABEL_RUN] == lau.run_id
    with pytest.raises(LaunchError, match="triton_docker_mounts"):  # (the config loader refuses it too)
        launcher(tmp_path, attrs.evolve(config(tmp_path), triton_docker_mounts=["/a:/b"]))


def test_no_docker_engine_is_one_line_in_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket path where no dockerd listens, and a TCP port nothing listens on: the SDK's real errors, said in
    words (no nested exception tuples), with the fix."""
    for url, words in ((f"unix://{tmp_path}/docker.sock", "no socket there (is dockerd running?)"),
                       (f"tcp://127.0.0.1:{_free_port()}", "connection refused")):
        monkeypatch.setenv(ds.ENV_DOCKER_HOST, url)
        with pytest.raises(LaunchError) as info:
            ds.docker_client()
        message = str(info.value)
        assert f"cannot reach the docker engine at {url}: {words}" in message and "start dockerd" in message
        assert "\n" not in message and "Connection aborted" not in message and "Errno" not in message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_orphan_detection_by_owner_process() -> None:
    mine = ds.owner_labels("r1")
    assert ds.owner_alive(mine) is True
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert ds.owner_alive({ds.LABEL_OWNER: f"{dead.pid}@{socket.gethostname()}"}) is False
    reused = {**mine, ds.LABEL_OWNER_STARTED: "12.00"}  # same PID, another (older) process start time
    assert ds.owner_alive(reused) is False
    assert ds.owner_alive({ds.LABEL_OWNER: "1@some-other-host"}) is None


# --- real dockerd -----------------------------------------------------------------------------------------
@pytest.mark.integration
def test_imported_image_runs_the_hosts_python(engine: PrivateDockerd) -> None:
    out = engine.client().containers.run(
        IMAGE,
        [sys.executable, "-c", "import modelyzer_mlserver, modelyzer.kernel; print('ok')"],
        volumes=host_mounts(), network_mode="host", remove=True,
    )  # fmt: skip
    assert out.strip() == b"ok"


@pytest.mark.integration
def test_container_mounts_labels_args_loads_and_restarts(engine: PrivateDockerd, shared: Path) -> None:
    env = {"FAKE_TRITON_RECORD": str(shared / "record.json")}
    args = {
        "labels": {"from-args": "1"},
        "environment": {"FROM_ARGS": "yes"},
        "shm_size": "96m",
        "cap_drop": ["MKNOD"],
    }
    lau = launcher(shared, config(shared, triton_docker_args=args, triton_server_environment=env))
    try:
        lau.start()
        (container,) = containers(engine, f"{ds.LABEL_RUN}={lau.run_id}")
        attrs = container.attrs
        host = attrs["HostConfig"]
        assert attrs["Config"]["Image"] == IMAGE  # the present image, used as is (a pull would have failed)
        assert host["NetworkMode"] == "host" and host["Init"] is True
        # triton_docker_args.shm_size wins over triton_docker_shm_size
        assert host["ShmSize"] == 96 * 1024 * 1024
        assert host["CapDrop"] == ["MKNOD"]
        mounts = {m["Destination"]: m for m in attrs["Mounts"]}
        repo = str(REPO.resolve())
        assert mounts[repo]["RW"] is False and mounts[repo]["Source"] == repo
        assert mounts[str(shared / "omr")]["RW"] is True and mounts["/usr"]["RW"] is False
        labels = attrs["Config"]["Labels"]
        assert labels["team"] == "ml" and labels["from-args"] == "1"
        assert labels[ds.LABEL_OWNER] == f"{os.getpid()}@{socket.gethostname()}"
        assert {"CUDA_VISIBLE_DEVICES=", "FROM_ARGS=yes"} <= set(attrs["Config"]["Env"])
        (first,) = json.loads((shared / "record.json").read_text())
        assert first["argv"][:2] == [f"--model-repository={REPO.resolve()}", "--model-control-mode=explicit"]
        assert {f"--http-port={lau.ports['http']}", "--metrics-interval-ms=500"} <= set(first["argv"])
        assert first["env"]["CUDA_VISIBLE_DEVICES"] == ""

        v1, v2 = variant(1, "add_sub_config_0"), variant(2, "add_sub_config_1")
        endpoints = lau.ensure(v1, shared / "omr" / v1.name, run_config(v1, env))
        assert endpoints.container_id == container.id and endpoints.server_pid is None
        assert endpoints.grpc == f"127.0.0.1:{lau.ports['grpc']}" and endpoints.protocol == "grpc"
        lau.ensure(v2, shared / "omr" / v2.name, run_config(v2, env))
        assert (lau.server_starts, lau.model_loads) == (1, 2)  # per-variant loads, no restart
        assert ds.container_memory_bytes(container.id) > 10_000_000  # MLServer runs inside: tens of MB
        gpu = ConfigVariant(
            "add_sub", {**v2.config, "instance_group": [{"count": 1, "kind": "KIND_GPU"}]}, name="g"
        )
        with pytest.raises(ModelLoadError, match="KIND_GPU but no GPUs are available") as refused:
            lau.ensure(gpu, shared / "omr" / "g", run_config(gpu, env))
        assert "server log: E" in str(refused.value)  # the server's own log line, from the container

        # another server environment: a new container
        lau.ensure(v2, shared / "omr" / v2.name, run_config(v2, {**env, "NEW": "1"}))
        assert (lau.server_starts, lau.model_loads) == (2, 3)
        (second,) = containers(engine, f"{ds.LABEL_RUN}={lau.run_id}")
        assert second.id != container.id and "NEW=1" in second.attrs["Config"]["Env"]
    finally:
        lau.stop()
        lau.stop()
    assert containers(engine, f"{ds.LABEL_RUN}={lau.run_id}") == []
    assert "stand-in tritonserver" in (shared / "tritonserver.log").read_text()  # container logs were kept


@pytest.mark.integration
def test_absent_image_is_pulled_once_then_a_one_line_error(engine: PrivateDockerd, shared: Path) -> None:
    lau = launcher(shared, config(shared, triton_docker_image=ABSENT))
    started = time.monotonic()
    with pytest.raises(LaunchError) as err:
        lau.start()
    message = str(err.value)
    assert "\n" not in message and f"triton_docker_image {ABSENT!r} is not present locally" in message
    assert "could not be pulled" in message and time.monotonic() - started < 30
    assert lau.server_starts == 0 and containers(engine, f"{ds.LABEL_RUN}={lau.run_id}") == []
    lau.stop()


SLOW_MODEL = {
    "config.pbtxt": 'backend: "python"\nmax_batch_size: 0\n'
    'input [ { name: "IN", data_type: TYPE_FP32, dims: [ 1 ] } ]\n'
    'output [ { name: "OUT", data_type: TYPE_FP32, dims: [ 1 ] } ]\n',
    "1/model.py": "import time\n\n\nclass TritonPythonModel:\n    def initialize(self, args):\n"
    "        print('slow model: initializing for 60 s', flush=True)\n        time.sleep(60)\n",
}


def real_config(shared: Path, repo: Path, **overrides: Any) -> ProfileConfig:
    """The real Triton of the self-contained image, with the default ``triton_server_path`` and no host mounts."""
    return config(
        shared, model_repository=repo, triton_docker_image=TRITON_IMAGE, triton_server_path="tritonserver",
        triton_docker_mounts=[], triton_server_environment={}, **overrides,
    )  # fmt: skip


@pytest.mark.integration
def test_readiness_timeout_reports_the_last_log_lines(
    triton: str, engine: PrivateDockerd, shared: Path
) -> None:
    """Triton loads ``--load-model`` models before it opens its endpoints: a model whose initialize() takes a minute
    keeps it from getting ready; stopping it (SIGTERM through tini) is immediate."""
    repo = shared / "slow_repo"
    for name, text in SLOW_MODEL.items():
        (repo / "slow" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "slow" / name).write_text(text)
    cfg = real_config(shared, repo, client_max_retries=3, triton_server_flags={"load_model": "slow"})
    lau = launcher(shared, cfg)
    with pytest.raises(LaunchError) as err:
        lau.start()
    message = str(err.value)
    assert "did not become ready within 3 s" in message and '"loading: slow:1"' in message
    assert containers(engine, f"{ds.LABEL_RUN}={lau.run_id}") == []


@pytest.mark.integration
def test_server_that_exits_is_a_launch_error_with_its_log(
    triton: str, engine: PrivateDockerd, shared: Path
) -> None:
    """Triton exits (code 1) when a ``--load-model`` model does not exist; the error carries its own last words."""
    lau = launcher(shared, real_config(shared, TRITON_REPO, triton_server_flags={"load_model": "missing"}))
    with pytest.raises(LaunchError) as err:
        lau.start()
    message = str(err.value)
    assert (
        "exited (exit code 1)" in message
        and "error: creating server: Internal - failed to load all models" in message
    )
    assert containers(engine, f"{ds.LABEL_RUN}={lau.run_id}") == []


# --- full profiles (the real Triton, through the CLI) ----------------------------------------------------------
def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return list(conn.execute(sql).fetchall())
    except sqlite3.OperationalError:  # not migrated yet
        return [(0,)]
    finally:
        conn.close()


def wait_for_container(engine: PrivateDockerd, proc: subprocess.Popen[str], timeout: float = 90) -> Any:
    """The running server container of the profile process ``proc``."""
    label = f"{ds.LABEL_OWNER}={proc.pid}@{socket.gethostname()}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        running = [c for c in containers(engine, label) if c.status == "running"]
        if running:
            return running[0]
        time.sleep(0.3)
    raise AssertionError(f"no running container labelled {label} after {timeout} s")


@pytest.mark.integration
def test_profile_after_a_sigkilled_profile_removes_the_orphan(
    triton: str, engine: PrivateDockerd, tmp_path: Path
) -> None:
    export = tmp_path / "out"
    cmd = [
        *modelyzer_cmd(),
        "profile",
        "-f",
        str(real_triton_config(tmp_path, export, collect_cpu_metrics=True)),
    ]
    killed = subprocess.Popen(cmd, env=engine.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    orphan = wait_for_container(engine, killed)
    # the profile's container sees only what the launcher mounts, and nothing of the host's installation
    assert {m["Destination"] for m in orphan.attrs["Mounts"]} == {
        str(TRITON_REPO.resolve()),
        str(export.resolve() / "omr"),
    }
    code, out = orphan.exec_run(["python3", "-c", f"import os; print(os.listdir({str(ROOT.resolve())!r}))"])
    assert (code, out.decode().strip()) == (0, "['examples']")  # only the mount point of the model repository
    killed.kill()
    killed.communicate()
    orphan.reload()
    assert orphan.status == "running"  # left behind by the SIGKILL

    proc = subprocess.run(cmd, env=engine.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"removed orphan server container {orphan.name}" in proc.stderr
    # the orphan is gone, and this run removed its own container at the end
    assert [c.id for c in containers(engine, ds.LABEL_OWNER)] == []
    assert "Top configurations for add_sub" in proc.stdout
    db = export / "results.db"
    variants = query(db, "select count(*) from variants order by 1")[0][0]
    assert variants >= 2 and query(db, "select count(*) from measurements where status = 'ok'") == [
        (variants,)
    ]
    assert query(db, "select server_starts, model_loads from runs order by id desc limit 1") == [
        (1, variants)
    ]
    ram = query(db, "select count(*) from metric_values where tag = 'cpu_used_ram' and value > 10")
    assert (
        ram[0][0] >= variants
    )  # the container's memory (Triton + the Python stub), through the docker stats API
    with (export / "results" / "metrics-model-inference.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == variants and all(r["Instance Group"] == "1:CPU" for r in rows)
    assert {"add_sub_config_default", "add_sub_config_0"} <= {r["Model Config Path"] for r in rows}
    assert all(float(r["Throughput (infer/sec)"]) > 0 for r in rows)


@pytest.mark.integration
def test_ctrl_c_removes_the_container(triton: str, engine: PrivateDockerd, tmp_path: Path) -> None:
    export = tmp_path / "out"
    cmd = [*modelyzer_cmd(), "profile", "-f", str(real_triton_config(tmp_path, export))]
    proc = subprocess.Popen(cmd, env=engine.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    container = wait_for_container(engine, proc)
    db, deadline = export / "results.db", time.monotonic() + 120
    while not (db.exists() and query(db, "select count(*) from measurements")[0][0] >= 1):  # mid-profile
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    assert containers(engine, f"{ds.LABEL_RUN}={container.labels[ds.LABEL_RUN]}") == []
    assert "Started GRPCInferenceService" in (export / "tritonserver.log").read_text()  # its log was kept


def real_triton_config(tmp_path: Path, export: Path, **overrides: Any) -> Path:
    """A profile of ``add_sub`` (numpy, Python backend) on the self-contained image, nothing of the host mounted."""
    cfg = {
        "triton_launch_mode": "docker", "triton_docker_image": TRITON_IMAGE,
        "model_repository": str(TRITON_REPO), "profile_models": "add_sub",
        "triton_docker_shm_size": "256m", "triton_docker_labels": {"modelyzer.test": "real-triton"},
        "export_path": str(export), "output_model_repository_path": str(export / "omr"),
        "run_config_search_max_instance_count": 1, "run_config_search_max_model_batch_size": 1,
        "run_config_search_max_concurrency": 1,
        "perf_analyzer_flags": {"measurement-request-count": 50, "stability-percentage": 100},
        "skip_summary_reports": True, "skip_detailed_reports": True, **overrides,
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.integration
def test_a_profile_on_the_real_triton_in_a_self_contained_image(
    triton: str, engine: PrivateDockerd, tmp_path: Path
) -> None:
    """The setup's real Triton 2.51 runs from the self-contained image (``tests/support/triton_image.py``: no host
    mounts but the model repository and the output model repository the launcher mounts itself), started through
    the Docker SDK with host networking and the default ``triton_server_path``; every variant is loaded into it with
    load-with-config; perf_analyzer measures it from outside."""
    export = tmp_path / "out"
    path = real_triton_config(tmp_path, export)
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(path)], env=engine.env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert query(export / "results.db", "select server_starts from runs") == [(1,)]
    assert query(export / "results.db", "select count(*) from measurements where status = 'ok'")[0][0] >= 2
    computed = query(export / "results.db", "select min(value) from metric_values where tag = "
                                            "'perf_server_compute_infer'")[0][0]  # fmt: skip
    assert computed is not None and computed > 0  # Triton's own statistics, from inside the container
    log_text = (export / "tritonserver.log").read_text()  # the container's output, kept by the launcher
    assert "===== modelyzer: container modelyzer-" in log_text and "Started GRPCInferenceService" in log_text
    assert "successfully loaded 'add_sub'" in log_text
    assert not containers(engine, "modelyzer.test=real-triton")  # removed at the end


@pytest.mark.integration
def test_the_triton_image_is_self_contained(triton: str, engine: PrivateDockerd) -> None:
    """Nothing of the host is in the image: no project, no pyenv Python, a small /usr/lib; yet python3 has numpy."""
    probe = (
        "import os, sys, numpy; print(sys.prefix, numpy.__version__, os.path.exists('/work'), "
        f"os.path.exists({str(ROOT)!r}), os.path.exists({sys.base_prefix!r}), os.path.exists('/bin/sh'), os.path.exists('/bin/bash'), "
        "len(os.listdir('/usr/lib/x86_64-linux-gnu')))"
    )
    out = engine.client().containers.run(triton, ["python3", "-c", probe], network_mode="host", remove=True)
    prefix, numpy_version, work, project, pyenv, sh, bash, system_libs = out.decode().split()
    assert (prefix, work, project, pyenv, sh, bash) == ("/usr", "False", "False", "False", "False", "True")
    assert numpy_version and int(system_libs) < 80  # the ldd closure only, not the host's thousands
    assert engine.client().images.get(triton).attrs["Config"]["Env"] == [
        f"{k}={v}" for k, v in triton_image.IMAGE_ENV.items()
    ]
