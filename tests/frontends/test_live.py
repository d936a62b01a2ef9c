"""The CLI's live progress and results table (frontends/cli/live.py)."""

from __future__ import annotations

import io

import attrs

from modelyzer.frontends.cli.live import LiveProgress, print_results
from modelyzer.kernel.interfaces import RankedConfig
from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, Result, RunConfig


def run_config(name: str = "m_config_1") -> RunConfig:
    return RunConfig("m", ConfigVariant("m", {"max_batch_size": 8, "instance_group": [{"count": 2, "kind": "KIND_CPU"}]},
                                        name=name), LoadSpec(concurrency=4))


def measured(throughput: float) -> Measurement:
    return Measurement("k", metrics=(Metric("perf_throughput", throughput), Metric("perf_latency_p99", 3.5)))


def test_without_a_terminal_each_measurement_is_one_plain_line_with_count_and_eta() -> None:
    out = io.StringIO()
    progress = LiveProgress(out)
    progress.expect(3)
    progress.status("perf_analyzer: 4 s")  # no live view: nothing drawn
    progress.measured(run_config(), measured(120.0))
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[1/~3] ") and "120.0 infer/s, p99 3.50 ms" in lines[0]
    assert "ETA" in lines[0] and "\x1b[" not in out.getvalue()


def test_on_a_terminal_the_bar_shows_count_eta_and_the_status_line() -> None:
    out = io.StringIO()
    progress = LiveProgress(out, live=True)
    progress.console.width = 200
    progress.expect(4)
    progress.measured(run_config(), measured(120.0))
    progress.status("perf_analyzer auto-adjust 1/10 --measurement-request-count=100: 12 s")
    assert progress._bar is not None
    progress._bar.refresh()
    drawn = out.getvalue()
    progress.close()
    assert "1/4" in drawn and "ETA" in drawn and "auto-adjust 1/10" in drawn


def test_quiet_draws_nothing() -> None:
    out = io.StringIO()
    progress = LiveProgress(out, quiet=True, live=True)
    progress.measured(run_config(), measured(1.0))
    progress.close()
    assert out.getvalue() == ""


def test_results_table_lists_rank_config_knobs_load_and_metrics() -> None:
    rc = run_config()
    ranked = RankedConfig("m_config_1", Result(rc, measured(250.0)), True, (Result(rc, measured(250.0)),))
    out = io.StringIO()
    print_results({"m": [ranked]}, out)
    text = out.getvalue()
    assert text.startswith("Top configurations for m:")
    header, row = text.splitlines()[1:3]
    assert header.split() == ["rank", "config", "instances", "max", "batch", "dyn.batch", "load", "infer/s", "p99",
                              "ms", "ok"]
    assert row.split()[:4] == ["1", "m_config_1", "2:CPU", "8"] and row.split()[-3:] == ["250.0", "3.50", "yes"]


def test_a_config_without_instance_groups_runs_on_the_cpu_of_a_cpu_only_model_and_token_columns_show() -> None:
    rc = run_config()
    bare = attrs.evolve(rc, variant=ConfigVariant("m", {"name": "m", "max_batch_size": 0}, name="m_config_default"))
    tokens = Measurement(bare.key, metrics=(Metric("perf_throughput", 5.0), Metric("perf_latency_p99", 90.0),
                                            Metric("output_token_throughput", 310.0),
                                            Metric("time_to_first_token_p99", 41.25), Metric("inter_token_latency_p99", 2.5)))
    ranked = RankedConfig("m_config_default", Result(bare, tokens), True, (Result(bare, tokens),))
    out = io.StringIO()
    print_results({"m": [ranked]}, out, cpu_only={"m"})
    header, row = out.getvalue().splitlines()[1:3]
    assert "tokens/s" in header and "TTFT p99 ms" in header and "ITL p99 ms" in header and "request p99 ms" in header
    assert row.split()[2] == "1:CPU" and row.split()[-4:] == ["310.0", "41.2", "2.50", "yes"]
    plain = io.StringIO()
    print_results({"m": [ranked]}, plain)
    assert plain.getvalue().splitlines()[2].split()[2] == "1:GPU"  # (a GPU model's default)


def test_an_accelerator_column_shows_when_a_ranked_variant_names_one() -> None:
    plain = run_config("m_config_0")
    config = {**plain.variant.config, "optimization": {"execution_accelerators": {"cpu_execution_accelerator": [
        {"name": "openvino", "parameters": {"PERFORMANCE_HINT": "THROUGHPUT"}}]}}}
    accelerated = attrs.evolve(plain, variant=ConfigVariant("m", config, name="m_config_1"))
    ranked = [RankedConfig(rc.variant.name, Result(rc, measured(t)), True, ()) for rc, t in
              ((accelerated, 150.0), (plain, 120.0))]
    out = io.StringIO()
    print_results({"m": ranked}, out)
    header, first, second = out.getvalue().splitlines()[1:4]
    assert "accelerator" in header and "openvino THROUGHPUT" in first and " none " in second
    out = io.StringIO()
    print_results({"m": ranked[1:]}, out)  # no variant names one: no column
    assert "accelerator" not in out.getvalue()


def test_tied_leaders_are_marked_and_the_table_says_why_the_first_leads() -> None:
    from modelyzer.kernel import ranking
    from modelyzer.kernel.models import Objective

    def with_ci(name: str, throughput: float) -> Result:
        rc = run_config(name)
        return Result(rc, Measurement("k", metrics=(Metric("perf_throughput", throughput),
                                                    Metric("perf_throughput_ci", 4.0), Metric("perf_latency_p99", 3.5))))

    objectives = (Objective("perf_throughput", 1),)
    ranked = ranking.rank([with_ci("m_config_1", 250.0), with_ci("m_config_2", 245.0), with_ci("m_config_3", 150.0)],
                          objectives, ())
    tie = ranking.tie(ranked, objectives)
    assert tie is not None
    out = io.StringIO()
    print_results({"m": ranked}, out, ties={"m": tie})
    lines = out.getvalue().splitlines()
    assert "±%" in lines[1]
    assert [line.split()[0] for line in lines[2:5]] == ["1≈", "2≈", "3"]
    assert lines[2].split()[-4:-2] == ["250.0", "4.0"]
    caption = " ".join(lines[5:])
    assert "m_config_1, m_config_2 are statistically tied within ±4.0%" in caption and "fewer instances" in caption
