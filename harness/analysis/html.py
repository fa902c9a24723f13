"""Self-contained HTML for reports: inline SVG charts, no scripts or fonts from a network.

Users' networks (and these machines) often have no internet, so a report carries everything
it shows: charts are matplotlib figures rendered to inline SVG, styles are inline CSS.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from harness.analysis.page import STYLE, escape, page, table_html

__all__ = ["STYLE", "escape", "figure_svg", "new_figure", "page", "table_html"]


def new_figure(width: float = 10.0, height: float = 3.6) -> tuple[Figure, Any]:
    """A figure and one axes, sized for a report column."""
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    return fig, ax


def figure_svg(fig: Figure, caption: str = "") -> str:
    """Render ``fig`` as an inline ``<figure>`` with SVG (and close it to free memory)."""
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE: invalid inside HTML
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{cap}</figure>"
