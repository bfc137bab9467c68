#!/usr/bin/env python3
"""How much the restorer changes real weather photographs, and whether it darkens them.

The real set (tools/real_weather_set.py) has no clean truth, so this is a no-reference check of
the default pipeline (built-in estimator, restorer), one or more weights side by side: per
labelled type and severity, the mean absolute change of a frame, the shift of its mean
brightness (both in 8-bit levels), and how many photos came out darker by more than 2 levels.
A restorer that leaves real streaks in place changes little. Taking out bright streaks,
flakes or a veil darkens a frame as a tone shift does, so a large shift is read beside the
photos, not alone.

    .venv/bin/python tools/real_restoration_check.py --weights OLD.safetensors NEW.safetensors \
        --sheet real_sheet.jpg

`--sheet` also writes a contact sheet to look at (input, then each weights' output, a few
photos of each type): the photos are for research use, so keep it local, never commit it.
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
from allweather_ros.working_resolution import downscale, working_size  # noqa: E402

DEFAULT_SET = Path.home() / ".cache" / "allweather_ros" / "real_weather"
DARKER = 2.0  # levels of mean brightness lost that count a photo as darkened
SHEET_HEIGHT = 160  # pixels of each contact-sheet row
GAP = 4


def measure(pipeline, rgb: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(mean absolute change, mean brightness shift) of one frame, in 8-bit levels, and the
    restored frame."""
    pipeline.refresh_now(rgb)
    restored = pipeline.process(rgb).restored
    return (float(np.abs(restored - rgb).mean() * 255),
            float((restored.mean() - rgb.mean()) * 255), restored)


def sheet_choice(photos: list, per_type: int) -> set[Path]:
    """`per_type` photos of each primary type, spread over the set's order (its sources)."""
    by_type = collections.defaultdict(list)
    for photo in photos:
        by_type[photo.primary].append(photo)
    return {group[i * len(group) // per_type].file for group in by_type.values()
            for i in range(min(per_type, len(group)))}


def sheet_row(frames: list[np.ndarray], caption: str) -> np.ndarray:
    """One contact-sheet row, 8-bit BGR: the frames side by side, the caption on the first."""
    tiles = [cv2.resize(f, (max(1, round(f.shape[1] * SHEET_HEIGHT / f.shape[0])),
                            SHEET_HEIGHT), interpolation=cv2.INTER_AREA) for f in frames]
    gap = np.ones((SHEET_HEIGHT, GAP, 3), np.float32)
    row = np.hstack([x for tile in tiles for x in (tile, gap)][:-1])
    row = cv2.cvtColor((np.clip(row, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.putText(row, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
    return row


def check(folder: Path, weights: list[str], max_side: int, sheet: Path | None = None,
          per_type: int = 3) -> dict:
    """{group: {weights: {n, change, shift, darkened}}}, group a type or type/severity; with
    `sheet`, `per_type` photos of each type written there, input then each weights' output."""
    pipelines = {w or "shipped": build_pipeline(PipelineConfig(weights=w), asynchronous=False)
                 for w in weights}
    photos = load_labels(folder)
    shown = sheet_choice(photos, per_type) if sheet else set()
    measured = collections.defaultdict(lambda: collections.defaultdict(list))
    rows = []
    for photo in photos:
        rgb = read_rgb(photo.file)
        smaller = working_size(*rgb.shape[:2], max_side)
        rgb = rgb if smaller is None else downscale(rgb, smaller)
        severity = photo.types.get(photo.primary) or "unjudged"
        groups = [photo.primary] + ([f"{photo.primary}/{severity}"] if photo.types else [])
        restored = []
        for name, pipeline in pipelines.items():
            change, shift, frame = measure(pipeline, rgb)
            restored.append(frame)
            for group in groups:
                measured[group][name].append((change, shift))
        if photo.file in shown:
            rows.append(sheet_row([rgb, *restored], f"{groups[-1]}: {photo.file.name}"))
    if rows:
        width = max(r.shape[1] for r in rows)
        cv2.imwrite(str(sheet), np.vstack([np.pad(r, ((0, GAP), (0, width - r.shape[1]),
                                                      (0, 0)), constant_values=255)
                                           for r in rows]), [cv2.IMWRITE_JPEG_QUALITY, 85])
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
    parser.add_argument("--sheet", type=Path, help="also write a contact sheet here (JPEG)")
    parser.add_argument("--per-type", type=int, default=3, help="photos of each type on it")
    args = parser.parse_args(argv)
    result = check(args.real, args.weights, args.max_side, args.sheet, args.per_type)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
