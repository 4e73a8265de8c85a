"""The book's one figure style: vector figures at the text column's width, and one colour per training method.

Every chapter calls :func:`use_book_style` (through ``runtime.start_chapter``). In a notebook it also makes
the figures SVG (vector: sharp at any zoom, text as paths, so they look the same without the book's fonts) and
fits every figure wider than the column to the column before it is drawn, so the text of a figure is shown at
its size in points (a figure shrunk by the browser shrinks its labels with it).
"""

from __future__ import annotations

import matplotlib as mpl

METHOD_COLORS = {
    "standard": "#1f77b4",
    "adversarial": "#d62728",  # Madry et al.'s PGD adversarial training
    "noise": "#2ca02c",  # data-randomized (Gaussian noise) training
    "trades": "#9467bd",
    "joint": "#ff7f0e",  # the joint objective R + lambda R_adv (Suggala et al.)
}
"""The colour of each training method, the same in every chapter."""

OTHER_COLORS = ("#4d4d4d", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f")
"""The colour cycle for lines that are not a method: none of them is a method's colour."""

COLUMN_INCHES = 8.0
"""The width of the book's text column (about 770 CSS px at 96 px per inch, the theme's at 1400 px)."""

FIGURE_FORMAT = "svg"


def use_book_style() -> None:
    """Set matplotlib's defaults for every figure of the book, and the notebook's figure format and width."""
    mpl.rcParams.update({
        "figure.figsize": (COLUMN_INCHES, 3.4),
        "figure.dpi": 96,
        "figure.constrained_layout.use": True,
        "savefig.dpi": 192,
        "svg.fonttype": "path",
        "axes.prop_cycle": mpl.cycler(color=list(OTHER_COLORS)),
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 10.5,
        "axes.labelsize": 10,
        "xtick.labelsize": 9.5,
        "ytick.labelsize": 9.5,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "font.size": 10,
        "lines.linewidth": 1.6,
    })
    _notebook_figures()


def fit_to_column(figure) -> None:
    """Narrow a figure wider than the text column to the column, keeping its height (its text keeps its size).

    The notebook saves figures with a tight bounding box and ``savefig.pad_inches`` on each side: the figure
    itself gets the column less that padding."""
    width, height = figure.get_size_inches()
    column = COLUMN_INCHES - 2 * float(mpl.rcParams["savefig.pad_inches"])
    if width > column + 1e-6:
        figure.set_size_inches(column, height)


def _notebook_figures() -> None:
    """In IPython: figures are shown as SVG, each fitted to the column first. Elsewhere: nothing."""
    try:
        from IPython import get_ipython
        from matplotlib.figure import Figure
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    set_matplotlib_formats(FIGURE_FORMAT)
    formatter = shell.display_formatter.formatters["image/svg+xml"]
    draw = formatter.lookup_by_type(Figure)
    if getattr(draw, "fits_to_column", False):
        return

    def fitted(figure):
        fit_to_column(figure)
        return draw(figure)

    fitted.fits_to_column = True
    formatter.for_type(Figure, fitted)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table: one header row, then the rows (cells are written with str())."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def table(header: list[str], rows: list[list]):
    """Show a table in a notebook (Markdown output, so the book renders it as a table)."""
    from IPython.display import Markdown

    return Markdown(markdown_table(header, rows))


def show_figure(figure, key: str) -> None:
    """Glue `figure` under `key` for the book, where a ``{glue:figure}`` directive numbers it and gives it
    its caption and alt text. When the book executes the chapter (``tradeoffs.book.runner``) the figure is
    then closed, so the page shows it once, with its caption; in a live notebook (Jupyter, Colab) it is
    shown where it is drawn."""
    import os

    import matplotlib.pyplot as plt

    from tradeoffs.book.claims import glue
    from tradeoffs.progress import BATCH_ENV

    glue(key, figure)
    if os.environ.get(BATCH_ENV):
        plt.close(figure)
    else:
        plt.show()
