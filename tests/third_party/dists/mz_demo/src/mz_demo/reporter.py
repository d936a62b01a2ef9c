"""The `markdown` reporter: `<export_path>/reports/ranking.md`, one table per model, in the ranker's order.

It runs at the end of `profile` and of `report` (its `commands`), unless the summary reports are skipped
(`enabled()`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RankedConfig, Reporter, RunContext
from modelyzer.kernel.store import Store

FILENAME = "ranking.md"


class MarkdownReporter(Reporter):
    commands = frozenset({"profile", "report"})

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context

    def enabled(self) -> bool:
        return not self.config.skip_summary_reports  # a summary, so it is skipped with the summaries

    def write(self, store: Store, run_id: int, config: ProfileConfig,
              ranking: dict[str, list[RankedConfig]]) -> list[Path]:
        lines = [f"# Ranking of run {run_id} ({config.ranker})", ""]
        for model, ranked in ranking.items():
            lines += [f"## {model}", "", "| rank | config | load | infer/s | p99 ms |", "|---|---|---|---|---|"]
            for i, entry in enumerate(ranked, 1):
                values = entry.best.measurement.values()
                lines.append(f"| {i} | {entry.variant_name} | {entry.best.run_config.load.describe()} | "
                             f"{values.get('perf_throughput', 0):.1f} | {values.get('perf_latency_p99', 0):.2f} |")
            lines.append("")
        path = self.context.export_path / "reports" / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")
        return [path]


@hookimpl
def register_reporters(register: Any) -> None:
    register("markdown", MarkdownReporter)
