"""Self-contained HTML pages: inline styles, plain tables, no scripts or fonts from a network.

Kept apart from the charts (:mod:`harness.analysis.html`) so a report made of tables only does
not load matplotlib.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem auto;
       max-width: 1200px; color: #1b1f24; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
     border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .85rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: right; }
th { background: #f6f8fa; } td.l, th.l { text-align: left; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
.note { color: #57606a; font-size: .85rem; } .warn { color: #9a6700; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #57606a; font-size: .8rem; }
"""


def escape(value: Any) -> str:
    """Text safe to place in HTML (endpoint names contain ``<``, ``&``, ``[id]``...)."""
    return html.escape(str(value), quote=True)


def table_html(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    left: int = 1,
    classes: Sequence[str] | None = None,
) -> str:
    """A plain HTML table; the first ``left`` columns are left-aligned (names)."""
    head = "".join(
        f'<th class="l">{escape(c)}</th>' if i < left else f"<th>{escape(c)}</th>"
        for i, c in enumerate(columns)
    )
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        cells = "".join(
            f'<td class="l">{escape(v)}</td>' if i < left else f"<td>{escape(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, sections: Iterable[str]) -> str:
    """A complete HTML document from already-rendered sections."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{''.join(sections)}</body></html>"
    )
