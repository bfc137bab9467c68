#!/usr/bin/env python3
"""What the light keeper (allweather_ros/lights.py) keeps, and what it costs.

Lights: held-out clean scenes at 320x240, by day and dimmed to a quarter (night), each with
twelve small lights (red, amber, green and white; 3, 5 and 7 pixels across), restored by the
shipped network told each description, alone and with the keeper: the share of each light's
contrast over the scene behind it that comes out (1: untouched).

Cost: the synthetic validation frames (both renderer sets) restored told the truth, alone and
with the keeper: how often it acts where there are no lights to keep, and the decibels it moves.

Lamp-lit rain: the same scenes at night under rain streaks lit sodium orange or clipped white
(as near a street lamp or in a headlight's beam), told heavy rain: the share of the streaks'
brightness over the scene that comes out, alone and with the keeper (0: all taken out), which
the keeper must not put back.

    .venv/bin/python tools/lights_check.py [--split val --scenes 6]
    .venv/bin/python tools/lights_check.py --cost --val-seed 7
    .venv/bin/python tools/lights_check.py --lamp-lit
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not
from allweather_ros.data.sources import default_scenes, scenes_in_split  # noqa: E402
from allweather_ros.description import WHOLE_FRAME, Degradation, describe  # noqa: E402
from allweather_ros.evaluation.keepers import cost_lines, keeper_cost  # noqa: E402
from allweather_ros.evaluation.scoring import Restorer  # noqa: E402
from allweather_ros.lights import keep_lights  # noqa: E402
from allweather_ros.pipeline import load_model  # noqa: E402

COLOURS = {"red": (1.0, 0.15, 0.1), "amber": (1.0, 0.65, 0.1), "green": (0.3, 1.0, 0.6),
           "white": (1.0, 1.0, 1.0)}
RADII = (1, 2, 3)  # 3, 5 and 7 pixels across
NIGHT = 0.25  # a night scene: the photo at a quarter of its brightness
# Descriptions as a provider sure of them says them (placed across the whole frame), so the
# wrong ones are at their most forceful: a clean frame told heavy weather.
TOLD = {"no weather": [], **{f"{severity} {kind}": [Degradation(kind, severity, WHOLE_FRAME)]
                             for kind, severity in (("rain", "slight"), ("rain", "heavy"),
                                                    ("snow", "heavy"), ("raindrop", "heavy"),
                                                    ("haze", "heavy"))}}
VISIBLE = 0.15  # a light drawn over a part of the scene nearly as bright is not scored
LAMPS = {"sodium": (1.0, 0.62, 0.2), "white": (1.0, 1.0, 1.0)}  # what lights the streaks
STREAKS = 60  # per frame: 1 pixel wide, 8-24 long, up to about 17 degrees from upright


def lit_views(scenes, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray, list]]:
    """(day or night, scene, scene with lights, [(colour, radius, mask)]) per scene and time."""
    rng = np.random.default_rng(seed)
    views = []
    for scene in scenes:
        photo = cv2.resize(scene.load(max_side=640), (320, 240), interpolation=cv2.INTER_AREA)
        photo = photo.astype(np.float32) / 255.0
        for time, brightness in (("day", 1.0), ("night", NIGHT)):
            background = photo * np.float32(brightness)
            frame, lights = background.copy(), []
            for radius in RADII:
                for colour, value in COLOURS.items():
                    mask = np.zeros(frame.shape[:2], np.uint8)
                    cv2.circle(mask, (int(rng.integers(20, 300)), int(rng.integers(20, 220))),
                               radius, 1, -1)
                    frame[mask.astype(bool)] = value
                    lights.append((colour, radius, mask.astype(bool)))
            views.append((time, background, frame, lights))
    return views


def kept_share(background, frame, out, mask) -> float | None:
    """The share of a light's contrast over the scene behind it that `out` keeps."""
    light = float(np.abs(frame[mask] - background[mask]).mean())
    if light < VISIBLE:
        return None
    return 1.0 - float(np.abs(out[mask] - frame[mask]).mean()) / light


def check_lights(args) -> dict:
    scenes = scenes_in_split(default_scenes(), args.split)[:args.scenes]
    restore = Restorer(load_model(args.weights), _encoder())
    views = lit_views(scenes)
    report = {}
    for told, degradations in TOLD.items():
        shares = {}
        for time, background, frame, lights in views:
            alone = restore(torch.from_numpy(frame.transpose(2, 0, 1).copy()),
                            describe(degradations))[0]
            outputs = {"alone": alone, "keeper": keep_lights(frame, alone)[0]}
            for way, out in outputs.items():
                for colour, radius, mask in lights:
                    share = kept_share(background, frame, out, mask)
                    if share is not None:
                        shares.setdefault(f"{way}, {time}, {2 * radius + 1} px", []).append(share)
                        shares.setdefault(f"{way}, {time}, {colour}", []).append(share)
        report[told] = {key: {"mean": float(np.mean(v)), "lowest": float(np.min(v)),
                              "lights": len(v)} for key, v in sorted(shares.items())}
    return report


def check_lamp_lit(args) -> dict:
    scenes = scenes_in_split(default_scenes(), args.split)[:args.scenes]
    restore = Restorer(load_model(args.weights), _encoder())
    told = describe([Degradation("rain", "heavy", WHOLE_FRAME)])
    nights = [background for time, background, _, _ in lit_views(scenes) if time == "night"]
    rng = np.random.default_rng(0)
    report = {}
    for lamp, colour in LAMPS.items():
        left = {"alone": [], "keeper": []}
        for background in nights:
            streaks = np.zeros(background.shape[:2], np.float32)
            for _ in range(STREAKS):
                x, y = int(rng.integers(0, 320)), int(rng.integers(0, 240))
                length, slant = rng.uniform(8, 24), rng.uniform(-0.3, 0.3)
                cv2.line(streaks, (x, y), (round(x + length * np.sin(slant)),
                                           round(y + length * np.cos(slant))), 1.0, 1, cv2.LINE_AA)
            frame = background + streaks[..., None] * (np.float32(colour) - background)
            alone = restore(torch.from_numpy(frame.transpose(2, 0, 1).copy()), told)[0]
            on = streaks > 0.5
            for way, out in (("alone", alone), ("keeper", keep_lights(frame, alone)[0])):
                left[way].append(float(np.abs(out - background)[on].mean()
                                       / np.abs(frame - background)[on].mean()))
        report[lamp] = {way: float(np.mean(v)) for way, v in left.items()}
    return report


def check_cost(args) -> dict:
    return keeper_cost(keep_lights, Restorer(load_model(args.weights), _encoder()),
                       args.val_seed, args.repeats)


def _encoder():
    from allweather_ros.prior.text_encoder import TextEncoder

    return TextEncoder()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--scenes", type=int, default=6, help="held-out scenes lit")
    parser.add_argument("--weights", default="", help="restorer weights (default: shipped)")
    parser.add_argument("--cost", action="store_true",
                        help="the keeper's cost on validation frames told the truth instead")
    parser.add_argument("--lamp-lit", action="store_true",
                        help="what the keeper does to rain lit by lamps at night instead")
    parser.add_argument("--val-seed", type=int, default=7, help="with --cost: weather draw")
    parser.add_argument("--repeats", type=int, default=4, help="with --cost: frames per recipe")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = (check_cost(args) if args.cost else check_lamp_lit(args) if args.lamp_lit
              else check_lights(args))
    if args.json:
        print(json.dumps(report, indent=1))
    elif args.lamp_lit:
        print("share of lamp-lit streaks' brightness left, told heavy rain of a night scene:")
        for lamp, r in report.items():
            print(f"{lamp}: network alone {r['alone']:.2f}, with the keeper {r['keeper']:.2f}")
    elif args.cost:
        print("\n".join(cost_lines(report, "the keeper")))
    else:
        sizes = [f"{2 * radius + 1} px" for radius in RADII]
        print("share of each light's contrast kept, mean (lowest); a clean scene told:")
        print("| told | | " + " | ".join(f"night, {size}" for size in sizes) + " | "
              + " | ".join(f"day, {size}" for size in sizes) + " |")
        print("|---|---|" + "---|" * 2 * len(sizes))
        for told, shares in report.items():
            for way in ("alone", "keeper"):
                cells = [shares[f"{way}, {time}, {size}"] for time in ("night", "day")
                         for size in sizes]
                print(f"| {told} | {way} | " + " | ".join(
                    f"{c['mean']:.2f} ({c['lowest']:.2f})" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
