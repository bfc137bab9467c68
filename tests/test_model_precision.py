"""Normalisation and the whole network survive reduced precision."""
import torch
from conftest import TINY, random_prior

from allweather_ros.model.layers import LayerNorm2d


def test_layer_norm_does_not_overflow_in_fp16():
    norm = LayerNorm2d(16)
    x = torch.randn(1, 16, 8, 8) * 5000  # squares far beyond fp16's 65504
    naive = x.half().pow(2).mean(dim=1)
    assert not torch.isfinite(naive).all(), "the case must be one where a plain LayerNorm breaks"
    out = norm(x.half())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), norm(x), rtol=0, atol=5e-3)


def test_layer_norm_matches_torch_layer_norm():
    norm = LayerNorm2d(8, eps=1e-6)
    x = torch.randn(2, 8, 5, 5)
    reference = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), eps=1e-6)
    torch.testing.assert_close(norm(x), reference.permute(0, 3, 1, 2), rtol=1e-4, atol=1e-4)


def test_bf16_network_stays_close_to_fp32(tiny_model):
    image = torch.rand(1, 3, 40, 56)
    tokens, mask = random_prior(6, TINY["prior_dim"])
    with torch.no_grad():
        ref = tiny_model(image, *tiny_model.encode_prior(tokens, mask)).restored
        low = tiny_model.to(torch.bfloat16)
        out = low(image.bfloat16(), *low.encode_prior(tokens.bfloat16(), mask)).restored
    mse = (out.float() - ref).pow(2).mean().item()
    psnr = 10 * torch.log10(torch.tensor(1.0 / mse)).item()
    assert psnr > 30, psnr
