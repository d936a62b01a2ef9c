"""`modelyzer check` / `profile --dry-run`: everything checked without measuring, the plan printed; one line, exit 2, on
any problem; no server started, no directory made, no results DB written."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from modelyzer.frontends.cli.main import cli
from tests.conftest import modelyzer_cmd


def setup(tmp_path: Path, **extra: Any) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    (repo / "add_sub" / "1").mkdir(parents=True)
    (repo / "add_sub" / "config.pbtxt").write_text('name: "add_sub"\nmax_batch_size: 8\n')
    out = tmp_path / "out"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"model_repository": str(repo), "export_path": str(out), "profile_models": "add_sub",
                                   "output_model_repository_path": str(out / "variants"),
                                   "run_config_search_max_instance_count": 2,
                                   "run_config_search_max_model_batch_size": 4, **extra}))
    return cfg, out


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def one_line_error(code: int, out: str) -> str:
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    assert "Traceback" not in out
    return lines[0]


@pytest.mark.parametrize("mode", ["brute", "quick", "optuna"])
def test_check_prints_the_plan_and_writes_nothing(tmp_path: Path, mode: str) -> None:
    cfg, out = setup(tmp_path, run_config_search_mode=mode)
    code, text = run("check", "-f", str(cfg))
    assert code == 0, text
    assert "model add_sub: " in text and "model configs, at most " in text and "RunConfigs; first:" in text
    assert "  default config @ concurrency" in text
    assert text.rstrip().endswith("ok: nothing measured, no server started, no results DB written")
    assert not out.exists()  # no export path, no results DB, no output model repository
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "repo"]


def test_profile_dry_run_is_the_same_check(tmp_path: Path) -> None:
    cfg, out = setup(tmp_path)
    assert run("profile", "--dry-run", "-f", str(cfg)) == run("check", "-f", str(cfg))
    assert not out.exists()


def test_brute_plan_counts_the_search_space(tmp_path: Path) -> None:
    cfg, _ = setup(tmp_path, triton_launch_mode="remote", concurrency=[1, 2])
    code, text = run("check", "-f", str(cfg), "--gpus", "")
    assert code == 0, text
    # the default config, then 2 instance counts × max_batch_size 1, 2, 4
    assert "model add_sub: 7 model configs" in text


@pytest.mark.parametrize(("extra", "args", "env", "needle"), [
    ({}, ("--perf-analyzer-path", "/nonexistent/perf_analyzer"), None, "perf_analyzer_path '/nonexistent/perf_analyzer'"),
    ({"triton_launch_mode": "local", "triton_server_path": "/nonexistent/tritonserver"}, (), None,
     "triton_server_path: '/nonexistent/tritonserver' is not an executable"),
    ({"triton_launch_mode": "docker"}, (), {"MODELYZER_DOCKER_HOST": "unix:///nonexistent/docker.sock"},
     "cannot reach the docker engine"),
    ({"triton_launch_mode": "c_api", "triton_install_path": "/nonexistent/tritonserver"}, (), None,
     "triton_install_path '/nonexistent/tritonserver' is not a directory"),
    ({"run_config_search_mode": "brutal"}, (), None, "did you mean 'brute'"),
    ({"profile_models": {"add_sub": {"model_config_parameters": {"instance_group": [{"kind": "KIND_TPU"}]}}}}, (), None,
     "profile_models.add_sub.model_config_parameters.instance_group.kind: 'KIND_TPU' is not one of"),
    ({"profile_models": "add_sub,missing"}, (), None, "model 'missing' has no directory"),
])
def test_check_problems_are_one_line_exit_2(tmp_path: Path, extra: dict[str, Any], args: tuple[str, ...],
                                            env: dict[str, str] | None, needle: str) -> None:
    cfg, out = setup(tmp_path, **extra)
    line = one_line_error(*run("check", "-f", str(cfg), *args, env=env))
    assert needle in line
    assert not out.exists()


def test_unwritable_export_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg, _ = setup(tmp_path)
    line = one_line_error(*run("check", "-f", str(cfg), "-e", str(blocker / "out")))
    assert "export_path:" in line and "not a writable directory" in line


def test_agents_executor_checks_binaries_on_the_agents(tmp_path: Path) -> None:
    cfg, out = setup(tmp_path, perf_analyzer_path="/nonexistent/perf_analyzer")
    code, text = run("check", "-f", str(cfg), "--agents", "tcp://127.0.0.1:5999", "--insecure")
    assert code == 0, text
    assert "binaries and GPUs are checked on the hosts that run the RunConfigs" in text
    assert not out.exists()


def test_executors_elsewhere_check_what_they_can_without_starting(tmp_path: Path) -> None:
    """The agents' CURVE keys are loaded; a Ray cluster's address must answer — nothing listens, nothing starts."""
    cfg, out = setup(tmp_path)
    line = one_line_error(*run("check", "-f", str(cfg), "--agents", "tcp://127.0.0.1:5999", "--agent-keys",
                               str(tmp_path / "no-keys")))
    assert line.startswith("error: agent_keys: ") and "modelyzer keys generate" in line
    pytest.importorskip("ray")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: refused
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        line = one_line_error(*run("check", "-f", str(cfg), "--executor", "ray", "--ray-address", address))
    assert f"the Ray cluster at {address} cannot be reached" in line
    code, text = run("check", "-f", str(cfg), "--executor", "ray")
    assert code == 0 and "ray: a private Ray instance will be started on this host" in text, text
    assert not out.exists()


def test_profile_refuses_a_bad_model_config_before_anything_starts(tmp_path: Path) -> None:
    cfg, out = setup(tmp_path, profile_models={"add_sub": {"model_config_parameters": {"max_batch_sizes": [2, 4]}}})
    line = one_line_error(*run("profile", "-f", str(cfg)))
    assert "max_batch_sizes: is not a field of Triton's model config; did you mean 'max_batch_size'?" in line
    assert not out.exists()


def test_check_from_the_real_executable(tmp_path: Path) -> None:
    cfg, out = setup(tmp_path, perf_analyzer_path="/nonexistent/pa")
    proc = subprocess.run([*modelyzer_cmd(), "check", "-f", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out.exists()
