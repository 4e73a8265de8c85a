"""Chapter 3's settings in the three profiles (smoke, cpu, paper): the budgets its experiments run at."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class JointObjective:
    """Chapter 3 (Suggala et al.). Monte Carlo sizes of the theory; the budgets of the trained experiments."""

    mc_samples: int                       # Monte Carlo draws per risk estimate (Theorem 1, Corollaries 2-4)
    theorem1_draws: int                   # random (w, theta*, sigma, eps) of the Theorem 1 check
    corollary_dims: tuple[int, ...]       # p of the Corollary 3-4 figures (the largest is claimed)
    gd_samples: int                       # Corollary 4: training points of gradient descent
    gd_steps: int
    compare_trained: bool                 # False in smoke: tiny trained models record not-run claims
    squares_train: int                    # Sec. 6: training points (paper 1e5)
    squares_epochs: int
    squares_eps: tuple[float, ...]
    squares_steps: int                    # PGD steps inside training
    mnist_train: int                      # paper 2000
    mnist_test: int | None                # None = the 10k test set
    epochs: int
    batch_size: int
    lr: float                             # Adam
    train_steps: int                      # PGD steps inside training; paper 50 (step 0.01)
    train_step_size: float
    eval_steps: int                       # PGD steps of the evaluation; paper 50 (step 0.01)
    eval_step_size: float
    trials: int                           # Table 1 (paper 10)
    lambdas: tuple[float, ...]            # Table 1 and Fig. 3 (paper 0, 0.001, 0.01, 0.1, 1, 2)
    figure3a_lambdas: tuple[float, ...]   # 1 hidden layer of 400, eps 0.05
    figure3b_lambdas: tuple[float, ...]   # (512, 512, 320), eps 0.03; () = not run in this profile
    widths: tuple[int, ...]               # Figs. 4-5: hidden units of the 1-hidden-layer nets
    capacity_epochs: int                  # Fig. 4: standard training of every width, to convergence
    strong_lambdas: tuple[float, ...]     # Table 1 models (trial 0) also attacked by the strong evaluation
    strong_apgd_steps: int                # the strong evaluation: APGD-CE, APGD-T (targets), PGD x restarts
    strong_targets: int
    strong_steps: int
    strong_restarts: int
    explain_images: int                   # Fig. 6
    explain_samples: int                  # integrated-gradients steps and SmoothGrad draws
    cifar: bool                           # Table 2 (VGG11 at 1/4 width, eps 0.01)
    cifar_trials: int
    cifar_epochs: int


SETTINGS = {
    "smoke": JointObjective(
        mc_samples=4_000, theorem1_draws=8, corollary_dims=(100, 1_000), gd_samples=200, gd_steps=50,
        compare_trained=False, squares_train=2_000, squares_epochs=1, squares_eps=(0.2, 0.6), squares_steps=2,
        mnist_train=200, mnist_test=100, epochs=1, batch_size=100, lr=1e-3, train_steps=2,
        train_step_size=0.03, eval_steps=5, eval_step_size=0.02, trials=1, lambdas=(0.0, 1.0),
        figure3a_lambdas=(0.0, 1.0), figure3b_lambdas=(0.0,), widths=(8, 400), capacity_epochs=2,
        strong_lambdas=(0.0,), strong_apgd_steps=5, strong_targets=2, strong_steps=5, strong_restarts=1,
        explain_images=2,
        explain_samples=5, cifar=False, cifar_trials=1, cifar_epochs=1),
    "cpu": JointObjective(
        mc_samples=100_000, theorem1_draws=40, corollary_dims=(100, 1_000, 10_000), gd_samples=1_000,
        gd_steps=300, compare_trained=True, squares_train=10_000, squares_epochs=15,
        squares_eps=(0.1, 0.2, 0.3, 0.5, 0.7, 1.0), squares_steps=5, mnist_train=2_000, mnist_test=1_000,
        epochs=10, batch_size=100, lr=1e-3, train_steps=5, train_step_size=0.02, eval_steps=50,
        eval_step_size=0.01, trials=2, lambdas=(0.0, 0.001, 0.01, 0.1, 1.0, 2.0),
        figure3a_lambdas=(0.0, 0.01, 0.1, 1.0, 2.0), figure3b_lambdas=(0.0, 0.1, 1.0, 2.0),
        widths=(16, 64, 400, 1024), capacity_epochs=100, strong_lambdas=(0.0, 2.0), strong_apgd_steps=100,
        strong_targets=3, strong_steps=100, strong_restarts=1, explain_images=4, explain_samples=50,
        cifar=False, cifar_trials=1, cifar_epochs=1),
    "paper": JointObjective(
        mc_samples=1_000_000, theorem1_draws=200, corollary_dims=(100, 1_000, 10_000, 100_000),
        gd_samples=10_000, gd_steps=1_000, compare_trained=True, squares_train=100_000, squares_epochs=30,
        squares_eps=(0.05, 0.1, 0.2, 0.3, 0.35, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), squares_steps=50,
        mnist_train=2_000, mnist_test=None, epochs=100, batch_size=100, lr=1e-3, train_steps=50,
        train_step_size=0.01, eval_steps=50, eval_step_size=0.01, trials=10,
        lambdas=(0.0, 0.001, 0.01, 0.1, 1.0, 2.0),
        figure3a_lambdas=(0.0, 1e-4, 0.001, 0.01, 0.1, 1.0, 2.0, 5.0, 10.0),
        figure3b_lambdas=(0.0, 1e-4, 0.001, 0.01, 0.1, 1.0, 2.0, 5.0, 10.0),
        widths=(16, 32, 64, 128, 256, 400, 1024, 2048), capacity_epochs=100,
        strong_lambdas=(0.0, 0.001, 0.01, 0.1, 1.0, 2.0), strong_apgd_steps=100, strong_targets=9,
        strong_steps=100, strong_restarts=5, explain_images=8, explain_samples=50, cifar=True,
        cifar_trials=10, cifar_epochs=100),
}

# The paper profile with every size capped (tradeoffs.dryrun): its code paths, in seconds.
DRY_RUN = dataclasses.replace(
    SETTINGS["paper"], mc_samples=4_000, theorem1_draws=8, corollary_dims=(100, 1_000), gd_samples=200,
    gd_steps=20, squares_train=200, squares_eps=(0.2, 0.6), mnist_train=16, mnist_test=8, trials=2,
    lambdas=(0.0, 1.0, 2.0), figure3a_lambdas=(0.0, 1.0), figure3b_lambdas=(0.0, 1.0), widths=(16, 64),
    strong_lambdas=(0.0, 2.0),
    explain_images=2, explain_samples=3, cifar_trials=2)
