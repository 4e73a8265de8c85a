"""The chapter registry and the three profiles (README, "Profiles").

``smoke``: every code path on tiny data, seconds (CI). ``cpu``: the default of ``make book``, real
experiments at a laptop's budget. ``paper``: the paper's own settings, for a GPU. Closed forms are
computed in full in every profile; only sampling, training and evaluation budgets change.

``CHAPTERS`` is the one list of the book's chapters, in book order: each name is a notebook
(``notebooks/<name>.md``) and a subpackage (``tradeoffs.chapters.ch<name>``) whose ``settings.SETTINGS``
maps every profile to that chapter's budget. The Makefile, the runner, the pages and the tests read it.
"""

from __future__ import annotations

import importlib

from tradeoffs import dryrun

PROFILES = ("smoke", "cpu", "paper")

CHAPTERS = ("01_gaussian_tradeoff", "02_robust_features", "03_joint_objective", "04_trades", "05_frontier")


def package(chapter: str) -> str:
    """The subpackage of a chapter: ``01_gaussian_tradeoff``
    -> ``tradeoffs.chapters.ch01_gaussian_tradeoff``."""
    check_chapter(chapter)
    return f"tradeoffs.chapters.ch{chapter}"


def check_chapter(chapter: str) -> None:
    """A clear ValueError naming the chapters unless ``chapter`` is one of them."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters: {', '.join(CHAPTERS)}")


def check_profile(profile: str) -> None:
    """A clear ValueError naming the profiles unless ``profile`` is one of them (in a dry run: unless it is
    ``paper``)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    if dryrun.active() and profile != "paper":
        raise ValueError(f"a dry run ({dryrun.ENV}=1, make ... DRY_RUN=1) runs the paper profile's "
                         f"code paths; got profile {profile!r}: use profile 'paper', or unset {dryrun.ENV}")


def settings(chapter: str, profile: str):
    """The settings of `chapter` under `profile` (its ``settings.SETTINGS[profile]``); a clear error for an
    unknown chapter or profile. In a dry run (:mod:`tradeoffs.dryrun`) the paper profile's with every size
    capped (the chapter's ``settings.DRY_RUN``); a dry run of another profile is an error."""
    check_profile(profile)
    module = importlib.import_module(f"{package(chapter)}.settings")
    return module.DRY_RUN if dryrun.active() else module.SETTINGS[profile]
