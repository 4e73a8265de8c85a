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


@dataclass(frozen=True)
class IlyasProtocol:
    """Chapter 2: the models and constructed datasets of Ilyas et al. (002 App. C) on one dataset.

    The standard model, the l2-robust model (also 001 Fig. 3-5's l2 pair on MNIST) and the classifiers
    trained on D, D_R, D_NR, D_rand, D_det all use ``architecture`` and the SGD settings below. (001 Fig. 3-5's
    l_inf pair is chapter 4's natural and Madry SmallCNNs, shared through the model cache.)
    """

    architecture: str                     # "mlp" (784-256-256-10) or a tradeoffs.models name
    train_size: int                       # training images (the first ones of the split)
    test_size: int                        # test images for every evaluation
    epochs: int                           # standard training (D and each constructed dataset)
    lr: float
    batch_size: int
    weight_decay: float
    milestones: tuple[int, ...]           # epochs where the learning rate drops 10x
    robust_epochs: int                    # l2 PGD adversarial training (002 App. C.3)
    robust_eps: float
    robust_steps: int
    robust_step_size: float
    eval_eps: tuple[float, ...]           # l2 radii of the robust accuracies (002 Table 7)
    attack_steps: int                     # PGD steps of those evaluations
    representation_steps: int             # 002 Table 5: normalized gradient steps of D_R / D_NR
    representation_step_size: float
    targeted_eps: float                   # 002 Table 6: l2 radius of D_rand / D_det
    targeted_steps: int


@dataclass(frozen=True)
class RobustFeatures:
    """Chapter 2 (001 Sec. 2.3, 3; 002 App. C-E)."""

    linear_epochs: int                    # 001 App. A.2: 100 epochs of gradient descent
    top_k: tuple[int, ...]                # Fig. 2c: numbers of most correlated pixels
    figure_images: int                    # test images shown in Fig. 3-5
    proxy_images: int                     # test images of Fig. 3-5's two measured proxies
    large_eps_steps: int                  # PGD steps of the large-eps examples (Fig. 3)
    mle_monte_carlo: int                  # samples of the Theorem 1 Monte Carlo
    mle_kappas: tuple[float, ...]         # condition numbers of the Theorem 3 check
    network_claims: bool                  # False (smoke): too small a budget to show the effects; not-run
    mnist: IlyasProtocol
    cifar10: IlyasProtocol | None         # None: not attempted in this profile (recorded not-run)


@dataclass(frozen=True)
class TradesChapter:
    """Chapter 4 (TRADES, paper 004). Table 1 is exact in every profile; the rest are budgets.

    Sizes are numbers of images (None: the whole split). ``warm_start``: the TRADES models of Tables 3-4
    start from a naturally trained one of their architecture (Alg. 1, line 3 allows a pre-trained start);
    the eps = 0.3 models of Tables 5-6 follow ``robust_warm_start`` and ``robust_eps_ramp`` instead.
    """

    toy_samples: int                      # Monte Carlo draws checking Eq. (1) on the Table 1 example
    toy_classifiers: int                  # random piecewise-constant classifiers in the exact check
    fig1_points: int                      # 2-D training points of the Figure 1 picture
    fig1_steps: int                       # full-batch Adam steps per 2-D model
    lr: float                             # SGD (momentum 0.9, batch 128) of the TRADES / Madry models; paper 0.01
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
    sweep_natural_train: int | None
    sweep_natural_epochs: int
    sweep_train: int | None
    sweep_epochs: int                     # paper 50
    sweep_steps: int                      # K in training; paper 20 (step 0.01)
    sweep_eval_steps: int                 # PGD steps of the evaluation; paper 40 (step 0.005)
    sweep_test: int | None
    robust_natural_train: int | None      # Tables 5-6: the natural SmallCNN (Table 6's "Natural" source)
    robust_natural_epochs: int
    robust_train: int | None              # Tables 5-6: Madry and TRADES (1/lambda = 6) SmallCNNs, eps 0.3 (per stage)
    robust_epochs: int                    # paper 100 (learning rate / 10 at epoch 55)
    robust_milestones: tuple[int, ...]
    robust_steps: int                     # K in training; paper 40
    robust_step_size: float               # at eps 0.3 (scaled with eps in a ramp); paper 0.01
    robust_eval_steps: int                # paper 40 (PGD-40, step 0.01), white-box and black-box
    robust_test: int | None
    pgd_long_steps: int                   # paper 1000
    pgd_long_test: int
    strong_test: int                      # images of the strong (AutoAttack-backed) evaluation
    strong_apgd_steps: int                # iterations of APGD-CE, of each APGD-T target and of the PGD restarts
    strong_targets: int
    strong_restarts: int
    cifar: bool                           # CIFAR-10 parts (Table 4 ResNet-18, Table 5 WRN-34-10)
    cifar_test: int | None
    # Tables 5-6 budget aids (defaults: the paper's from-scratch run at eps 0.3). ``robust_eps_ramp``: the eps of
    # successive training stages (one ``train.fit`` call each, ``robust_train`` fresh images per stage, PGD
    # step ``robust_step_size * eps / 0.3``), ending at 0.3; empty = one stage at 0.3. ``robust_warm_start``:
    # start from the natural SmallCNN (Alg. 1, line 3).
    robust_eps_ramp: tuple[float, ...] = ()
    robust_warm_start: bool = False


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
    explain_images: int                   # Fig. 6
    explain_samples: int                  # integrated-gradients steps and SmoothGrad draws
    cifar: bool                           # Table 2 (VGG11 at 1/4 width, eps 0.01)
    cifar_trials: int
    cifar_epochs: int


@dataclass(frozen=True)
class Frontier:
    """Chapter 5: one accuracy-robustness frontier for every method, on chapter 3's MNIST recipe.

    Every run trains ``MLP(784, widths)`` from the same initialization for ``epochs`` epochs of Adam (``lr``,
    ``batch_size``) on the same ``train_size`` images (chapter 3's subset) with its own objective. Attacks inside
    training: ``train_steps`` steps of eps / ``step_divisor``, at ``train_eps`` for TRADES and the joint objective,
    at each ``madry_eps`` for Madry. Where these equal chapter 3's, its models are shared through the cache.
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
    test_size: int                        # the first test images, for every evaluation
    eval_eps: float                       # l_inf radius of every robust accuracy
    strong_apgd_steps: int                # the strong evaluation: APGD-CE, APGD-T (targets), PGD x restarts
    strong_targets: int
    strong_steps: int
    strong_restarts: int
    pgd_steps: int                        # the cheap evaluation beside it (TRADES Table 4: PGD-40, step 0.005)
    pgd_step_size: float
    large_eps: float                      # PGD-40 (step 0.01) here too: Madry's and TRADES's MNIST eps 0.3
    compare: bool                         # False (smoke): too little training to compare; claims not-run


SETTINGS = {
    "01_gaussian_tradeoff": {
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
    },
    "02_robust_features": {
        "smoke": RobustFeatures(
            linear_epochs=100, top_k=(10, 100, 784), figure_images=4, proxy_images=8, large_eps_steps=10,
            mle_monte_carlo=20_000, mle_kappas=(2, 10, 100), network_claims=False, cifar10=None,
            mnist=IlyasProtocol(
                architecture="mlp", train_size=400, test_size=200, epochs=2, lr=0.1, batch_size=100,
                weight_decay=0.0, milestones=(), robust_epochs=2, robust_eps=1.5, robust_steps=3,
                robust_step_size=0.5, eval_eps=(0.75, 1.5), attack_steps=5, representation_steps=10,
                representation_step_size=0.1, targeted_eps=2.0, targeted_steps=5)),
        "cpu": RobustFeatures(
            linear_epochs=100, top_k=(5, 10, 20, 50, 100, 200, 400, 784), figure_images=8, proxy_images=64,
            large_eps_steps=50, mle_monte_carlo=200_000, mle_kappas=(1.5, 2, 5, 10, 30, 100, 300, 1000),
            network_claims=True, cifar10=None,
            mnist=IlyasProtocol(
                architecture="mlp", train_size=2_000, test_size=500, epochs=20, lr=0.1, batch_size=128,
                weight_decay=5e-4, milestones=(15,), robust_epochs=15, robust_eps=1.5, robust_steps=5,
                robust_step_size=0.4, eval_eps=(0.75, 1.5), attack_steps=10, representation_steps=100,
                representation_step_size=0.15, targeted_eps=2.0, targeted_steps=20)),
        "paper": RobustFeatures(
            linear_epochs=100, top_k=(5, 10, 20, 50, 100, 150, 200, 300, 400, 500, 600, 784), figure_images=10,
            proxy_images=1_000, large_eps_steps=200, mle_monte_carlo=1_000_000,
            mle_kappas=(1.5, 2, 3, 5, 10, 30, 100, 300, 1000, 10_000), network_claims=True,
            mnist=IlyasProtocol(
                architecture="madry_cnn", train_size=50_000, test_size=10_000, epochs=50, lr=0.01, batch_size=50,
                weight_decay=0.0, milestones=(40,), robust_epochs=100, robust_eps=1.5, robust_steps=40,
                robust_step_size=0.1, eval_eps=(0.75, 1.5), attack_steps=100, representation_steps=1_000,
                representation_step_size=0.1, targeted_eps=2.0, targeted_steps=100),
            cifar10=IlyasProtocol(  # 002 Tables 3-6 (ResNet-50 there, ResNet-18 here; no data augmentation)
                architecture="resnet18", train_size=50_000, test_size=10_000, epochs=150, lr=0.1, batch_size=128,
                weight_decay=5e-4, milestones=(100,), robust_epochs=150, robust_eps=0.5, robust_steps=7,
                robust_step_size=0.1, eval_eps=(0.25, 0.5), attack_steps=100, representation_steps=1_000,
                representation_step_size=0.1, targeted_eps=0.5, targeted_steps=100)),
    },
    "03_joint_objective": {
        "smoke": JointObjective(
            mc_samples=4_000, theorem1_draws=8, corollary_dims=(100, 1_000), gd_samples=200, gd_steps=50,
            compare_trained=False, squares_train=2_000, squares_epochs=1, squares_eps=(0.2, 0.6), squares_steps=2,
            mnist_train=200, mnist_test=100, epochs=1, batch_size=100, lr=1e-3, train_steps=2, train_step_size=0.03,
            eval_steps=5, eval_step_size=0.02, trials=1, lambdas=(0.0, 1.0), figure3a_lambdas=(0.0, 1.0),
            figure3b_lambdas=(0.0,), widths=(8, 400), explain_images=2, explain_samples=5, cifar=False,
            cifar_trials=1, cifar_epochs=1),
        "cpu": JointObjective(
            mc_samples=100_000, theorem1_draws=40, corollary_dims=(100, 1_000, 10_000), gd_samples=1_000,
            gd_steps=300, compare_trained=True, squares_train=10_000, squares_epochs=15,
            squares_eps=(0.1, 0.2, 0.3, 0.5, 0.7, 1.0), squares_steps=5, mnist_train=2_000, mnist_test=1_000,
            epochs=10, batch_size=100, lr=1e-3, train_steps=5, train_step_size=0.02, eval_steps=50,
            eval_step_size=0.01, trials=2, lambdas=(0.0, 0.001, 0.01, 0.1, 1.0, 2.0),
            figure3a_lambdas=(0.0, 0.01, 0.1, 1.0, 2.0), figure3b_lambdas=(0.0, 0.1, 1.0, 2.0),
            widths=(16, 64, 400, 1024),
            explain_images=4, explain_samples=50, cifar=False, cifar_trials=1, cifar_epochs=1),
        "paper": JointObjective(
            mc_samples=1_000_000, theorem1_draws=200, corollary_dims=(100, 1_000, 10_000, 100_000),
            gd_samples=10_000, gd_steps=1_000, compare_trained=True, squares_train=100_000, squares_epochs=30,
            squares_eps=(0.05, 0.1, 0.2, 0.3, 0.35, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), squares_steps=50,
            mnist_train=2_000, mnist_test=None, epochs=100, batch_size=100, lr=1e-3, train_steps=50,
            train_step_size=0.01, eval_steps=50, eval_step_size=0.01, trials=10,
            lambdas=(0.0, 0.001, 0.01, 0.1, 1.0, 2.0), figure3a_lambdas=(0.0, 1e-4, 0.001, 0.01, 0.1, 1.0, 2.0, 5.0, 10.0),
            figure3b_lambdas=(0.0, 1e-4, 0.001, 0.01, 0.1, 1.0, 2.0, 5.0, 10.0),
            widths=(16, 32, 64, 128, 256, 400, 1024, 2048), explain_images=8, explain_samples=50, cifar=True,
            cifar_trials=10, cifar_epochs=100),
    },
    "04_trades": {
        "smoke": TradesChapter(
            toy_samples=2_000, toy_classifiers=20, fig1_points=24, fig1_steps=30, lr=0.02, natural_lr=0.05,
            dropout=0.0, warm_start=True,
            binary_natural_train=256, binary_natural_epochs=1, binary_train=128, binary_epochs=1, binary_steps=2,
            binary_test=32, lambdas=(2.0, 3.0, 4.0, 5.0), sweep_betas=(0.1, 5.0), sweep_natural_train=256,
            sweep_natural_epochs=1, sweep_train=128, sweep_epochs=1, sweep_steps=2, sweep_eval_steps=3,
            sweep_test=32, robust_natural_train=256, robust_natural_epochs=1, robust_train=128, robust_epochs=1,
            robust_milestones=(), robust_steps=2, robust_step_size=0.15, robust_eval_steps=3, robust_test=32,
            pgd_long_steps=5, pgd_long_test=8, strong_test=4, strong_apgd_steps=5, strong_targets=2,
            strong_restarts=1, cifar=False, cifar_test=None, robust_eps_ramp=(0.15, 0.3), robust_warm_start=True),
        "cpu": TradesChapter(
            toy_samples=100_000, toy_classifiers=200, fig1_points=60, fig1_steps=400, lr=0.02, natural_lr=0.05,
            dropout=0.0, warm_start=True, binary_natural_train=None, binary_natural_epochs=2, binary_train=1_000,
            binary_epochs=1, binary_steps=20, binary_test=500, lambdas=(2.0, 3.0, 4.0, 5.0),
            sweep_betas=(0.1, 1.0, 5.0), sweep_natural_train=10_000, sweep_natural_epochs=2, sweep_train=3_000,
            sweep_epochs=1, sweep_steps=10, sweep_eval_steps=40, sweep_test=500, robust_natural_train=10_000,
            robust_natural_epochs=2, robust_train=3_000, robust_epochs=1, robust_milestones=(), robust_steps=5,
            robust_step_size=0.1, robust_eval_steps=40, robust_test=300, pgd_long_steps=1000,
            pgd_long_test=32, strong_test=32, strong_apgd_steps=100, strong_targets=3, strong_restarts=1,
            cifar=False, cifar_test=None, robust_eps_ramp=(0.1, 0.2, 0.3, 0.3), robust_warm_start=True),
        "paper": TradesChapter(
            toy_samples=1_000_000, toy_classifiers=1_000, fig1_points=60, fig1_steps=1_000, lr=0.01,
            natural_lr=0.01, dropout=0.5, warm_start=False, binary_natural_train=None, binary_natural_epochs=30, binary_train=None,
            binary_epochs=30, binary_steps=20, binary_test=None, lambdas=(2.0, 3.0, 4.0, 5.0),
            sweep_betas=(0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 3.0, 4.0, 5.0), sweep_natural_train=None,
            sweep_natural_epochs=50, sweep_train=None, sweep_epochs=50, sweep_steps=20, sweep_eval_steps=40,
            sweep_test=None, robust_natural_train=None, robust_natural_epochs=100, robust_train=None,
            robust_epochs=100, robust_milestones=(55,), robust_steps=40, robust_step_size=0.01,
            robust_eval_steps=40, robust_test=None, pgd_long_steps=1000, pgd_long_test=10_000,
            strong_test=1_000, strong_apgd_steps=100, strong_targets=9, strong_restarts=5, cifar=True,
            cifar_test=None),
    },
    "05_frontier": {
        "smoke": Frontier(
            widths=(32,), train_size=200, epochs=1, batch_size=100, lr=1e-3, train_eps=0.1, train_steps=2,
            step_divisor=2, noise_sigmas=(0.3,), madry_eps=(0.1,), trades_betas=(1.0,), joint_lambdas=(2.0,),
            test_size=32, eval_eps=0.1, strong_apgd_steps=5, strong_targets=2, strong_steps=5, strong_restarts=1,
            pgd_steps=3, pgd_step_size=0.05, large_eps=0.3, compare=False),
        "cpu": Frontier(
            widths=(400,), train_size=2_000, epochs=10, batch_size=100, lr=1e-3, train_eps=0.1, train_steps=5,
            step_divisor=2.5, noise_sigmas=(0.1, 0.3), madry_eps=(0.05, 0.1, 0.2), trades_betas=(1.0, 3.0, 6.0),
            joint_lambdas=(0.5, 2.0), test_size=500, eval_eps=0.1, strong_apgd_steps=100, strong_targets=3,
            strong_steps=100, strong_restarts=1, pgd_steps=40, pgd_step_size=0.005, large_eps=0.3, compare=True),
        "paper": Frontier(
            widths=(400,), train_size=50_000, epochs=50, batch_size=100, lr=1e-3, train_eps=0.1, train_steps=40,
            step_divisor=10, noise_sigmas=(0.1, 0.2, 0.3, 0.5), madry_eps=(0.05, 0.1, 0.15, 0.2, 0.3),
            trades_betas=(0.5, 1.0, 3.0, 6.0), joint_lambdas=(0.5, 2.0, 5.0), test_size=10_000, eval_eps=0.1,
            strong_apgd_steps=100, strong_targets=9, strong_steps=100, strong_restarts=5, pgd_steps=40,
            pgd_step_size=0.005, large_eps=0.3, compare=True),
    },
}


def settings(chapter: str, profile: str):
    """The settings of `chapter` under `profile`; a clear error for an unknown one."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    if chapter not in SETTINGS:
        raise ValueError(f"no settings for chapter {chapter!r}; chapters with settings: {', '.join(SETTINGS)}")
    return SETTINGS[chapter][profile]
