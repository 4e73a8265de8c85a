"""Chapter 2's settings in the three profiles (smoke, cpu, paper): the budgets its experiments run at."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class IlyasProtocol:
    """Chapter 2: the models and constructed datasets of Ilyas et al. (002 App. C) on one dataset.

    The standard model, the l2-robust model (also 001 Fig. 3-5's l2 pair on MNIST) and the classifiers
    trained on D, D_R, D_NR, D_rand, D_det all use ``architecture`` and the SGD settings below. (001
    Fig. 3-5's l_inf pair is the natural and Madry SmallCNNs of ``tradeoffs.recipes``, shared with chapter 4.)
    """

    architecture: str                     # "mlp" (784-256-256-10) or a tradeoffs.models name
    train_size: int                       # training images (the first ones of the split)
    test_size: int                        # test images attacked (natural accuracy: the whole test set)
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
    targeted_sweep: tuple[float, ...]     # radii at which the source models' share on t is shown


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


SETTINGS = {
    "smoke": RobustFeatures(
        linear_epochs=100, top_k=(10, 100, 784), figure_images=4, proxy_images=8, large_eps_steps=10,
        mle_monte_carlo=20_000, mle_kappas=(2, 10, 100), network_claims=False, cifar10=None,
        mnist=IlyasProtocol(
            architecture="mlp", train_size=400, test_size=200, epochs=2, lr=0.1, batch_size=100,
            weight_decay=0.0, milestones=(), robust_epochs=2, robust_eps=1.5, robust_steps=3,
            robust_step_size=0.5, eval_eps=(0.75, 1.5), attack_steps=5, representation_steps=10,
            representation_step_size=0.1, targeted_eps=2.0, targeted_steps=5,
            targeted_sweep=(1.0, 2.0))),
    "cpu": RobustFeatures(
        linear_epochs=100, top_k=(5, 10, 20, 50, 100, 200, 400, 784), figure_images=8, proxy_images=64,
        large_eps_steps=50, mle_monte_carlo=200_000, mle_kappas=(1.5, 2, 5, 10, 30, 100, 300, 1000),
        network_claims=True, cifar10=None,
        mnist=IlyasProtocol(
            architecture="mlp", train_size=2_000, test_size=2_000, epochs=20, lr=0.1, batch_size=128,
            weight_decay=5e-4, milestones=(15,), robust_epochs=15, robust_eps=1.5, robust_steps=5,
            robust_step_size=0.4, eval_eps=(0.75, 1.5), attack_steps=10, representation_steps=100,
            representation_step_size=0.15, targeted_eps=4.0, targeted_steps=20,
            targeted_sweep=(1.5, 2.0, 3.0, 4.0, 5.0))),
    "paper": RobustFeatures(
        linear_epochs=100, top_k=(5, 10, 20, 50, 100, 150, 200, 300, 400, 500, 600, 784), figure_images=10,
        proxy_images=1_000, large_eps_steps=200, mle_monte_carlo=1_000_000,
        mle_kappas=(1.5, 2, 3, 5, 10, 30, 100, 300, 1000, 10_000), network_claims=True,
        mnist=IlyasProtocol(
            architecture="madry_cnn", train_size=50_000, test_size=10_000, epochs=50, lr=0.01, batch_size=50,
            weight_decay=0.0, milestones=(40,), robust_epochs=100, robust_eps=1.5, robust_steps=40,
            robust_step_size=0.1, eval_eps=(0.75, 1.5), attack_steps=100, representation_steps=1_000,
            representation_step_size=0.1, targeted_eps=2.0, targeted_steps=100,
            targeted_sweep=(1.0, 1.5, 2.0, 3.0, 4.0)),
        cifar10=IlyasProtocol(  # 002 Tables 3-6 (ResNet-50 there, ResNet-18 here; no data augmentation)
            architecture="resnet18", train_size=50_000, test_size=10_000, epochs=150, lr=0.1, batch_size=128,
            weight_decay=5e-4, milestones=(100,), robust_epochs=150, robust_eps=0.5, robust_steps=7,
            robust_step_size=0.1, eval_eps=(0.25, 0.5), attack_steps=100, representation_steps=1_000,
            representation_step_size=0.1, targeted_eps=0.5, targeted_steps=100,
            targeted_sweep=(0.25, 0.5, 1.0))),
}

# The paper profile with every size capped (tradeoffs.dryrun): its code paths, in seconds.
_DRY_RUN_PROTOCOL = {"train_size": 16, "test_size": 8, "representation_steps": 2, "targeted_steps": 2}
DRY_RUN = dataclasses.replace(
    SETTINGS["paper"], top_k=(5, 784), figure_images=2, proxy_images=4, large_eps_steps=2,
    mle_monte_carlo=20_000, mle_kappas=(2, 10, 100),
    mnist=dataclasses.replace(SETTINGS["paper"].mnist, **_DRY_RUN_PROTOCOL),
    cifar10=dataclasses.replace(SETTINGS["paper"].cifar10, **_DRY_RUN_PROTOCOL))
