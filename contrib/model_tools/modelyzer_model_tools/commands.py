"""`modelyzer inspect` and `modelyzer convert` (added through `register_commands`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from modelyzer.kernel import assembly
from modelyzer.kernel.errors import ConfigError, ModelyzerError
from modelyzer_model_tools.compare import Comparison, compare_runtimes, parse_runtimes
from modelyzer_model_tools.convert import convert_to_openvino
from modelyzer_model_tools.inspection import ModelInfo, TensorInfo, inspect_model
from modelyzer_model_tools.locate import Located, locate
from modelyzer_model_tools.settings import DEFAULT_DYNAMIC_SIZE, DEFAULT_TOLERANCE

#: convert --check compares the conversion itself: OpenVINO at f32, whatever the CPU's default precision (bf16
#: on CPUs with AMX/AVX512-BF16)
CHECK_PROPERTIES = {"INFERENCE_PRECISION_HINT": "f32"}


class AccuracyMismatch(ModelyzerError):
    """`inspect --compare` found outputs that disagree beyond the tolerance (exit code 1)."""


def _tensor_line(tensor: TensorInfo, batching: bool) -> str:
    shape = ", ".join(str(d) for d in tensor.shape)
    dynamic = [i for i in tensor.dynamic_axes if not (batching and i == 0)]
    notes = ["axis 0 is the batch"] if batching and 0 in tensor.dynamic_axes else []
    if dynamic:
        notes.append("dynamic " + ", ".join(f"axis {i} ({tensor.shape[i]})" for i in dynamic))
    return f"    {tensor.name}  {tensor.dtype} [{shape}]  {tensor.triton_type}" + (f"  ({'; '.join(notes)})" if notes else "")


def describe(info: ModelInfo, codec: Any) -> list[str]:
    """The text `inspect` prints for one model."""
    where = f"{info.onnx_path}" + (f", {info.config_path}" if info.config_path else ", no config.pbtxt")
    lines = [f"{info.name} ({where})",
             "  opsets: " + ", ".join(f"{domain} {version}" for domain, version in info.opsets.items()), "  inputs:"]
    lines += [_tensor_line(t, info.batching) for t in info.inputs]
    lines += ["  outputs:", *(_tensor_line(t, info.batching) for t in info.outputs)]
    lines.append("  implied config.pbtxt:")
    lines += [f"    {line}" for line in codec.dumps(info.implied_config).rstrip().splitlines()]
    if info.config_path is None:
        lines.append("  config.pbtxt: none present (Triton would auto-complete the implied one)")
    elif info.differences:
        lines.append(f"  differences from {info.config_path.name}:")
        lines += [f"    - {d}" for d in info.differences]
    else:
        lines.append(f"  {info.config_path.name}: matches the model")
    if info.shapes:
        lines.append("  perf_analyzer: " + " ".join(f"--shape {s}" for s in info.shape_flags())
                     + "  (profile adds these for the dynamic dimensions)")
    else:
        lines.append("  perf_analyzer: no --shape needed (no dynamic dimension besides the batch)")
    return lines


def describe_comparison(result: Comparison) -> list[str]:
    lines = [f"  compare: {result.describe()}"]
    if result.shapes:
        lines.append("    inputs fed: " + ", ".join(f"{k} {list(v)}" for k, v in result.shapes.items()))
    for out in result.outputs:
        lines.append(f"    {out.name}: max abs {out.max_abs:.3g}, max rel {out.max_rel:.3g}  "
                     f"{'ok' if out.passed else 'DISAGREES'}")
    return lines


def _properties(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--openvino-property {pair!r}: expected KEY=VALUE (e.g. INFERENCE_PRECISION_HINT=f32)")
        out[key.strip()] = value.strip()
    return out


@click.command("inspect")
@click.argument("model_or_repo", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=False, show_default=True, help="Print JSON instead of text.")
@click.option("--compare", "runtimes", default=None, show_default=True, metavar="RT1,RT2",
              help="Also run the model with two runtimes (onnxruntime, openvino) on the same random inputs and report "
              "each output's max abs/rel error; exit 1 when they disagree beyond --accuracy-tolerance.")
@click.option("--against", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="With --compare on one model: the second runtime runs this file instead (e.g. the model.xml "
              "`modelyzer convert` wrote).")
@click.option("--accuracy-tolerance", type=float, default=DEFAULT_TOLERANCE, show_default=True,
              help="An element disagrees when both its absolute and its relative error exceed this.")
@click.option("--dynamic-dimension-size", type=click.IntRange(min=1), default=DEFAULT_DYNAMIC_SIZE,
              show_default=True, help="The size --shape gives a dynamic non-batch dimension.")
@click.option("--openvino-property", "ov_properties", multiple=True, metavar="KEY=VALUE",
              help="An OpenVINO compile property for --compare (e.g. INFERENCE_PRECISION_HINT=bf16); repeatable.")
def inspect(model_or_repo: Path, as_json: bool, runtimes: str | None, against: Path | None,
            accuracy_tolerance: float, dynamic_dimension_size: int, ov_properties: tuple[str, ...]) -> None:
    """Show what is inside an ONNX model (an .onnx file, a model directory or a whole repository): inputs, outputs,
    dtypes, dynamic dimensions, opsets, the config.pbtxt it implies and how the present one differs, and the
    perf_analyzer --shape values profile uses for dynamic dimensions."""
    pair = parse_runtimes(runtimes) if runtimes else None
    properties = _properties(ov_properties)
    codec = assembly.codec()
    located: Located = locate(model_or_repo, codec)
    if against is not None and (pair is None or len(located.models) != 1):
        raise ConfigError("--against: needs --compare and a single model")
    infos = [inspect_model(location, codec, dynamic_dimension_size) for location in located.models]
    comparisons: dict[str, Comparison] = {}
    if pair is not None:
        for info in infos:
            comparisons[info.name] = compare_runtimes(
                info.onnx_path, pair, other_model=against, shapes=info.feed_shapes(dynamic_dimension_size),
                tolerance=accuracy_tolerance, openvino_properties=properties)
    if as_json:
        models = []
        for info in infos:
            entry = info.to_json()
            if info.name in comparisons:
                entry["compare"] = comparisons[info.name].to_json()
            models.append(entry)
        click.echo(json.dumps({"models": models, "skipped": list(located.skipped)}, indent=2))
    else:
        for i, info in enumerate(infos):
            if i:
                click.echo("")
            click.echo("\n".join(describe(info, codec)))
            if info.name in comparisons:
                click.echo("\n".join(describe_comparison(comparisons[info.name])))
        for name in located.skipped:
            click.echo(f"skipped {name}: no ONNX model file")
    failed = [name for name, c in comparisons.items() if not c.passed]
    if failed:
        raise AccuracyMismatch(f"outputs disagree beyond --accuracy-tolerance {accuracy_tolerance:g}: "
                               + ", ".join(failed))


@click.command("convert")
@click.argument("model_or_repo", type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Choice(["openvino"]), required=True,
              help="The format to convert into (openvino: OpenVINO IR model.xml + model.bin).")
@click.option("-o", "--output-repository", type=click.Path(path_type=Path, file_okay=False),
              default=Path("openvino_model_repository"), show_default=True,
              help="Model repository to write <name>/config.pbtxt and <name>/1/model.xml+bin into.")
@click.option("--name", default=None, help="Model name in the output repository (one model only; default: its own).")
@click.option("--compress-to-fp16", is_flag=True, default=False, show_default=True,
              help="Store the IR's weights as FP16 (smaller; OpenVINO's own default, off here to keep accuracy).")
@click.option("--overwrite", is_flag=True, default=False, show_default=True,
              help="Replace a model directory that already exists in the output repository.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare the IR's outputs (OpenVINO at f32 precision: the conversion, not the CPU's default "
              "precision) with the ONNX model's (ONNX Runtime) after converting.")
@click.option("--accuracy-tolerance", type=float, default=DEFAULT_TOLERANCE, show_default=True,
              help="Tolerance of --check (see inspect --compare).")
def convert(model_or_repo: Path, target: str, output_repository: Path, name: str | None, compress_to_fp16: bool,
            overwrite: bool, check: bool, accuracy_tolerance: float) -> None:
    """Convert ONNX models (an .onnx file, a model directory or a repository) into a model repository for Triton's
    OpenVINO backend, through openvino.convert_model and openvino.save_model."""
    codec = assembly.codec()
    located = locate(model_or_repo, codec)
    if name and len(located.models) > 1:
        raise ConfigError(f"--name: {model_or_repo} holds {len(located.models)} models; give --name for one model only")
    failed = []
    for location in located.models:
        info = inspect_model(location, codec, DEFAULT_DYNAMIC_SIZE)
        done = convert_to_openvino(info, output_repository, codec, name, compress_to_fp16, overwrite)
        click.echo(f"wrote {done.xml} (+ model.bin) and {done.config_path} from {done.source}")
        if check:
            result = compare_runtimes(info.onnx_path, ("onnxruntime", "openvino"), other_model=done.xml,
                                      shapes=info.feed_shapes(DEFAULT_DYNAMIC_SIZE), tolerance=accuracy_tolerance,
                                      openvino_properties=CHECK_PROPERTIES)
            click.echo(f"  check: {result.describe()}")
            if not result.passed:
                failed.append(done.name)
    for skipped in located.skipped:
        click.echo(f"skipped {skipped}: no ONNX model file")
    if failed:
        raise AccuracyMismatch(f"the IR of {', '.join(failed)} disagrees with the ONNX model beyond "
                               f"--accuracy-tolerance {accuracy_tolerance:g}")
