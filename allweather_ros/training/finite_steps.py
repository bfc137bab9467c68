"""An optimizer step taken only where the gradient is finite, for every trainer here.

One bad batch (a NaN or inf in the loss, an overflow under bf16 autocast) would otherwise put
NaN in every weight and in every checkpoint saved after it; skipped, it costs one step. A run
whose gradient stays non-finite has diverged: it stops with its weights as they were, instead
of training on and saving NaN.
"""
from __future__ import annotations

import torch
from torch import nn

MAX_IN_A_ROW = 10  # non-finite steps in a row that stop a run


class FiniteSteps:
    """`step()` in place of `optimizer.step()`, after `loss.backward()`. `skipped` counts the
    steps skipped so far; `advice` ends the error a diverged run stops with (where to resume)."""

    def __init__(self, optimizer: torch.optim.Optimizer, advice: str = "lower the lr"):
        self.optimizer, self.advice = optimizer, advice
        self.skipped, self.in_a_row = 0, 0

    def step(self, loss: torch.Tensor) -> bool:
        """Step where the gradient's norm is finite; else skip, and raise FloatingPointError
        after MAX_IN_A_ROW in a row. Under DDP the gradient read is the all-reduced one, so every
        rank decides alike."""
        grads = [p.grad for group in self.optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        if torch.isfinite(nn.utils.get_total_norm(grads)):
            self.optimizer.step()
            self.in_a_row = 0
            return True
        self.skipped, self.in_a_row = self.skipped + 1, self.in_a_row + 1
        if self.in_a_row >= MAX_IN_A_ROW:
            raise FloatingPointError(
                f"training diverged: {self.in_a_row} steps in a row had a non-finite gradient "
                f"(last loss {loss.item()}) and left the weights as they were; {self.advice}")
        return False
