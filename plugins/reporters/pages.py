"""`PageReporter`: the base of the reporters that write HTML pages (and their PDFs) from the results store.

A page reporter says which pages it writes — `pages()` yields, for each, where it goes (a path under the export
path, without suffix) and the `render.Page` to render there — and which config option turns it off
(`skipped()`). The base owns the rest: `enabled()`, building nothing when skipped, and writing every page as
HTML and PDF (`render.write_page`), in the order yielded.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.interfaces import RankedConfig, Reporter, RunContext
from modelyzer.kernel.store import Store
from modelyzer.plugins.reporters import render


class PageReporter(Reporter):
    """Writes the pages `pages()` yields, unless `skipped()`; see the module docstring."""

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context

    @abc.abstractmethod
    def skipped(self) -> bool:
        """Whether the config turns these pages off (e.g. `skip_summary_reports`)."""

    @abc.abstractmethod
    def pages(self, store: Store, config: ProfileConfig, ranking: dict[str, list[RankedConfig]],
              export: Path) -> Iterator[tuple[Path, render.Page]]:
        """`(stem, page)` for every page to write; `export` is the resolved export path (plots go under it too)."""

    def enabled(self) -> bool:
        return not self.skipped()

    def write(self, store: Store, run_id: int, config: ProfileConfig,
              ranking: dict[str, list[RankedConfig]]) -> list[Path]:
        written: list[Path] = []
        for stem, page in self.pages(store, config, ranking, Path(config.export_path).resolve()):
            written += render.write_page(page, stem)
        return written
