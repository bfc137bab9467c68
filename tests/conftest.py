"""Shared fixtures: small seeded models and priors, so tests are fast and repeatable."""
import pytest
import torch

from allweather_ros.model import LDRNet

TINY = dict(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), ldr_blocks=1,
            prior_dim=24, heads=2, num_experts=4, top_k=2, expert_expand=2, smooth_kernel=3)


@pytest.fixture
def tiny_model() -> LDRNet:
    torch.manual_seed(0)
    return LDRNet(**TINY).eval()


def random_prior(length: int, dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, length, dim, generator=g), torch.ones(1, length, dtype=torch.bool)
