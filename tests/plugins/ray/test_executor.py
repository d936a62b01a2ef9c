"""The `ray` executor against a real Ray cluster on this host: a head and a worker node started with `ray start`
(each offering one `modelyzer_slot`), token authentication on, the real CLI connecting to it.

- a replayed profile spreads over both nodes' slot actors, each RunConfig stored once;
- a slot actor's worker killed mid-measurement: its RunConfig goes to another actor, every RunConfig stored once;
- Ctrl-C mid-profile keeps what was stored, and the same command resumes;
- a real MLServer served from a slot actor, measured by the real perf_analyzer;
- an unreachable address is one line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import QUICK_START, modelyzer_cmd, real_server_available
from tests.support.replay_profile import modelyzer, one_line_error, replay_config

pytestmark = [pytest.mark.integration]

RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A two-node Ray cluster (head + worker, one `modelyzer_slot` each); yields the environment that reaches it."""
    pytest.importorskip("ray")
    token = tmp_path_factory.mktemp("ray") / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    slot = '{"modelyzer_slot": 1}'
    temp = Path(tempfile.mkdtemp(prefix="mzray-", dir="/tmp"))  # short: Ray's socket paths live under it
    head = [str(RAY), "start", "--head", f"--port={port}", "--num-cpus=1", f"--resources={slot}",
            "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    worker = [str(RAY), "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", f"--resources={slot}",
              "--disable-usage-stats", f"--temp-dir={temp}"]
    try:
        for command in (head, worker):
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
            assert done.returncode == 0, done.stderr[-3000:]
        deadline = time.monotonic() + 60
        while "2.0 modelyzer_slot" not in (status := subprocess.run(
                [str(RAY), "status", f"--address=127.0.0.1:{port}"], capture_output=True, text=True,
                env=env).stdout):
            assert time.monotonic() < deadline, status
            time.sleep(1)
        yield {**env, "MODELYZER_TEST_RAY_ADDRESS": f"127.0.0.1:{port}"}
    finally:
        stop_cluster(temp)


def stop_cluster(temp: Path) -> None:
    """Kill this cluster's processes (those naming its temp dir, and their children) — not every Ray process on
    the host, as `ray stop` would."""
    ours = [p for p in psutil.process_iter(["cmdline"]) if any(str(temp) in part for part in p.info["cmdline"] or [])]
    procs = {p.pid: p for p in ours}
    for proc in ours:
        try:
            procs.update({child.pid: child for child in proc.children(recursive=True)})
        except psutil.NoSuchProcess:
            pass
    for proc in procs.values():
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(procs.values()), timeout=15)
    shutil.rmtree(temp, ignore_errors=True)


def ray_keys(cluster: dict[str, str], **extra: object) -> dict[str, object]:
    return {"executor": "ray", "ray_address": cluster["MODELYZER_TEST_RAY_ADDRESS"], **extra}


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def once_each(db: Path) -> int:
    """Every RunConfig key has one measurement row; their number."""
    assert rows(db, "select count(*) from (select run_config_key from measurements group by run_config_key "
                    "having count(*) > 1)") == [(0,)]
    return int(rows(db, "select count(*) from measurements")[0][0])


def slot_actor_pids() -> list[int]:
    """The processes of live slot actors (Ray names them `ray::SlotActor…`)."""
    return [p.pid for p in psutil.process_iter(["cmdline"]) if any("ray::SlotActor" in part
                                                                  for part in p.info["cmdline"] or [])]


def test_a_replayed_profile_uses_both_nodes_slots_and_stores_each_runconfig_once(
        cluster: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    proc = modelyzer("profile", "-f", str(replay_config(tmp_path, **ray_keys(cluster))), "--results-db", str(db),
                     env=cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    measured = once_each(db)
    assert measured >= 10 and f"{measured} measured, 0 skipped, 0 failed" in proc.stdout
    agents = {agent for (agent,) in rows(db, "select agent from measurements")}
    assert len(agents) == 2 and all(str(a).startswith("ray-") for a in agents)  # one actor per node's slot
    assert "ray: 2 slot actor(s), one modelyzer_slot each" in proc.stderr


def test_a_worker_killed_mid_measurement_loses_nothing(cluster: dict[str, str], tmp_path: Path) -> None:
    """SIGKILL one slot actor's process while it measures: its RunConfig is measured by another actor (a new one
    replaces the dead), and every RunConfig is stored exactly once, none failed."""
    db = tmp_path / "r.db"
    config = replay_config(tmp_path, replay_duration=0.5, **ray_keys(cluster))
    proc = subprocess.Popen([*modelyzer_cmd(), "profile", "-f", str(config), "--results-db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster)
    try:
        deadline = time.monotonic() + 120
        while not (db.exists() and rows(db, "select count(*) from measurements")[0][0] >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, "the profile ended before the kill"
            time.sleep(0.2)
        victims = slot_actor_pids()
        assert victims, "no slot actor process found"
        os.kill(victims[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "died measuring" in err and "another one measures it" in err
    measured = once_each(db)
    assert rows(db, "select count(*) from measurements where status != 'ok'") == [(0,)]
    assert f"{measured} measured, 0 skipped, 0 failed" in out


def test_ctrl_c_keeps_what_was_stored_and_the_same_command_resumes(cluster: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    config = replay_config(tmp_path, replay_duration=0.3, **ray_keys(cluster))
    command = [*modelyzer_cmd(), "profile", "-f", str(config), "--results-db", str(db)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster)
    try:
        deadline = time.monotonic() + 120
        while not (db.exists() and rows(db, "select count(*) from measurements")[0][0] >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, "the profile ended before Ctrl-C"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    kept = once_each(db)
    deadline = time.monotonic() + 30
    while slot_actor_pids():  # the actors were killed with the profile
        assert time.monotonic() < deadline, "slot actors outlived the interrupted profile"
        time.sleep(0.5)
    again = modelyzer("profile", "-f", str(config), "--results-db", str(db), env=cluster)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resumed: skipped {kept} RunConfigs" in again.stderr
    assert once_each(db) > kept


def test_a_real_mlserver_in_a_slot_actor(cluster: dict[str, str], tmp_path: Path) -> None:
    reason = real_server_available()
    if reason:
        pytest.skip(reason)
    export = tmp_path / "out"
    proc = subprocess.run([
        *modelyzer_cmd(), "profile", "-f", str(QUICK_START / "config.yaml"),
        "--model-repository", str(QUICK_START / "model_repository"), "--export-path", str(export),
        "--output-model-repository-path", str(export / "omr"), "--run-config-search-disable", "--concurrency", "1",
        "--skip-detailed-reports", "--skip-summary-reports", "--executor", "ray",
        "--ray-address", cluster["MODELYZER_TEST_RAY_ADDRESS"], "--ray-slots", "1",
    ], capture_output=True, text=True, timeout=600, env=cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = export / "results.db"
    [(status, agent, throughput)] = rows(db, "select status, agent, throughput_infer_per_sec from results")
    assert status == "ok" and str(agent).startswith("ray-") and float(throughput) > 0  # type: ignore[arg-type]
    assert "server starts 1" in proc.stdout  # the actor's server, counted back at the controller


def test_an_unreachable_address_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    proc = modelyzer("profile", "-f", str(replay_config(tmp_path, executor="ray",
                                                         ray_address=f"127.0.0.1:{free_port()}")))
    one_line_error(proc, "ray_address", "cannot be reached", "ray start --head")
