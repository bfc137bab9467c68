#!/usr/bin/env python3
"""Lane markings through the default pipeline: what a driving stack needs most of a frame.

Rendered forward drives past held-out scenes' photos (data/road.py: a road with
dashed and solid markings between walls carrying the photo), or frames of a real clean dash-cam
clip (`--clip`, a folder of frames or a video file: markings found as thin bright lines on the
road, the lower part of the frame), restored by the default pipeline told a fixed description
as a sure provider says it.
Scored: the markings' contrast over the road beside them, as a share of the clean view's (1: as
legible as without weather), in the input and in the output. Three sets: clean drives told each
description (what a wrong word costs them), and drives under weather told the truth (what
restoring costs them), drawn by the training renderers and by the one left out of training.

Cost (`--cost`): what the marking keeper (allweather_ros/markings.py) costs the synthetic
validation frames (both renderer sets, told the truth), which show no road: how often it acts,
and the decibels it moves them by.

    .venv/bin/python tools/lane_check.py [--split val --scenes 6 --views 2] [--json]
    .venv/bin/python tools/lane_check.py --clip DIR_OR_VIDEO [--frames 8 --road-top 0.6] \
        [--processing-max-side 320]
    .venv/bin/python tools/lane_check.py --cost --val-seed 7
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not
from allweather_ros.data.road import road_view  # noqa: E402
from allweather_ros.data.sources import default_scenes, scenes_in_split  # noqa: E402
from allweather_ros.data.synthesis import synthesize  # noqa: E402
from allweather_ros.data.weather import EXTERNAL  # noqa: E402
from allweather_ros.description import WHOLE_FRAME, Degradation, describe  # noqa: E402
from allweather_ros.evaluation.keepers import cost_lines, keeper_cost  # noqa: E402
from allweather_ros.evaluation.scoring import Restorer  # noqa: E402
from allweather_ros.lights import keep_lights  # noqa: E402
from allweather_ros.markings import keep_markings  # noqa: E402
from allweather_ros.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_rgb  # noqa: E402
from allweather_ros.options import DEFAULTS  # noqa: E402
from allweather_ros.pipeline import PipelineConfig, build_pipeline, load_model  # noqa: E402

TRAVEL_M = 9.0  # metres between the views of one scene: the dashes move a whole period on
CASES = [(kind, severity) for kind in ("rain", "snow", "raindrop", "haze")
         for severity in ("slight", "moderate", "heavy")]
MARKING_WIDTH = 15  # pixels: wider bright things on a real road (cars, verges) are not markings
MARKING_LIFT = 0.15  # above the surround (white top-hat of the brightest channel)
MARKING_LEVEL = 0.5  # brightest channel


def contrast(image: np.ndarray, markings: np.ndarray, road: np.ndarray) -> float:
    return float(image[markings].mean() - image[road].mean())


def beside(markings: np.ndarray) -> np.ndarray:
    """The road within 3 pixels of the markings, the markings themselves left out."""
    near = cv2.dilate(markings.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    return near & ~markings


def drives(args) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(clean view, markings, the road beside them) for each scene and view."""
    views = []
    for scene in scenes_in_split(default_scenes(), args.split)[:args.scenes]:
        photo = scene.load(max_side=960).astype(np.float32) / 255.0
        for number in range(args.views):
            clean, markings = road_view(TRAVEL_M * number + 3.0, photo)
            views.append((clean, markings, beside(markings)))
    return views


def real_markings(frame: np.ndarray, road_top: float) -> np.ndarray:
    """Thin bright lines below `road_top` (a fraction of the height) of a clean road frame."""
    value = frame.max(axis=2)
    shape = np.ones((MARKING_WIDTH, MARKING_WIDTH), np.uint8)  # a square leaves no corners
    lifted = cv2.morphologyEx(value, cv2.MORPH_TOPHAT, shape)
    markings = (lifted > MARKING_LIFT) & (value > MARKING_LEVEL)
    markings[:round(road_top * frame.shape[0])] = False
    return markings


def clip_frames(source: Path, count: int) -> list[np.ndarray]:
    """`count` evenly spaced frames (float RGB) of a folder of images or of a video file."""
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SystemExit(f"{source} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return [read_rgb(paths[int(i)])
                for i in np.linspace(0, len(paths) - 1, min(count, len(paths))).round()]
    capture = cv2.VideoCapture(str(source)) if source.suffix.lower() in VIDEO_SUFFIXES else None
    total = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0) if capture is not None else 0
    frames = []
    for index in np.linspace(0, total - 1, min(count, total)).round():
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, bgr = capture.read()
        if ok:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    if capture is not None:
        capture.release()
    if not frames:
        raise SystemExit(f"{source} is neither a folder of images nor a video OpenCV can read")
    return frames


def clip_views(args) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(clean frame, markings, the road beside them) for `args.frames` frames of the clip,
    evenly spaced; frames without markings are skipped."""
    views = []
    for frame in clip_frames(Path(args.clip), args.frames):
        markings = real_markings(frame, args.road_top)
        if markings.sum() >= 20:
            views.append((frame, markings, beside(markings)))
    if not views:
        raise SystemExit(f"{args.clip}: no lane markings found below --road-top {args.road_top}")
    return views


def check(args) -> dict:
    views = clip_views(args) if args.clip else drives(args)
    pipeline = build_pipeline(PipelineConfig(weights=args.weights, provider="fixed",
                                             fixed_text=describe([]),
                                             processing_max_side=args.processing_max_side,
                                             processing_max_side_snow=args.snow_side),
                              asynchronous=False)

    def restored(frame: np.ndarray, degradations: list[Degradation]) -> np.ndarray:
        pipeline.reconfigure(fixed_text=describe(degradations))
        pipeline.refresh_now(frame)
        return pipeline.process(frame).restored

    def row(pairs) -> dict:
        pairs = np.array(pairs)
        return {"views": len(pairs), "input": float(pairs[:, 0].mean()),
                "restored": float(pairs[:, 1].mean()), "lowest": float(pairs[:, 1].min())}

    report = {"clean, told": {}, "weather, told the truth": {},
              "left-out renderer, told the truth": {}}
    for case in [None, *CASES]:
        told = [] if case is None else [Degradation(*case, WHOLE_FRAME)]
        pairs = [(1.0, contrast(restored(clean, told), markings, road)
                  / contrast(clean, markings, road)) for clean, markings, road in views]
        report["clean, told"]["no weather" if case is None else " ".join(case[::-1])] = row(pairs)
    for name, renderers in (("weather, told the truth", None),
                            ("left-out renderer, told the truth", EXTERNAL)):
        for number, case in enumerate(CASES):
            pairs = []
            for view, (clean, markings, road) in enumerate(views):
                rng = np.random.default_rng(1000 * number + view)
                degraded = synthesize(clean, rng, [Degradation(*case)],
                                      renderers and {case[0]: renderers}).degraded
                out = restored(degraded, [Degradation(*case, WHOLE_FRAME)])
                base = contrast(clean, markings, road)
                pairs.append((contrast(degraded, markings, road) / base,
                              contrast(out, markings, road) / base))
            report[name][" ".join(case[::-1])] = row(pairs)
    return report


def check_cost(args) -> dict:
    from allweather_ros.prior.text_encoder import TextEncoder

    return keeper_cost(keep_markings, Restorer(load_model(args.weights), TextEncoder()),
                       args.val_seed, args.repeats, before=(keep_lights,))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--scenes", type=int, default=6, help="held-out scenes on the walls")
    parser.add_argument("--views", type=int, default=2, help="views of each drive")
    parser.add_argument("--clip", default="",
                        help="a real clean dash-cam clip instead: a folder of its frames or "
                             "a video file")
    parser.add_argument("--frames", type=int, default=8, help="frames of the clip scored")
    parser.add_argument("--road-top", type=float, default=0.6,
                        help="where the road starts in the clip's frames, a fraction of the "
                             "height from the top (markings are looked for below)")
    parser.add_argument("--weights", default="", help="restorer weights (default: shipped)")
    parser.add_argument("--processing-max-side", type=int,
                        default=DEFAULTS["processing_max_side"],
                        help="the pipeline's working resolution (a clip's large frames)")
    parser.add_argument("--processing-max-side-snow", dest="snow_side", type=int,
                        default=DEFAULTS["processing_max_side_snow"],
                        help="the pipeline's working resolution of frames told snow and no "
                             "rain (what it costs the markings)")
    parser.add_argument("--cost", action="store_true",
                        help="the marking keeper's cost on validation frames told the truth "
                             "instead")
    parser.add_argument("--val-seed", type=int, default=7, help="with --cost: weather draw")
    parser.add_argument("--repeats", type=int, default=4, help="with --cost: frames per recipe")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = check_cost(args) if args.cost else check(args)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    if args.cost:
        print("\n".join(cost_lines(report, "the marking keeper")))
        return 0
    print("lane markings' contrast as a share of the clean view's, mean (lowest restored)")
    for name, rows in report.items():
        print(f"\n| {name} | input | restored |\n|---|---|---|")
        for told, r in rows.items():
            print(f"| {told} | {r['input']:.2f} | {r['restored']:.2f} ({r['lowest']:.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
