"""HTML templating and PDF output shared by the summary and detailed reports.

A `Page` collects blocks (headings, paragraphs, notices, figures, tables); `Page.render()` fills one
self-contained HTML template (CSS inline, every image a base64 PNG), and `write_page()` writes `<stem>.html`
always and `<stem>.pdf` through pdfkit when `wkhtmltopdf` is on PATH — otherwise one hint line per process.
The markup keeps to what wkhtmltopdf's old WebKit lays out well: tables for side-by-side figures, no flexbox.
"""

from __future__ import annotations

import base64
import html
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from string import Template

log = logging.getLogger("modelyzer")

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 13px; color: #222; margin: 0 12px; }
h1 { text-align: center; font-size: 24px; margin: 8px 0 4px 0; }
h2 { font-size: 17px; margin: 18px 0 6px 0; border-bottom: 1px solid #bbb; padding-bottom: 2px; }
h3 { font-size: 15px; margin: 6px 0; }
p { margin: 6px 0; line-height: 1.35; }
.notice { border: 2px solid #b36b00; background: #fff4e0; padding: 6px 10px; margin: 8px 0; }
.figure { text-align: center; page-break-inside: avoid; margin: 6px 0 10px 0; }
.figure img { width: 100%; }
.caption { font-weight: bold; font-size: 12px; padding-top: 2px; }
table.data { border-collapse: collapse; margin: 6px auto; font-size: 11px; page-break-inside: auto; }
table.data th, table.data td { border: 1px solid #444; padding: 3px 7px; text-align: center; }
table.data th { background: #e8e8e8; }
table.data tr { page-break-inside: avoid; }
table.figures { width: 100%; border-collapse: collapse; }
table.figures td { width: 50%; vertical-align: top; padding: 0 4px; }
.pagebreak { page-break-after: always; }
.small { font-size: 11px; color: #555; }
"""

TEMPLATE = Template("""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>$title</title><style>$style</style></head>
<body>
$body
</body></html>
""")

PDF_OPTIONS = {"quiet": "", "encoding": "UTF-8", "page-size": "A4", "margin-top": "12mm", "margin-bottom": "12mm",
               "margin-left": "10mm", "margin-right": "10mm"}

_hinted = False


def esc(text: object) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(text), quote=True)


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


class Page:
    """One report page (HTML document) built from blocks; text is escaped unless passed as `html_text`."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.blocks: list[str] = [f"<h1>{esc(title)}</h1>"]

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(f"<h{level}>{esc(text)}</h{level}>")

    def paragraph(self, text: str = "", html_text: str | None = None) -> None:
        self.blocks.append(f"<p>{html_text if html_text is not None else esc(text)}</p>")

    def notice(self, text: str) -> None:
        self.blocks.append(f'<div class="notice">{esc(text)}</div>')

    def bullets(self, items_html: Sequence[str]) -> None:
        self.blocks.append("<ul>" + "".join(f"<li>{item}</li>" for item in items_html) + "</ul>")

    @staticmethod
    def _figure(png: Path, caption: str) -> str:
        return (f'<div class="figure"><img src="{data_uri(png)}" alt="{esc(caption)}">'
                f'<div class="caption">{esc(caption)}</div></div>')

    def figure(self, png: Path, caption: str, width: str = "70%") -> None:
        self.blocks.append(f'<div style="width:{width}; margin: 0 auto;">{self._figure(png, caption)}</div>')

    def figure_grid(self, figures: Sequence[tuple[Path, str]], per_row: int = 2) -> None:
        """Figures side by side, `per_row` to a row (a table, which wkhtmltopdf lays out reliably)."""
        rows = []
        for i in range(0, len(figures), per_row):
            chunk = figures[i:i + per_row]
            cells = "".join(f"<td>{self._figure(p, c)}</td>" for p, c in chunk)
            cells += "<td></td>" * (per_row - len(chunk))  # keep every figure at the same size
            rows.append(f"<tr>{cells}</tr>")
        if rows:
            self.blocks.append('<table class="figures">' + "".join(rows) + "</table>")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]], css_class: str = "data") -> None:
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        self.blocks.append(f'<table class="{css_class}"><tr>{head}</tr>{body}</table>')

    def small(self, text: str) -> None:
        self.blocks.append(f'<p class="small">{esc(text)}</p>')

    def page_break(self) -> None:
        self.blocks.append('<div class="pagebreak"></div>')

    def render(self) -> str:
        return TEMPLATE.substitute(title=esc(self.title), style=STYLE, body="\n".join(self.blocks))


def pdf_available() -> bool:
    return shutil.which("wkhtmltopdf") is not None


def write_page(page: Page, stem: Path) -> list[Path]:
    """Write `<stem>.html`, and `<stem>.pdf` when wkhtmltopdf is installed; return the paths written."""
    global _hinted
    stem.parent.mkdir(parents=True, exist_ok=True)
    text = page.render()
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
