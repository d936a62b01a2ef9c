"""How a report page becomes files: the page values, the jinja2 templates, HTML and PDF output.

A `Page` names its template (under `templates/`, package data) and carries the values the template shows —
plain text, numbers, `Figure`s and `Table`s; jinja2 escapes every value (autoescape) except `Markup` built on
purpose. `render_html()` fills the template: one self-contained document (`page.html.j2`: CSS inline from
`report.css`, every image a base64 PNG data URI) made of the blocks in `blocks.html.j2`. `write_page()` writes
`<stem>.html` always and `<stem>.pdf` through pdfkit when `wkhtmltopdf` is on PATH — otherwise one hint line
per process.
"""

from __future__ import annotations

import base64
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import jinja2

log = logging.getLogger("modelyzer")

PDF_OPTIONS = {"quiet": "", "encoding": "UTF-8", "page-size": "A4", "margin-top": "12mm", "margin-bottom": "12mm",
               "margin-left": "10mm", "margin-right": "10mm"}

_hinted = False


@attrs.frozen
class Figure:
    """A plot (a PNG file, embedded in the page) and its caption."""

    png: Path
    caption: str


@attrs.frozen
class Table:
    """A data table: one header per column, rows of cells (shown as text)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[object]]


@attrs.frozen
class Page:
    """One report page: the template under `templates/`, its `<title>`/`<h1>`, and the template's values."""

    template: str
    title: str
    values: Mapping[str, Any] = attrs.field(factory=dict)


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("modelyzer.plugins.reporters", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["data_uri"] = data_uri
    return env


ENVIRONMENT = _environment()


def render_html(page: Page) -> str:
    """The page's HTML document."""
    return ENVIRONMENT.get_template(page.template).render(title=page.title, **page.values)


def pdf_available() -> bool:
    return shutil.which("wkhtmltopdf") is not None


def write_page(page: Page, stem: Path) -> list[Path]:
    """Write `<stem>.html`, and `<stem>.pdf` when wkhtmltopdf is installed; return the paths written."""
    global _hinted
    stem.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(page)
    html_path = stem.with_suffix(".html")
    html_path.write_text(text, encoding="utf-8")
    written = [html_path]
    if pdf_available():
        import pdfkit

        pdf_path = stem.with_suffix(".pdf")
        try:
            pdfkit.from_string(text, str(pdf_path), options=PDF_OPTIONS)
            written.append(pdf_path)
        except OSError as err:  # wkhtmltopdf failed: keep the HTML, say why in one line
            lines = str(err).strip().splitlines()
            log.warning("PDF report %s not written: %s", pdf_path, lines[-1] if lines else type(err).__name__)
    elif not _hinted:
        _hinted = True
        log.warning("wkhtmltopdf not found: reports written as HTML only (apt-get install wkhtmltopdf for PDFs)")
    return written
