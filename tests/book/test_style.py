"""The book's figure style: SVG figures no wider than the text column, one colour per method."""

import re

import matplotlib
import matplotlib.pyplot as plt
import pytest
from IPython.core.interactiveshell import InteractiveShell
from tradeoffs.book import style


@pytest.fixture
def shell():
    shell = InteractiveShell.instance()
    with matplotlib.rc_context():  # the book's style stays inside the test
        yield shell
    InteractiveShell.clear_instance()


def svg_width_inches(svg: str) -> float:
    return float(re.search(r'<svg[^>]*\bwidth="([\d.]+)pt"', svg)[1]) / 72


def test_a_wide_figure_is_drawn_as_svg_at_the_column_width(shell):
    style.use_book_style()
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="a line")
        ax.legend()
    data, _ = shell.display_formatter.format(figure)
    assert "image/svg+xml" in data and "image/png" not in data
    assert style.COLUMN_INCHES - 0.5 < svg_width_inches(data["image/svg+xml"]) <= style.COLUMN_INCHES + 0.01
    assert figure.get_size_inches()[1] == 3.6
    plt.close(figure)


def test_a_narrow_figure_keeps_its_size(shell):
    style.use_book_style()
    style.use_book_style()  # a second call (a second chapter in one kernel) wraps the formatter once
    figure = plt.figure(figsize=(5, 3))
    figure.gca().plot([0, 1], [1, 0])
    shell.display_formatter.format(figure)
    assert tuple(figure.get_size_inches()) == (5, 3)
    plt.close(figure)


def test_method_colours_are_distinct_and_not_in_the_default_cycle():
    colours = list(style.METHOD_COLORS.values())
    assert len(set(colours)) == len(colours)
    assert not set(colours) & set(style.OTHER_COLORS)
    assert {"standard", "adversarial", "noise", "trades", "joint"} <= set(style.METHOD_COLORS)


def test_settings_are_one_collapsed_table_with_dotted_names_for_nested_settings():
    import torch
    from tradeoffs.book import profiles, runtime

    run = runtime.Run("02_robust_features", "paper", torch.device("cpu"), 0,
                      profiles.settings("02_robust_features", "paper"))
    text = runtime.settings_markdown(run)
    lines = text.splitlines()
    assert lines[0].startswith(":::{dropdown} Settings: profile `paper`, device `cpu`, seed 0")
    assert lines[1] == "| setting | value |" and lines[-1] == ":::"
    assert "| `cifar10.robust_eps` | 0.5 |" in lines  # a nested dataclass, one row per field
    assert max(len(line) for line in lines) < 200
