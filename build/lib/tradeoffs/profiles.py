"""Per-chapter budgets for the three profiles (DESIGN.md, "Profiles").

``smoke``: every code path on tiny data, seconds (CI). ``cpu``: the default of ``make book``, real
experiments at a laptop's budget. ``paper``: the paper's own settings, for a GPU. Closed forms are
computed in full in every profile; only sampling, training and evaluation budgets change.
"""

from __future__ import annotations

from dataclasses import dataclass

PROFILES = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class GaussianTradeoff:
    """Chapter 1. Monte Carlo sizes and the finite-sample SGD experiment's budget."""

    monte_carlo_samples: int          # Lemma 7 points, Theorem 2 directions per (d, eps)
    dims: tuple[int, ...]             # dimensions of the Theorem 2-3 check
    sgd_sample_sizes: tuple[int, ...]  # n of the finite-sample experiment (d = 784)
    sgd_seeds: int                    # independent training sets per n
    sgd_steps: int                    # minibatch SGD steps per model
    tsipras_samples: int              # test points simulating the averaging classifier
    svm_samples: int                  # training points of the Theorem 2.2 SVMs
    svm_steps: int                    # projected gradient steps of the Theorem 2.2 SVMs


SETTINGS = {
    "01_gaussian_tradeoff": {
        "smoke": GaussianTradeoff(monte_carlo_samples=2_000, dims=(2, 16, 784), sgd_sample_sizes=(200, 2_000),
                                  sgd_seeds=1, sgd_steps=100, tsipras_samples=5_000, svm_samples=2_000,
                                  svm_steps=100),
        "cpu": GaussianTradeoff(monte_carlo_samples=20_000, dims=(2, 4, 16, 64, 256, 784, 3072),
                                sgd_sample_sizes=(100, 1_000, 10_000, 100_000), sgd_seeds=2, sgd_steps=1_000,
                                tsipras_samples=100_000, svm_samples=50_000, svm_steps=1_000),
        "paper": GaussianTradeoff(monte_carlo_samples=200_000, dims=(2, 4, 16, 64, 256, 784, 3072, 12288),
                                  sgd_sample_sizes=(100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000),
                                  sgd_seeds=5, sgd_steps=5_000, tsipras_samples=500_000,
                                  svm_samples=200_000, svm_steps=3_000),
    },
}


def settings(chapter: str, profile: str):
    """The settings of `chapter` under `profile`; a clear error for an unknown one."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    if chapter not in SETTINGS:
        raise ValueError(f"no settings for chapter {chapter!r}; chapters with settings: {', '.join(SETTINGS)}")
    return SETTINGS[chapter][profile]
