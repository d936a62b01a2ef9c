"""The `summary` reporter: headline sentence and table checked against the store, PDF pages rendered and looked at.

Also home of the synthetic results store and the PDF helpers the other report tests import: a model `m` with a
default config and three variants measured at concurrency 1, 2, 4, 8 (numbers chosen so the ranking and the gain
are known by hand), one failed measurement, GPU or CPU-only metrics.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from PIL import Image

from modelyzer.kernel import registry
from modelyzer.kernel.config import ProfileConfig, config_from_dict
from modelyzer.kernel.models import ConfigVariant, LoadSpec, Measurement, Metric, RunConfig
from modelyzer.kernel.profile import Profile, make_context
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters import render as report_render
from modelyzer.plugins.reporters import summary as summary_report
from modelyzer.plugins.reporters.data import model_data

BASE = {"name": "m", "platform": "onnxruntime_onnx", "max_batch_size": 8,
        "instance_group": [{"count": 1, "kind": "KIND_GPU"}], "_cpu_only": False}
# variant name → (instance count, max batch size, dynamic batching, [(throughput, p99) at concurrency 1, 2, 4, 8])
DATA: dict[str, tuple[int, int, bool, list[tuple[float, float]]]] = {
    "m_config_default": (1, 8, False, [(100, 5), (150, 10), (180, 18), (190, 30)]),
    "m_config_0": (2, 4, True, [(150, 4), (260, 8), (300, 15), (310, 25)]),
    "m_config_1": (1, 2, True, [(120, 5), (200, 9), (230, 19), (235, 28)]),
    "m_config_2": (3, 8, True, [(90, 6), (140, 12), (160, 22), (165, 35)]),
}
CONCURRENCY = (1, 2, 4, 8)
ERROR = "perf_analyzer: failed to get model config\nsecond line"
GAIN = round((300 - 180) / 180 * 100)  # best (m_config_0 @4) vs the default's best passing (@4, p99 18 ≤ 20)


def variant_config(kind: str, count: int, mbs: int, dyn: bool) -> dict[str, Any]:
    config = {**BASE, "max_batch_size": mbs, "instance_group": [{"count": count, "kind": kind}]}
    if dyn:
        config["dynamic_batching"] = {}
    return config


def build_store(path: Path, gpu: bool = True, status: str = "finished", config: ProfileConfig | None = None,
                ci: float | None = None) -> Store:
    """The synthetic results DB (see the module docstring); `ci`: every throughput measured to ±`ci` %."""
    store = Store(path)
    cfg = config or make_config(path.parent, gpu=gpu)
    run_id = store.start_run(cfg.to_dict())
    kind = "KIND_GPU" if gpu else "KIND_CPU"
    spec = cfg.models[0]
    store.upsert_model("m", variant_config(kind, 1, 8, False), attrs.asdict(spec))
    if gpu:
        store.record_gpu("GPU-a", "Tesla T4", 15360 * 2**20)
        store.record_gpu("GPU-b", "Tesla T4", 15360 * 2**20)
    for name, (count, mbs, dyn, points) in DATA.items():
        is_default = name.endswith("default")
        params = {} if is_default else {"instance_group": [{"count": count, "kind": kind}], "max_batch_size": mbs}
        variant = store.name_variant(ConfigVariant("m", variant_config(kind, count, mbs, dyn), params, is_default))
        assert variant.name == name
        for conc, (tput, p99) in zip(CONCURRENCY, points, strict=True):
            rc = RunConfig("m", variant, LoadSpec(concurrency=conc))
            metrics = [Metric("perf_throughput", tput), Metric("perf_latency_p99", p99),
                       Metric("perf_latency_avg", p99 * 0.6), Metric("perf_client_send_recv", 0.1),
                       Metric("perf_client_response_wait", p99 * 0.5), Metric("perf_server_queue", conc * 0.8),
                       Metric("perf_server_compute_input", 0.3), Metric("perf_server_compute_infer", 1.2),
                       Metric("perf_server_compute_output", 0.2)]
            if gpu:
                for uuid in ("GPU-a", "GPU-b"):
                    metrics += [Metric("gpu_used_memory", 400.0 + 100 * count, uuid),
                                Metric("gpu_utilization", 10.0 * conc, uuid), Metric("gpu_power_usage", 40.0 + conc, uuid)]
            else:
                metrics.append(Metric("cpu_used_ram", 500.0 + 50 * count))
            if ci is not None:
                metrics.append(Metric("perf_throughput_ci", ci))
            store.record(run_id, rc, Measurement(rc.key, metrics=tuple(metrics), window_seconds=2.0, host="localhost"))
        if name == "m_config_2":
            rc = RunConfig("m", variant, LoadSpec(concurrency=16))
            store.record(run_id, rc, Measurement(rc.key, status="failed", error=ERROR))
    store.update_run(run_id, status=status, measured=17, failed=1, wall_seconds=95.0, window_seconds=32.0,
                     server_starts=2, model_loads=4)
    return store


def make_config(export: Path, gpu: bool = True, **values: Any) -> ProfileConfig:
    model: dict[str, Any] = {"constraints": {"perf_latency_p99": {"max": 20}}}
    if not gpu:
        model["cpu_only"] = True
    return config_from_dict({"profile_models": {"m": model}, "export_path": str(export), **values}, check_paths=False)


def write(store: Store, config: ProfileConfig, name: str) -> list[Path]:
    reporter = registry.get("reporters", name).factory(config, make_context(config))
    return list(reporter.write(store, 1, config, Profile(config, store=store).rank()))


# ---- PDF helpers --------------------------------------------------------------------------------------------------

needs_pdf = pytest.mark.skipif(not (shutil.which("wkhtmltopdf") and shutil.which("pdftoppm") and shutil.which("pdftohtml")),
                               reason="wkhtmltopdf/poppler-utils missing; run .ci/setup")


@pytest.fixture(autouse=True)
def html_only(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTML only (fast) except in the tests of rendered PDF pages (named `test_*_pdf_pages*`)."""
    if "_pdf_pages" not in request.node.name:
        monkeypatch.setattr(report_render, "pdf_available", lambda: False)


def render_pages(pdf: Path, out: Path, dpi: int = 60) -> list[Path]:
    """The PDF's pages as PNGs (pdftoppm)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(out / "page")], check=True)
    return sorted(out.glob("page-*.png"))


def image_boxes(pdf: Path, out: Path) -> dict[int, list[tuple[float, float, float, float]]]:
    """Where the PDF draws its images, per page, as fractions of the page (left, top, right, bottom)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftohtml", "-xml", "-q", str(pdf), str(out / "layout")], check=True)
    root = ET.parse(out / "layout.xml").getroot()
    boxes: dict[int, list[tuple[float, float, float, float]]] = {}
    for page in root.iter("page"):
        w, h = float(page.get("width", 1)), float(page.get("height", 1))
        for img in page.iter("image"):
            left, top = float(img.get("left", 0)), float(img.get("top", 0))
            right, bottom = left + float(img.get("width", 0)), top + float(img.get("height", 0))
            boxes.setdefault(int(page.get("number", 0)), []).append((left / w, top / h, right / w, bottom / h))
    return boxes


def area_stats(png: Path, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """(pixel standard deviation, fraction of coloured pixels) inside `box` of a rendered page."""
    img = np.asarray(Image.open(png).convert("RGB")).astype(float)
    h, w = img.shape[:2]
    left, top, right, bottom = box
    crop = img[int(top * h):int(bottom * h), int(left * w):int(right * w)]
    saturation = crop.max(axis=2) - crop.min(axis=2)
    return float(crop.std()), float((saturation > 60).mean())


def check_pdf(pdf: Path, tmp: Path, pages: int, images: int) -> None:
    """Page count, image count, and every plot area on the rendered pages drawn (not blank, with colour)."""
    rendered = render_pages(pdf, tmp / "pages")
    assert len(rendered) == pages
    boxes = image_boxes(pdf, tmp / "layout")
    assert sum(len(b) for b in boxes.values()) == images
    for number, page_boxes in boxes.items():
        for box in page_boxes:
            std, coloured = area_stats(rendered[number - 1], box)
            assert std > 20, f"page {number}: blank plot area {box}"
            assert coloured > 0.002, f"page {number}: plot area {box} has no data lines"


def html_text(path: Path) -> str:
    text = re.sub(r"<[^>]+>", "", path.read_text())
    return re.sub(r"\s+", " ", text)


# ---- tests --------------------------------------------------------------------------------------------------------


@pytest.fixture
def gpu_store(tmp_path: Path) -> Store:
    return build_store(tmp_path / "results.db")


def test_reporters_are_registered() -> None:
    assert {"summary", "detailed", "best_config", "csv"} <= set(registry.registry("reporters"))


def test_headline_counts_and_gain_come_from_the_store(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data = model_data(gpu_store, config, config.models[0])
    ok = gpu_store.db.execute("select count(*) from measurements where status = 'ok'").fetchone()[0]
    configs = gpu_store.db.execute(
        "select count(distinct rc.variant) from measurements m join run_configs rc on rc.key = m.run_config_key "
        "where m.status = 'ok'").fetchone()[0]
    sentence = summary_report.headline(data)
    assert sentence == (f"In {ok} measurements across {configs} configurations, m_config_0 is {GAIN}% better than the "
                        "default configuration at maximizing throughput, under the given constraints, on GPU(s) "
                        "2 x Tesla T4.")
    assert (ok, configs, GAIN) == (16, 4, 67)


def test_summary_html_content(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    paths = write(gpu_store, config, "summary")
    html = tmp_path / "reports" / "summaries" / "m" / "result_summary.html"
    assert html in paths
    text = html_text(html)
    for expected in ("Online Result Summary", "Model: m", "GPU(s): 2 x Tesla T4", "Total Available GPU Memory: 30.0 GB",
                     "Constraint targets: Max p99 Latency: 20 ms", "Objectives: Throughput (infer/sec)",
                     "m_config_0: 2 GPU instances with a max batch size of 4 on platform onnxruntime_onnx",
                     "out of a total of 4 are shown", "Search statistics", "brute", "1m35s",
                     "Failed measurements", "perf_analyzer: failed to get model config"):
        assert expected in text, expected
    assert "second line" not in text  # one line of the reason
    raw = html.read_text()
    assert re.findall(r'src="([^"]+)"', raw) and all(s.startswith("data:image/png;base64,")
                                                      for s in re.findall(r'src="([^"]+)"', raw))
    for plot in ("throughput_v_latency", "gpu_mem_v_latency"):
        assert (tmp_path / "plots" / "simple" / "m" / f"{plot}.png").is_file()


def test_table_rows_match_the_store(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    data = model_data(gpu_store, config, config.models[0], Profile(config, store=gpu_store).rank()["m"])
    headers, rows = summary_report.table(data)
    assert headers[:4] == ["Model Config Name", "Max Batch Size", "Dynamic Batching", "Total Instance Count"]
    assert [r[0] for r in rows] == ["m_config_0", "m_config_1", "m_config_default"]
    col = {h: i for i, h in enumerate(headers)}
    for row in rows:
        conc = row[col["Request Concurrency"]]
        stored = dict(gpu_store.db.execute(
            "select mv.tag, sum(mv.value) from metric_values mv join measurements m on m.id = mv.measurement_id "
            "join run_configs rc on rc.key = m.run_config_key where rc.variant = ? and rc.load like ? group by mv.tag",
            [row[0], f'%"concurrency":{conc},%']).fetchall())
        assert float(row[col["Throughput (infer/sec)"]]) == pytest.approx(stored["perf_throughput"])
        assert float(row[col["p99 Latency (ms)"]]) == pytest.approx(stored["perf_latency_p99"])
        assert row[col["Max GPU Memory Usage (MB)"]] == int(stored["gpu_used_memory"])  # summed over GPUs
        assert row[col["Satisfies Constraints"]] == "Yes"
    assert [r[col["Request Concurrency"]] for r in rows] == [4, 4, 4]


def test_cpu_only_summary_names_the_cpu_and_ram(tmp_path: Path) -> None:
    store = build_store(tmp_path / "results.db", gpu=False)
    config = make_config(tmp_path, gpu=False)
    write(store, config, "summary")
    text = html_text(tmp_path / "reports" / "summaries" / "m" / "result_summary.html")
    assert "CPU: " in text and "Total Available RAM: " in text and "GPU(s)" not in text
    assert "on CPU " in text and "Max CPU Memory Usage (MB)" in text and "GPU Memory" not in text
    assert (tmp_path / "plots" / "simple" / "m" / "cpu_mem_v_latency.png").is_file()


def test_remote_server_without_gpu_metrics_is_not_described_by_this_host(tmp_path: Path) -> None:
    config = make_config(tmp_path, gpu=False, triton_launch_mode="remote", triton_grpc_endpoint="10.0.0.5:8001")
    store = build_store(tmp_path / "results.db", gpu=False, config=config)
    write(store, config, "summary")
    text = html_text(tmp_path / "reports" / "summaries" / "m" / "result_summary.html")
    assert "Server: 10.0.0.5:8001 (remote" in text and "CPU:" not in text
    assert "under the given constraints, on the remote server 10.0.0.5:8001." in text


def test_interrupted_profile_is_reported_as_such(tmp_path: Path) -> None:
    store = build_store(tmp_path / "results.db", status="interrupted")
    config = make_config(tmp_path)
    write(store, config, "summary")
    text = html_text(tmp_path / "reports" / "summaries" / "m" / "result_summary.html")
    assert "was interrupted: this report covers the measurements stored" in text
    assert "In 16 measurements across 4 configurations" in text


def test_skip_summary_reports(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path, skip_summary_reports=True, skip_detailed_reports=True)
    paths = Profile(config, store=gpu_store).write_reports(1, Profile(config, store=gpu_store).rank())
    assert not (tmp_path / "reports").exists()
    assert {p.name for p in paths} >= {"best_config.json", "config.pbtxt"}


def test_no_measurement_yet(tmp_path: Path) -> None:
    store = Store(tmp_path / "results.db")
    config = make_config(tmp_path)
    store.start_run(config.to_dict())
    write(store, config, "summary")
    assert "No successful measurement of m is stored yet." in html_text(
        tmp_path / "reports" / "summaries" / "m" / "result_summary.html")


def test_without_wkhtmltopdf_html_only_and_one_hint_line(gpu_store: Store, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(report_render, "_hinted", False)
    config = make_config(tmp_path)
    with caplog.at_level(logging.WARNING, logger="modelyzer"):
        paths = write(gpu_store, config, "summary") + write(gpu_store, config, "detailed")
    assert paths and all(p.suffix == ".html" for p in paths)
    hints = [r.getMessage() for r in caplog.records if "wkhtmltopdf" in r.getMessage()]
    assert hints == ["wkhtmltopdf not found: reports written as HTML only (apt-get install wkhtmltopdf for PDFs)"]


@needs_pdf
def test_summary_pdf_pages_and_plots(gpu_store: Store, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    paths = write(gpu_store, config, "summary")
    pdf = tmp_path / "reports" / "summaries" / "m" / "result_summary.pdf"
    assert pdf in paths
    check_pdf(pdf, tmp_path / "check", pages=2, images=2)


# ---- Model Analyzer's own summaries of its checkpoints ---------------------------------------------------------

ORACLES = Path(__file__).resolve().parents[3].parent / "shared" / "oracles" / "ma-checkpoints"


def _importer() -> Any:
    try:
        from modelyzer.plugins.importers import ma_checkpoint
    except ImportError:
        return None
    return getattr(ma_checkpoint, "import_checkpoint", None)


@pytest.mark.parametrize("name", ["single-model-ckpt", "request-rate-ckpt"])
def test_summary_matches_model_analyzer(name: str, tmp_path: Path) -> None:
    expected_path = ORACLES / name / "ma-summary" / "summary.json"
    if not expected_path.is_file():
        pytest.skip(f"oracle {expected_path} absent")
    import_checkpoint = _importer()
    if import_checkpoint is None:
        pytest.skip("modelyzer.plugins.importers.ma_checkpoint (checkpoint import) not available yet")
    expected = json.loads(expected_path.read_text())["reports"]["add_sub"]
    store = Store(tmp_path / "results.db")
    import_checkpoint(ORACLES / name / "0.ckpt", store)
    config = config_from_dict({"profile_models": "add_sub", "export_path": str(tmp_path)}, check_paths=False)
    data = model_data(store, config, config.models[0], Profile(config, store=store).rank()["add_sub"])
    sentence = summary_report.headline(data)
    counts = re.match(r"In (\d+) measurements across (\d+) configurations, (\S+) ", sentence)
    assert counts is not None, sentence
    assert int(counts[1]) == expected["num_measurements_N"]
    assert int(counts[2]) == expected["num_configurations_M"]
    assert counts[3] == expected["best_config"]
    assert "provides no gain over the default configuration" in expected["summary_sentence"]
    assert "provides no gain over the default configuration" in sentence
    assert data.hardware.phrase == f"GPU(s) {expected['gpu_names']}"
    assert data.hardware.memory_text == expected["total_gpu_memory"]
    assert [r[0] for r in summary_report.table(data)[1]] == [row[0] for row in expected["table_rows"]]


def test_statistically_tied_leaders_are_named_and_the_cheapest_is_chosen(tmp_path: Path) -> None:
    """Throughputs measured to ±15%: m_config_0 (2 instances, 300/s) and m_config_1 (1 instance, 230/s) cannot be
    told apart, so m_config_1 leads by the tie-break rule; the headline and the table say so."""
    store = build_store(tmp_path / "results.db", ci=15.0)
    config = make_config(tmp_path)
    data = model_data(store, config, config.models[0])
    assert data.tie is not None and data.tie.names == ("m_config_1", "m_config_0") and data.tie.within == 15.0
    text = summary_report.headline(data)
    assert text.startswith("In 16 measurements across 4 configurations, m_config_1 ")
    assert ("cannot tell m_config_1, m_config_0 apart: they are statistically tied within ±15.0% (95% confidence), "
            "and m_config_1 is chosen by the tie-break rule: fewer instances") in text
    headers, rows = summary_report.table(data)
    assert headers[-1] == "Statistically Tied"
    assert [(r[0], r[-1]) for r in rows][:2] == [("m_config_1", "±15.0%"), ("m_config_0", "±15.0%")]
    assert all(r[-1] == "" for r in rows[2:])
    assert model_data(build_store(tmp_path / "plain.db"), config, config.models[0]).tie is None


def test_a_report_says_when_the_latest_profile_did_not_finish() -> None:
    from modelyzer.plugins.reporters.data import RunInfo, unfinished_note

    def info(status: str) -> RunInfo:
        return RunInfo(id=3, status=status, strategy="quick", launch_mode="local", server="", measured=1, skipped=0,
                       failed=0, wall_seconds=1.0, window_seconds=1.0, server_starts=1, model_loads=1, started_at=0.0)

    assert unfinished_note([]) is None and unfinished_note([info("finished")]) is None
    assert "run 3) was killed" in (unfinished_note([info("killed")]) or "")
    assert "was interrupted" in (unfinished_note([info("interrupted")]) or "")
    assert "did not finish" in (unfinished_note([info("running")]) or "")
