"""Chapter 1's settings in the three profiles (smoke, cpu, paper): the budgets its experiments run at."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


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
    "smoke": GaussianTradeoff(monte_carlo_samples=2_000, dims=(2, 16, 784), sgd_sample_sizes=(200, 2_000),
                              sgd_seeds=1, sgd_steps=100, tsipras_samples=5_000, svm_samples=2_000,
                              svm_steps=100),
    "cpu": GaussianTradeoff(monte_carlo_samples=20_000, dims=(2, 4, 16, 64, 256, 784, 3072),
                            sgd_sample_sizes=(100, 1_000, 10_000, 100_000), sgd_seeds=2, sgd_steps=1_000,
                            tsipras_samples=20_000, svm_samples=50_000, svm_steps=1_000),
    "paper": GaussianTradeoff(monte_carlo_samples=200_000, dims=(2, 4, 16, 64, 256, 784, 3072, 12288),
                              sgd_sample_sizes=(100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000),
                              sgd_seeds=5, sgd_steps=5_000, tsipras_samples=500_000,
                              svm_samples=200_000, svm_steps=3_000),
}

# The paper profile with every size capped (tradeoffs.dryrun): its code paths, in seconds.
DRY_RUN = dataclasses.replace(
    SETTINGS["paper"], monte_carlo_samples=2_000, sgd_sample_sizes=(100, 300), sgd_seeds=2, sgd_steps=20,
    tsipras_samples=5_000, svm_samples=2_000, svm_steps=20)
