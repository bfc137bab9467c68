#!/usr/bin/env python3
"""Quality and speed of the working resolution (processing_max_side) on 1920x1080 frames.

The test split's scenes are loaded large, cut to 16:9 and sized to --size, and weather from the
evaluation grid (`balanced_recipes`) is synthesized at that size, so streaks and drops are as
thin as a 1080p camera sees them. Each frame goes through the pipeline (ONNX Runtime fp32,
1 thread, the true description as prior) at full resolution and at every --max-sides,
interleaved frame by frame; a naive bilinear upscale of the working-resolution output is the
baseline that guided upsampling must beat. Prints mean PSNR/SSIM of the frames with weather
against the ground truth and against full-resolution inference, the median latency of each, and
the PSNR by weather (clean frames too); more --frames than the grid's 31 draw it again.

    PYTHONPATH=. .venv/bin/python tools/working_resolution_check.py [--frames 12]
    PYTHONPATH=. .venv/bin/python tools/working_resolution_check.py --split val --frames 6 \
        --max-sides 1280 --sweep
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from allweather_ros.data.datasets import TEST_SEED, balanced_recipes
from allweather_ros.data.sources import default_scenes, scenes_in_split
from allweather_ros.data.synthesis import synthesize
from allweather_ros.data.weather import EXTERNAL
from allweather_ros.description import TYPES
from allweather_ros.model.profile import parse_size
from allweather_ros.options import DEFAULT_CACHE
from allweather_ros.pipeline import Pipeline, load_model
from allweather_ros.prior.prior import prior_from_text
from allweather_ros.prior.providers import NoPrior
from allweather_ros.prior.text_encoder import TextEncoder
from allweather_ros.runtime.select import create_backend
from allweather_ros.runtime.torch_backend import TorchPriorEncoding
from allweather_ros.working_resolution import downscale, guided_upsample, working_size


def large_frames(width: int, height: int, count: int, split: str = "test",
                 renderers: dict[str, str] | None = None):
    """(degraded, clean, description, weather) at width x height from the split's scenes, the
    weather a type, "mixture" or "clean"; `renderers` fixes the renderer per type (e.g. the one
    left out of training). More frames than the evaluation grid holds draw it again."""
    scenes = scenes_in_split(default_scenes(), split)
    recipes = balanced_recipes()
    chosen = recipes[::max(1, len(recipes) // count)]
    for i in range(count):
        recipe = chosen[i % len(chosen)]
        image = scenes[i % len(scenes)].load(max(width, height) * 2)
        h, w = image.shape[:2]
        cut_h, cut_w = min(h, round(w * height / width)), min(w, round(h * width / height))
        y, x = (h - cut_h) // 2, (w - cut_w) // 2
        view = cv2.resize(image[y:y + cut_h, x:x + cut_w], (width, height),
                          interpolation=cv2.INTER_AREA if cut_w > width else cv2.INTER_LINEAR)
        sample = synthesize(view.astype(np.float32) / 255.0,
                            np.random.default_rng([TEST_SEED, i]), recipe, renderers)
        weather = recipe[0].type if len(recipe) == 1 else "mixture" if recipe else "clean"
        yield sample.degraded, sample.clean, sample.text, weather


def scores(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """PSNR (capped at 100 dB: identical frames) and SSIM."""
    if np.array_equal(a, b):
        return 100.0, 1.0
    return (float(peak_signal_noise_ratio(a, b, data_range=1.0)),
            float(structural_similarity(a, b, channel_axis=2, data_range=1.0)))


def sweep(pipeline: Pipeline, frames, side: int) -> None:
    """PSNR against full-resolution inference and against the truth for fit radii and eps:
    how RADIUS and EPS were chosen (run it on the validation split, not the test split)."""
    grid = [(radius, eps) for radius in (1, 2, 4, 8) for eps in (1e-6, 1e-5, 1e-4, 1e-3)]
    table = defaultdict(list)
    for degraded, clean, text, _ in frames:
        pipeline.set_prior(prior_from_text(text, "fixed", pipeline.encoder))
        pipeline.reconfigure(processing_max_side=0)
        full = pipeline.process(degraded).restored
        low = downscale(degraded, working_size(*degraded.shape[:2], side))
        restored_low = pipeline.process(low).restored
        for radius, eps in grid:
            out = guided_upsample(degraded, low, restored_low, radius, eps)
            table[(radius, eps)].append((peak_signal_noise_ratio(full, out, data_range=1.0),
                                         peak_signal_noise_ratio(clean, out, data_range=1.0)))
    print(f"| radius | eps | PSNR vs full at {side} | PSNR vs truth |\n|---|---|---|---|")
    for (radius, eps), values in table.items():
        vs_full, vs_truth = np.mean(values, axis=0)
        print(f"| {radius} | {eps:g} | {vs_full:.2f} | {vs_truth:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--max-sides", type=int, nargs="+", default=[960, 1280])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--threads", type=int, default=0,
                        help="backend CPU threads; 0: automatic, as the node's default")
    parser.add_argument("--left-out", action="store_true",
                        help="weather from the renderer left out of training, for every type")
    parser.add_argument("--sweep", action="store_true",
                        help="score fit radii and eps at the first max side instead")
    args = parser.parse_args()

    model = load_model()
    encoder = TextEncoder()
    backend = create_backend(args.backend, model, DEFAULT_CACHE, threads=args.threads)
    pipeline = Pipeline(TorchPriorEncoding(model), backend, encoder,
                        initial=NoPrior(encoder).describe(None))
    width, height = parse_size(args.size)
    frames = large_frames(width, height, args.frames, args.split,
                          dict.fromkeys(TYPES, EXTERNAL) if args.left_out else None)
    if args.sweep:
        return sweep(pipeline, frames, args.max_sides[0])
    table, inputs, by_weather = defaultdict(list), [], defaultdict(list)
    for degraded, clean, text, weather in frames:
        start = scores(clean, degraded)[0]
        by_weather[weather].append([start])
        scored = weather != "clean"  # the first table: weather frames (clean ones: the second)
        if scored:
            inputs.append(start)
        pipeline.set_prior(prior_from_text(text, "fixed", encoder))
        outputs = {}
        for side in [0, *args.max_sides]:
            pipeline.reconfigure(processing_max_side=side)
            result = pipeline.process(degraded)
            outputs[side] = result.restored
            table[(side, "ms")].append(1000 * result.latency_s)
            truth = scores(clean, result.restored)
            by_weather[weather][-1].append(truth[0])
            if scored:
                table[(side, "vs truth")].append(truth)
        for side in args.max_sides:
            table[(side, "vs full")].append(scores(outputs[0], outputs[side]))
            low = downscale(degraded, working_size(height, width, side))
            pipeline.reconfigure(processing_max_side=0)
            naive = cv2.resize(pipeline.process(low).restored, (width, height),
                               interpolation=cv2.INTER_LINEAR)
            table[(side, "naive vs full")].append(scores(outputs[0], naive))
            if scored:
                table[(side, "naive vs truth")].append(scores(clean, naive))
    print(f"{args.frames} frames at {args.size}, {args.split} split, "
          f"{'left-out' if args.left_out else 'training'} renderers, {args.backend}, "
          f"threads {args.threads or 'auto'}; "
          f"input vs truth {np.mean(inputs):.2f} dB (weather frames)")
    print("| max side | measure | PSNR dB | SSIM | median ms |")
    print("|---|---|---|---|---|")
    for (side, measure), values in table.items():
        if measure == "ms":
            continue
        psnr, ssim = np.mean(values, axis=0)
        label = "full (0)" if side == 0 else side
        print(f"| {label} | {measure} | {psnr:.2f} | {ssim:.4f} | "
              f"{np.median(table[(side, 'ms')]):.0f} |")
    sides = ["full (0)", *args.max_sides]
    print("\nPSNR dB vs truth by weather (a frame left untouched counts 100 dB):")
    print("| weather | n | input | " + " | ".join(map(str, sides)) + " |")
    print("|---|---|---|" + "---|" * len(sides))
    for weather, rows in sorted(by_weather.items()):
        means = np.mean(rows, axis=0)
        print(f"| {weather} | {len(rows)} | " + " | ".join(f"{m:.2f}" for m in means) + " |")


if __name__ == "__main__":
    main()
