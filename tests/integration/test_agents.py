"""Distributed profiling for real: `modelyzer profile --agents` and `modelyzer agent` as separate processes.

Agents run the replay backend (a synthetic recording from bench/agents.py, `replay_duration` per
measurement) on 127.0.0.1, with heartbeats every 0.2 s (liveness window 1 s). Faults are real: SIGKILL of
an agent mid-measurement and of the controller, an agent with an unknown key, random bytes and oversized
frames on the controller's port, a second agent with the same key, 300 idle connections to a controller allowed 256 open files, and agents in
their own network namespaces (where `ip netns` works). One
test runs an agent on the MLServer backend instead (real MLServer and perf_analyzer; skipped without them).
Every test checks that each RunConfig of the search is stored exactly once.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq

from modelyzer.plugins.agents.keys import generate_keys
from tests.conftest import QUICK_START, real_server_available
from tests.integration import bench_agents

pytestmark = pytest.mark.integration

PY = sys.executable
ENV = {**os.environ, "MODELYZER_AGENT_HEARTBEAT": "0.2", "PYTHONUNBUFFERED": "1"}
DURATION = 0.3


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, int]:
    root = tmp_path_factory.mktemp("replay")
    values, recording = bench_agents().make_fixture(root, instances=[1, 2, 3], batch_sizes=[1, 2, 4, 8])
    total = sqlite3.connect(recording).execute("select count(*) from measurements").fetchone()[0]
    return values, recording, total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             alive: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"{alive.args!r} exited with {alive.returncode} while waiting for {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stored(db: Path) -> tuple[int, int, int]:
    """(measurements, distinct RunConfig keys, failed) in the results DB (0s before it exists)."""
    if not db.exists():
        return 0, 0, 0
    con = sqlite3.connect(db, timeout=10)
    try:
        row = con.execute("select count(*), count(distinct run_config_key), "
                          "coalesce(sum(status != 'ok'), 0) from measurements").fetchone()
        return int(row[0]), int(row[1]), int(row[2])
    except sqlite3.OperationalError:
        return 0, 0, 0
    finally:
        con.close()


class Cluster:
    """Processes of one test; each is stopped by its PID at the end."""

    def __init__(self, tmp: Path, replay: tuple[dict[str, Any], Path, int]) -> None:
        self.tmp = tmp
        self.values, self.recording, self.total = replay
        self.procs: list[subprocess.Popen[bytes]] = []
        self.db = tmp / "results.db"
        self.port = free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.keys = tmp / "keys"
        generate_keys(self.keys, agents=3)
        self.config = tmp / "profile.yaml"
        self.config.write_text(yaml.safe_dump({
            **self.values, "results_db": str(self.db), "triton_launch_mode": "replay",
            "replay_results_db": str(self.recording), "replay_duration": DURATION, "export_path": str(tmp / "out"),
            "output_model_repository_path": str(tmp / "out" / "variants"), "skip_summary_reports": True,
            "skip_detailed_reports": True,
        }))

    def spawn(self, args: list[str], log: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        out = (self.tmp / log).open("ab")
        proc = subprocess.Popen([*prefix, PY, "-m", "modelyzer.frontends.cli", *args], stdout=out, stderr=out,
                                env=ENV, cwd=self.tmp)
        self.procs.append(proc)
        return proc

    def controller(self, *extra: str, bind: str | None = None, min_agents: int = 1, secure: bool = True,
                   log_level: str = "info") -> subprocess.Popen[bytes]:
        security = ["--agent-keys", str(self.keys)] if secure else ["--insecure"]
        return self.spawn(["--log-level", log_level, "profile", "-f", str(self.config), "-q",
                           "--agents", bind or self.url, "--min-agents", str(min_agents), *security, *extra],
                          "controller.log")

    def agent(self, key: str, *extra: str, url: str | None = None, secure: bool = True, keys: Path | None = None,
              prefix: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        security = ["--keys", str(keys or self.keys), "--key", key] if secure else ["--insecure", "--name", key]
        return self.spawn(["agent", "--controller", url or self.url, "--gpus", "none",
                           "--workdir", str(self.tmp / f"work-{key}"), "--max-silence", "60", *security, *extra],
                          f"{key}.log", prefix)

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace") if path.exists() else ""

    def check_exactly_once(self) -> None:
        count, distinct, failed = stored(self.db)
        assert (count, distinct, failed) == (self.total, self.total, 0), self.log("controller.log")[-3000:]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def cluster(tmp_path: Path, replay: tuple[dict[str, Any], Path, int]) -> Iterator[Cluster]:
    c = Cluster(tmp_path, replay)
    try:
        yield c
    finally:
        c.stop()


def test_an_agent_killed_mid_measurement_loses_and_duplicates_nothing(cluster: Cluster) -> None:
    controller = cluster.controller(min_agents=3)
    agents = [cluster.agent(f"agent-{i}") for i in (1, 2, 3)]
    wait_for(lambda: stored(cluster.db)[0] >= 6, 60, "the first measurements", controller)
    status = subprocess.run([PY, "-m", "modelyzer.frontends.cli", "agents", "status", "--controller", cluster.url,
                             "--keys", str(cluster.keys), "--key", "agent-1"], capture_output=True, text=True,
                            env=ENV, timeout=30)
    assert status.returncode == 0 and "agents 3 connected" in status.stdout, status.stderr
    agents[1].kill()  # SIGKILL, while it sleeps in a replayed measurement
    assert controller.wait(120) == 0, cluster.log("controller.log")[-3000:]
    cluster.check_exactly_once()
    log = cluster.log("controller.log")
    assert "lost (silent for more than 1 s)" in log and "back in the queue" in log


def test_a_killed_controller_resumes_from_the_results_db(cluster: Cluster) -> None:
    first = cluster.controller(min_agents=2)
    cluster.agent("agent-1")
    cluster.agent("agent-2")
    wait_for(lambda: stored(cluster.db)[0] >= 8, 60, "the first measurements", first)
    first.kill()
    first.wait()
    before = stored(cluster.db)[0]
    second = cluster.controller(min_agents=2)
    assert second.wait(120) == 0, cluster.log("controller.log")[-3000:]
    cluster.check_exactly_once()
    con = sqlite3.connect(cluster.db)
    skipped = con.execute("select skipped from runs order by id desc limit 1").fetchone()[0]
    assert skipped >= before > 0


def test_an_unknown_key_is_refused_and_garbage_does_not_crash_the_controller(cluster: Cluster) -> None:
    controller = cluster.controller()
    stranger = cluster.tmp / "stranger"
    generate_keys(stranger)
    shutil.copy(cluster.keys / "controller.key", stranger / "controller.key")
    intruder = cluster.agent("agent", keys=stranger)
    assert intruder.wait(60) == 2
    assert "refused this agent's key" in cluster.log("agent.log")
    wait_for(lambda: "refused agent key" in cluster.log("controller.log"), 10, "the refusal in the log")
    send_garbage(cluster.port, plaintext_dealer=True)
    assert controller.poll() is None
    cluster.agent("agent-1", "--slots", "4")
    assert controller.wait(120) == 0, cluster.log("controller.log")[-3000:]
    cluster.check_exactly_once()


def test_malformed_and_oversized_messages_are_dropped(cluster: Cluster) -> None:
    controller = cluster.controller(secure=False)
    wait_for(lambda: "controller listening" in cluster.log("controller.log"), 30, "the controller to listen",
             controller)
    send_garbage(cluster.port, plaintext_dealer=True)
    assert controller.poll() is None
    cluster.agent("plain-1", "--slots", "4", secure=False)
    assert controller.wait(120) == 0, cluster.log("controller.log")[-3000:]
    cluster.check_exactly_once()
    log = cluster.log("controller.log")
    assert "insecure" in log and "unknown message type" in log and "not JSON" in log


def test_a_refused_twin_with_the_same_key_leaves_the_real_agent_alone(cluster: Cluster) -> None:
    """A second `agent --key agent-1` while agent-1 measures: refused, then SIGTERM (its bye) — nothing changes."""
    controller = cluster.controller()
    cluster.agent("agent-1", "--slots", "2")
    wait_for(lambda: stored(cluster.db)[0] >= 2, 60, "the first measurements", controller)
    twin = cluster.spawn(["agent", "--controller", cluster.url, "--gpus", "none", "--workdir",
                          str(cluster.tmp / "work-twin"), "--max-silence", "60", "--keys", str(cluster.keys),
                          "--key", "agent-1"], "twin.log")
    wait_for(lambda: "refused a second agent" in cluster.log("controller.log"), 30, "the twin's refusal", controller)
    twin.send_signal(signal.SIGTERM)  # it says bye on its way out
    assert twin.wait(30) == 0
    assert controller.wait(120) == 0, cluster.log("controller.log")[-3000:]
    cluster.check_exactly_once()
    log = cluster.log("controller.log")
    assert " left;" not in log and "lost" not in log.replace("0 lost", ""), log[-3000:]
    assert "is in use by agent" in cluster.log("twin.log")


def test_idle_connections_beyond_the_fd_limit_do_not_lock_agents_out(cluster: Cluster) -> None:
    """A controller allowed 256 open files, 300 TCP connections that never handshake: an agent still gets in."""
    out = (cluster.tmp / "controller.log").open("ab")
    args = ["--log-level", "info", "profile", "-f", str(cluster.config), "-q", "--agents", cluster.url,
            "--min-agents", "1", "--agent-keys", str(cluster.keys)]
    limit = (256, 256)
    controller = subprocess.Popen([PY, "-m", "modelyzer.frontends.cli", *args], stdout=out, stderr=out, env=ENV,
                                  cwd=cluster.tmp,
                                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit))
    cluster.procs.append(controller)
    wait_for(lambda: "controller listening" in cluster.log("controller.log"), 30, "the controller to listen",
             controller)
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", cluster.port), timeout=10))
        wait_for(lambda: "have not completed the handshake (cap 128" in cluster.log("controller.log"), 10,
                 "the cap line", controller)
        cluster.agent("agent-1", "--slots", "4")
        # without the cap the fds stay used until libzmq's 30 s handshake timeout: the agent is locked out that long
        wait_for(lambda: "agent agent-1#" in cluster.log("controller.log")
                 and " joined from " in cluster.log("controller.log"), 10, "the agent to join", controller)
    finally:
        for s in idle:
            s.close()
    assert controller.poll() is None


def send_garbage(port: int, plaintext_dealer: bool) -> None:
    """Random bytes on raw TCP, then (plaintext) ZMTP messages that are malformed, unknown or oversized."""
    rnd = os.urandom
    for size in (1, 64, 4096, 1 << 20):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                s.sendall(rnd(size))
            except OSError:
                pass  # the controller may hang up first
    if not plaintext_dealer:
        return
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        for frames in ([b"\xff\x00 not json"], [b'{"type": "self_destruct"}'], [b"[1,2,3]"],
                       [b'{"type":"hello","payload":{"version":"x"}}'], [b"a", b"b", b"c"],
                       [b"x" * (16 * 1024 * 1024 + 1)]):
            dealer = ctx.socket(zmq.DEALER)
            dealer.linger = 2000
            dealer.sndtimeo = 2000  # against a CURVE controller the plaintext handshake never completes: a DEALER
            dealer.connect(f"tcp://127.0.0.1:{port}")  # without a peer would block in send() for ever
            try:
                dealer.send_multipart(frames)
            except zmq.Again:
                pass  # refused at the handshake: nothing was delivered, which is also what the test wants
            dealer.close()
        time.sleep(1)
    finally:
        ctx.term()


def netns_problem() -> str | None:
    if shutil.which("ip") is None:
        return "no `ip` command"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"mzprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Namespaces:
    """Network namespaces with a veth pair each: host side 10.251.N.1, namespace side 10.251.N.2."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.tag = os.getpid() % 10000

    def add(self, n: int) -> tuple[str, str, str]:
        ns, host_if, ns_if = f"mz{self.tag}n{n}", f"mz{self.tag}h{n}", f"mz{self.tag}p{n}"
        self.names.append(ns)
        for cmd in (["ip", "netns", "add", ns], ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
                    ["ip", "link", "set", ns_if, "netns", ns], ["ip", "addr", "add", f"10.251.{n}.1/24", "dev", host_if],
                    ["ip", "link", "set", host_if, "up"], ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
                    ["ip", "netns", "exec", ns, "ip", "addr", "add", f"10.251.{n}.2/24", "dev", ns_if],
                    ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"]):
            subprocess.run(cmd, check=True, capture_output=True)
        return ns, f"10.251.{n}.1", f"10.251.{n}.2"

    def remove(self) -> None:
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # deletes the veth pair too


def test_agents_in_their_own_network_namespaces(cluster: Cluster) -> None:
    problem = netns_problem()
    if problem:
        pytest.skip(problem)
    spaces = Namespaces()
    try:
        hosts = [spaces.add(n) for n in (1, 2)]
        controller = cluster.controller(bind=f"tcp://0.0.0.0:{cluster.port}", min_agents=2, log_level="debug")
        for i, (ns, host_ip, _) in enumerate(hosts, 1):
            cluster.agent(f"agent-{i}", url=f"tcp://{host_ip}:{cluster.port}", prefix=("ip", "netns", "exec", ns))
        assert controller.wait(120) == 0, cluster.log("controller.log")[-3000:]
        cluster.check_exactly_once()
        log = cluster.log("controller.log")
        for _, _, agent_ip in hosts:
            assert f"accepted from {agent_ip}" in log  # each agent came from its own address
        con = sqlite3.connect(cluster.db)
        agents = {row[0].split("#")[0] for row in con.execute("select distinct agent from measurements")}
        assert agents == {"agent-1", "agent-2"}
    finally:
        cluster.stop()
        spaces.remove()


def test_an_agent_on_the_mlserver_backend_measures_every_run_config_once(tmp_path: Path) -> None:
    """Controller + one agent whose slot runs a real MLServer and the real perf_analyzer (quick-start model)."""
    reason = real_server_available()
    if reason:
        pytest.skip(reason)
    import psutil

    db = tmp_path / "results.db"
    keys = tmp_path / "keys"
    generate_keys(keys, agents=2)  # agent-1, agent-2 (one pair alone would be named `agent`)
    config = tmp_path / "profile.yaml"
    config.write_text(yaml.safe_dump({
        "model_repository": str(QUICK_START / "model_repository"), "triton_launch_mode": "mlserver",
        "profile_models": "add_sub", "export_path": str(tmp_path / "out"), "results_db": str(db),
        "output_model_repository_path": str(tmp_path / "out" / "variants"), "override_output_model_repository": True,
        "run_config_search_max_instance_count": 1, "run_config_search_max_model_batch_size": 2,
        "run_config_search_max_concurrency": 2, "skip_summary_reports": True, "skip_detailed_reports": True,
        "perf_analyzer_flags": {"measurement-request-count": 50, "stability-percentage": 100},
    }))
    url = f"tcp://127.0.0.1:{free_port()}"
    workdir = tmp_path / "agent-work"
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(args: list[str], log: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / log).open("ab")
        # MLServer and perf_analyzer load the 2 CPUs: the default 1 s heartbeat (5 s window), not the 0.2 s of
        # the fault tests, so the agent does not take a busy controller for lost and miss its bye
        env = {**ENV, "MODELYZER_AGENT_HEARTBEAT": "1"}
        proc = subprocess.Popen([PY, "-m", "modelyzer.frontends.cli", *args], stdout=out, stderr=out, env=env,
                                cwd=tmp_path)
        procs.append(proc)
        return proc

    seen: set[psutil.Process] = set()  # MLServer processes (leader and workers) the agent started

    def watch_servers() -> None:
        try:
            found = psutil.Process(agent.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for p in found:
            try:
                if ".venv-mlserver" in " ".join(p.cmdline()):
                    seen.add(p)
            except psutil.Error:
                pass

    def servers() -> list[psutil.Process]:
        """The MLServer processes seen that are still alive."""
        alive = []
        for p in seen:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        return alive

    try:
        controller = spawn(["--log-level", "info", "profile", "-f", str(config), "-q", "--agents", url,
                            "--min-agents", "1", "--agent-keys", str(keys)], "controller.log")
        agent = spawn(["--log-level", "info", "agent", "--controller", url, "--gpus", "none", "--workdir",
                       str(workdir), "--max-silence", "60", "--keys", str(keys), "--key", "agent-1"], "agent.log")
        logs = lambda: ((tmp_path / "controller.log").read_text()[-3000:]  # noqa: E731
                        + (tmp_path / "agent.log").read_text()[-3000:])
        wait_for(lambda: watch_servers() or controller.poll() is not None, 90, "the profile to finish", agent)
        assert controller.returncode == 0, logs()
        con = sqlite3.connect(db)
        rows = con.execute("select run_config_key, status, agent from measurements").fetchall()
        keys_stored = [r[0] for r in rows]
        assert rows and len(keys_stored) == len(set(keys_stored)), rows
        assert {r[1] for r in rows} == {"ok"} and {r[2].split("#")[0] for r in rows} == {"agent-1"}
        assert len(rows) == 6  # 3 variants (default, 1 instance × batch 1, 2) × concurrency 1, 2
        throughputs = con.execute("select m.run_config_key, v.value from measurements m join metric_values v "
                                  "on v.measurement_id = m.id where v.tag = 'perf_throughput'").fetchall()
        assert sorted(k for k, _ in throughputs) == sorted(keys_stored)
        assert all(t > 0 for _, t in throughputs), throughputs
        assert con.execute("select server_starts from runs").fetchone()[0] >= 1  # a real MLServer served them
        con.close()
        # the profile is over (bye): the agent stops its MLServer but stays up for the next controller
        assert seen, "no MLServer process seen under the agent"
        wait_for(lambda: not servers(), 30, "the agent to stop its MLServer", agent)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
        assert not servers()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for leftover in servers():
            leftover.kill()
