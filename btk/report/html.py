"""The HTML page frame shared by the exam and cohort reports: self-contained, no scripts, no network."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from btk.io import atomic_path

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 75em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.alarm td, .failed { color: #b00020; font-weight: 600; } img { max-width: 100%; display: block; margin: .5em 0; }
.note { color: #555; } code { background: #f3f3f3; padding: 0 .2em; } li { margin: .3em 0; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
.disclaimer { border: 1px solid #b00020; color: #b00020; font-weight: 600; padding: .4em .8em; }
.synthetic { display: inline-block; background: #fff3cd; color: #7a4b00; border: 1px solid #e0a800;
  border-radius: .3em; padding: .1em .5em; font-weight: 600; }
"""


def page(title: str, body: Iterable[str]) -> str:
    """A complete HTML document."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n<h1>{escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def table(header: Sequence[str], rows: Iterable[Sequence[object]], row_classes: Sequence[str] | None = None) -> str:
    """An HTML table; numbers are right-aligned, text is escaped."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    lines = []
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        cells = "".join(
            f'<td class="num">{value:.2f}</td>'
            if isinstance(value, float)
            else f'<td class="num">{value}</td>'
            if isinstance(value, int)
            else f"<td>{cell(value)}</td>"
            for value in row
        )
        lines.append(f"<tr{css}>{cells}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(lines) + "</table>"


class Raw(str):
    """HTML that is inserted as is (already escaped)."""


def cell(value: object) -> str:
    return value if isinstance(value, Raw) else escape(str(value))


def link(target: str, text: str) -> Raw:
    return Raw(f'<a href="{escape(target, quote=True)}">{escape(text)}</a>')


def write_page(path: Path, html: str) -> Path:
    """Write an HTML page atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return path
