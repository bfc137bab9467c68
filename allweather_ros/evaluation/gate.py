"""Choose a restorer's restoration gate (model/network.py) on the validation split, and store it.

Each candidate (floor, span) is scored on the validation scenes under every recipe, drawn by
the training renderers and by the left-out one, told the true description (the generic text,
for weights trained without the prior): the frames it makes
worse than they came in (more than 0.1 dB below the input; a clean frame changed at all), and
the mean PSNR of the weather frames. The gate kept is the one that makes the fewest frames
worse among those within 0.05 dB of the ungated network's PSNR (ties: the higher PSNR).

    python -m allweather_ros.evaluation.gate --weights allweather_ros/weights/rt.safetensors \
        --out gated.safetensors
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.datasets import synthetic_test_set
from ..data.sources import default_scenes
from ..data.weather import EXTERNAL
from ..description import GENERIC_TEXT, TYPES, describe
from ..model.network import LDRNet, gated
from ..model.weights import load_weights, read_metadata, save_weights
from ..prior.text_encoder import TextEncoder
from .scoring import degradations_of, hwc, made_worse, psnr

OFF = (0.0, 0.0)
CANDIDATES = (OFF, *itertools.product((0.0, 0.001, 0.002, 0.003, 0.005), (0.005, 0.01, 0.02)))
TOLERANCE_DB = 0.05  # the PSNR a gate may give up for making fewer frames worse


@dataclass
class Score:
    """One candidate over the scored frames."""

    worse: int = 0
    psnr: list[float] = field(default_factory=list)  # weather frames only

    @property
    def mean_psnr(self) -> float:
        return float(np.mean(self.psnr)) if self.psnr else math.nan


def with_gate(model: LDRNet, floor: float, span: float) -> LDRNet:
    """The same network and weights with another restoration gate."""
    gated_model = LDRNet(**{**model.config, "gate_floor": floor, "gate_span": span})
    gated_model.load_state_dict(model.state_dict())
    return gated_model.eval()


@torch.no_grad()
def measure(model: LDRNet, split: str = "val", repeats: int = 4, candidates=CANDIDATES,
            with_prior: bool = True) -> dict[tuple[float, float], Score]:
    """Every candidate gate's Score on `split`, both renderer sets, told the true
    descriptions (`with_prior`) or the generic text."""
    ungated = with_gate(model, *OFF)
    encoder = TextEncoder()
    scores = {c: Score() for c in candidates}
    for renderers in (None, dict.fromkeys(TYPES, EXTERNAL)):
        data = synthetic_test_set(default_scenes(), split=split, renderers=renderers,
                                  repeats=repeats)
        for item in data:
            truth = degradations_of(item)
            tokens = encoder.encode(describe(truth) if with_prior else GENERIC_TEXT)[None]
            cache = ungated.encode_prior(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool))
            frame, clean = item["degraded"][None], hwc(item["clean"])
            out = ungated(frame, *cache)
            before = psnr(hwc(item["degraded"]), clean)
            for (floor, span), score in scores.items():
                restored = gated(frame, out.restored, out.degradation_map, floor, span)
                after = psnr(hwc(restored[0]), clean)
                score.worse += made_worse(after, before)
                if truth:
                    score.psnr.append(after)
    return scores


def choose(scores: dict[tuple[float, float], Score]) -> tuple[float, float]:
    """The gate that makes the fewest frames worse within TOLERANCE_DB of the ungated PSNR."""
    floor_psnr = scores[OFF].mean_psnr - TOLERANCE_DB
    eligible = [c for c, s in scores.items() if s.mean_psnr >= floor_psnr]
    return min(eligible, key=lambda c: (scores[c].worse, -scores[c].mean_psnr))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="restorer weights to gate")
    parser.add_argument("--out", required=True, help="weights file to write, gate in its config")
    parser.add_argument("--split", choices=("val", "test"), default="val",
                        help="scenes to choose on (val; test only to look, never to choose)")
    parser.add_argument("--repeats", type=int, default=4, help="frames per recipe and renderer set")
    args = parser.parse_args(argv)
    model = load_weights(args.weights)
    metadata = {k: v for k, v in read_metadata(args.weights).items() if k != "config"}
    with_prior = metadata.get("train", {}).get("prior", "text") != "none"
    scores = measure(model, args.split, args.repeats, with_prior=with_prior)
    floor, span = choose(scores)
    save_weights(with_gate(model, floor, span), args.out, metadata)
    print(json.dumps({"chosen": {"gate_floor": floor, "gate_span": span},
                      "candidates": [{"gate_floor": f, "gate_span": s, "frames_worse": sc.worse,
                                      "weather_psnr": round(sc.mean_psnr, 3)}
                                     for (f, s), sc in scores.items()]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
