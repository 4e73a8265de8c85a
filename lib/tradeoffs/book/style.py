"""The book's shared figure style: one look, and one colour per training method across chapters."""

from __future__ import annotations

import matplotlib as mpl

METHOD_COLORS = {
    "standard": "#1f77b4",
    "adversarial": "#d62728",
    "noise": "#2ca02c",
    "trades": "#9467bd",
}


def use_book_style() -> None:
    """Set matplotlib defaults for every figure of the book (sizes readable in the rendered HTML)."""
    mpl.rcParams.update({
        "figure.figsize": (8.0, 3.6),
        "figure.dpi": 110,
        "figure.constrained_layout.use": True,
        "savefig.dpi": 150,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "font.size": 10,
    })


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table: one header row, then the rows (cells are written with str())."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def table(header: list[str], rows: list[list]):
    """Show a table in a notebook (Markdown output, so the book renders it as a table)."""
    from IPython.display import Markdown

    return Markdown(markdown_table(header, rows))
