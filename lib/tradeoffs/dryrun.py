"""The dry run: a profile's every code path with every loop capped, in the spirit of Lightning's
``fast_dev_run``.

``TRADEOFFS_DRY_RUN=1`` (``make chapter NAME=... PROFILE=paper DRY_RUN=1``) runs the same cells, models,
optimizers, schedules, attacks and evaluation protocol as the profile, but

* :func:`tradeoffs.train.fit` runs at most ``EPOCHS`` epochs of at most ``BATCHES`` minibatches of at most
  ``BATCH_SIZE`` examples (``steps=`` runs: at most ``BATCHES`` steps);
* the attacks (:func:`tradeoffs.attacks.pgd`, ``trades_attack``, :func:`tradeoffs.evaluate.apgd`) take at most
  ``ATTACK_STEPS`` steps, ``RESTARTS`` restarts and ``TARGETS`` APGD-T targets;
* the robust evaluations (:mod:`tradeoffs.evaluate`) attack at most the first ``POINTS`` examples;
* the chapters' sizes (data, test points, Monte Carlo draws) are capped by each chapter's ``dry_run``
  settings, which :func:`tradeoffs.book.profiles.settings` returns instead of the profile's;
* the model, result and dataset caches live in ``<data dir>/dry-run/``, apart from the real ones;
* every claim is recorded with status ``dry-run`` (never ``reproduced``) under the profile ``paper (dry
  run)``.

Its numbers mean nothing; it proves that the profile's code runs, and it measures nothing but that.
"""

from __future__ import annotations

import os

ENV = "TRADEOFFS_DRY_RUN"
EPOCHS = 1
BATCHES = 2
BATCH_SIZE = 2            # the least BatchNorm trains on
ATTACK_STEPS = 2
RESTARTS = 1
TARGETS = 2
POINTS = 4

__all__ = ["ATTACK_STEPS", "BATCHES", "BATCH_SIZE", "ENV", "EPOCHS", "POINTS", "RESTARTS", "TARGETS",
           "active", "cap", "label"]


def active() -> bool:
    """Whether this process is a dry run (``TRADEOFFS_DRY_RUN`` set to anything but "", "0" or "false")."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def cap(value: int, limit: int) -> int:
    """``min(value, limit)`` in a dry run, ``value`` otherwise."""
    return min(value, limit) if active() else value


def label(profile: str) -> str:
    """How a run of `profile` is named in the records: ``"paper (dry run)"`` in a dry run, else `profile`."""
    return f"{profile} (dry run)" if active() else profile
