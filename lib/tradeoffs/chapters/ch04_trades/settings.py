"""Chapter 4's settings in the three profiles (smoke, cpu, paper): the budgets its experiments run at."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tradeoffs.recipes import SMALLCNN_BUDGETS, SmallCNNBudget


@dataclass(frozen=True)
class TradesChapter:
    """Chapter 4 (TRADES, paper 004). Table 1 is exact in every profile; the rest are budgets.

    Sizes are numbers of images (None: the whole split). ``warm_start``: the TRADES models of Tables 3-4
    start from a naturally trained one of their architecture (Alg. 1, line 3 allows a pre-trained start; a
    SmallCNN sweep starts from the natural SmallCNN of ``eps03``, shared with Tables 5-6);
    the eps = 0.3 models of Tables 5-6 follow ``eps03`` (:class:`tradeoffs.recipes.SmallCNNBudget`, shared
    with chapter 2) instead.
    """

    toy_samples: int                      # Monte Carlo draws checking Eq. (1) on the Table 1 example
    toy_classifiers: int                  # random piecewise-constant classifiers in the exact check
    fig1_points: int                      # 2-D training points of the Figure 1 picture
    fig1_steps: int                       # full-batch Adam steps per 2-D model
    lr: float                             # SGD (momentum 0.9, batch 128) of the TRADES/Madry nets; paper 0.01
    natural_lr: float                     # the same for the naturally trained models; paper 0.01
    dropout: float                        # of TradesNet and SmallCNN; the release's 0.5 in the paper profile
    warm_start: bool
    binary_natural_train: int | None      # Table 3: the natural model estimating R*_nat, R*_phi
    binary_natural_epochs: int
    binary_train: int | None              # Table 3: TRADES (hinge) models, one per lambda
    binary_epochs: int                    # paper 30
    binary_steps: int                     # K in training and evaluation; paper 20
    binary_test: int | None
    lambdas: tuple[float, ...]            # paper 2, 3, 4, 5
    sweep_betas: tuple[float, ...]        # Table 4: the 1/lambda values; paper 0.1 ... 5 (ten)
    sweep_architecture: str               # "trades_net" (the paper's, Sec. 5.2) or "small_cnn" (Tables 5-6's)
    sweep_natural_train: int | None       # the natural TradesNet (a SmallCNN sweep starts from eps03's)
    sweep_natural_epochs: int
    sweep_train: int | None
    sweep_epochs: int                     # paper 50
    sweep_steps: int                      # K in training; paper 20
    sweep_step_size: float                # paper 0.01
    sweep_optimizer: str                  # paper "sgd" (momentum 0.9, batch 128)
    sweep_lr: float                       # paper 0.01
    sweep_cosine: bool                    # cosine learning-rate decay over the run; paper: constant
    sweep_eval_steps: int                 # PGD steps of the evaluation; paper 40 (step 0.005)
    sweep_test: int | None                # images of the robust evaluation
    natural_test: int | None              # images of every natural accuracy of Tables 4-6 (None: all 10,000)
    robust_eval_steps: int                # paper 40 (PGD-40, step 0.01), white-box and black-box
    robust_test: int | None
    pgd_long_steps: int                   # paper 1000
    pgd_long_test: int
    strong_test: int                      # images of the strong (AutoAttack-backed) evaluation
    strong_apgd_steps: int                # iterations of APGD-CE, each APGD-T target, each PGD restart
    strong_targets: int
    strong_restarts: int
    curve_test: int                       # images of the PGD-k curve (the gradient-masking check of Table 5)
    curve_steps: tuple[int, ...]          # its k
    cifar: bool                           # CIFAR-10 parts (Table 4 ResNet-18, Table 5 WRN-34-10)
    cifar_test: int | None
    eps03: SmallCNNBudget                 # Tables 5-6: natural, Madry, TRADES SmallCNNs (tradeoffs.recipes)


SETTINGS = {
    "smoke": TradesChapter(
        toy_samples=2_000, toy_classifiers=20, fig1_points=24, fig1_steps=30, lr=0.02, natural_lr=0.05,
        dropout=0.0, warm_start=True,
        binary_natural_train=256, binary_natural_epochs=1, binary_train=128, binary_epochs=1, binary_steps=2,
        binary_test=32, lambdas=(2.0, 3.0, 4.0, 5.0), sweep_betas=(0.1, 5.0), sweep_architecture="small_cnn",
        sweep_natural_train=None, sweep_natural_epochs=0, sweep_train=128, sweep_epochs=1, sweep_steps=2,
        sweep_step_size=0.05, sweep_optimizer="adam", sweep_lr=1e-3, sweep_cosine=True, sweep_eval_steps=3,
        sweep_test=32, natural_test=64, robust_eval_steps=3, robust_test=32, pgd_long_steps=5,
        pgd_long_test=8, strong_test=4, strong_apgd_steps=5, strong_targets=2, strong_restarts=1,
        curve_test=8, curve_steps=(1, 2, 5), cifar=False, cifar_test=None, eps03=SMALLCNN_BUDGETS["smoke"]),
    "cpu": TradesChapter(
        toy_samples=100_000, toy_classifiers=200, fig1_points=60, fig1_steps=400, lr=0.02, natural_lr=0.05,
        dropout=0.0, warm_start=True, binary_natural_train=None, binary_natural_epochs=2, binary_train=1_000,
        binary_epochs=1, binary_steps=20, binary_test=500, lambdas=(2.0, 3.0, 4.0, 5.0),
        sweep_betas=(0.1, 1.0, 2.0, 5.0), sweep_architecture="small_cnn", sweep_natural_train=None,
        sweep_natural_epochs=0, sweep_train=20_000, sweep_epochs=1, sweep_steps=5, sweep_step_size=0.02,
        sweep_optimizer="adam", sweep_lr=1e-3, sweep_cosine=True, sweep_eval_steps=40, sweep_test=2_000,
        natural_test=None, robust_eval_steps=40, robust_test=1_000, pgd_long_steps=1000, pgd_long_test=50,
        strong_test=1_000, strong_apgd_steps=100, strong_targets=3, strong_restarts=1, curve_test=500,
        curve_steps=(1, 2, 5, 10, 20, 40, 100), cifar=False, cifar_test=None, eps03=SMALLCNN_BUDGETS["cpu"]),
    "paper": TradesChapter(
        toy_samples=1_000_000, toy_classifiers=1_000, fig1_points=60, fig1_steps=1_000, lr=0.01,
        natural_lr=0.01, dropout=0.5, warm_start=False, binary_natural_train=None, binary_natural_epochs=30,
        binary_train=None, binary_epochs=30, binary_steps=20, binary_test=None, lambdas=(2.0, 3.0, 4.0, 5.0),
        sweep_betas=(0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 3.0, 4.0, 5.0), sweep_architecture="trades_net",
        sweep_natural_train=None, sweep_natural_epochs=50, sweep_train=None, sweep_epochs=50, sweep_steps=20,
        sweep_step_size=0.01, sweep_optimizer="sgd", sweep_lr=0.01, sweep_cosine=False, sweep_eval_steps=40,
        sweep_test=None, natural_test=None, robust_eval_steps=40, robust_test=None, pgd_long_steps=1000,
        pgd_long_test=10_000, strong_test=1_000, strong_apgd_steps=100, strong_targets=9, strong_restarts=5,
        curve_test=1_000, curve_steps=(1, 2, 5, 10, 20, 40, 100, 200), cifar=True, cifar_test=None,
        eps03=SMALLCNN_BUDGETS["paper"]),
}

# The paper profile with every size capped (tradeoffs.dryrun): its code paths, in seconds. The eps = 0.3
# SmallCNNs keep the paper's budget (train.fit caps their training), so chapter 2, which reads it from
# tradeoffs.recipes, shares them as in the paper profile.
DRY_RUN = dataclasses.replace(
    SETTINGS["paper"], toy_samples=2_000, toy_classifiers=20, fig1_points=24, fig1_steps=20,
    binary_natural_train=16, binary_train=16, binary_test=8, sweep_betas=(0.1, 5.0), sweep_natural_train=16,
    sweep_train=16, sweep_test=8, robust_test=8, pgd_long_test=4, strong_test=4, curve_test=4,
    cifar_test=4)
