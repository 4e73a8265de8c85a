"""Where the book keeps its files, found the same way from any working directory.

A directory (the data, the claims records) is, in this order:

1. its environment variable (``TRADEOFFS_DATA``, ``TRADEOFFS_RESULTS``), when set;
2. inside the repository checkout, when the package runs from one (``make setup``'s editable install, or
   ``PYTHONPATH=lib``): ``<checkout>/data``, ``<checkout>/book/_results``. The checkout is found from
   this file's location, never from the working directory, so a notebook opened from ``notebooks/`` uses
   the MNIST that ``make data`` fetched;
3. else a per-user cache, ``$XDG_CACHE_HOME/tradeoffs`` (default ``~/.cache/tradeoffs``), as torchvision
   and Hugging Face keep theirs: where a ``pip install``-ed package (Colab) keeps its data and records.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_HOME_ENV = "XDG_CACHE_HOME"
REPOSITORY = "https://github.com/tradeoffs-book/tradeoffs"


class NotACheckout(RuntimeError):
    """The package is an installed copy, but the command needs the repository (its notebooks, its book)."""


def checkout_root() -> Path | None:
    """The repository this package runs from (``<root>/lib/tradeoffs``), or None for an installed copy."""
    package = Path(__file__).resolve().parent
    root = package.parent.parent
    in_checkout = package.parent.name == "lib" and (root / "pyproject.toml").is_file()
    return root if in_checkout and (root / "notebooks").is_dir() else None


def require_checkout(what: str) -> Path:
    """The repository root, or a NotACheckout error saying that `what` needs one and how to get it."""
    root = checkout_root()
    if root is None:
        raise NotACheckout(
            f"{what} needs the repository checkout (its notebooks/ and book/), but tradeoffs is imported "
            f"from {Path(__file__).resolve().parent}, an installed copy. Clone {REPOSITORY}, run "
            f"`make setup` there and run this from that checkout (any directory of it).")
    return root


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tradeoffs``, default ``~/.cache/tradeoffs``."""
    return Path(os.environ.get(CACHE_HOME_ENV) or "~/.cache").expanduser() / "tradeoffs"


def resolve(env: str, relative: str) -> Path:
    """The absolute directory ``$env`` names; else `relative` inside the checkout, else in the user cache."""
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser().resolve()
    return (checkout_root() or user_cache_dir()) / relative
