"""Models. All take inputs as tensors [N, ...] and return logits (a margin [N] for binary models).

``build(name, **kwargs)`` makes any of them by name (``MODELS`` lists the names).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LinearClassifier(nn.Module):
    """f(x) = u . x + b, by default with u = w / ||w||_2: a hyperplane at signed distance -b from 0.

    Fixing ||u|| = 1 makes the margin a distance, so a loss's temperature has a meaning and the
    hyperplane found is comparable with the closed forms of
    ``tradeoffs.chapters.ch01_gaussian_tradeoff.gaussian``. ``unit_norm=False`` gives the plain f(x) = w . x +
    b.
    """

    def __init__(self, d: int, bias: bool = True, unit_norm: bool = True):
        super().__init__()
        self.unit_norm = unit_norm
        self.weight = nn.Parameter(torch.randn(d) / d**0.5)
        if bias:
            self.bias = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("bias", torch.zeros(()))  # moves with .to(device)

    @property
    def direction(self) -> torch.Tensor:
        """The unit normal u of the hyperplane."""
        return self.weight / self.weight.norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ (self.direction if self.unit_norm else self.weight) + self.bias


def fixed_linear(weight, bias: float = 0.0) -> LinearClassifier:
    """The linear classifier f(x) = weight . x + bias with the given (not trained) weights."""
    weight = torch.as_tensor(weight, dtype=torch.float32)
    model = LinearClassifier(weight.numel(), bias=False, unit_norm=False)
    with torch.no_grad():
        model.weight.copy_(weight)
        model.bias.fill_(float(bias))
    return model.eval()


# ----------------------------------------------------------------------------- the papers' networks
#
# Every network below takes images in [0, 1] (no normalization layer inside: an attack's eps-ball is
# then in the units of the data), checks their shape, and returns logits [N, classes]; with
# ``classes=1`` it returns the margin f(x) of shape [N] (sign(f) is the predicted label in {-1, +1}),
# the form ``tradeoffs.attacks.default_loss`` and ``tradeoffs.train.hinge_loss`` expect.

MNIST_SHAPE = (1, 28, 28)
CIFAR_SHAPE = (3, 32, 32)


def _check_classes(classes: int) -> int:
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive int (1 gives a binary margin [N]), got {classes!r}")
    return classes


def _margin_or_logits(out: torch.Tensor, classes: int) -> torch.Tensor:
    return out.squeeze(1) if classes == 1 else out


class _ImageClassifier(nn.Module):
    """Shared structure of the image networks: ``features`` (a module: image -> feature maps or vector),
    then ``classifier`` (an ``nn.Sequential`` on the flattened features, ending in the output Linear).
    So ``classifier[:-1](features(x).flatten(1))`` is every network's representation layer (the input of
    its last linear layer). The forward checks the input shape and squeezes a single output to a margin.

    Speed on CPU (measured by ``make bench``): every network stores its conv weights and takes its input
    in the channels-last memory layout (oneDNN's native one; about 1.3x for an attack step and 1.4x for
    a training step of the SmallCNN on 2 cores), uses in-place ReLUs, and applies the ReLU after a
    max-pool rather than before it where the paper's network has ReLU-then-pool: max and ReLU commute,
    so outputs and gradients are the same, on a quarter of the elements. The layout and the in-place
    ReLU change no number beyond float rounding; the state_dict keys are those of the plain layout.
    """

    input_shape: tuple[int, int, int]
    features: nn.Module
    classifier: nn.Sequential

    def __init__(self, classes: int):
        super().__init__()
        self.classes = _check_classes(classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise ValueError(f"{type(self).__name__} expects images of shape [N, {c}, {h}, {w}] in [0, 1], "
                             f"got {list(x.shape)}")
        return _margin_or_logits(self.logits(x.contiguous(memory_format=torch.channels_last)), self.classes)


class MLP(nn.Module):
    """Fully connected ReLU network: flatten, then Linear + ReLU per hidden width, then a Linear output.

    Suggala et al. (paper 003), App. "network architectures": on MNIST a 1-hidden-layer network (100 or
    400 hidden units, Fig. 2a, 4-5) and a 3-hidden-layer network with (512, 512, 320) units (Table 1,
    Fig. 3, 6), ReLU activations; capacity is varied through the widths. ``MLP(784, (512, 512, 320))``.
    Any input [N, ...] whose trailing dimensions hold ``in_features`` numbers is accepted (the 2-D
    uniform-squares experiment uses ``MLP(2, (100,), classes=1)``). PyTorch's default initialization.
    """

    def __init__(self, in_features: int, widths: Sequence[int], classes: int = 10):
        super().__init__()
        if in_features < 1 or any(w < 1 for w in widths):
            raise ValueError(f"in_features and widths must be positive, got {in_features}, {tuple(widths)}")
        self.in_features = in_features
        self.classes = _check_classes(classes)
        layers: list[nn.Module] = []
        sizes = [in_features, *widths]
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or math.prod(x.shape[1:]) != self.in_features:
            raise ValueError(f"MLP expects inputs [N, ...] with {self.in_features} features each, "
                             f"got {list(x.shape)}")
        return _margin_or_logits(self.net(x.flatten(1)), self.classes)


class SmallCNN(_ImageClassifier):
    """The TRADES MNIST network (paper 004, Sec. 5.3 and Tables 5-6: "the CNN architecture in [CW17] with
    four convolutional layers, followed by three fully-connected layers").

    Layer for layer ``models/small_cnn.py`` of the official release (github.com/yaodongyu/TRADES), i.e.
    Carlini & Wagner's MNIST net: conv 3x3 32, conv 3x3 32, maxpool 2, conv 3x3 64, conv 3x3 64,
    maxpool 2, fc 200, dropout 0.5, fc 200, fc ``classes``, ReLU after every hidden layer (no padding:
    28 -> 26 -> 24 -> 12 -> 10 -> 8 -> 4, so the first fc sees 64 * 4 * 4 = 1024 features).
    Initialization as released: Kaiming-normal conv weights, zero conv biases, and a zero last layer
    (so a fresh model outputs 0 for every input and only the last layer gets a gradient at the first
    step). Dropout is active in ``train()`` mode only; ``tradeoffs.attacks`` attack in ``eval()`` mode.
    Input [N, 1, 28, 28].
    """

    input_shape = MNIST_SHAPE

    def __init__(self, classes: int = 10, dropout: float = 0.5):
        super().__init__(classes)
        self.features = nn.Sequential(  # ReLU after the pooling: see the docstring
            nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True), nn.Conv2d(32, 32, 3), nn.MaxPool2d(2, 2),
            nn.ReLU(inplace=True), nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True), nn.Conv2d(64, 64, 3),
            nn.MaxPool2d(2, 2), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Linear(64 * 4 * 4, 200), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(200, 200), nn.ReLU(inplace=True),
            nn.Linear(200, classes),
        )
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.classifier[-1].weight)
        nn.init.zeros_(self.classifier[-1].bias)
        self.to(memory_format=torch.channels_last)


class TradesNet(_ImageClassifier):
    """The small MNIST CNN of TRADES Tables 3 and 4 (paper 004, Sec. 5.1-5.2: "a CNN with two convolutional
    layers, followed by two fully-connected layers"; output size 1 for the binary "1 vs 3" Table 3,
    10 for the 1/lambda sweep of Table 4).

    Layer for layer ``Net`` / ``Net_binary`` of ``models/net_mnist.py`` in the official release
    (github.com/yaodongyu/TRADES; ``train_trades_mnist_binary.py`` trains ``Net_binary``), which is the
    PyTorch MNIST example: conv 5x5 10, maxpool 2, ReLU, conv 5x5 20, channel dropout 0.5, maxpool 2,
    ReLU, fc 50, ReLU, dropout 0.5, fc ``classes`` (no padding: 28 -> 24 -> 12 -> 8 -> 4, 20 * 4 * 4 =
    320 features). It is not ``MadryCNN`` (that one has 32/64 channels, padding and fc 1024).
    PyTorch's default initialization, as released. Input [N, 1, 28, 28].
    """

    input_shape = MNIST_SHAPE

    def __init__(self, classes: int = 10, dropout: float = 0.5):
        super().__init__(classes)
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Conv2d(10, 20, 5), nn.Dropout2d(dropout), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Linear(320, 50), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                        nn.Linear(50, classes))
        self.to(memory_format=torch.channels_last)


class MadryCNN(_ImageClassifier):
    """Madry et al.'s MNIST network (``model.py`` of github.com/MadryLab/mnist_challenge, "adapted from
    the TensorFlow tutorial"); Tsipras et al. (paper 001, App. A) use the same one for MNIST.

    conv 5x5 32 (SAME padding), ReLU, maxpool 2, conv 5x5 64 (SAME), ReLU, maxpool 2, fc 1024, ReLU,
    fc ``classes`` (28 -> 14 -> 7, so the first fc sees 64 * 7 * 7 = 3136 features).
    One difference: PyTorch's default initialization, not the release's TensorFlow truncated-normal
    (std 0.1) weights and 0.1 biases (which it pairs with Adam at lr 1e-4, ``train.py``), so that all
    MNIST networks here start from the same kind of initialization. Input [N, 1, 28, 28].
    """

    input_shape = MNIST_SHAPE

    def __init__(self, classes: int = 10):
        super().__init__(classes)
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.MaxPool2d(2, 2), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2, 2), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 1024), nn.ReLU(inplace=True),
                                        nn.Linear(1024, classes))
        self.to(memory_format=torch.channels_last)


VGG11_CONFIG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(_ImageClassifier):
    """VGG11 for CIFAR-10 with every layer's channel count scaled by ``width`` (Suggala et al., paper 003,
    Sec. 5 and App.: "By a capacity scale of k, we mean that we use k times the number of units in each
    layer of original VGG network"; Table 2 uses k = 1/4, Fig. 5 varies k).

    The usual CIFAR form of VGG-A (Simonyan & Zisserman 2015, config "A"; as in the widely used
    pytorch-cifar code): eight 3x3 convs (64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M) each
    followed by BatchNorm and ReLU, five 2x2 maxpools (32 -> 1), then one Linear layer to ``classes``
    (the ImageNet VGG's three 4096-unit fc layers are not used on 32x32 inputs; the paper does not say
    which head it used). Channels are ``max(1, round(c * width))``; width=1 has 9,231,114 parameters.
    In ``train()`` mode BatchNorm needs at least 2 examples per batch. Input [N, 3, 32, 32].
    """

    input_shape = CIFAR_SHAPE

    def __init__(self, width: float = 1.0, classes: int = 10):
        super().__init__(classes)
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        self.width = width
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG11_CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                c_out = max(1, round(int(v) * width))
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(c_in, classes))
        self.to(memory_format=torch.channels_last)


class _ResNetBlock(nn.Module):
    """The basic residual block of He et al. (2016): two 3x3 conv + BN, a projection shortcut when the
    shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(_ImageClassifier):
    """ResNet-18 in its CIFAR-10 form, the TRADES CIFAR-10 model of Table 4 (paper 004, Sec. 5.2: "We apply
    ResNet-18 [HZRS16]").

    He et al. (2016) basic blocks [2, 2, 2, 2] with 64, 128, 256, 512 channels and strides 1, 2, 2, 2,
    but with the CIFAR stem (one 3x3 conv, stride 1, no maxpool) instead of torchvision's ImageNet stem
    (7x7 stride 2 + maxpool), a 4x4 average pool and one Linear layer, as in the widely used
    pytorch-cifar code (the paper does not describe its stem; on 32x32 inputs the ImageNet stem
    would leave 1x1 feature maps): 11,173,962 parameters. PyTorch's default initialization.
    Input [N, 3, 32, 32].
    """

    input_shape = CIFAR_SHAPE

    def __init__(self, classes: int = 10):
        super().__init__(classes)
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(64),
                                   nn.ReLU()]
        c_in = 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_ResNetBlock(c_in, c_out, stride), _ResNetBlock(c_out, c_out, 1)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Sequential(nn.Linear(512, classes))
        self.to(memory_format=torch.channels_last)


class _WideBlock(nn.Module):
    """The pre-activation block of Zagoruyko & Komodakis (2016): BN-ReLU-conv3x3, BN-ReLU-conv3x3; a 1x1
    conv shortcut on the pre-activated input when the shape changes (as in TRADES' wideresnet.py)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if c_in != c_out or stride != 1:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WRN34_10(_ImageClassifier):
    """WideResNet-34-10 (Zagoruyko & Komodakis 2016), the CIFAR-10 model of Madry et al. and of TRADES
    Tables 5-7 (paper 004, Sec. 5.3: "the wide residual network WRN-34-10 [ZK16]").

    Following ``models/wideresnet.py`` of the official TRADES release: a 3x3 conv to 16 channels, three
    groups of (34 - 4) / 6 = 5 pre-activation blocks with 160, 320, 640 channels and strides 1, 2, 2,
    BN-ReLU, 8x8 average pool, one Linear layer; no dropout; conv weights N(0, 2 / (k*k*c_out)),
    BatchNorm (1, 0), zero Linear bias. The release also builds a ``sub_block1`` that its forward never
    calls (a leftover of the TensorFlow port); it is left out, so the parameter count is the model's:
    46,160,474. Input [N, 3, 32, 32].
    """

    input_shape = CIFAR_SHAPE

    def __init__(self, classes: int = 10, depth: int = 34, widen: int = 10):
        super().__init__(classes)
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        channels = (16, 16 * widen, 32 * widen, 64 * widen)
        layers: list[nn.Module] = [nn.Conv2d(3, channels[0], 3, stride=1, padding=1, bias=False)]
        for c_in, c_out, stride in zip(channels, channels[1:], (1, 2, 2)):
            layers.append(_WideBlock(c_in, c_out, stride))
            layers += [_WideBlock(c_out, c_out, 1) for _ in range(n - 1)]
        layers += [nn.BatchNorm2d(channels[3]), nn.ReLU(), nn.AdaptiveAvgPool2d(1)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(channels[3], classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.classifier[-1].bias)
        self.to(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------- registry

MODELS: dict[str, Callable[..., nn.Module]] = {
    "linear": LinearClassifier,
    "mlp": MLP,
    "small_cnn": SmallCNN,
    "trades_net": TradesNet,
    "madry_cnn": MadryCNN,
    "vgg11": VGG11,
    "resnet18": ResNet18,
    "wrn34_10": WRN34_10,
}


def build(name: str, **kwargs) -> nn.Module:
    """A fresh model by name, e.g. ``build("mlp", in_features=784, widths=(512, 512, 320))`` or
    ``build("small_cnn", classes=1)``; the names are the keys of ``MODELS``."""
    try:
        cls = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}") from None
    return cls(**kwargs)
