"""tradeoffs.recipes: the trained models more than one chapter uses, and Suggala et al.'s training subsets."""

import torch
from tradeoffs import recipes


def test_training_subsets_differ_per_trial():
    x, y = torch.arange(100.0)[:, None], torch.arange(100)
    a, _ = recipes.suggala_subset(x, y, 10, 0)
    b, _ = recipes.suggala_subset(x, y, 10, 1)
    assert len(a) == 10 and not torch.equal(a, b)
    assert torch.equal(recipes.suggala_subset(x, y, 10, 0)[0], a)
