"""The report's document model: blocks (headings, paragraphs, bullets, tables, figures) rendered to Markdown,
self-contained HTML and LaTeX tables.

A report is built once and rendered twice, so ``report.md`` and ``report.html`` never disagree and no
Markdown library is needed. Everything a trial DB can put into text (experiment names, genotypes, error
messages) is escaped here, once: HTML quotes included, links only to http(s) or relative paths
(:func:`safe_href`). The sections themselves are :mod:`analysis.report`'s.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Document:
    """Blocks of a report, rendered to Markdown or HTML."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("para", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def figure(self, path: str, alt: str, links: Sequence[tuple[str, str]] = ()) -> None:
        self.blocks.append(("figure", (path, alt, list(links))))

    # --------------------------------------------------------------------------------- rendering
    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                out += ["#" * value[0] + " " + value[1], ""]
            elif kind == "para":
                out += [value, ""]
            elif kind == "bullets":
                out += [f"- {item}" for item in value] + [""]
            elif kind == "table":
                out += [_markdown_table(value), ""]
            elif kind == "figure":
                path, alt, links = value
                out += [f"![{alt}]({path})", ""]
                if links:
                    out += [" · ".join(f"[{text}]({href})" for text, href in links), ""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        body = [f"<h1>{_inline(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                body.append(f"<h{value[0]}>{_inline(value[1])}</h{value[0]}>")
            elif kind == "para":
                body.append(f"<p>{_inline(value)}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in value) + "</ul>")
            elif kind == "table":
                body.append(_html_table(value))
            elif kind == "figure":
                path, alt, links = value
                link_html = " · ".join(_link(html.escape(t), html.escape(h)) for t, h in links)
                src = safe_href(path) or ""
                body.append(f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt)}">'
                            f"<figcaption>{_inline(alt)} {link_html}</figcaption></figure>")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n"
        )


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}th{background:#f3f3f3}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}figure{margin:1em 0}"
    "code{background:#f3f3f3;padding:0 0.2em}"
)


def safe_href(href: str) -> str | None:
    """``href`` if it is an http(s) URL or a relative path (the report's own files), else None.

    Text from a trial DB (experiment names, genotypes, notes) reaches the report: a ``javascript:`` or
    ``data:`` link written there must not become a clickable script in ``report.html``.
    """
    scheme = re.match(r"\s*([A-Za-z][A-Za-z0-9+.-]*):", href)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        return None
    return href


def _link(text_html: str, href: str) -> str:
    """An ``<a>`` for an allowed ``href`` (attribute-escaped), or the bare text for any other."""
    safe = safe_href(html.unescape(href))
    if safe is None:
        return text_html
    return f'<a href="{html.escape(safe, quote=True)}">{text_html}</a>'


def _inline(text: str) -> str:
    """Escape for HTML (quotes too: nothing from a DB can open an attribute), then render the Markdown
    inline subset the report uses: `code` and [text](href), links only to http(s) or relative paths."""
    escaped = html.escape(text, quote=True)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", lambda m: _link(m.group(1), m.group(2)), escaped)


def cell(value: Any) -> str:
    """Numbers of the statistics tables with two decimals (accuracies, RI), tiny p-values with 4 digits."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}" if (abs(value) < 1e-2 and value != 0) or abs(value) >= 1e6 else f"{value:.2f}"
    return str(value)


def listing(frame: pd.DataFrame) -> pd.DataFrame:
    """A table of identifiers and settings as text: ids stay ids (1000, not 1000.00), settings as written."""
    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, (float, np.floating)) and float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return str(value)
    return frame.astype(object).map(text) if hasattr(frame, "map") else frame.astype(object).applymap(text)


def _markdown_table(frame: pd.DataFrame) -> str:
    def esc(v: Any) -> str:
        return cell(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(esc(c) for c in frame.columns) + " |",
             "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_inline(cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_table(frame: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs ``table`` environment (no jinja2 needed, unlike ``DataFrame.to_latex``)."""
    def esc(value: Any) -> str:
        return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in cell(value))
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns)
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{esc(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(esc(c) for c in frame.columns) + r" \\",
              r"\midrule"]
    lines += [" & ".join(esc(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
