"""The README's main job, `allweather demo --out DIR`: a short rainy drive made from scikit-image's
photos (no camera, no download), restored with the embedded defaults (shipped weights, built-in
prior, CPU backend), written as a restored bag plus a report.

60 frames of 320x240 at 10 fps: six seconds of two panning shots, enough for the plots to show
flicker and the prior's refreshes, small enough (about 28 MB of raw frames) that making the bag,
exporting the ONNX graph on first use and restoring it fit in two minutes on a 2-core CPU.
"""
from __future__ import annotations

from pathlib import Path

from ..description import Degradation
from .eval_bag import eval_bag, prepare_output
from .make_bag import GT_TOPIC, make_bag

WEATHER = [Degradation("rain", "heavy"), Degradation("raindrop", "moderate")]
FRAMES, SIZE, FPS, SEED = 60, (320, 240), 10.0, 7


def run_demo(out: str | Path, *, live: bool = False, config=None, frames: int = FRAMES,
             size: tuple[int, int] = SIZE, progress: bool = True) -> dict:
    """Make the rainy bag in OUT/input (kept when it is already there), restore it into OUT."""
    out = prepare_output(out)
    bag = out / "input"
    if not (bag / "metadata.yaml").is_file():
        make_bag(bag, frames=frames, fps=FPS, size=size, weather=WEATHER, seed=SEED,
                 storage="mcap", progress=progress)
    if live:
        from .live import eval_live

        return eval_live(bag, "/camera/image_raw", out, gt_topic=GT_TOPIC, config=config,
                         progress=progress)
    return eval_bag(bag, "/camera/image_raw", out, gt_topic=GT_TOPIC, config=config,
                    progress=progress)
