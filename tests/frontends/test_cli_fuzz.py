"""Property-based suite through the real CLI (`modelyzer check` and `modelyzer profile --dry-run`, click's CliRunner on
the real group, a few runs of the real executable): random YAML configs, model_config_parameters trees, mutated YAML
text, command-line flags and files. Every run ends in exit 0 (a plan) or exit 2 with at most 3 lines, the last one
`error: …`, and never a traceback; nothing is written next to the files. Seeded (`derandomize`), ~2,000 examples.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from modelyzer.frontends.cli.main import MAX_ERROR, cli
from tests.conftest import modelyzer_cmd
from tests.kernel.test_config_fuzz import configs, known_key_configs, profile_models, values

ENV = {"MODELYZER_DOCKER_HOST": "unix:///nonexistent/modelyzer-fuzz.sock"}  # docker mode: no engine is touched


def fuzz(examples: int) -> Any:
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Log records on the current `sys.stderr` (CliRunner's while it runs), as the real CLI prints them."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@pytest.fixture(scope="module")
def arena() -> Iterator[Path]:
    """A working directory holding a model repository (`repo/add_sub`, `repo/mul`) and nothing else; the CLI's log
    lines (INFO and up, as `modelyzer` prints them by default) go to the output the assertions count."""
    logger = logging.getLogger("modelyzer")
    handler, level = _Stderr(), logger.level
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    old = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("add_sub", "mul"):
            (root / "repo" / name / "1").mkdir(parents=True)
            (root / "repo" / name / "config.pbtxt").write_text(
                f'name: "{name}"\nmax_batch_size: 8\ninput [{{ name: "IN" data_type: TYPE_FP32 dims: [ 4 ] }}]\n')
        os.chdir(root)
        try:
            yield root
            written = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
            assert all(p.startswith("repo") or p.startswith("case") for p in written), written
        finally:
            os.chdir(old)
            logger.removeHandler(handler)
            logger.setLevel(level)


def assert_clean(result: Result) -> None:
    """Exit 0 (the plan) or exit 2 with ≤ 3 lines ending in `error: …`; never a traceback."""
    out = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"exception escaped the CLI: {result.exception!r}\n{out}") from result.exception
    assert "Traceback" not in out, out
    assert result.exit_code in (0, 2), (result.exit_code, out)
    event(f"exit {result.exit_code}")  # `pytest --hypothesis-show-statistics` shows how many were accepted
    if result.exit_code == 2:
        lines = [line for line in out.splitlines() if line.strip()]
        assert 1 <= len(lines) <= 3, out
        assert lines[-1].startswith("error: "), out
        assert len(lines[-1]) <= MAX_ERROR + 60, lines[-1]  # + "error: " and a usage hint
    else:
        assert "ok: nothing measured" in out, out


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, env=ENV)


def check_file(arena: Path, data: Any, dry_run: bool = False) -> None:
    path = arena / "case" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert_clean(invoke(["profile", "--dry-run", "-f", str(path)] if dry_run else ["check", "-f", str(path)]))


# ---- configs ----------------------------------------------------------------------------------------------------

grounded = st.fixed_dictionaries({"model_repository": st.just("repo"), "profile_models": st.just("add_sub")})


@fuzz(400)
@given(grounded, known_key_configs, st.booleans())
def test_yaml_configs_with_known_keys(arena: Path, base: dict[str, Any], data: dict[str, Any], dry_run: bool) -> None:
    check_file(arena, {**base, **data}, dry_run)


@fuzz(250)
@given(configs, profile_models)
def test_yaml_configs_with_random_keys_and_models(arena: Path, data: dict[str, Any], models: Any) -> None:
    check_file(arena, {**data, "model_repository": "repo", "profile_models": models})


FIELDS = ["max_batch_size", "max_batch_sizes", "instance_group", "dynamic_batching", "kind", "count", "gpus",
          "preferred_batch_size", "max_queue_delay_microseconds", "preserve_ordering", "parameters", "string_value",
          "optimization", "input", "dims", "name", "sequence_batching", "backend", "KEY", "priority_levels"]
leaves = (st.integers(-5, 2**33) | st.sampled_from(["KIND_GPU", "KIND_CPU", "KIND_TPU", "8", "x", "", "-1"])
          | st.booleans() | st.none() | st.floats(allow_nan=False, allow_infinity=False, width=32))
trees = st.recursive(leaves, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), c, max_size=3),
                     max_leaves=8)
small = st.integers(-1, 16)
plausible_parameters = st.fixed_dictionaries({}, optional={
    "max_batch_size": small | st.lists(small, min_size=1, max_size=3),
    "instance_group": st.lists(st.fixed_dictionaries({"kind": st.sampled_from(["KIND_CPU", "KIND_GPU", "KIND_TPU"])},
                                                     optional={"count": small | st.lists(small, max_size=2)}),
                               min_size=1, max_size=2),
    "dynamic_batching": st.fixed_dictionaries({}, optional={
        "max_queue_delay_microseconds": st.lists(st.integers(-1, 500), max_size=2),
        "preferred_batch_size": st.lists(small, max_size=2), "preserve_ordering": st.booleans()}),
})
model_config_parameters = st.dictionaries(st.sampled_from(FIELDS), trees, max_size=3) | plausible_parameters
search = st.sampled_from(["brute", "quick", "optuna"])


@fuzz(350)
@given(model_config_parameters, search, st.sampled_from(["profile_models", "ensemble_composing_models"]))
def test_model_config_parameters(arena: Path, params: dict[str, Any], mode: str, key: str) -> None:
    models: dict[str, Any] = {"add_sub": {"model_config_parameters": params}}
    data = {"model_repository": "repo", "profile_models": models, "run_config_search_mode": mode,
            "run_config_search_max_instance_count": 2, "run_config_search_max_model_batch_size": 4}
    if key != "profile_models":
        data = {**data, "profile_models": "add_sub", key: {"mul": {"model_config_parameters": params}}}
    check_file(arena, data)


plot_axes = st.sampled_from(["perf_throughput", "perf_latency_p99", "perf_latency_p999", "concurrency", "gpu_memory",
                             "", "batch_size", 5])
plots = st.dictionaries(st.sampled_from(["p", "q"]), st.dictionaries(
    st.sampled_from(["title", "x_axis", "y_axis", "monotonic", "type"]), plot_axes | st.booleans(), max_size=4),
    max_size=2) | values
fields = st.lists(st.sampled_from(["model_name", "perf_throughput", "perf_throughputt", "gpu_uuid", "backend_parameter/x",
                                   "backend_parameter/", "nonsense", "request_rate", "perf_latency_p99_ci"]), max_size=4)


@fuzz(200)
@given(plots, st.sampled_from(["inference_output_fields", "gpu_output_fields", "server_output_fields"]), fields)
def test_plots_and_output_fields(arena: Path, plot_tree: Any, key: str, names: list[str]) -> None:
    check_file(arena, {"model_repository": "repo", "profile_models": "add_sub", "plots": plot_tree, key: names})


# ---- YAML text and files -----------------------------------------------------------------------------------------


@fuzz(250)
@given(st.text(max_size=200) | configs.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
       st.integers(min_value=0, max_value=60),
       st.sampled_from(["", ":", "-", "[", "{", "&a", "*a", "\t", "!!set", "!!int 'x'", "2024-13-45", "!!timestamp x",
                        "9" * 5000, "!!python/object:os.system", "\x00", "\ufeff"]))
def test_mutated_yaml_text(arena: Path, text: str, cut: int, noise: str) -> None:
    check_file(arena, "model_repository: repo\nprofile_models: add_sub\n" + text[:cut] + noise + text[cut:])


FILE_KINDS = ["missing", "directory", "fifo", "dev_null", "dev_zero", "binary", "huge", "long_name", "empty", "nul",
              "list", "latin1"]


def make_file(arena: Path, kind: str, stem: str) -> str:
    case = arena / "case"
    case.mkdir(exist_ok=True)
    target = case / f"f-{stem}"
    for old in case.glob("f-*"):
        old.rmdir() if old.is_dir() else old.unlink()
    if kind == "missing":
        return str(target)
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind in ("dev_null", "dev_zero"):
        return "/dev/" + kind[4:]
    elif kind == "binary":
        target.write_bytes(bytes(range(256)) * 4)
    elif kind == "huge":
        target.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    elif kind == "long_name":
        return str(case / ("x" * 5000))
    elif kind == "empty":
        target.write_text("")
    elif kind == "nul":
        return str(target) + "\x00"
    elif kind == "list":
        target.write_text("- a\n- b\n")
    elif kind == "latin1":
        target.write_bytes("profile_models: caf\xe9\n".encode("latin-1"))
    return str(target)


@fuzz(150)
@given(st.sampled_from(FILE_KINDS), st.text(alphabet="abc123", min_size=1, max_size=8),
       st.sampled_from(["-f", "-m", "-e", "--results-db", "--checkpoint-directory", "--perf-analyzer-path",
                        "--output-model-repository-path", "--triton-server-path"]))
def test_files_given_to_path_options(arena: Path, kind: str, stem: str, option: str) -> None:
    value = make_file(arena, kind, stem)
    args = ["check", option, value]
    if option != "-f":
        args += ["-m", "repo", "--profile-models", "add_sub"] if option != "-m" else ["--profile-models", "add_sub"]
    assert_clean(invoke(args))


# ---- command-line flags -----------------------------------------------------------------------------------------------

CHECK = cli.commands["check"]
OPTIONS = [p for p in CHECK.params if isinstance(p, click.Option)]
flag_values = (st.text(max_size=12) | st.integers(-(10**6), 10**20).map(str)
               | st.sampled_from(["-1", "0", "1,2,4", "1e3", "abc", "", "x" * 5000, "add_sub,mul", "repo", "KIND_GPU",
                                  "local", "docker", "remote", "c_api", "quick", "optuna", "brutal", "all", "-"]))


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    args = ["check"] if draw(st.booleans()) else ["profile", "--dry-run"]
    if draw(st.booleans()):
        args += ["-m", "repo", "--profile-models", draw(st.sampled_from(["add_sub", "mul", "add_sub,mul", "nope"]))]
    for option in draw(st.lists(st.sampled_from(OPTIONS), max_size=4)):
        name = draw(st.sampled_from(option.opts + option.secondary_opts))
        args.append(name)
        if not option.is_flag:
            args.append(draw(flag_values))
    if draw(st.integers(0, 9)) == 0:
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(["--nope", "-Z", "extra", "--", "--gpus"])))
    return args


@fuzz(450)
@given(argvs())
def test_command_line_flags(arena: Path, args: list[str]) -> None:
    assert_clean(invoke(args))


# ---- the real executable -----------------------------------------------------------------------------------------


@fuzz(8)
@given(st.sampled_from([
    ["check", "-f", "missing.yaml"], ["check", "-m", "repo", "--profile-models", "add_sub", "-c", "-4"],
    ["check", "-m", "repo", "--profile-models", "add_sub", "--perf-analyzer-path", "/nonexistent/pa"],
    ["profile", "--dry-run", "-m", "repo", "--profile-models", "nope"], ["check", "--nope"], ["chek"],
    ["check", "-m", "repo", "--profile-models", "add_sub", "-e", "x" * 5000],
]), st.sampled_from([[], ["--log-level", "warning"]]))
def test_real_executable(arena: Path, args: list[str], prefix: list[str]) -> None:
    proc = subprocess.run([*modelyzer_cmd(), *prefix, *args], capture_output=True, text=True, env={**os.environ, **ENV},
                          cwd=arena, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3 and lines[-1].startswith("error: "), lines
    assert "Traceback" not in proc.stderr
