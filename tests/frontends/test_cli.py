"""The CLI frontend: version, plugins, and one-line exit-2 errors for malformed input (no traceback)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyzer.frontends.cli.main import cli
from modelyzer.kernel import __version__
from tests.conftest import QUICK_START, modelyzer_cmd


def write_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "add_sub" / "1").mkdir(parents=True)
    (repo / "add_sub" / "config.pbtxt").write_text('name: "add_sub"\nmax_batch_size: 8\n')
    return repo


def run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output


def test_version() -> None:
    code, out = run(["--version"])
    assert code == 0 and __version__ in out


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("profile_models: add_sub\nrun_config_search_max_concurency: 4\n", "did you mean 'run_config_search_max_concurrency'"),
        ("profile_models: add_sub\nrun_config_search_max_concurrency: abc\n", "run_config_search_max_concurrency"),
        ("profile_models: add_sub\nrun_config_search_min_concurrency: 8\nrun_config_search_max_concurrency: 2\n",
         "run_config_search_min_concurrency"),
        ("profile_models: missing_model\n", "missing_model"),
        ("profile_models: add_sub\nconcurrency: [1, 2]\nrequest_rate: [10]\n", "concurrency"),
        ("profile_models: add_sub\ntriton_launch_mode: mlservr\n", "did you mean 'mlserver'"),
        ("profile_models: [add_sub\n", "config.yaml"),
    ],
)
def test_malformed_config_exits_2_with_one_line(tmp_path: Path, yaml_text: str, needle: str) -> None:
    repo = write_repo(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"model_repository: {repo}\nexport_path: {tmp_path / 'out'}\n" + yaml_text)
    code, out = run(["profile", "-f", str(cfg)])
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    assert needle in lines[0]


def test_nonexistent_repository_and_missing_config_pbtxt(tmp_path: Path) -> None:
    code, out = run(["profile", "-m", str(tmp_path / "nope"), "--profile-models", "add_sub", "--triton-launch-mode", "local"])
    assert code == 2 and "model_repository" in out and out.count("\n") == 1
    repo = write_repo(tmp_path)
    (repo / "add_sub" / "config.pbtxt").unlink()
    code, out = run(["profile", "-m", str(repo), "--profile-models", "add_sub", "--triton-launch-mode", "local"])
    assert code == 2 and "config.pbtxt" in out and out.count("\n") == 1


def test_no_traceback_from_the_real_executable(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*modelyzer_cmd(), "profile", "-f", str(QUICK_START / "config.yaml"), "--run-config-search-max-concurrency", "x"],
        capture_output=True, text=True, cwd=QUICK_START,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "run_config_search_max_concurrency" in proc.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["check", "--nope"], "No such option '--nope'. (see 'cli check -h')"),
    (["chek"], "No such command 'chek'. Did you mean 'check'? (see 'cli -h')"),
    (["--log-level", "loud", "check"], "Invalid value for '--log-level'"),
    (["profile", "--gpus"], "Option '--gpus' requires an argument. (see 'cli profile -h')"),
])
def test_usage_errors_are_one_line(args: list[str], needle: str) -> None:
    code, out = run(args)  # (CliRunner names the program `cli`)
    assert code == 2 and out.count("\n") == 1 and out.startswith("error: ") and needle in out, out


def test_error_lines_escape_control_characters_and_elide_long_values(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text('profile_models: add_sub\n"bad\\x1b[31mkey\\u2028x": 1\n')
    code, out = run(["check", "-f", str(cfg)])
    assert code == 2 and out.count("\n") == 1 and "\\x1b[31m" in out and "\x1b" not in out and "\u2028" not in out
    code, out = run(["check", "-m", str(write_repo(tmp_path)), "--profile-models", "add_sub",
                     "--perf-analyzer-path", "/" + "p" * 5000])
    assert code == 2 and out.count("\n") == 1 and len(out) < 1100 and out.rstrip().endswith("fix perf_analyzer_path")
