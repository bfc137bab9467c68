"""A step with a non-finite gradient is skipped; a run that keeps making them stops."""
import math

import pytest
import torch

from allweather_ros.training.finite_steps import MAX_IN_A_ROW, FiniteSteps


def _one_weight():
    weight = torch.nn.Parameter(torch.ones(3))
    return weight, FiniteSteps(torch.optim.SGD([weight], lr=0.1), advice="resume from X")


def _backward(weight, scale):
    loss = (weight * scale).sum()
    weight.grad = None
    loss.backward()
    return loss


def test_a_finite_gradient_steps_and_a_nan_one_leaves_the_weights_alone():
    weight, finite = _one_weight()
    assert finite.step(_backward(weight, 1.0))
    stepped = weight.detach().clone()
    assert torch.allclose(stepped, torch.full((3,), 0.9))
    for scale in (math.nan, math.inf):
        assert not finite.step(_backward(weight, scale))
        assert torch.equal(weight.detach(), stepped)
    assert finite.skipped == 2


def test_a_run_stops_after_that_many_non_finite_steps_in_a_row_and_says_where_to_resume():
    weight, finite = _one_weight()
    for _ in range(MAX_IN_A_ROW - 1):
        finite.step(_backward(weight, math.nan))
    assert finite.step(_backward(weight, 1.0)), "a finite step resets the count"
    for _ in range(MAX_IN_A_ROW - 1):
        finite.step(_backward(weight, math.nan))
    with pytest.raises(FloatingPointError, match=f"{MAX_IN_A_ROW} steps in a row.*resume from X"):
        finite.step(_backward(weight, math.nan))
    assert torch.allclose(weight.detach(), torch.full((3,), 0.9))
