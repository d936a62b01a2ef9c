"""The ``c_api`` launcher: the exact perf_analyzer command line for a variant, the variant directory it needs
(a full copy whose config is named after the variant), the install-path check and the one-time notice."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from modelyzer.kernel.store import Store
from modelyzer.plugins.codecs.pbtxt import PbtxtCodec
from modelyzer.plugins.executors.local import InProcessExecutor
from modelyzer.plugins.launchers import c_api as cl
from modelyzer.plugins.launchers.remote import RemoteLauncher
from modelyzer.plugins.loadgen.perf_analyzer import PerfAnalyzerLoadGenerator
from modelyzer.plugins.setup_tools import setup_dir
from tests.conftest import PERF_ANALYZER, QUICK_START, ROOT, modelyzer_cmd
from tests.support.configs import profile_config

REPO = QUICK_START / "model_repository"
PA = "/nonexistent/bin/perf_analyzer"  # not resolvable: command() shows the configured path as is


def make_config(tmp_path: Path, **overrides: Any) -> ProfileConfig:
    values: dict[str, Any] = dict(
        triton_launch_mode="c_api",
        triton_install_path=tmp_path / "tritonserver",
        model_repository=REPO,
        output_model_repository_path=tmp_path / "omr",
        perf_analyzer_path=PA,
        perf_analyzer_flags={},
        client_protocol="grpc",
        monitoring_interval=1.0,
        triton_metrics_url="http://localhost:8002/metrics",
    )
    values.update(overrides)
    return profile_config(**values)


def setup(tmp_path: Path, **overrides: Any) -> tuple[ProfileConfig, RunContext, cl.CApiLauncher]:
    config = make_config(tmp_path, **overrides)
    context = RunContext(export_path=tmp_path / "export", output_model_repository=tmp_path / "omr")
    return config, context, cl.CApiLauncher(config, context)


def run_config(name: str = "add_sub_config_2", concurrency: int = 4) -> RunConfig:
    base = PbtxtCodec().read(REPO / "add_sub" / "config.pbtxt")
    variant = ConfigVariant("add_sub", {**base, "max_batch_size": 4, "dynamic_batching": {}}, name=name)
    return RunConfig("add_sub", variant, LoadSpec(concurrency=concurrency))


def test_exact_perf_analyzer_command_line(tmp_path: Path) -> None:
    config, context, launcher = setup(tmp_path)
    rc = run_config()
    endpoints = launcher.ensure(rc.variant, tmp_path, rc)
    assert (
        endpoints.model_name == "add_sub_config_2"
        and endpoints.server_pid is None
        and not endpoints.metrics_url
    )
    command = PerfAnalyzerLoadGenerator(config, context).command(rc, endpoints)
    assert command == [
        PA,
        "-m", "add_sub_config_2",
        "-b", "1",
        "-f", "add_sub_config_2-results.csv",
        "--verbose-csv",
        "--service-kind=triton_c_api",
        "--concurrency-range=4",
        "--measurement-mode=count_windows",
        f"--triton-server-directory={tmp_path / 'tritonserver'}",
        f"--model-repository={tmp_path / 'omr'}",
    ]  # fmt: skip
    # the launcher's flags and the ones perf_analyzer_args derives from a C-API endpoint agree
    bare = PerfAnalyzerLoadGenerator(config, context).command(
        rc, Endpoints(protocol="c_api", model_name="add_sub_config_2")
    )
    assert bare == command
    assert (launcher.server_starts, launcher.model_loads) == (0, 0)


def test_variant_directory_is_named_after_the_variant(tmp_path: Path) -> None:
    config, context, launcher = setup(tmp_path)
    codec = PbtxtCodec()
    executor = InProcessExecutor(
        config, context, launcher, PerfAnalyzerLoadGenerator(config, context), [], codec
    )
    first = executor.variant_dir(run_config("add_sub_config_default"))
    second = executor.variant_dir(run_config("add_sub_config_2"))
    assert codec.read(first / "config.pbtxt")["name"] == "add_sub_config_default"
    assert codec.read(second / "config.pbtxt")["name"] == "add_sub_config_2"
    assert codec.read(second / "config.pbtxt")["max_batch_size"] == 4
    assert (first / "1" / "model.onnx").is_file() and (second / "1" / "model.onnx").is_file()  # full dirs
    # server launchers keep the model's own name (they load it under that name)
    assert RemoteLauncher(config, context).variant_config(run_config().variant)["name"] == "add_sub"


def test_start_checks_the_install_path_and_tells_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, _, launcher = setup(tmp_path)
    with pytest.raises(LaunchError) as err:
        launcher.start()
    assert "triton_install_path" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "tritonserver").mkdir()
    with caplog.at_level(logging.INFO, logger="modelyzer"):
        launcher.start()
        rc = run_config()
        launcher.ensure(rc.variant, tmp_path, rc)
        launcher.ensure(rc.variant, tmp_path, rc)
        launcher.stop()
    notes = [r.getMessage() for r in caplog.records if "c_api" in r.getMessage()]
    assert len(notes) == 1 and "no server metrics" in notes[0]
    assert launcher.writes_full_variant_dirs() is True


def test_registered_as_c_api() -> None:
    seen: dict[str, Any] = {}
    cl.register_launchers(lambda name, factory: seen.update({name: factory}))
    assert seen == {"c_api": cl.CApiLauncher}
    caps = cl.CApiLauncher
    assert (caps.serves_metrics, caps.server_only_window, caps.in_process) == (False, False, True)
    assert (caps.on_this_host, caps.starts_server) == (True, True)


# --- for real: perf_analyzer embeds the Triton 2.51 that .ci/setup lays out in .tools/triton ---------------------
@pytest.mark.integration
@pytest.mark.skipif(setup_dir("triton") is None or not PERF_ANALYZER.exists(),
                    reason="the Triton layout or perf_analyzer is missing; run .ci/setup")
def test_a_profile_with_triton_embedded_in_perf_analyzer(tmp_path: Path) -> None:
    """No server process: perf_analyzer loads each variant by its name from the output repository, through
    Triton's C API (`--service-kind=triton_c_api`), with the default `triton_install_path` resolved to the
    setup's layout; server-side times come from the embedded server's statistics."""
    export = tmp_path / "out"
    config = {
        "model_repository": str(ROOT / "examples" / "triton-cpu" / "model_repository"), "profile_models": "add_sub",
        "triton_launch_mode": "c_api", "export_path": str(export),
        "output_model_repository_path": str(export / "omr"), "override_output_model_repository": True,
        "run_config_search_max_instance_count": 1, "run_config_search_max_model_batch_size": 1,
        "run_config_search_max_concurrency": 1, "perf_analyzer_timeout": 120,  # a failed load hangs perf_analyzer
        "perf_analyzer_flags": {"measurement-request-count": 50, "stability-percentage": 100},
        "skip_summary_reports": True, "skip_detailed_reports": True,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([*modelyzer_cmd(), "profile", "-f", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "perf_analyzer embeds Triton from" in proc.stderr and str(ROOT / ".tools" / "triton") in proc.stderr
    store = Store.open_existing(export / "results.db")
    try:
        results, run = store.results("add_sub"), store.latest_run()
    finally:
        store.close()
    assert run is not None and run.server_starts == 0  # nothing but perf_analyzer ran
    assert len(results) >= 2 and all(r.measurement.ok for r in results), [r.measurement.error for r in results]
    for result in results:
        values = result.measurement.values()
        assert values["perf_throughput"] > 0 and values["perf_server_compute_infer"] > 0
    names = {r.run_config.variant.name for r in results}
    for name in names:  # each variant was written in full, named after itself, and embedded by that name
        assert PbtxtCodec().read(export / "omr" / name / "config.pbtxt")["name"] == name
        assert (export / "omr" / name / "1" / "model.py").is_file()
