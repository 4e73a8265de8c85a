"""Tests for tradeoffs.models: output shapes for every model and input kind, binary margins,
parameter counts against the known values, input checks, dropout / BatchNorm in eval mode, the
registry, and one training batch of every model under every training objective of tradeoffs.train
(on CPU, 2 examples, 1 attack step: the only place the paper profile's large models are trained)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from tradeoffs.models import (
    MLP,
    MODELS,
    VGG11,
    WRN34_10,
    LinearClassifier,
    MadryCNN,
    ResNet18,
    SmallCNN,
    TradesNet,
    build,
    fixed_linear,
)

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)

# name, build kwargs, input shape (without N): every model of the registry, in its input kind
CASES = [
    ("mlp", dict(in_features=784, widths=(16, 8)), MNIST),
    ("mlp", dict(in_features=3 * 32 * 32, widths=(16,)), CIFAR),
    ("small_cnn", {}, MNIST),
    ("trades_net", {}, MNIST),
    ("madry_cnn", {}, MNIST),
    ("vgg11", dict(width=0.25), CIFAR),
    ("resnet18", {}, CIFAR),
    ("wrn34_10", {}, CIFAR),
]
IDS = [f"{name}-{'x'.join(map(str, shape))}" for name, _, shape in CASES]


pytestmark = pytest.mark.usefixtures("single_thread")


_PRISTINE: dict = {}


@pytest.fixture(autouse=True, scope="module")
def forget_models():
    """Free the cached models (WRN-34-10 alone is 185 MB) when this module's tests are done."""
    yield
    _PRISTINE.clear()


def fresh(name: str, **kwargs) -> nn.Module:
    """A freshly initialized model; each (name, kwargs) is built once (WRN-34-10's initialization
    takes about a second) and deep-copied for every test, so no test sees another's updates."""
    key = (name, tuple(sorted(kwargs.items())))
    if key not in _PRISTINE:
        torch.manual_seed(0)
        _PRISTINE[key] = build(name, **kwargs)
    return copy.deepcopy(_PRISTINE[key])


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name, kwargs, shape", CASES, ids=IDS)
def test_output_shapes_logits_and_margin(name, kwargs, shape):
    x = torch.rand(2, *shape)
    with torch.no_grad():
        assert fresh(name, **kwargs).eval()(x).shape == (2, 10)
        if name == "wrn34_10":                      # the same code at widen 1: 0.5M instead of 46M parameters
            kwargs = {**kwargs, "widen": 1}
        binary = fresh(name, **{**kwargs, "classes": 1}).eval()
        assert binary(x).shape == (2,)              # a margin, not [N, 1]
        assert binary(x[:1]).shape == (1,)          # and not a 0-d scalar for N = 1
        assert fresh(name, **{**kwargs, "classes": 3}).eval()(x).shape == (2, 3)


def test_linear_and_mlp_on_flat_inputs():
    """The 2-D uniform-squares experiment of paper 003 (1 hidden layer of 100 units, binary)."""
    assert MLP(2, (100,), classes=1)(torch.rand(5, 2)).shape == (5,)
    assert MLP(784, ())(torch.rand(5, *MNIST)).shape == (5, 10)   # no hidden layer: multinomial logistic
    assert build("linear", d=784)(torch.rand(5, *MNIST)).shape == (5,)


def test_vgg11_width_scales_every_layer():
    convs = [m for m in VGG11(width=0.25).modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64, 128, 128, 128, 128]
    full = [m.out_channels for m in VGG11().modules() if isinstance(m, nn.Conv2d)]
    assert full == [64, 128, 256, 256, 512, 512, 512, 512]


@pytest.mark.parametrize("name, kwargs, shape, width", [
    ("small_cnn", {}, MNIST, 200), ("trades_net", {}, MNIST, 50), ("madry_cnn", {}, MNIST, 1024),
    ("vgg11", dict(width=0.25), CIFAR, 128), ("resnet18", {}, CIFAR, 512), ("wrn34_10", {}, CIFAR, 640),
])
def test_representation_layer_is_the_input_of_the_last_linear(name, kwargs, shape, width):
    """Every image network is features -> flatten -> classifier, the last classifier module the output
    Linear: what the representation-matching of paper 002 (App. C) needs."""
    model = fresh(name, **kwargs).eval()
    x = torch.rand(2, *shape)
    with torch.no_grad():
        g = model.classifier[:-1](model.features(x).flatten(1))
        assert g.shape == (2, width)
        assert isinstance(model.classifier[-1], nn.Linear)
        torch.testing.assert_close(model.classifier[-1](g), model(x))


# ----------------------------------------------------------------------------- parameter counts


def test_parameter_counts_of_the_known_networks():
    # SmallCNN (TRADES small_cnn.py), weights + biases, no padding (28 -> 26 -> 24 -> 12 -> 10 -> 8 -> 4):
    #   conv1 1->32 3x3: 1*32*9 + 32 = 320          conv2 32->32: 32*32*9 + 32 = 9,248
    #   conv3 32->64:    32*64*9 + 64 = 18,496      conv4 64->64: 64*64*9 + 64 = 36,928
    #   fc1 1024->200: 204,800 + 200 = 205,000      fc2 200->200: 40,200     fc3 200->10: 2,010
    #   total 320 + 9,248 + 18,496 + 36,928 + 205,000 + 40,200 + 2,010 = 312,202
    assert n_params(SmallCNN()) == 312_202
    assert n_params(SmallCNN(classes=1)) == 312_202 - 2_010 + 201
    # Madry et al. MNIST (SAME padding, 28 -> 14 -> 7): conv 5x5 1->32: 832; conv 5x5 32->64: 51,264;
    #   fc 3136->1024: 3,212,288; fc 1024->10: 10,250; total 3,274,634
    assert n_params(MadryCNN()) == 3_274_634
    # TRADES net_mnist.Net (the PyTorch MNIST example): conv 5x5 1->10: 260; conv 5x5 10->20: 5,020;
    #   fc 320->50: 16,050; fc 50->10: 510; total 21,840 (Net_binary: fc 50->1: 51, total 21,381)
    assert n_params(TradesNet()) == 21_840
    assert n_params(TradesNet(classes=1)) == 21_381
    # Suggala et al. 3 hidden layers (512, 512, 320): 401,920 + 262,656 + 164,160 + 3,210 = 831,946
    assert n_params(MLP(784, (512, 512, 320))) == 831_946
    # CIFAR VGG11: 9,220,480 conv + 5,504 BatchNorm + 5,130 fc = 9,231,114 (pytorch-cifar's 9.23M);
    #   a quarter of the width (16, 32, 64, 64, 128 x 4 channels): 577,120 + 1,376 + 1,290 = 579,786
    assert n_params(VGG11()) == 9_231_114
    assert n_params(VGG11(width=0.25)) == 579_786
    # The standard values: ResNet-18 (CIFAR stem) 11.17M, WRN-34-10 46.16M
    assert n_params(ResNet18()) == 11_173_962
    assert n_params(fresh("wrn34_10")) == 46_160_474


def test_resnet18_has_the_cifar_stem_and_wrn_its_depth():
    stem = ResNet18().features[0]
    assert (stem.kernel_size, stem.stride) == ((3, 3), (1, 1))
    wrn = fresh("wrn34_10")
    convs = [m for m in wrn.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    # depth 34: (34 - 4) / 6 = 5 blocks of two 3x3 convs in each of 3 groups, after a 3x3 stem conv
    assert len(convs) == 1 + 3 * 5 * 2
    assert sorted({c.out_channels for c in convs}) == [16, 160, 320, 640]
    shortcuts = [m for m in wrn.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert [(c.in_channels, c.out_channels) for c in shortcuts] == [(16, 160), (160, 320), (320, 640)]


# ----------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("model, bad", [
    (SmallCNN(), torch.rand(2, *CIFAR)),
    (TradesNet(), torch.rand(2, 1, 32, 32)),
    (MadryCNN(), torch.rand(1, 28, 28)),                 # a missing batch dimension
    (ResNet18(), torch.rand(2, *MNIST)),
    (VGG11(width=0.25), torch.rand(2, 3, 28, 28)),
], ids=["small_cnn-cifar", "trades_net-32px", "madry_cnn-no-batch", "resnet18-mnist", "vgg11-28px"])
def test_wrong_input_shape_is_a_clear_error(model, bad):
    with pytest.raises(ValueError, match=r"expects images of shape \[N, \d, \d\d, \d\d\]"):
        model(bad)


def test_wrong_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="784 features"):
        MLP(784, (8,))(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="classes"):
        SmallCNN(classes=0)
    with pytest.raises(ValueError, match="width"):
        VGG11(width=0)
    with pytest.raises(ValueError, match="6n"):
        WRN34_10(depth=33)


def test_build_names_and_unknown_name():
    assert set(MODELS) >= {"linear", "mlp", "small_cnn", "madry_cnn", "vgg11", "resnet18", "wrn34_10"}
    assert isinstance(build("small_cnn", classes=1), SmallCNN)
    assert isinstance(build("linear", d=3), LinearClassifier)
    assert build("vgg11", width=0.5).width == 0.5
    with pytest.raises(ValueError, match="unknown model 'resnet50'") as err:
        build("resnet50")
    for name in MODELS:
        assert name in str(err.value)
    with pytest.raises(TypeError):
        build("small_cnn", widht=2)                     # a misspelt option is not silently dropped


# ----------------------------------------------------------------------------- dropout, BatchNorm, init


@pytest.mark.parametrize("cls", [SmallCNN, TradesNet])
def test_dropout_only_in_train_mode(cls):
    torch.manual_seed(0)
    model = cls()
    with torch.no_grad():
        for p in model.parameters():                    # SmallCNN's last layer starts at 0: make it live
            p.normal_(0, 0.1)
    x = torch.rand(4, *MNIST)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.allclose(model(x), model(x))


@pytest.mark.parametrize("name, kwargs", [("vgg11", dict(width=0.25)), ("resnet18", {})])
def test_batchnorm_eval_mode_is_per_example(name, kwargs):
    """In eval mode an example's logits do not depend on the rest of its batch (running statistics)."""
    model = fresh(name, **kwargs)
    x = torch.rand(3, *CIFAR)
    model.train()
    with torch.no_grad():
        model(torch.rand(2, *CIFAR))                    # move the running statistics off their init
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:1], model(x[:1]), rtol=1e-4, atol=1e-5)


def test_small_cnn_starts_as_released():
    """TRADES small_cnn.py initializes the last layer to zero: a fresh model outputs 0 everywhere."""
    assert torch.equal(SmallCNN()(torch.rand(3, *MNIST)), torch.zeros(3, 10))


# ----------------------------------------------------------------------------- one training batch


EPS = 0.1


def objectives(train) -> dict:
    """Every objective of tradeoffs.train with a single attack step (the paper profile's code paths)."""
    return {
        "standard": train.standard(),
        "adversarial": train.adversarial(eps=EPS, steps=1),
        "trades": train.trades(beta=1.0, eps=EPS, step_size=0.05, steps=1),
        "noise": train.noise(sigma=0.1),
        "joint": train.joint(lam=2.0, eps=EPS, steps=1),   # both terms (lam = 1 is Madry)
    }


OBJECTIVES = ["standard", "adversarial", "trades", "noise", "joint"]
TRAIN_CASES = [
    ("linear", dict(d=784), MNIST, True),
    ("mlp", dict(in_features=784, widths=(16, 8)), MNIST, False),
    ("small_cnn", {}, MNIST, False),
    ("small_cnn", dict(classes=1), MNIST, True),
    ("trades_net", {}, MNIST, False),
    ("trades_net", dict(classes=1), MNIST, True),
    ("madry_cnn", {}, MNIST, False),
    ("vgg11", dict(width=0.25), CIFAR, False),
    ("resnet18", {}, CIFAR, False),
    # The only place WRN-34-10 is trained outside a GPU: 2 examples, 1 attack step, 1 to 2.5 CPU-seconds
    # an objective. Deliberately not marked slow or skipped, so `make test` (plain pytest) runs it.
    ("wrn34_10", {}, CIFAR, False),
]
TRAIN_IDS = [name + ("-binary" if binary and name != "linear" else "") for name, _, _, binary in TRAIN_CASES]


def one_batch(model: nn.Module, objective, shape, binary: bool) -> list[float]:
    """One step of ``fit`` on 2 examples; returns the losses the objective produced."""
    from tradeoffs.train import fit

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, *shape, generator=g)
    y = torch.tensor([1, -1]) if binary else torch.tensor([3, 7])
    losses: list[float] = []

    def recording(model, x, y):
        loss = objective(model, x, y)
        losses.append(loss.item())
        return loss

    fit(model, x, y, recording, epochs=1, batch_size=2, lr=0.05, show_progress=False)
    return losses


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("name, kwargs, shape, binary", TRAIN_CASES, ids=TRAIN_IDS)
def test_one_training_batch(name, kwargs, shape, binary, objective):
    from tradeoffs import train

    torch.manual_seed(0)
    model = fresh(name, **kwargs)
    before = [p.detach().clone() for p in model.parameters()]
    losses = one_batch(model, objectives(train)[objective], shape, binary)

    assert len(losses) == 1 and math.isfinite(losses[0])
    if objective != "joint":                         # joint subtracts (lam - 1) x the clean loss
        assert losses[0] >= 0
    after = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    changed = [not torch.equal(b, a) for b, a in zip(before, after)]
    assert changed[-2] or changed[-1], "the output layer (weight, bias) did not move"
    if name != "small_cnn":
        # the gradient reaches the first layer (SmallCNN's zero-initialized last layer, as released,
        # blocks it at the first step: only its last layer moves then)
        assert changed[0], "the first layer did not move"
    assert not model.training                           # fit returns the model in eval mode


@pytest.mark.parametrize("name", ["small_cnn", "trades_net"])
def test_binary_nets_train_with_the_hinge_loss(name):
    """TRADES Table 3 trains the binary "1 vs 3" net with the hinge loss."""
    from tradeoffs import train

    model = fresh(name, classes=1)
    for objective in (train.standard(loss=train.hinge_loss),
                      train.adversarial(eps=EPS, steps=1, loss=train.hinge_loss)):
        (loss,) = one_batch(model, objective, MNIST, binary=True)
        assert math.isfinite(loss)


def test_linear_classifier_and_fixed_linear():
    clf = LinearClassifier(5)
    with torch.no_grad():
        clf.weight.copy_(torch.tensor([3.0, 4.0, 0, 0, 0]))
        clf.bias.fill_(-1.0)
    x = torch.tensor([[1.0, 1.0, 9, 9, 9]])
    assert clf(x).item() == pytest.approx(3 / 5 + 4 / 5 - 1)
    fixed = fixed_linear([1.0, -2.0], bias=0.5)
    assert fixed(torch.tensor([[1.0, 1.0]])).item() == pytest.approx(-0.5)
