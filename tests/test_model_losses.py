"""Loss values on inputs computed by hand."""
import math

import pytest
import torch

from allweather_ros.model.losses import (
    RestorationLoss,
    charbonnier,
    laplacian,
    marked_error,
    worse_than_input,
)


def test_charbonnier_of_a_constant_error():
    pred, target = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert math.isclose(charbonnier(pred, target).item(), math.sqrt(0.25 + 1e-8), rel_tol=1e-6)
    assert math.isclose(charbonnier(target, target).item(), 1e-4, rel_tol=1e-6)


def test_laplacian_of_a_single_bright_pixel():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    lap = laplacian(image)[0, 0]
    assert lap[2, 2] == -4
    assert lap[1, 2] == lap[3, 2] == lap[2, 1] == lap[2, 3] == 1
    assert lap.abs().sum() == 8
    assert laplacian(torch.full((1, 3, 6, 6), 0.7)).abs().max() < 1e-6


def test_total_loss_is_charbonnier_plus_weighted_edge():
    target = torch.zeros(1, 1, 5, 5)
    pred = target.clone()
    pred[0, 0, 2, 2] = 1.0
    eps = 1e-4
    char = (1 * math.sqrt(1 + eps**2) + 24 * eps) / 25
    edge = (math.sqrt(16 + eps**2) + 4 * math.sqrt(1 + eps**2) + 20 * eps) / 25
    loss = RestorationLoss()(pred, target).item()
    assert math.isclose(loss, char + 0.05 * edge, rel_tol=1e-6)


def test_ssim_term_adds_weighted_structural_dissimilarity():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 32, 32, generator=g)
    assert math.isclose(RestorationLoss(ssim_weight=0.2)(target, target).item(),
                        RestorationLoss()(target, target).item(), abs_tol=1e-6)
    # A contrast-flattened copy: small L1 error, large structural loss.
    flat = 0.5 + 0.2 * (target - 0.5)
    plain = RestorationLoss()(flat, target).item()
    with_ssim = RestorationLoss(ssim_weight=0.2)(flat, target).item()
    assert 0.2 * 0.5 < with_ssim - plain < 0.2


def test_ssim_term_has_gradients():
    target = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    pred = (0.5 * target).requires_grad_()
    RestorationLoss(ssim_weight=1.0)(pred, target).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_worse_than_input_charges_only_frames_restored_worse_than_they_came():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 16, 16, generator=g)
    degraded = target + 0.05 * torch.randn(2, 3, 16, 16, generator=g)
    better = target + 0.5 * (degraded - target)
    assert worse_than_input(better, degraded, target) == 0.0
    assert worse_than_input(target, degraded, target) == 0.0
    worse = target + 2.0 * (degraded - target)  # twice as far: log 2 on each frame
    assert worse_than_input(worse, degraded, target).item() == pytest.approx(math.log(2), abs=0.02)
    mixed = torch.cat([better[:1], worse[1:]])  # the batch mean: one frame in two pays
    assert worse_than_input(mixed, degraded, target).item() == pytest.approx(math.log(2) / 2,
                                                                              abs=0.02)
    pred = worse.clone().requires_grad_()
    worse_than_input(pred, degraded, target).backward()
    assert pred.grad.abs().sum() > 0


def test_marked_error_is_the_charbonnier_of_the_marked_pixels_alone():
    target = torch.zeros(2, 3, 8, 8)
    pred = target.clone()
    pred[0, :, 2, 2:6] = 0.6  # a marking scrubbed off: its four pixels are 0.6 too dark
    pred[1] = 0.1  # the rest of the frame errs a little everywhere
    marked = torch.zeros(2, 1, 8, 8)
    marked[0, 0, 2, 2:6] = 1.0
    assert marked_error(pred, target, marked).item() == pytest.approx(0.6, rel=1e-4)
    mended = pred.clone()
    mended[0, :, 2, 2:6] = 0.0
    seen = charbonnier(pred, target) - charbonnier(mended, target)
    assert 0 < seen.item() < 0.6 / 25  # the mean loss barely sees it
    assert marked_error(pred, target, torch.zeros_like(marked)).item() == 0.0
