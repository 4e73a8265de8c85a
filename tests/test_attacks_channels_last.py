"""The attacks and the TRADES loss run a user's standard-format CNN with channels-last conv weights for
the duration of the call (``attacks._fast_forward``): same numbers up to float rounding, the model left
exactly as it was (parameters, their layout, ``requires_grad`` flags, gradients, modes), also when the
call fails, a model that cannot take channels-last activations run as it is, the random stream kept."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tradeoffs import attacks, train

pytestmark = pytest.mark.usefixtures("single_thread")


def plain_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * 4 * 4, 5))


class ViewCNN(nn.Module):
    """Flattens with ``.view``, which a channels-last activation refuses."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 6, 3), nn.Linear(6 * 10 * 10, 5)

    def forward(self, x):
        h = F.relu(self.conv(x))
        return self.fc(h.view(h.size(0), -1))


def data(n: int = 16):
    torch.manual_seed(1)
    return torch.rand(n, 1, 12, 12), torch.randint(0, 5, (n,))


ATTACKS = {
    "fgsm": lambda m, x, y, **kw: attacks.fgsm(m, x, y, eps=0.1, **kw),
    "pgd": lambda m, x, y, **kw: attacks.pgd(m, x, y, eps=0.1, steps=5, restarts=2, **kw),
    "pgd_l2": lambda m, x, y, **kw: attacks.pgd(m, x, y, eps=0.5, norm="l2", steps=5, **kw),
    "trades": lambda m, x, y, **kw: attacks.trades_attack(m, x, eps=0.1, steps=5),
}


def as_standard(model: nn.Module) -> nn.Module:
    """The same model, marked so that ``_fast_forward`` runs it as it is."""
    attacks._CHANNELS_LAST_WORKS[model] = False
    return model


def test_the_fast_path_is_taken_for_a_plain_cnn_only():
    x, _ = data()
    assert attacks._fast_forward(plain_cnn(), x) is not None
    assert not isinstance(attacks._fast_forward(plain_cnn(), x), nn.Module)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(144, 5))
    assert attacks._fast_forward(mlp, x) is mlp
    cl = plain_cnn().to(memory_format=torch.channels_last)
    assert attacks._fast_forward(cl, x) is cl


def test_input_gradients_equal_up_to_rounding():
    x, y = data()
    fast, slow = plain_cnn().eval(), as_standard(plain_cnn().eval())
    g_fast = attacks._input_grad(attacks._fast_forward(fast, x), x, y, attacks.default_loss)
    g_slow = attacks._input_grad(attacks._fast_forward(slow, x), x, y, attacks.default_loss)
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", ATTACKS)
def test_attacks_equal_up_to_rounding(name):
    x, y = data()
    torch.manual_seed(2)
    fast = ATTACKS[name](plain_cnn(), x, y)
    torch.manual_seed(2)
    slow = ATTACKS[name](as_standard(plain_cnn()), x, y)
    # a sign step may flip where a gradient entry is zero up to rounding
    assert (fast - slow).abs().gt(1e-5).float().mean() < 0.01


def model_state(model: nn.Module):
    return ([(id(p), p.data_ptr(), p.stride(), p.requires_grad, p.grad) for p in model.parameters()],
            [m.training for m in model.modules()])


@pytest.mark.parametrize("name", ATTACKS)
def test_the_model_is_left_exactly_as_it_was(name):
    model, (x, y) = plain_cnn().train(), data()
    model[0].weight.requires_grad_(False)  # a frozen layer stays frozen, the others trainable
    before = model_state(model)
    ATTACKS[name](model, x, y)
    assert model_state(model) == before


@pytest.mark.parametrize("name", ["fgsm", "pgd", "pgd_l2"])
def test_the_model_is_left_as_it_was_when_the_call_fails(name):
    model, (x, y) = plain_cnn().train(), data()
    model[2].weight.requires_grad_(False)
    before = model_state(model)

    def failing_loss(logits, labels):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        ATTACKS[name](model, x, y, loss_fn=failing_loss)
    assert model_state(model) == before


def test_tied_conv_weights_stay_tied():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), conv, nn.ReLU(), conv, nn.Flatten(),
                          nn.Linear(3 * 12 * 12, 5))
    x, _ = data()
    forward = attacks._fast_forward(model, x)
    assert not isinstance(forward, nn.Module)
    torch.testing.assert_close(forward(x), model(x), rtol=1e-5, atol=1e-6)


def test_a_model_that_needs_the_standard_layout_runs_as_it_is():
    x, y = data()
    model = ViewCNN()
    torch.manual_seed(3)
    x_adv = attacks.pgd(model, x, y, eps=0.1, steps=4)
    assert attacks._CHANNELS_LAST_WORKS[model] is False
    torch.manual_seed(3)
    assert torch.equal(x_adv, attacks.pgd(model, x, y, eps=0.1, steps=4))


class NoisyInput(nn.Module):
    """Draws random numbers in eval mode too (the probe of the layout must not consume them)."""

    def forward(self, x):
        return x + 0.01 * torch.randn_like(x)


def test_reruns_are_bit_identical_and_the_probe_keeps_the_random_stream():
    x, y = data()
    model = nn.Sequential(NoisyInput(), *plain_cnn())
    runs = []
    for _ in range(2):  # the first call probes the layout, the second does not
        torch.manual_seed(4)
        runs.append(attacks.pgd(model, x, y, eps=0.1, steps=4))
    assert torch.equal(runs[0], runs[1])


def test_trades_loss_gradients_equal_up_to_rounding_and_keep_the_parameter_layout():
    x, y = data()
    grads = []
    for model in (plain_cnn(), as_standard(plain_cnn())):
        torch.manual_seed(5)
        train.trades_loss(model.train(), x, y, beta=6.0, eps=0.1, step_size=0.02, steps=3).backward()
        assert all(p.grad.is_contiguous() == p.is_contiguous() for p in model.parameters())
        grads.append([p.grad for p in model.parameters()])
    for fast, slow in zip(*grads):
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-6)
