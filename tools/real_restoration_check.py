#!/usr/bin/env python3
"""How much the restorer changes real weather photographs, whether it darkens them, and how
much of their weather is left.

The real set (tools/real_weather_set.py) has no clean truth, so this is a no-reference check of
the default pipeline (built-in estimator, restorer), one or more weights and working
resolutions (`processing_max_side`) side by side: per labelled type and severity, the mean
absolute change of a frame, the shift of its mean brightness (both in 8-bit levels), how many
photos came out darker by more than 2 levels, and the weather left: the built-in estimator's
probability of the photo's labelled type (of its likeliest weather, for a clean photo) read on
the restored frame, beside the same reading of the input. A restorer that leaves real streaks in
place changes little and leaves the estimator reading rain. Taking out bright streaks, flakes or
a veil darkens a frame as a tone shift does, so a large shift is read beside the photos, not
alone.

    .venv/bin/python tools/real_restoration_check.py --weights OLD.safetensors NEW.safetensors \
        --max-sides 320 640 --sheet real_sheet.jpg

`--photos` also writes each photo's readings (and the side it was restored at), a JSON line
for each photo and variant. `--sheet` also writes a contact sheet to look at (input, then each
weights' output, a few photos of each type): the photos are for research use, so keep it
local, never commit it.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not
from allweather_ros.description import TYPES  # noqa: E402
from allweather_ros.evaluation.real import load_labels  # noqa: E402
from allweather_ros.media import read_rgb  # noqa: E402
from allweather_ros.options import DEFAULTS  # noqa: E402
from allweather_ros.pipeline import PipelineConfig, Restoration, build_pipeline  # noqa: E402
from allweather_ros.prior.builtin import BuiltinEstimator  # noqa: E402
from allweather_ros.working_resolution import downscale, working_size  # noqa: E402

DEFAULT_SET = Path.home() / ".cache" / "allweather_ros" / "real_weather"
DARKER = 2.0  # levels of mean brightness lost that count a photo as darkened
SHEET_HEIGHT = 160  # pixels of each contact-sheet row
GAP = 4


class Reading(NamedTuple):
    """One photo through one variant: 8-bit levels changed and shifted, the estimator's
    reading of its weather before and after, and the longer side the network restored it at
    (`processing_max_side`, or `processing_max_side_snow` where snow and no rain was said)."""

    change: float
    shift: float
    weather_in: float
    weather_left: float
    working_side: int


def weather_read(estimator: BuiltinEstimator, rgb: np.ndarray, primary: str) -> float:
    """The estimator's probability of `primary` in `rgb`; of its likeliest weather for a clean
    photo."""
    probabilities, _ = estimator.estimate(rgb)
    return float(probabilities.max() if primary == "clean" else
                 probabilities[TYPES.index(primary)])


def measure(pipeline, rgb: np.ndarray) -> tuple[float, float, Restoration]:
    """(mean absolute change, mean brightness shift) of one frame, in 8-bit levels, and its
    restoration."""
    pipeline.refresh_now(rgb)
    result = pipeline.process(rgb)
    return (float(np.abs(result.restored - rgb).mean() * 255),
            float((result.restored.mean() - rgb.mean()) * 255), result)


def variant_name(weights: str, side: int, sides: list[int]) -> str:
    """A column's name: the weights ("shipped" for the default), with the working resolution
    where several are compared."""
    name = weights or "shipped"
    return name if len(sides) == 1 else f"{name} @ {side}"


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
          per_type: int = 3, sides: list[int] | None = None,
          photo_records: list | None = None,
          snow_side: int = DEFAULTS["processing_max_side_snow"]) -> dict:
    """{group: {variant: {n, darkened and the mean of each Reading field}}}, group a type or
    type/severity, a variant each of `weights` at each working resolution of `sides` (default:
    the pipeline's); with `sheet`, `per_type` photos of each type written there, input then
    each variant's output; with `photo_records`, each photo's Reading in each variant appended
    there (a dict with its file, relative to `folder`, groups and variant). `snow_side`: the
    pipelines' processing_max_side_snow."""
    sides = sides or [DEFAULTS["processing_max_side"]]
    pipelines = {variant_name(w, side, sides): build_pipeline(
        PipelineConfig(weights=w, processing_max_side=side, processing_max_side_snow=snow_side),
        asynchronous=False)
        for w in weights for side in sides}
    estimator = BuiltinEstimator()
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
        read_in = weather_read(estimator, rgb, photo.primary)
        restored = []
        for name, pipeline in pipelines.items():
            change, shift, result = measure(pipeline, rgb)
            restored.append(result.restored)
            reading = Reading(change, shift, read_in,
                              weather_read(estimator, result.restored, photo.primary),
                              result.working_side)
            for group in groups:
                measured[group][name].append(reading)
            if photo_records is not None:
                photo_records.append({"file": str(photo.file.relative_to(folder)),
                                      "groups": groups, "variant": name, **reading._asdict()})
        if photo.file in shown:
            rows.append(sheet_row([rgb, *restored], f"{groups[-1]}: {photo.file.name}"))
    if rows:
        width = max(r.shape[1] for r in rows)
        cv2.imwrite(str(sheet), np.vstack([np.pad(r, ((0, GAP), (0, width - r.shape[1]),
                                                      (0, 0)), constant_values=255)
                                           for r in rows]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return {group: {name: {"n": len(v), **{field: float(np.mean([getattr(r, field) for r in v]))
                                            for field in Reading._fields},
                           "darkened": sum(r.shift < -DARKER for r in v)}
                    for name, v in by_variant.items()}
            for group, by_variant in sorted(measured.items())}


def table(result: dict) -> str:
    names = list(next(iter(result.values())))
    head = ("| photos | n | weather read | " + " | ".join(
        f"{n}: change / shift / darker / weather left" for n in names) + " |")
    rows = [head, "|---|---|---|" + "---|" * len(names)]
    for group, by_variant in result.items():
        first = next(iter(by_variant.values()))
        cells = [f"{r['change']:.2f} / {r['shift']:+.2f} / {r['darkened']} / "
                 f"{r['weather_left']:.2f}" for r in by_variant.values()]
        rows.append(f"| {group} | {first['n']} | {first['weather_in']:.2f} | "
                    + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=DEFAULT_SET, help="the labelled real set")
    parser.add_argument("--weights", nargs="+", default=[""],
                        help="restorer weights, compared side by side (default: shipped)")
    parser.add_argument("--max-side", type=int, default=640, help="photos shrunk to this side")
    parser.add_argument("--max-sides", type=int, nargs="+",
                        help="working resolutions (processing_max_side) compared side by side "
                             "(default: the pipeline's); a photo said to hold snow and no rain "
                             "is restored at --processing-max-side-snow where that is smaller")
    parser.add_argument("--processing-max-side-snow", type=int,
                        default=DEFAULTS["processing_max_side_snow"],
                        help="the pipelines' working resolution of photos said to hold snow "
                             "and no rain (default: the pipeline's)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--photos", type=Path, help="also write each photo's readings here, "
                        "a JSON line for each photo and variant (to find the photos behind a "
                        "figure)")
    parser.add_argument("--sheet", type=Path, help="also write a contact sheet here (JPEG)")
    parser.add_argument("--per-type", type=int, default=3, help="photos of each type on it")
    args = parser.parse_args(argv)
    records = [] if args.photos else None
    result = check(args.real, args.weights, args.max_side, args.sheet, args.per_type,
                   args.max_sides, records, args.processing_max_side_snow)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.photos:
        args.photos.write_text("".join(json.dumps(r) + "\n" for r in records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
