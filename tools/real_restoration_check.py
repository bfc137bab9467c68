#!/usr/bin/env python3
"""How much the restorer changes real weather photographs, and whether it darkens them.

The real set (tools/real_weather_set.py) has no clean truth, so this is a no-reference check of
the default pipeline (built-in estimator, restorer), one or more weights side by side: per
labelled type and severity, the mean absolute change of a frame, the shift of its mean
brightness (both in 8-bit levels), and how many photos came out darker by more than 2 levels.
A restorer that leaves real streaks in place changes little. Taking out bright streaks,
flakes or a veil darkens a frame as a tone shift does, so a large shift is read beside the
photos, not alone.

    .venv/bin/python tools/real_restoration_check.py --weights OLD.safetensors NEW.safetensors
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not
from allweather_ros.evaluation.real import load_labels  # noqa: E402
from allweather_ros.media import read_rgb  # noqa: E402
from allweather_ros.pipeline import PipelineConfig, build_pipeline  # noqa: E402

DEFAULT_SET = Path.home() / ".cache" / "allweather_ros" / "real_weather"
DARKER = 2.0  # levels of mean brightness lost that count a photo as darkened


def measure(pipeline, rgb: np.ndarray) -> tuple[float, float]:
    """(mean absolute change, mean brightness shift) of one frame, in 8-bit levels."""
    pipeline.refresh_now(rgb)
    restored = pipeline.process(rgb).restored
    return (float(np.abs(restored - rgb).mean() * 255),
            float((restored.mean() - rgb.mean()) * 255))


def check(folder: Path, weights: list[str], max_side: int) -> dict:
    """{group: {weights: {n, change, shift, darkened}}}, group a type or type/severity."""
    pipelines = {w or "shipped": build_pipeline(PipelineConfig(weights=w), asynchronous=False)
                 for w in weights}
    measured = collections.defaultdict(lambda: collections.defaultdict(list))
    for photo in load_labels(folder):
        rgb = read_rgb(photo.file)
        scale = max_side / max(rgb.shape[:2])
        if scale < 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        severity = photo.types.get(photo.primary) or "unjudged"
        groups = [photo.primary] + ([f"{photo.primary}/{severity}"] if photo.types else [])
        for name, pipeline in pipelines.items():
            values = measure(pipeline, rgb)
            for group in groups:
                measured[group][name].append(values)
    return {group: {name: {"n": len(v), "change": float(np.mean([c for c, _ in v])),
                           "shift": float(np.mean([s for _, s in v])),
                           "darkened": sum(s < -DARKER for _, s in v)}
                    for name, v in by_weights.items()}
            for group, by_weights in sorted(measured.items())}


def table(result: dict) -> str:
    names = list(next(iter(result.values())))
    head = "| photos | n | " + " | ".join(f"{n}: change / shift / darker" for n in names) + " |"
    rows = [head, "|---|---|" + "---|" * len(names)]
    for group, by_weights in result.items():
        cells = [f"{r['change']:.2f} / {r['shift']:+.2f} / {r['darkened']}"
                 for r in by_weights.values()]
        rows.append(f"| {group} | {next(iter(by_weights.values()))['n']} | "
                    + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_SET, help="the labelled real set")
    parser.add_argument("--weights", nargs="+", default=[""],
                        help="restorer weights, compared side by side (default: shipped)")
    parser.add_argument("--max-side", type=int, default=640, help="photos shrunk to this side")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = check(args.real, args.weights, args.max_side)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
