"""`profile` fills in perf_analyzer's --shape for a dynamic non-batch dimension (hook `model_perf_analyzer_flags`):
the flags the hook adds, the user's own shapes kept, the `dynamic_dimension_size` key, and a real profile of a
dynamic-shape model on MLServer with the real perf_analyzer — which dies on the dynamic shape without the plugin."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import modelyzer_model_tools.plugin
import pytest

from modelyzer.kernel import plugins
from modelyzer.kernel.models import ConfigVariant, Endpoints, LoadSpec, RunConfig
from modelyzer.kernel.profile import with_plugin_flags
from modelyzer.plugins.loadgen.perf_analyzer_args import build_flags, render
from tests.conftest import modelyzer_cmd, real_server_available
from tests.contrib.model_tools.models import DYNAMIC_CONFIG, dynamic_model, quick_start, write_model_dir
from tests.support.configs import profile_config

make_model = quick_start()


@pytest.fixture
def tools_plugin() -> Iterator[None]:
    """The model_tools plugin registered (its entry point's, or registered here and removed afterwards)."""
    plugins.load_plugins()
    if plugins.pm.get_plugin("model_tools") is not None:
        yield
        return
    plugins.register_plugin(modelyzer_model_tools.plugin, "model_tools")
    try:
        yield
    finally:
        plugins.unregister_plugin("model_tools")


@pytest.fixture
def no_tools_plugin() -> Iterator[None]:
    """The model_tools plugin unregistered for the test (put back afterwards if it was there)."""
    plugins.load_plugins()
    plugin = plugins.pm.get_plugin("model_tools")
    if plugin is not None:
        plugins.unregister_plugin("model_tools")
    try:
        yield
    finally:
        if plugin is not None:
            plugins.register_plugin(plugin, "model_tools")


@pytest.fixture
def repo(tmp_path: Path, tools_plugin: None) -> Path:
    write_model_dir(tmp_path / "repo", "seq", dynamic_model(), DYNAMIC_CONFIG.format(name="seq"))
    make_model.write_repository(tmp_path / "repo")
    return tmp_path / "repo"


def flags_of(repo: Path, **values: Any) -> dict[str, dict[str, Any]]:
    config = with_plugin_flags(profile_config(model_repository=repo, profile_models="seq,add_sub", **values))
    return {spec.name: dict(spec.perf_analyzer_flags) for spec in config.models}


def test_hook_adds_shape_for_the_dynamic_model_only(repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="modelyzer"):
        flags = flags_of(repo)
    assert flags == {"seq": {"shape": ["X:16,8"]}, "add_sub": {}}
    (line,) = [r.getMessage() for r in caplog.records if "dynamic dimensions" in r.getMessage()]
    assert line.startswith("profile_models.seq: the model has dynamic dimensions, so perf_analyzer gets --shape X:16,8")
    # the flags perf_analyzer is run with
    config = profile_config(model_repository=repo, profile_models="seq")
    spec = with_plugin_flags(config).models[0]
    run_config = RunConfig(model="seq", variant=ConfigVariant(model="seq", name="seq_config_default", config={}),
                           load=LoadSpec(concurrency=1), perf_analyzer_flags=spec.perf_analyzer_flags)
    argv = render(build_flags(run_config, Endpoints(grpc="127.0.0.1:1"), config))
    assert "--shape=X:16,8" in argv


def test_dynamic_dimension_size_key_and_user_shapes(repo: Path) -> None:
    assert flags_of(repo, dynamic_dimension_size=3)["seq"] == {"shape": ["X:3,8"]}
    user = {"shape": "X:5,8", "measurement-request-count": 100}
    assert flags_of(repo, perf_analyzer_flags=user)["seq"] == user  # the user's shape for X wins, nothing added


def test_without_the_plugin_nothing_changes(tmp_path: Path, no_tools_plugin: None) -> None:
    write_model_dir(tmp_path / "repo", "seq", dynamic_model(), DYNAMIC_CONFIG.format(name="seq"))
    config = profile_config(model_repository=tmp_path / "repo", profile_models="seq")
    assert with_plugin_flags(config) == config


@pytest.mark.integration
def test_real_profile_of_a_dynamic_model_on_mlserver(tmp_path: Path) -> None:
    reason = real_server_available()
    if reason:
        pytest.skip(reason)
    write_model_dir(tmp_path / "repo", "seq", dynamic_model(), DYNAMIC_CONFIG.format(name="seq"))

    def profile(export: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        cmd = [*modelyzer_cmd(), "profile", "--model-repository", str(tmp_path / "repo"), "--profile-models", "seq",
               "--triton-launch-mode", "mlserver", "--export-path", str(tmp_path / export),
               "--output-model-repository-path", str(tmp_path / export / "omr"), "--override-output-model-repository",
               "--run-config-search-disable", "--concurrency", "1"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
                              cwd=tmp_path)

    def statuses(export: str) -> list[str]:
        conn = sqlite3.connect(tmp_path / export / "results.db")
        try:
            return [row[0] for row in conn.execute("SELECT status FROM measurements")]
        finally:
            conn.close()

    done = profile("with", {})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "perf_analyzer gets --shape X:16,8" in done.stderr
    assert statuses("with") == ["ok"], done.stderr[-2000:]
    without = profile("without", {"MODELYZER_DISABLE_PLUGINS": "model_tools"})
    output = without.stderr + without.stdout
    assert "input X contains dynamic shape, provide shapes" in output, output[-2000:]
    assert statuses("without") == ["failed"]


def test_an_unreadable_or_missing_model_is_left_alone(tmp_path: Path, tools_plugin: None) -> None:
    write_model_dir(tmp_path / "repo", "seq", dynamic_model(), DYNAMIC_CONFIG.format(name="seq"))
    (tmp_path / "repo" / "seq" / "1" / "model.onnx").write_bytes(b"\x00not onnx")
    config = profile_config(model_repository=tmp_path / "repo", profile_models="seq,elsewhere")
    assert with_plugin_flags(config) == config  # `elsewhere` has no directory here (e.g. a remote server's model)
