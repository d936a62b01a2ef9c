"""Choosing plugins (kernel/assembly.py): by the key the user set, else by what plugins declare they can do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from modelyzer.kernel import assembly, plugins
from modelyzer.kernel.errors import ConfigError, PluginError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.models import Endpoints, Metric, RunConfig
from tests.kernel.assembly_support import A, FakeLauncher, FakeLoad, context_for, fakes, profile_config

__all__ = ["fakes"]  # a fixture


class LlmLoad(FakeLoad):
    model_types: ClassVar[frozenset[str]] = frozenset({"llm"})
    preference: ClassVar[int] = 1000  # above the built-in genai_perf / aiperf

    def measure(self, run_config: RunConfig, endpoints: Endpoints) -> list[Metric]:
        return [Metric("time_to_first_token_avg", 1.0)]


class PreferredGeneric(FakeLoad):
    preference: ClassVar[int] = 5


class MetricsLessLauncher(FakeLauncher):
    serves_metrics = False


def loadgen_plugin(register_plugin: Any, **generators: Any) -> None:
    class Plugin:
        @hookimpl
        def register_load_generators(self, register: Any) -> None:
            for name, factory in generators.items():
                register(name, factory)

    register_plugin(Plugin(), f"loadgens-{'-'.join(generators)}")


# --- collectors ------------------------------------------------------------------------------------------------
def test_the_direct_gpu_collector_wins_and_the_server_scrape_is_not_run_twice(tmp_path: Path) -> None:
    config = profile_config(tmp_path, collect_cpu_metrics=True)
    names = [type(c).__name__ for c in assembly.collectors(config, context_for(tmp_path, [A]), FakeLauncher())]
    assert names[0] == "NvmlCollector" and "TritonMetricsCollector" not in names and "CpuCollector" in names
    names = [type(c).__name__ for c in assembly.collectors(config, context_for(tmp_path), FakeLauncher())]
    assert "NvmlCollector" not in names and "TritonMetricsCollector" in names


def test_a_server_without_metrics_gets_no_scraping_collector(tmp_path: Path) -> None:
    config = profile_config(tmp_path)
    names = [type(c).__name__ for c in assembly.collectors(config, context_for(tmp_path), MetricsLessLauncher())]
    assert "TritonMetricsCollector" not in names


# --- load generators by model type --------------------------------------------------------------------------
def test_the_generic_model_type_gets_the_generic_load_generator(tmp_path: Path) -> None:
    assert assembly.load_generator_entry(profile_config(tmp_path)).name == "perf_analyzer"


@pytest.fixture
def without_llm_load_generators() -> Iterator[None]:
    """An installation whose only load generator is perf_analyzer (the built-in LLM ones unregistered)."""
    plugins.load_plugins()
    names = [n for n in ("modelyzer.plugins.loadgen.genai_perf", "modelyzer.plugins.loadgen.aiperf")
             if plugins.pm.get_plugin(n) is not None]
    removed = [(n, plugins.pm.unregister(name=n)) for n in names]
    yield
    for name, module in removed:
        plugins.pm.register(module, name=name)


@pytest.mark.usefixtures("without_llm_load_generators")
def test_llm_without_an_llm_load_generator_is_one_line_naming_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        assembly.load_generator_entry(profile_config(tmp_path, model_type="LLM"))
    message = str(err.value)
    assert message.startswith("model_type: no installed load generator serves 'LLM' models")
    assert "install a load-generator plugin for LLMs, e.g. one driving genai-perf or AIPerf" in message
    assert "\n" not in message and err.value.exit_code == 2


def test_an_installed_llm_load_generator_is_chosen_by_its_declared_model_type(tmp_path: Path,
                                                                              register_plugin: Any) -> None:
    loadgen_plugin(register_plugin, tokens=LlmLoad)
    assert assembly.load_generator_entry(profile_config(tmp_path, model_type="LLM")).name == "tokens"
    assert assembly.load_generator_entry(profile_config(tmp_path)).name == "perf_analyzer"


def test_of_several_the_highest_preference_wins_and_the_key_overrides(tmp_path: Path, register_plugin: Any) -> None:
    loadgen_plugin(register_plugin, better=PreferredGeneric)
    assert assembly.load_generator_entry(profile_config(tmp_path)).name == "better"
    assert assembly.load_generator_entry(profile_config(tmp_path, load_generator="perf_analyzer")).name == \
        "perf_analyzer"


def test_a_launcher_that_brings_its_load_generator_gets_it(tmp_path: Path) -> None:
    class Recorded(FakeLauncher):
        def load_generator(self) -> FakeLoad:
            return own

    own = FakeLoad()
    config = profile_config(tmp_path)
    assert assembly.load_generator(config, context_for(tmp_path), Recorded()) is own
    assert assembly.collectors(config, context_for(tmp_path), Recorded()) == []


# --- named plugins -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "needle"), [
    ("ranker", "weighed", "ranker: unknown ranker 'weighed'; did you mean 'weighted'?"),
    ("executor", "nowhere", "executor: unknown executor 'nowhere'; choose one of"),
    ("load_generator", "perf_analyser", "did you mean 'perf_analyzer'?"),
    ("triton_launch_mode", "locl", "did you mean 'local'?"),
])
def test_a_named_plugin_that_is_not_installed_is_one_line(tmp_path: Path, key: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("?", r"\?")):
        assembly.check_plugin_names(profile_config(tmp_path, **{key: value}))


def test_the_ranker_key_chooses_the_ranker(tmp_path: Path, register_plugin: Any) -> None:
    from modelyzer.plugins.rankers.weighted import WeightedRanker

    class Reverse(WeightedRanker):
        pass

    class Plugin:
        @hookimpl
        def register_rankers(self, register: Any) -> None:
            register("reverse", Reverse)

    register_plugin(Plugin(), "reverse-ranker")
    assert type(assembly.ranker(profile_config(tmp_path))) is WeightedRanker
    assert type(assembly.ranker(profile_config(tmp_path, ranker="reverse"))) is Reverse
    with pytest.raises(PluginError, match="unknown ranker 'nope'"):
        assembly.ranker(profile_config(tmp_path, ranker="nope"))


def test_the_codec_is_the_one_whose_file_the_model_directory_holds(tmp_path: Path, register_plugin: Any) -> None:
    from modelyzer.plugins.codecs.pbtxt import PbtxtCodec

    class JsonCodec(PbtxtCodec):
        filename = "config.json"

    class Plugin:
        @hookimpl
        def register_model_config_codecs(self, register: Any) -> None:
            register("aaa-json", JsonCodec)

    register_plugin(Plugin(), "json-codec")
    config = profile_config(tmp_path)  # its model directory holds config.pbtxt
    assert type(assembly.codec(config)) is PbtxtCodec
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "config.json").write_text("{}")
    assert type(assembly.codec(model_dirs=[tmp_path / "j"])) is JsonCodec
