"""tradeoffs.explain: gradient, SmoothGrad and integrated gradients against a linear model's exact maps,
integrated gradients' completeness on a ReLU net, and the roughness measure."""

import torch
from tradeoffs import explain


def linear(weight: torch.Tensor) -> torch.nn.Module:
    """f(x) = W x on flattened inputs, W = ``weight`` [K, d]."""
    k, d = weight.shape
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, k, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(weight)
    return model


def test_explanations_of_a_linear_model():
    torch.manual_seed(1)
    weight = torch.randn(4, 1 * 6 * 6)
    model = linear(weight)
    x, target = torch.rand(3, 1, 6, 6), torch.tensor([0, 2, 3])
    expected = weight[target].reshape(3, 1, 6, 6)
    assert torch.allclose(explain.gradient(model, x, target), expected)
    assert torch.allclose(explain.smoothgrad(model, x, target, sigma=0.5, samples=4), expected, atol=1e-6)
    ig = explain.integrated_gradients(model, x, target, steps=10)
    assert torch.allclose(ig, x * expected, atol=1e-6)
    # completeness: the attributions sum to f(x) - f(baseline)
    assert torch.allclose(ig.flatten(1).sum(1), model(x).gather(1, target[:, None]).squeeze(1), atol=1e-5)


def test_integrated_gradients_completeness_on_a_relu_net():
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 20), torch.nn.ReLU(),
                              torch.nn.Linear(20, 3))
    x, target = torch.rand(2, 1, 6, 6), torch.tensor([1, 2])
    ig = explain.integrated_gradients(net, x, target, steps=400)
    def target_logit(inputs):
        return net(inputs).gather(1, target[:, None]).squeeze(1)

    out = target_logit(x) - target_logit(torch.zeros_like(x))
    assert torch.allclose(ig.flatten(1).sum(1), out, atol=0.02)


def test_roughness_orders_smooth_and_noisy_maps():
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 28), torch.linspace(-1, 1, 28), indexing="ij")
    smooth = torch.exp(-(xx**2 + yy**2) * 3)[None, None]
    noisy = smooth + 0.5 * torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert explain.roughness(torch.ones(1, 1, 28, 28)).item() == 0
    assert explain.roughness(noisy).item() > 3 * explain.roughness(smooth).item()
