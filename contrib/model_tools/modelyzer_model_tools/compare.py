"""ONNX Runtime vs OpenVINO on the same random inputs, through Polygraphy's Comparator.

ONNX Runtime runs through Polygraphy's own runner (`polygraphy.backend.onnxrt`); Polygraphy has no OpenVINO
runner, so `OpenVinoRunner` is a small `polygraphy.backend.base.BaseRunner` over the `openvino` runtime (it reads
an .onnx file or an OpenVINO IR .xml, and takes compile properties such as `INFERENCE_PRECISION_HINT`). Inputs come
from Polygraphy's seeded `DataLoader`; outputs are compared with its `SimpleCompareFunc` with rtol = atol =
tolerance: an element disagrees when both its absolute and its relative error exceed the tolerance.

For other plugins (e.g. an OpenVINO variant of the MLServer launcher), the call is:

    from modelyzer_model_tools.compare import accuracy_check
    result = accuracy_check(onnx_path, tolerance=config.settings(ModelToolsSettings).accuracy_tolerance,
                            openvino_properties={"INFERENCE_PRECISION_HINT": "bf16"})
    if not result.passed: ...  # do not rank the variant; result.describe() says why, in one line
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel import assembly
from modelyzer.kernel.errors import ConfigError
from modelyzer_model_tools.inspection import inspect_model
from modelyzer_model_tools.locate import locate
from modelyzer_model_tools.runtime import openvino, quiet_polygraphy, require
from modelyzer_model_tools.settings import DEFAULT_DYNAMIC_SIZE, DEFAULT_TOLERANCE

RUNTIMES = ("onnxruntime", "openvino")


@attrs.frozen
class OutputError:
    """The largest disagreement on one output, over every compared iteration."""

    name: str
    max_abs: float
    max_rel: float
    passed: bool


@attrs.frozen
class Comparison:
    """The result of running two runtimes on the same inputs."""

    runtimes: tuple[str, str]
    tolerance: float
    outputs: tuple[OutputError, ...]
    #: the input shapes fed (dynamic dimensions filled in)
    shapes: dict[str, tuple[int, ...]]
    #: the inference precision OpenVINO compiled each of its runners with (e.g. bf16 on CPUs that have it)
    precisions: dict[str, str] = attrs.field(factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.outputs) and all(o.passed for o in self.outputs)

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((o.max_rel for o in self.outputs), default=0.0)

    def describe(self) -> str:
        """One line: pass/fail, the runtimes, the worst errors and the output they are on."""
        worst = max(self.outputs, key=lambda o: (not o.passed, o.max_rel), default=None)
        where = f" (worst: {worst.name})" if worst is not None else ""
        verdict = "agree within" if self.passed else "DISAGREE beyond"
        first, second = (f"{r} ({self.precisions[r]})" if r in self.precisions else r for r in self.runtimes)
        return (f"{first} vs {second}: outputs {verdict} tolerance {self.tolerance:g}; "
                f"max abs error {self.max_abs:.3g}, max rel error {self.max_rel:.3g}{where}")

    def to_json(self) -> dict[str, Any]:
        return {"runtimes": list(self.runtimes), "tolerance": self.tolerance, "passed": self.passed,
                "precisions": self.precisions,
                "shapes": {k: list(v) for k, v in self.shapes.items()},
                "outputs": [attrs.asdict(o) for o in self.outputs]}


def _base_runner() -> type:
    quiet_polygraphy()
    return require("polygraphy.backend.base", "polygraphy", "comparing runtimes").BaseRunner  # type: ignore[no-any-return]


def openvino_runner(path: Path, properties: Mapping[str, Any] | None = None, name: str = "openvino") -> Any:
    """A Polygraphy runner that compiles `path` (.onnx or IR .xml) with OpenVINO on the CPU."""
    ov = openvino()
    base = _base_runner()
    common = require("polygraphy.common", "polygraphy", "comparing runtimes")
    datatype = require("polygraphy.datatype", "polygraphy", "comparing runtimes").DataType
    np = require("numpy", "numpy", "comparing runtimes")

    class OpenVinoRunner(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(name=name, prefix="openvino-runner")
            self.compiled: Any = None
            self.precision = ""

        def activate_impl(self) -> None:
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(path)), "CPU", dict(properties or {}))
            self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()

        def get_input_metadata_impl(self) -> Any:
            meta = common.TensorMetadata()
            for port in self.compiled.inputs:
                shape = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
                meta.add(port.get_any_name(), dtype=datatype.from_dtype(port.get_element_type().to_dtype(), "numpy"),
                         shape=shape)
            return meta

        def infer_impl(self, feed_dict: Mapping[str, Any]) -> OrderedDict[str, Any]:
            start = time.perf_counter()
            results = self.compiled(dict(feed_dict))
            self.inference_time = time.perf_counter() - start
            return OrderedDict((port.get_any_name(), np.asarray(results[port])) for port in self.compiled.outputs)

        def deactivate_impl(self) -> None:
            self.compiled = None

    return OpenVinoRunner()


def onnxruntime_runner(path: Path, name: str = "onnxruntime") -> Any:
    """Polygraphy's ONNX Runtime runner (CPU execution provider) over `path`."""
    quiet_polygraphy()
    require("onnxruntime", "onnxruntime", "comparing runtimes")
    onnxrt = require("polygraphy.backend.onnxrt", "polygraphy", "comparing runtimes")
    return onnxrt.OnnxrtRunner(onnxrt.SessionFromOnnx(str(path), providers=["cpu"]), name=name)


def make_runner(runtime: str, path: Path, openvino_properties: Mapping[str, Any] | None = None,
                name: str | None = None) -> Any:
    if runtime == "onnxruntime":
        if path.suffix.lower() != ".onnx":
            raise ConfigError(f"{path}: onnxruntime runs .onnx files only; compare an OpenVINO IR with --compare "
                              "openvino,openvino or against the .onnx it came from")
        return onnxruntime_runner(path, name or runtime)
    if runtime == "openvino":
        return openvino_runner(path, openvino_properties, name or runtime)
    raise ConfigError(f"--compare: unknown runtime {runtime!r}; use two of {', '.join(RUNTIMES)} (e.g. "
                      "onnxruntime,openvino)")


def parse_runtimes(text: str) -> tuple[str, str]:
    """`onnxruntime,openvino` → ("onnxruntime", "openvino"); anything else is one line naming the choices."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if len(names) != 2 or any(n not in RUNTIMES for n in names):
        raise ConfigError(f"--compare {text!r}: give two runtimes of {', '.join(RUNTIMES)} separated by a comma "
                          "(e.g. --compare onnxruntime,openvino)")
    return names[0], names[1]


def compare_runtimes(
    model: Path,
    runtimes: Sequence[str] = RUNTIMES,
    *,
    other_model: Path | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    openvino_properties: Mapping[str, Any] | None = None,
    iterations: int = 1,
    seed: int = 1,
) -> Comparison:
    """Run `model` with runtimes[0] and `other_model` (default: the same model) with runtimes[1] on the same seeded
    random inputs of `shapes` (every input with a dynamic dimension must be given; `inspect` computes them) and
    compare each output. Raises MissingRuntime (one line) when polygraphy or a runtime is missing."""
    first, second = runtimes
    names = (first, second if second != first else f"{second}-2")
    runners = [make_runner(first, model, openvino_properties, names[0]),
               make_runner(second, other_model or model, openvino_properties, names[1])]
    comparator = require("polygraphy.comparator", "polygraphy", "comparing runtimes")
    common = require("polygraphy.common", "polygraphy", "comparing runtimes")
    meta = common.TensorMetadata()
    for name, dims in (shapes or {}).items():
        meta.add(name, None, tuple(int(d) for d in dims))
    loader = comparator.DataLoader(input_metadata=meta if shapes else None, seed=seed, iterations=iterations)
    results = comparator.Comparator.run(runners, data_loader=loader)
    accuracy = comparator.Comparator.compare_accuracy(
        results, compare_func=comparator.SimpleCompareFunc(rtol=tolerance, atol=tolerance))
    worst: dict[str, OutputError] = {}
    for result in accuracy:
        for iteration_results in result.values():
            for outputs in iteration_results:
                for out, res in outputs.items():
                    prev = worst.get(out)
                    abs_err, rel_err = float(res.max_absdiff), float(res.max_reldiff)
                    if prev is not None:
                        abs_err, rel_err = max(abs_err, prev.max_abs), max(rel_err, prev.max_rel)
                    worst[out] = OutputError(out, abs_err, rel_err, bool(res) and (prev is None or prev.passed))
    fed = {k: tuple(int(d) for d in v) for k, v in (shapes or {}).items()}
    precisions = {r.name: r.precision for r in runners if getattr(r, "precision", "")}
    return Comparison((names[0], names[1]), tolerance, tuple(worst.values()), fed, precisions)


def accuracy_check(
    model: Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    openvino_properties: Mapping[str, Any] | None = None,
    openvino_model: Path | None = None,
    dynamic_size: int = DEFAULT_DYNAMIC_SIZE,
) -> Comparison:
    """Whether OpenVINO (with `openvino_properties`, on `openvino_model` — e.g. a converted IR — or on the ONNX
    file itself) reproduces ONNX Runtime's outputs of `model` (an .onnx file or a model directory) within
    `tolerance`: the call another plugin makes before ranking an OpenVINO variant. Inputs have the shapes
    perf_analyzer would send (batch 1, `inspect`'s --shape values)."""
    codec = assembly.codec(model_dirs=[model] if model.is_dir() else [])
    located = locate(model, codec)
    if len(located.models) != 1:
        raise ConfigError(f"{model}: holds {len(located.models)} models; check one model directory at a time")
    info = inspect_model(located.models[0], codec, dynamic_size)
    return compare_runtimes(info.onnx_path, RUNTIMES, other_model=openvino_model,
                            shapes=info.feed_shapes(dynamic_size), tolerance=tolerance,
                            openvino_properties=openvino_properties)
