"""Degradation prior embedding (LDR eq. 2): P_emb = MLP(P_txt)."""
from __future__ import annotations

import torch
from torch import nn


class PriorEmbedding(nn.Module):
    """Maps prior tokens from the text encoder's space (C_txt) into the restorer's (C).

    Runs once per prior refresh, not per frame: its output only feeds the key/value projections
    of the degradation map measurement, which are cached with it.
    """

    def __init__(self, prior_dim: int, channels: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.LayerNorm(prior_dim),
            nn.Linear(prior_dim, channels),
            nn.GELU(),
            nn.Linear(channels, channels),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, C_txt) prior tokens -> (B, L, C) degradation prior P_emb."""
        return self.mlp(tokens)
