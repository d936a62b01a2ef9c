"""`Profile`: a whole profile wired from the registries — GPUs, the CPU-only rule, executor, engine, reports.

The no-GPU path runs for real here (nvidia-ml-py is installed, there is no NVIDIA driver). GPU hosts are faked
only at the pynvml function boundary; the launcher and load generator are registered stand-ins (a plugin, as a
third party would add one) so a whole profile runs in well under a second.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import pytest

from modelyzer.kernel import assembly
from modelyzer.kernel.errors import ConfigError
from modelyzer.kernel.gpus import NO_GPU_MESSAGE
from modelyzer.kernel.profile import Profile
from modelyzer.kernel.progress import Progress
from modelyzer.plugins.executors.local import InProcessExecutor
from tests.kernel.assembly_support import fakes, nvml, profile_config, read_csv, warnings_of

__all__ = ["fakes", "nvml"]  # fixtures


def fake_profile(tmp_path: Path, **values: Any) -> Profile:
    return Profile(profile_config(tmp_path, triton_launch_mode="fake", load_generator="fake", **values),
                   Progress(quiet=True))


def test_no_gpu_here_profiles_cpu_only_with_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     fakes: None) -> None:
    """Real nvidia-ml-py, no driver: no GPUs, one warning line, KIND_CPU models, no nvml collector."""
    caplog.set_level(logging.DEBUG, logger="modelyzer")
    run = fake_profile(tmp_path)
    assert run.config.models[0].cpu_only is False
    executor = run.prepare()
    assert run.context.gpus == [] and run.store.gpus() == []
    assert [m.cpu_only for m in run.config.models] == [True]
    assert warnings_of(caplog) == [NO_GPU_MESSAGE] == ["no NVIDIA GPU found: profiling CPU-only"]
    assert isinstance(executor, InProcessExecutor)
    assert "NvmlCollector" not in {type(c).__name__ for c in executor.collectors}
    run.close()


def test_no_gpu_profile_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture, fakes: None) -> None:
    run = fake_profile(tmp_path)
    summary = run.run()
    assert summary.status == "finished" and summary.measured == 2
    assert run.store.server_only(summary.run_id) == []
    paths = run.write_reports(summary.run_id, run.rank())
    results = Path(run.config.export_path) / "results"
    assert {p.name for p in paths} >= {"metrics-model-inference.csv"}
    rows = read_csv(results / "metrics-model-inference.csv")
    assert [r["Instance Group"] for r in rows] == ["1:CPU", "1:CPU"]
    assert not (results / "metrics-model-gpu.csv").exists() and not (results / "metrics-server-only.csv").exists()
    assert warnings_of(caplog).count(NO_GPU_MESSAGE) == 1
    run.close()


def test_gpu_profile_end_to_end_with_server_only_metrics(tmp_path: Path, nvml: Any, monkeypatch: Any,
                                                         fakes: None) -> None:
    fake = nvml()
    monkeypatch.setattr(InProcessExecutor, "sleep", staticmethod(lambda seconds: None))

    def profile() -> Profile:
        return fake_profile(tmp_path, gpus=["0", "GPU-bbbb"])

    run = profile()
    executor = run.prepare()
    assert run.context.gpu_uuids == ["GPU-aaaa", "GPU-bbbb"] and not run.config.models[0].cpu_only
    assert executor.server_only_gpus() == ["GPU-aaaa", "GPU-bbbb"]
    summary = run.run()
    assert summary.measured == 2 and fake.inits == fake.shutdowns == 1 + 1 + 2  # discovery, server-only, 2 windows
    rows = run.store.server_only(summary.run_id)
    assert {(m.gpu_uuid, m.tag): m.value for m in rows if m.tag == "gpu_used_memory"} == {
        ("GPU-aaaa", "gpu_used_memory"): 2000.0, ("GPU-bbbb", "gpu_used_memory"): 4000.0}
    for result in run.store.results("m"):
        assert set(result.measurement.gpu_values()) == {"GPU-aaaa", "GPU-bbbb"}
    run.write_reports(summary.run_id, run.rank())
    results = Path(run.config.export_path) / "results"
    server = read_csv(results / "metrics-server-only.csv")
    assert [(r["Model"], r["GPU UUID"], r["GPU Memory Usage (MB)"], r["GPU Utilization (%)"],
             r["GPU Power Usage (W)"]) for r in server] == [
        ("triton-server", "GPU-aaaa", "2000.0", "40.0", "150.0"),
        ("triton-server", "GPU-bbbb", "4000.0", "80.0", "250.0"),
    ]
    gpu_rows = read_csv(results / "metrics-model-gpu.csv")
    assert len(gpu_rows) == 4 and [r["GPU UUID"] for r in gpu_rows[:2]] == ["GPU-aaaa", "GPU-bbbb"]
    run.close()

    # resume on the same GPUs: the server-only metrics are reused, not measured again
    inits = fake.inits
    again_profile = profile()
    again = again_profile.run()
    assert again.skipped == 2 and fake.inits == inits + 1  # only discovery: no server-only window, nothing measured
    assert len(again_profile.store.server_only(again.run_id)) == len(rows)
    again_profile.close()


def test_reports_of_the_report_command_are_the_reporters_that_declare_it(tmp_path: Path, fakes: None) -> None:
    run = fake_profile(tmp_path)
    profiled = {type(r).__name__ for r in assembly.reporters(run.config, run.context, "profile")}
    reported = {type(r).__name__ for r in assembly.reporters(run.config, run.context, "report")}
    assert "CsvReporter" in profiled and "CsvReporter" not in reported and "DetailedReporter" in reported


@pytest.mark.parametrize(("values", "needle"), [
    ({"run_config_profile_models_concurrently_enable": True},
     "run_config_profile_models_concurrently_enable: needs at least two profile_models (got 1)"),
    ({"run_config_profile_models_concurrently_enable": True, "profile_models": "m,m2", "triton_launch_mode": "c_api"},
     "run_config_profile_models_concurrently_enable: triton_launch_mode 'c_api' serves one model at a time"),
    ({"run_config_profile_models_concurrently_enable": True,
      "profile_models": {"m": {}, "m2": {"triton_server_flags": {"log_info": True}}}},
     "profile_models.m2.triton_server_flags: models profiled concurrently share one server; give every model the "
     "same triton_server_flags as 'm'"),
])
def test_what_the_engine_cannot_do_is_one_line_before_anything_starts(tmp_path: Path, fakes: None,
                                                                       values: dict[str, Any], needle: str) -> None:
    repo = tmp_path / "repo"
    (repo / "m2" / "1").mkdir(parents=True)
    (repo / "m2" / "config.pbtxt").write_text('name: "m2"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n')
    config = profile_config(tmp_path, **values)
    profile = Profile(config, Progress(quiet=True))
    with pytest.raises(ConfigError) as err:
        profile.prepare()
    assert str(err.value).startswith(needle) and "\n" not in str(err.value)
    assert profile.executor is None and not (tmp_path / "out" / "results.db").exists()  # nothing started or written


ENSEMBLE = '''name: "e"
platform: "ensemble"
max_batch_size: 8
ensemble_scheduling {
  step [ { model_name: "m" model_version: -1 }, { model_name: "gone" model_version: -1 } ]
}
'''


def test_an_ensemble_step_calling_a_missing_model_is_one_line_before_anything_starts(tmp_path: Path,
                                                                                      fakes: None) -> None:
    repo = tmp_path / "repo"
    (repo / "e" / "1").mkdir(parents=True)
    (repo / "e" / "config.pbtxt").write_text(ENSEMBLE)
    profile = Profile(profile_config(tmp_path, profile_models="e"), Progress(quiet=True))
    with pytest.raises(ConfigError) as err:
        profile.prepare()
    message = str(err.value)
    assert message.startswith("profile_models: ensemble 'e' has a step calling 'gone', which has no config.pbtxt")
    assert "\n" not in message and profile.executor is None


def test_a_missing_bls_composing_model_is_named_under_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        profile_config(tmp_path, bls_composing_models="gone")
    assert str(err.value).startswith("bls_composing_models: model 'gone' has no directory")


def test_a_pipeline_cannot_be_profiled_concurrently_with_other_models(tmp_path: Path) -> None:
    from modelyzer.kernel.models import ModelSpec
    from modelyzer.kernel.profile import grouped

    (tmp_path / "repo" / "m2" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "m2" / "config.pbtxt").write_text('name: "m2"\nplatform: "onnxruntime_onnx"\n')
    config = profile_config(tmp_path, profile_models="m,m2", run_config_profile_models_concurrently_enable=True)
    config = attrs.evolve(config, models=(attrs.evolve(config.models[0], composing=(ModelSpec("step"),)),
                                          config.models[1]))
    with pytest.raises(ConfigError, match=r"^run_config_profile_models_concurrently_enable: m calls composing models"):
        grouped(config)


def test_hosts_elsewhere_running_a_cpu_only_server_profile_cpu_only(tmp_path: Path, register_plugin: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """An executor whose RunConfigs run on other hosts (agents) offers their GPUs; the launcher the config names
    declares a CPU-only server (devices() == []): a KIND_GPU instance group is profiled as KIND_CPU there too."""
    from modelyzer.kernel.hookspecs import hookimpl
    from modelyzer.kernel.models import GpuDevice
    from tests.kernel.assembly_support import FakeLauncher

    class CpuServer(FakeLauncher):
        def devices(self) -> list[GpuDevice]:
            return []

    class Elsewhere(InProcessExecutor):
        def offered_gpus(self) -> list[GpuDevice]:
            return []

    class Plugin:
        @hookimpl
        def register_launchers(self, register: Any) -> None:
            register("cpu_server", CpuServer)

        @hookimpl
        def register_executors(self, register: Any) -> None:
            register("elsewhere", Elsewhere)

    register_plugin(Plugin(), "kernel-test-elsewhere")
    caplog.set_level(logging.WARNING, logger="modelyzer")
    params = {"instance_group": [{"count": 1, "kind": "KIND_GPU"}]}
    run = Profile(profile_config(tmp_path, triton_launch_mode="cpu_server", executor="elsewhere",
                                 profile_models={"m": {"model_config_parameters": params}}), Progress(quiet=True))
    run.prepare()
    assert run.context.cpu_only_server and [m.cpu_only for m in run.config.models] == [True]
    assert any("KIND_GPU" in w for w in warnings_of(caplog))
    run.close()
