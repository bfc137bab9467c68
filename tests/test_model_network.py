"""The network's shapes, prior handling and gradients."""
import pytest
import torch
from conftest import TINY, random_prior, trained_like

from allweather_ros.model import VARIANTS, build_model


@pytest.mark.parametrize("height,width", [(1, 1), (7, 13), (33, 50), (64, 64)])
def test_any_frame_size_comes_back_at_its_own_size(tiny_model, height, width):
    image = torch.rand(2, 3, height, width)
    with torch.no_grad():
        out = tiny_model(image, *tiny_model.encode_prior(*random_prior(5, TINY["prior_dim"])))
    assert out.restored.shape == (2, 3, height, width)
    assert out.degradation_map.shape == (2, 1, height, width)
    assert out.degradation_map.min() >= 0 and out.degradation_map.max() <= 1
    assert out.expert_weights.shape == out.expert_indices.shape
    assert out.expert_indices.shape[1] == TINY["top_k"]
    assert out.expert_indices.min() >= 0 and out.expert_indices.max() < TINY["num_experts"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_named_variants_restore_an_odd_sized_frame(variant):
    model = build_model(variant).eval()
    tokens, mask = random_prior(12, model.config["prior_dim"])
    with torch.no_grad():
        out = model(torch.rand(1, 3, 45, 71), *model.encode_prior(tokens, mask))
    assert out.restored.shape == (1, 3, 45, 71)
    assert torch.isfinite(out.restored).all()


def test_an_untrained_network_returns_its_input(tiny_model):
    image = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        out = tiny_model(image, *tiny_model.encode_prior(*random_prior(5, TINY["prior_dim"])))
    assert torch.equal(out.restored, image)


def test_the_gain_head_scales_the_frame_per_pixel():
    """A haze-like loss of contrast is undone by a gain on the input, not rebuilt additively."""
    model = build_model("rt").eval()
    with torch.no_grad():
        model.gain[0].bias.fill_(1.5)  # every pixel x (1 + 1.5), no residual
        image = torch.rand(1, 3, 32, 48) * 0.4
        out = model(image, *model.encode_prior(*random_prior(5, model.config["prior_dim"])))
    torch.testing.assert_close(out.restored, 2.5 * image)


def test_every_ldr_block_is_kept_in_both_variants():
    for variant in VARIANTS:
        model = build_model(variant)
        for block in model.ldr:
            assert {"measure", "experts", "aggregate"} <= set(dict(block.named_children()))


def test_different_priors_give_different_degradation_maps(tiny_model):
    model = trained_like(tiny_model)
    maps = []
    model.ldr[0].measure.register_forward_hook(lambda mod, args, out: maps.append(out))
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        outs = [model(image, *model.encode_prior(*random_prior(6, TINY["prior_dim"], seed)))
                for seed in (1, 2)]
    assert (maps[0] - maps[1]).abs().mean() > 1e-3 * maps[0].abs().mean()
    assert not torch.allclose(outs[0].restored, outs[1].restored)
    assert not torch.allclose(outs[0].degradation_map, outs[1].degradation_map)


def test_padding_tokens_do_not_change_the_result(tiny_model):
    tokens, mask = random_prior(5, TINY["prior_dim"])
    padded = torch.cat([tokens, 100 * torch.randn(1, 3, TINY["prior_dim"])], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 3, dtype=torch.bool)], dim=1)
    image = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        plain = tiny_model(image, *tiny_model.encode_prior(tokens, mask))
        with_pad = tiny_model(image, *tiny_model.encode_prior(padded, padded_mask))
    torch.testing.assert_close(plain.restored, with_pad.restored, rtol=1e-5, atol=1e-6)


def test_prior_cache_shapes_are_what_the_frame_path_takes(tiny_model):
    tokens, mask = random_prior(7, TINY["prior_dim"])
    cache = tiny_model.encode_prior(tokens, mask)
    channels = tiny_model.ldr[0].measure.query.in_channels
    assert cache.kv.shape == (1, 2 * TINY["ldr_blocks"], 7, channels)
    assert cache.bias.shape == (1, 7)


def test_training_reaches_prior_embedding_and_router(tiny_model):
    model = trained_like(tiny_model).train()
    image, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    out = model(image, *model.encode_prior(*random_prior(6, TINY["prior_dim"])))
    (out.restored - target).abs().mean().backward()
    block = model.ldr[0]
    for module in (model.prior_embedding, block.measure, block.experts.score,
                   block.experts.expert_kernels, block.aggregate):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), module
        assert sum(g.abs().sum() for g in grads) > 0, module


def test_rt_fits_the_real_time_budget():
    from allweather_ros.model.profile import profile

    report = profile(build_model("rt"), 640, 480)
    assert report["gflops"] <= 5.0
    assert 0 < report["experts_share"] < 1
