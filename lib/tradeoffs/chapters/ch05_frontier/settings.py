"""Chapter 5's settings in the three profiles (smoke, cpu, paper): the budgets its experiments run at."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Frontier:
    """Chapter 5: one accuracy-robustness frontier for every method, on chapter 3's MNIST recipe.

    Every run trains ``MLP(784, widths)`` from the same initialization for ``epochs`` epochs of Adam (``lr``,
    ``batch_size``) on the same ``train_size`` images (chapter 3's subset) with its own objective. Attacks
    inside training: ``train_steps`` steps of eps / ``step_divisor``, at ``train_eps`` for TRADES and the
    joint objective, at each ``madry_eps`` for Madry. Where these equal chapter 3's, its models are shared
    through the store.
    """

    widths: tuple[int, ...]               # hidden units (chapter 3 Fig. 3a: (400,))
    train_size: int                       # chapter 3: mnist_train
    epochs: int
    batch_size: int
    lr: float                             # Adam
    train_eps: float                      # TRADES and joint
    train_steps: int                      # K
    step_divisor: float                   # step size = eps / step_divisor (chapter 3 cpu: 0.02 at eps 0.05)
    noise_sigmas: tuple[float, ...]
    madry_eps: tuple[float, ...]
    trades_betas: tuple[float, ...]       # 1/lambda
    joint_lambdas: tuple[float, ...]
    clean_size: int | None                # clean accuracy: the first test images (None: all 10k)
    test_size: int                        # robust accuracies: the first test images of those
    eval_eps: float                       # l_inf radius of every robust accuracy
    strong_apgd_steps: int                # the strong evaluation: APGD-CE, APGD-T (targets), PGD x restarts
    strong_targets: int
    strong_steps: int
    strong_restarts: int
    pgd_steps: int                        # the cheap evaluation beside it (TRADES Table 4: PGD-40, 0.005)
    pgd_step_size: float
    large_eps: float                      # PGD-40 (step 0.01) here too: Madry's and TRADES's MNIST eps 0.3
    compare: bool                         # False (smoke): too little training to compare; claims not-run


SETTINGS = {
    "smoke": Frontier(
        widths=(32,), train_size=200, epochs=1, batch_size=100, lr=1e-3, train_eps=0.1, train_steps=2,
        step_divisor=2, noise_sigmas=(0.3,), madry_eps=(0.1,), trades_betas=(1.0,), joint_lambdas=(2.0,),
        clean_size=64, test_size=32, eval_eps=0.1, strong_apgd_steps=5, strong_targets=2, strong_steps=5,
        strong_restarts=1, pgd_steps=3, pgd_step_size=0.05, large_eps=0.3, compare=False),
    "cpu": Frontier(
        widths=(400,), train_size=2_000, epochs=10, batch_size=100, lr=1e-3, train_eps=0.1, train_steps=5,
        step_divisor=2.5, noise_sigmas=(0.1, 0.3), madry_eps=(0.05, 0.1, 0.2), trades_betas=(1.0, 3.0, 6.0),
        joint_lambdas=(0.5, 2.0), clean_size=None, test_size=1_000, eval_eps=0.1, strong_apgd_steps=100,
        strong_targets=3, strong_steps=100, strong_restarts=1, pgd_steps=40, pgd_step_size=0.005,
        large_eps=0.3, compare=True),
    "paper": Frontier(
        widths=(400,), train_size=50_000, epochs=50, batch_size=100, lr=1e-3, train_eps=0.1, train_steps=40,
        step_divisor=10, noise_sigmas=(0.1, 0.2, 0.3, 0.5), madry_eps=(0.05, 0.1, 0.15, 0.2, 0.3),
        trades_betas=(0.5, 1.0, 3.0, 6.0), joint_lambdas=(0.5, 2.0, 5.0), clean_size=None, test_size=10_000,
        eval_eps=0.1, strong_apgd_steps=100, strong_targets=9, strong_steps=100, strong_restarts=5,
        pgd_steps=40, pgd_step_size=0.005, large_eps=0.3, compare=True),
}

# The paper profile with every size capped (tradeoffs.dryrun): its code paths, in seconds.
DRY_RUN = dataclasses.replace(SETTINGS["paper"], train_size=16, clean_size=8, test_size=8)
