"""The LDR restoration network: encoder, LDR blocks at the bottleneck, decoder.

The per-frame graph is `LDRNet.forward(image, prior_kv, prior_bias)`; the prior's share
(`encode_prior`) runs once per prior refresh and its result is cached by the caller.
"""
from __future__ import annotations

import inspect
import json

import torch
import torch.nn.functional as F
from torch import nn

from ..network_io import LDROutput, PriorCache  # noqa: F401  re-exported
from .aggregation import RestorationFeatureAggregation
from .degradation_map import MASKED, DegradationMapMeasurement
from .experts import TopKExperts
from .layers import LayerNorm2d, NAFBlock, conv1x1
from .prior_embedding import PriorEmbedding


class LDRBlock(nn.Module):
    """Degradation map measurement -> Top-K expert restoration -> feature aggregation."""

    def __init__(self, channels: int, heads: int, num_experts: int, top_k: int,
                 expert_expand: int, smooth_kernel: int, ffn_expand: int):
        super().__init__()
        self.measure = DegradationMapMeasurement(channels, heads)
        self.norm = LayerNorm2d(channels)
        self.experts = TopKExperts(channels, num_experts, top_k, expert_expand, smooth_kernel)
        self.aggregate = RestorationFeatureAggregation(channels, heads, ffn_expand)

    def forward(self, x: torch.Tensor, kv: torch.Tensor, bias: torch.Tensor):
        m = self.measure(x, kv, bias)
        x_int, weights, indices = self.experts(self.norm(x), m)
        return self.aggregate(m, x + x_int), m, weights, indices


class FrameGate(nn.Module):
    """How much of the restorer's correction the frame itself bears out, per pixel.

    Told "heavy" of a slight frame, the restorer scrubs it: it trusts the description more than
    the frame (#17). This gate reads the encoder's features, which never see the prior, and the
    correction's local mean and magnitude, and scales the correction down where the frame does
    not bear out one that size. It is fitted with the rest of the network frozen
    (`allweather_ros.training.frame_gate`), on frames told wrong and overstated descriptions
    as often as the restorer was trained with them.
    """

    def __init__(self, channels: int, hidden: int, stride: int):
        super().__init__()
        self.stride = stride
        self.body = nn.Sequential(nn.Conv2d(channels + 6, hidden, 3, padding=1), nn.GELU(),
                                  conv1x1(hidden, 1))
        nn.init.zeros_(self.body[2].weight)
        nn.init.constant_(self.body[2].bias, 3.0)  # nearly open: sigmoid(3) = 0.95

    def forward(self, features: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
        """features (B, C, H/stride, W/stride), correction (B, 3, H, W) -> gate (B, 1, H, W)."""
        local = torch.cat([F.avg_pool2d(correction, self.stride),
                           F.avg_pool2d(correction.abs(), self.stride)], dim=1)
        gate = torch.sigmoid(self.body(torch.cat([features, local], dim=1)))
        return F.interpolate(gate, size=correction.shape[-2:], mode="bilinear",
                             align_corners=False)


def _stage(channels: int, blocks: int, expand: int) -> nn.Sequential:
    return nn.Sequential(*(NAFBlock(channels, expand) for _ in range(blocks)))


class LDRNet(nn.Module):
    """Language-driven all-in-one weather removal, sized by its constructor arguments.

    The frame is space-to-depth'ed by 2 first (lossless, and 4x cheaper than full-resolution
    convolutions), then goes through len(enc_blocks) downsampling stages; the LDR blocks sit at
    the bottleneck, where the prior steers the experts. Any input size works: the frame is
    padded to a multiple of 2 ** (len(enc_blocks) + 1) and cropped back.

    The output is a per-pixel gain and offset of the input, restored = x * (1 + gain) + residual:
    haze and veils scale the scene's contrast down (I = J t + A (1 - t)), so undoing them takes a
    smooth gain of about 1 / t, which carries every detail of the frame through; an additive
    residual alone would have to rebuild those details, amplified (AOD-Net's reformulation).

    The restoration gate (`gate_floor`, `gate_span`; a span of 0 turns it off) scales that
    correction by clamp((M - floor) / span, 0, 1), M the degradation map the network measured:
    where it measures no weather the frame passes unchanged, so a clean or lightly degraded
    region is not made worse. Chosen for each trained set of weights on the validation split
    (`python -m allweather_ros.evaluation.gate`) and stored in their config. The frame gate
    (`frame_gate` hidden channels; 0: none) then scales what is left of the correction by how
    far the frame itself bears it out (`FrameGate`), unless the prior holds it open
    (`PriorCache.gate_opening`, prior/frame_gate_opening.py).
    """

    def __init__(self, width: int = 16, enc_blocks: tuple[int, ...] = (1, 1, 1),
                 middle_blocks: int = 1, dec_blocks: tuple[int, ...] = (1, 1, 1),
                 ldr_blocks: int = 1, prior_dim: int = 384, heads: int = 4,
                 num_experts: int = 8, top_k: int = 2, expert_expand: int = 2,
                 smooth_kernel: int = 3, block_expand: int = 2, ffn_expand: int = 2,
                 gate_floor: float = 0.0, gate_span: float = 0.0, frame_gate: int = 0):
        config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        self.config = config  # the constructor arguments: saved beside the weights
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError("enc_blocks and dec_blocks need one entry per resolution level")
        if ldr_blocks < 1:
            raise ValueError("an LDR network needs at least one LDR block")
        if gate_floor < 0 or gate_span < 0:
            raise ValueError(f"the restoration gate needs floor and span >= 0, got "
                             f"{gate_floor} and {gate_span}")
        self.multiple = 2 ** (len(enc_blocks) + 1)
        self.intro = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(12, width, 3, padding=1))
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        ch = width
        for n in enc_blocks:
            self.encoders.append(_stage(ch, n, block_expand))
            self.downs.append(nn.Conv2d(ch, 2 * ch, 2, stride=2))
            ch *= 2
        self.middle = _stage(ch, middle_blocks, block_expand)
        self.frame_gate = FrameGate(ch, frame_gate, self.multiple) if frame_gate else None
        self.prior_embedding = PriorEmbedding(prior_dim, ch)
        self.ldr = nn.ModuleList(
            LDRBlock(ch, heads, num_experts, top_k, expert_expand, smooth_kernel, ffn_expand)
            for _ in range(ldr_blocks))
        self.map_head = conv1x1(ch, 1)
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for n in reversed(dec_blocks):
            self.ups.append(nn.Sequential(conv1x1(ch, 2 * ch, bias=False), nn.PixelShuffle(2)))
            ch //= 2
            self.decoders.append(_stage(ch, n, block_expand))
        self.ending = nn.Sequential(nn.Conv2d(width, 12, 3, padding=1), nn.PixelShuffle(2))
        nn.init.zeros_(self.ending[0].weight)  # start as the identity: output = input frame
        nn.init.zeros_(self.ending[0].bias)
        self.gain = nn.Sequential(nn.Conv2d(width, 12, 3, padding=1), nn.PixelShuffle(2))
        nn.init.zeros_(self.gain[0].weight)  # gain 0: the identity as well
        nn.init.zeros_(self.gain[0].bias)

    @classmethod
    def defaults(cls) -> dict:
        """The constructor's default arguments as a saved config holds them (tuples as lists):
        what a config saved before an argument existed stands for."""
        signature = inspect.signature(cls.__init__).parameters.values()
        return json.loads(json.dumps({p.name: p.default for p in signature
                                      if p.default is not inspect.Parameter.empty}))

    def encode_prior(self, tokens: torch.Tensor, mask: torch.Tensor) -> PriorCache:
        """Prior tokens (B, L, C_txt) and validity mask (B, L) -> the per-frame cache."""
        emb = self.prior_embedding(tokens)
        kv = torch.cat([blk.measure.prior_kv(emb) for blk in self.ldr], dim=1)
        bias = torch.zeros(mask.shape, dtype=kv.dtype, device=kv.device)
        return PriorCache(kv, bias.masked_fill(~mask.bool(), MASKED))

    def forward(self, image: torch.Tensor, prior_kv: torch.Tensor, prior_bias: torch.Tensor,
                prior_gate_opening: torch.Tensor | None = None) -> LDROutput:
        """image (B, 3, H, W) in [0, 1] plus a PriorCache -> restored frame, map, experts."""
        h, w = image.shape[-2:]
        pad_h = (self.multiple - h % self.multiple) % self.multiple
        pad_w = (self.multiple - w % self.multiple) % self.multiple
        x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
        feat = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle(feat)
        frame_features = feat
        maps, weights, indices = [], None, None
        for i, blk in enumerate(self.ldr):
            feat, m, weights, indices = blk(feat, prior_kv[:, 2 * i:2 * i + 2], prior_bias)
            maps.append(m)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            feat = decoder(up(feat) + skip)
        restored = x * (1 + self.gain(feat)) + self.ending(feat)
        strength = torch.sigmoid(self.map_head(maps[0]))
        strength = F.interpolate(strength, size=x.shape[-2:], mode="bilinear",
                                 align_corners=False)
        restored = gated(x, restored, strength, self.config["gate_floor"],
                         self.config["gate_span"])
        if self.frame_gate is not None:
            correction = restored - x
            gate = self.frame_gate(frame_features, correction)
            if prior_gate_opening is not None:  # held open where the prior has the frame's word
                opening = prior_gate_opening.to(gate.dtype).view(-1, 1, 1, 1)
                gate = gate + (1 - gate) * opening
            restored = x + gate * correction
        return LDROutput(restored[..., :h, :w], strength[..., :h, :w], weights, indices)


def gated(image: torch.Tensor, restored: torch.Tensor, strength: torch.Tensor, floor: float,
          span: float) -> torch.Tensor:
    """`image` where the degradation map `strength` is at most `floor`, `restored` from
    floor + span up, blended between; `restored` itself when span is 0."""
    if span <= 0:
        return restored
    return image + ((strength - floor) / span).clamp(0, 1) * (restored - image)
