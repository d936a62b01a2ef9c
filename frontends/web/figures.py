"""The dashboard's interactive plots, as Plotly figure JSON (plotly.py builds them; plotly.js draws them).

`frontier`: every successful measurement of a model, throughput against p99 latency, one trace per config
(its loads joined in order), the Pareto frontier over all of them (no other point has both more throughput
and less latency) and the constraint lines; hovering a point shows its config's knobs and its load.
`breakdown`: where a request's time goes for the top configs — client send/recv, server queue and compute,
stacked — or, when the load generator measured no such parts, their latency percentiles side by side.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go

from modelyzer.frontends.web.snapshot import Snapshot
from modelyzer.kernel import ranking
from modelyzer.kernel.models import Result
from modelyzer.plugins.reporters.data import PALETTE

X, Y = "perf_latency_p99", "perf_throughput"
BREAKDOWN = (("perf_client_send_recv", "Client send/recv"), ("perf_server_queue", "Server queue"),
             ("perf_server_compute_input", "Server compute input"), ("perf_server_compute_infer", "Server compute infer"),
             ("perf_server_compute_output", "Server compute output"))
PERCENTILES = (("perf_latency_avg", "avg"), ("perf_latency_p50", "p50"), ("perf_latency_p90", "p90"),
               ("perf_latency_p95", "p95"), ("perf_latency_p99", "p99"))
LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "hovermode": "closest", "template": "plotly_white",
          "legend": {"font": {"size": 11}}, "height": 460}


def to_json(fig: go.Figure) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(fig.to_json())
    return value


def _xy(result: Result) -> tuple[float, float] | None:
    v = ranking.measurement_values(result.measurement)
    return (v[X], v[Y]) if result.measurement.ok and X in v and Y in v else None


def short(name: str, model: str) -> str:
    """A config's name without its model's prefix (`config_3`), for legends and axes."""
    return name.removeprefix(f"{model}_") or name


def load_order(result: Result) -> tuple[int, int, str]:
    load = result.run_config.load
    return load.batch_size, load.value if isinstance(load.value, int) else 0, load.describe()


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (lower latency x, higher throughput y), by latency."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def frontier(snapshot: Snapshot, model: str) -> dict[str, Any]:
    spec = snapshot.spec(model)
    fig = go.Figure()
    everything: list[tuple[float, float]] = []
    for i, rc in enumerate(snapshot.ranked(model)):
        points = sorted(((xy, r) for r in rc.results if (xy := _xy(r)) is not None), key=lambda p: load_order(p[1]))
        if not points:
            continue
        everything += [xy for xy, _ in points]
        variant = rc.best.run_config.variant
        knobs = (f"instances {variant.instance_group_str(spec.cpu_only)}, max batch {variant.max_batch_size}, "
                 f"dynamic batching {'on' if variant.dynamic_batching else 'off'}")
        fig.add_trace(go.Scatter(
            x=[xy[0] for xy, _ in points], y=[xy[1] for xy, _ in points], mode="lines+markers",
            name=short(rc.variant_name, model),
            marker={"size": 9, "color": PALETTE[i % len(PALETTE)]}, line={"width": 1},
            customdata=[[rc.variant_name, knobs, r.run_config.load.describe(),
                         "met" if ranking.passes(spec.constraints, ranking.measurement_values(r.measurement))
                         else "NOT met"] for _, r in points],
            hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>load: %{customdata[2]}<br>"
                           "throughput %{y:.1f} infer/s, p99 %{x:.2f} ms<br>constraints %{customdata[3]}"
                           "<extra></extra>"),
        ))
    front = pareto(everything)
    if front:
        fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="frontier",
                                 line={"color": "#444", "dash": "dot", "width": 2}, hoverinfo="skip"))
    for c in spec.constraints:
        tag = ranking.ALIASES.get(c.tag, c.tag)
        if tag == X and c.max is not None:
            fig.add_vline(x=c.max, line={"color": "#d62728", "dash": "dash"}, annotation_text=f"p99 ≤ {c.max:g} ms")
        if tag == Y and c.min is not None:
            fig.add_hline(y=c.min, line={"color": "#d62728", "dash": "dash"},
                          annotation_text=f"throughput ≥ {c.min:g}")
    fig.update_layout(**LAYOUT, title="Throughput vs p99 latency", xaxis_title="p99 latency (ms)",
                      yaxis_title="throughput (infer/s)")
    return to_json(fig)


def breakdown(snapshot: Snapshot, model: str, top: int = 10) -> dict[str, Any]:
    ranked = snapshot.ranked(model)[:top]
    names = [short(rc.variant_name, model) for rc in ranked]
    values = [ranking.measurement_values(rc.best.measurement) for rc in ranked]
    fig = go.Figure()
    parts = [(tag, name) for tag, name in BREAKDOWN if any(tag in v for v in values)]
    if parts:
        for tag, name in parts:
            fig.add_trace(go.Bar(x=names, y=[v.get(tag, 0.0) for v in values], name=name))
        fig.update_layout(**LAYOUT, barmode="stack", title="Latency breakdown (best measurement of the top configs)",
                          yaxis_title="ms")
    else:
        for tag, name in PERCENTILES:
            if any(tag in v for v in values):
                fig.add_trace(go.Bar(x=names, y=[v.get(tag) for v in values], name=name))
        fig.update_layout(**LAYOUT, barmode="group", yaxis_title="ms",
                          title="Latency percentiles (best measurement of the top configs; no breakdown measured)")
    return to_json(fig)
