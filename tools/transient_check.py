#!/usr/bin/env python3
"""What transient suppression (allweather_ros/transients.py) adds on streams, against the truth.

Streams are `allweather make-bag`'s shots (a slowly panning and zooming camera over a clean
photo, falling rain or snow drawn anew for every frame) over held-out scenes, one per renderer
and severity, the left-out renderer included, plus clean shots. Each frame is restored twice
by the default pipeline as a stream, with `transient_frames` 0 and with the default, and
scored against its clean frame (PSNR, capped at 100 dB for an untouched clean frame).

    .venv/bin/python tools/transient_check.py --split test --scenes 8 --frames 12
    .venv/bin/python tools/transient_check.py --speed 3        # a camera moving 3x as fast
    .venv/bin/python tools/transient_check.py --clip FOLDER --sheet clip.png   # a real clip
    .venv/bin/python tools/transient_check.py --drive       # forward drives: lanes kept?

`--clip` restores a folder of consecutive frames (no truth) and prints how much of each frame
was taken back; `--sheet` writes input, network alone and with transients side by side.
`--drive` restores clean forward drives past the held-out scenes' photos
(data/road.py) and counts the lane markings' pixels the suppression changed:
what must stay.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not
from allweather_ros.data.road import road_view  # noqa: E402
from allweather_ros.data.sources import default_scenes, scenes_in_split  # noqa: E402
from allweather_ros.data.synthesis import synthesize  # noqa: E402
from allweather_ros.data.weather import EXTERNAL, RENDERERS  # noqa: E402
from allweather_ros.description import SEVERITIES, Degradation  # noqa: E402
from allweather_ros.evaluation.make_bag import FALLING, clean_views, plan_shots  # noqa: E402
from allweather_ros.evaluation.scoring import psnr  # noqa: E402
from allweather_ros.media import IMAGE_SUFFIXES, read_rgb  # noqa: E402
from allweather_ros.pipeline import PipelineConfig, build_pipeline  # noqa: E402

REFRESH_EVERY = 8  # frames between descriptions, as a 5 s prior period at a low frame rate
SETTLE = 3  # first frames of a stream, not scored: they fill the past (up to three frames)
DRIVE_STEPS_M = (0.3, 1.0)  # metres a frame: 32 and 108 km/h at 30 frames a second
CHANGED = 0.05  # a pixel the suppression moved further than this was changed
TRANSIENT_FRAMES = 3  # the past the suppression is judged with (the option is off by default)


def pipelines(transient_frames: int) -> tuple:
    """(network alone, with transients): the default pipeline twice, read synchronously."""
    default = PipelineConfig()
    return tuple(build_pipeline(dataclasses.replace(default, transient_frames=frames),
                                asynchronous=False) for frames in (0, transient_frames))


def restore_stream(pair, frames, camera: str) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(network alone, with transients, share taken back) for each frame of one stream, seen
    by a camera of its own (its weather memory and past frames start empty)."""
    out = []
    for index, frame in enumerate(frames):
        results = []
        for pipeline in pair:
            if index % REFRESH_EVERY == 0:
                pipeline.refresh_now(frame, camera, remember=True)
            results.append(pipeline.process(frame, camera, stream=True))
        out.append((results[0].restored, results[1].restored, results[1].transient_share))
    return out


def cases() -> list[tuple[str, str | None, str | None]]:
    found = [("clean", None, None)]
    for kind in FALLING:
        for name in [*RENDERERS[kind], EXTERNAL]:
            found += [(kind, name, severity) for severity in SEVERITIES]
    return found


def shot_frames(scene, case, frames: int, speed: float, seed: int, size=(320, 240)):
    """(degraded, clean) frames of one shot of `scene` under `case`."""
    kind, renderer, severity = case
    rng = np.random.default_rng(seed)
    weather = [] if kind == "clean" else [Degradation(kind, severity)]
    shot = plan_shots([scene], frames, frames, rng, weather)[0]
    end = tuple(float(a + (b - a) * speed) for a, b in zip(shot.start, shot.end, strict=True))
    for i, clean in enumerate(clean_views(dataclasses.replace(shot, end=end), size)):
        if weather:
            draw = np.random.default_rng([seed, i])
            yield synthesize(clean, draw, weather, renderers={kind: renderer}).degraded, clean
        else:
            yield clean, clean


def check_synthetic(args) -> dict:
    scenes = scenes_in_split(default_scenes(), args.split)[:args.scenes]
    pair = pipelines(args.transient_frames)
    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    for case in cases():
        key = ":".join(part for part in case if part)
        for number, scene in enumerate(scenes):
            shot = list(shot_frames(scene, case, args.frames, args.speed, seed=number))
            restored = restore_stream(pair, [degraded for degraded, _ in shot], f"{key}/{number}")
            for (degraded, clean), (alone, streamed, share) in list(
                    zip(shot, restored, strict=True))[SETTLE:]:
                row = rows[key]
                row["input"].append(psnr(degraded, clean))
                row["network"].append(psnr(alone, clean))
                row["transients"].append(psnr(streamed, clean))
                row["share"].append(share)
    report = {}
    for key, row in rows.items():
        gain = np.array(row["transients"]) - np.array(row["network"])
        report[key] = {"frames": len(gain), "input": float(np.mean(row["input"])),
                       "network": float(np.mean(row["network"])),
                       "transients": float(np.mean(row["transients"])),
                       "gain": float(gain.mean()), "worst": float(gain.min()),
                       "worse": int((gain < -0.05).sum()),
                       "applied": float(np.mean(np.array(row["share"]) > 0)),
                       "share": float(np.mean(row["share"]))}
    return report


def check_drive(args) -> dict:
    """For each speed: the share of lane-marking pixels, and of all pixels, that the
    suppression changed beyond the network alone on clean forward drives (none should be), and
    both pipelines' PSNR against the clean frame."""
    scenes = scenes_in_split(default_scenes(), args.split)[:args.scenes]
    pair = pipelines(args.transient_frames)
    report = {}
    for step in DRIVE_STEPS_M:
        lanes, changed, network, streamed = [], [], [], []
        for number, scene in enumerate(scenes):
            photo = scene.load(max_side=960).astype(np.float32) / 255.0
            views = [road_view(step * args.speed * i, photo) for i in range(args.frames)]
            restored = restore_stream(pair, [frame for frame, _ in views], f"{step}/{number}")
            for (frame, markings), (alone, out, _) in list(zip(views, restored,
                                                               strict=True))[SETTLE:]:
                moved = np.abs(out - alone).max(axis=2) > CHANGED
                lanes.append(moved[markings].mean())
                changed.append(moved.mean())
                network.append(psnr(alone, frame))
                streamed.append(psnr(out, frame))
        report[f"drive, {step * args.speed:g} m a frame"] = {
            "frames": len(lanes), "lane_pixels_changed": float(np.mean(lanes)),
            "worst_frame_lane_pixels_changed": float(np.max(lanes)),
            "pixels_changed": float(np.mean(changed)), "network": float(np.mean(network)),
            "transients": float(np.mean(streamed))}
    return report


def check_clip(args) -> dict:
    files = sorted(p for p in Path(args.clip).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) <= SETTLE:
        raise SystemExit(f"{args.clip} holds {SETTLE} frames or fewer")
    frames = [read_rgb(p) for p in files]
    restored = restore_stream(pipelines(args.transient_frames), frames, "clip")
    if args.sheet:
        rows = [np.hstack([frames[i], *restored[i][:2]]) for i in (len(frames) // 3,
                                                                   2 * len(frames) // 3)]
        sheet = (np.clip(np.vstack(rows), 0, 1) * 255).astype(np.uint8)
        cv2.imwrite(args.sheet, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    shares = np.array([share for _, _, share in restored[SETTLE:]])
    change = [float(np.abs(streamed - alone).mean() * 255) for alone, streamed, _ in restored]
    return {"frames": len(frames), "applied": float(np.mean(shares > 0)),
            "share": float(shares.mean()), "change_levels": float(np.mean(change[SETTLE:]))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--scenes", type=int, default=8, help="held-out scenes per case")
    parser.add_argument("--frames", type=int, default=12, help="frames per shot")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="the camera's move, as a multiple of make-bag's")
    parser.add_argument("--transient-frames", type=int, default=TRANSIENT_FRAMES,
                        help=f"past frames of the pipeline with transients (default "
                        f"{TRANSIENT_FRAMES}; the option itself is off by default)")
    parser.add_argument("--clip", help="a folder of consecutive frames instead (no truth)")
    parser.add_argument("--sheet", help="with --clip: a contact sheet to write (PNG or JPEG)")
    parser.add_argument("--drive", action="store_true",
                        help="clean forward drives instead: lane markings changed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    check = check_clip if args.clip else check_drive if args.drive else check_synthetic
    report = check(args)
    if args.json or args.clip or args.drive:
        print(json.dumps(report, indent=1))
        return 0
    print(f"transient_frames {args.transient_frames}, {args.split} split, speed "
          f"{args.speed}; PSNR dB (gain: with transients minus the network alone)")
    print("| stream | frames | input | network | + transients | gain | worst | made worse "
          "| applied | share |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, r in report.items():
        print(f"| {key} | {r['frames']} | {r['input']:.2f} | {r['network']:.2f} | "
              f"{r['transients']:.2f} | {r['gain']:+.2f} | {r['worst']:+.2f} | {r['worse']} | "
              f"{r['applied']:.2f} | {r['share']:.4f} |")
    weather = [r for key, r in report.items() if key != "clean"]
    print(f"weather streams: mean gain {np.mean([r['gain'] for r in weather]):+.2f} dB, "
          f"frames made worse {sum(r['worse'] for r in weather)} of "
          f"{sum(r['frames'] for r in weather)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
