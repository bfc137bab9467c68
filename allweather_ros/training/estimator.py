"""Trains the built-in degradation estimator on synthetic weather and reports how well it tells
the weathers apart on scenes it never saw.

Labels come free with the synthesis (types and severities of what was added), so the estimator
learns on fresh weather every step: BCE on the multi-label types, and cross-entropy on the
severity of each type that is present (an absent type has no severity). Crops are synthesized
at `crop` pixels, large enough for the streaks, flakes and drops to look as they do in a frame,
and the estimator shrinks them itself, exactly as it shrinks a camera frame at run time.

    python -m allweather_ros.training.estimator --out allweather_ros/weights/estimator.safetensors

Fitted to a camera: from the shipped weights (`--init`, whose calibration the new file keeps),
on that camera's own clean frames beside the shipped photos (`--scenes`), so that its scenes,
lights and textures are seen with and without rendered weather (the recipe of the shipped
weights' last leg, 10 to 20 minutes on two CPU cores):

    python -m allweather_ros.training.estimator \\
        --init allweather_ros/weights/estimator.safetensors --scenes ~/camera_frames \\
        --steps 2000 --lr 1e-3 --night-p 0.2 --seed 21 --out my_estimator.safetensors
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from allweather_ros.data.datasets import SyntheticWeatherDataset, synthetic_test_set
from allweather_ros.data.sources import default_scenes, scenes_in_split
from allweather_ros.data.synthesis import MIXTURE_P, type_probabilities
from allweather_ros.description import SEVERITIES, TYPES
from allweather_ros.model.weights import read_metadata, save_weights
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS
from allweather_ros.prior.estimator_net import DegradationEstimator, load_estimator, widened
from allweather_ros.training.checks import check_weather_options
from allweather_ros.training.finite_steps import FiniteSteps


@dataclass
class EstimatorTrainConfig:
    steps: int = 1600
    batch: int = 32
    crop: int = 160
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    clean_p: float = 0.15  # clean frames must be learnt as clean, not as "slight haze"
    noise_p: float = 0.5  # camera noise on this share of samples, so it is not read as weather
    camera_p: float = 0.5  # views through a random camera (exposure, blur, JPEG: data.camera)
    exposure_p: float = 0.3  # clean views flattened and re-exposed: low contrast is not haze
    night_p: float = 0.0  # clean views relit as night streets with lamps: lights are not weather
    zoom_p: float = 0.0  # weather drawn for a view up to max_zoom x larger, seen through a crop
    max_zoom: float = 2.0
    mixture_p: float = MIXTURE_P  # weather recipes that stack types (haze under rain, ...)
    type_weights: dict[str, float] = field(default_factory=dict)  # single-type recipes; {}: even
    widths: tuple[int, ...] | None = None  # per stage; None: the init's, else the network's default
    hidden: int | None = None  # the head's hidden units; None likewise
    seed: int = 0
    workers: int = 1
    eval_repeats: int = 8  # the balanced test grid (31 recipes) this many times
    val_samples: int = 400
    checkpoint_every: int = 200

    def __post_init__(self):
        """Refuse a bad run by name before any data is made, from the command line or Python."""
        for name in ("steps", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        check_weather_options(self, ("noise_p", "camera_p", "exposure_p", "night_p", "zoom_p",
                                     "mixture_p"))


def estimator_loss(types_logits, severity_logits, types, severity):
    """BCE over the four types plus CE over the severity of the types present."""
    loss = F.binary_cross_entropy_with_logits(types_logits, types)
    present = severity >= 0
    if present.any():
        loss = loss + F.cross_entropy(severity_logits[present], severity[present])
    return loss


def _augment(frames: torch.Tensor, g: torch.Generator, noise_p: float) -> torch.Tensor:
    """A random aspect ratio for the batch (frames are rarely square) and camera noise."""
    side = frames.shape[-1]
    short = int(torch.randint(side * 2 // 3, side + 1, (1,), generator=g))
    if torch.rand((), generator=g) < 0.5:
        frames = frames[..., :short, :]
    else:
        frames = frames[..., :short]
    sigma = torch.rand(frames.shape[0], 1, 1, 1, generator=g) * 0.02
    sigma = sigma * (torch.rand(frames.shape[0], 1, 1, 1, generator=g) < noise_p)
    return (frames + sigma * torch.randn(frames.shape, generator=g)).clamp(0.0, 1.0)


def _schedule(config: EstimatorTrainConfig):
    """Linear warm-up, then cosine decay to zero."""
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def training_data(config: EstimatorTrainConfig, scenes) -> SyntheticWeatherDataset:
    """The run's weather on the training scenes: one sample per (step, batch slot)."""
    return SyntheticWeatherDataset(scenes, "train", crop=config.crop, seed=config.seed,
                                   length=config.steps * config.batch, wrong_description_p=0.0,
                                   clean_p=config.clean_p, camera_p=config.camera_p,
                                   exposure_p=config.exposure_p, night_p=config.night_p,
                                   type_weights=config.type_weights, zoom_p=config.zoom_p,
                                   max_zoom=config.max_zoom, mixture_p=config.mixture_p)


def initial_model(config: EstimatorTrainConfig, init: str | Path | None) -> DegradationEstimator:
    """A new network, `init`'s, or `init`'s widened to the config's widths and hidden units
    (estimator_net.widened: the trained function in a wider network); what the config leaves
    unset (None) is the init's, or the network's default."""
    asked = {k: v for k, v in (("widths", config.widths), ("hidden", config.hidden)) if v}
    if init is None:
        return DegradationEstimator(**asked)
    model = load_estimator(init)
    has = {"widths": tuple(model.config["widths"]), "hidden": model.config["hidden"]}
    wanted = has | asked
    if wanted == has:
        return model
    return widened(model, **wanted)  # the same widening whatever the run's seed


def train_estimator(config: EstimatorTrainConfig, scenes=None, out: str | Path | None = None,
                    resume: bool = True, progress: bool = True, init: str | Path | None = None,
                    device: str | torch.device | None = None
                    ) -> tuple[DegradationEstimator, list[float]]:
    """Train from scratch, from `init`'s weights (a fresh schedule: fine-tuning or training
    longer), or on from `out`'s checkpoint; returns the model (on the CPU) and the per-step
    losses. `device`: where the network trains (None: CUDA where there is one, as on a lent GPU
    machine, else the CPU); the weather is made on the CPU by the loader's workers either way."""
    torch.manual_seed(config.seed)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data = training_data(config, default_scenes() if scenes is None else scenes)
    model = initial_model(config, init).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    checkpoint = None if out is None else Path(out).with_suffix(".train.pt")
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    start, losses = 0, []
    if resume and checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = state["step"], state["losses"]
    # Sample i of the run is dataset index i, so a resumed run sees the same data it would have.
    loader = DataLoader(data, batch_size=config.batch, num_workers=config.workers,
                        sampler=range(start * config.batch, config.steps * config.batch),
                        persistent_workers=False)
    model.train()
    finite = FiniteSteps(optimizer, "lower the lr" if checkpoint is None else
                        f"resume from {checkpoint} (the last saved) with a lower lr")
    g = torch.Generator().manual_seed(config.seed + start)
    bar = tqdm(loader, total=config.steps - start, initial=0, desc="estimator",
               disable=not progress, mininterval=10.0)
    for step, batch in enumerate(bar, start):
        frames = _augment(batch["degraded"], g, config.noise_p).to(device)
        loss = estimator_loss(*model(frames), batch["types"].to(device),
                              batch["severity"].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        finite.step(loss)
        scheduler.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}", refresh=False)
        if checkpoint is not None and (step + 1) % config.checkpoint_every == 0:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "step": step + 1,
                        "losses": losses}, checkpoint)
    return model.cpu().eval(), losses


@torch.inference_mode()
def evaluate_estimator(model: DegradationEstimator, data, threshold: float = 0.5,
                       batch: int = 16) -> dict:
    """Per-type accuracy, precision, recall, F1; severity accuracy on correctly detected types;
    exact-match rate (all four right) and the share of clean frames called clean."""
    model.eval()
    predicted, truth, sev_pred, sev_true = [], [], [], []
    for items in DataLoader(data, batch_size=batch, num_workers=0):
        types_logits, severity_logits = model(items["degraded"])
        predicted.append(torch.sigmoid(types_logits) >= threshold)
        truth.append(items["types"] > 0.5)
        sev_pred.append(severity_logits.argmax(-1))
        sev_true.append(items["severity"])
    p, y = torch.cat(predicted), torch.cat(truth)
    sp, st = torch.cat(sev_pred), torch.cat(sev_true)
    per_type = {}
    for i, name in enumerate(TYPES):
        tp = int((p[:, i] & y[:, i]).sum())
        fp = int((p[:, i] & ~y[:, i]).sum())
        fn = int((~p[:, i] & y[:, i]).sum())
        precision = tp / max(1, tp + fp)
        recall = tp / max(1, tp + fn)
        hit = p[:, i] & y[:, i]
        per_type[name] = {
            "accuracy": float((p[:, i] == y[:, i]).float().mean()),
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / max(1e-9, precision + recall),
            "support": int(y[:, i].sum()),
            "severity_accuracy": float((sp[hit, i] == st[hit, i]).float().mean()) if tp else None,
        }
    hits = p & y
    clean = ~y.any(dim=1)
    return {
        "samples": len(y),
        "threshold": threshold,
        "per_type": per_type,
        "exact_match": float((p == y).all(dim=1).float().mean()),
        "severity_accuracy": float((sp[hits] == st[hits]).float().mean()) if hits.any() else None,
        "clean_frames": int(clean.sum()),
        "clean_accuracy": float((~p[clean].any(dim=1)).float().mean()) if clean.any() else None,
    }


def held_out_metrics(model: DegradationEstimator, scenes, config: EstimatorTrainConfig
                     ) -> dict | None:
    """Metrics on the fixed test set (every type, mixture and severity on the test scenes) and
    on random weather over the validation scenes (more clean frames, natural mixture rates);
    None where `scenes` hold no test or no validation scene (tools/gpu_train.py's pack carries
    training photos only), so that a finished run is saved all the same."""
    if not all(scenes_in_split(scenes, split) for split in ("val", "test")):
        return None
    test = synthetic_test_set(scenes, crop=config.crop, repeats=config.eval_repeats)
    val = SyntheticWeatherDataset(scenes, "val", crop=config.crop, seed=config.seed + 1,
                                  length=config.val_samples, wrong_description_p=0.0,
                                  clean_p=config.clean_p, flips=False)
    return {"test": evaluate_estimator(model, test), "val": evaluate_estimator(model, val)}


def _type_weights(text: str) -> dict[str, float]:
    """"haze=2.5,raindrop=2" -> {"haze": 2.5, "raindrop": 2.0}, checked by type_probabilities."""
    weights = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected TYPE=WEIGHT, got {item!r}") from None
    try:
        type_probabilities(weights)
    except ValueError as error:  # argparse would print only "invalid value"
        raise argparse.ArgumentTypeError(str(error)) from None
    return weights


def _at_least(text: str, kind: type, low: float, expected: str):
    """`text` read as `kind` (int or float) of at least `low` (nan is not); else an argparse
    error that says what was `expected`."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not value >= low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive(text: str) -> int:
    """A count of channels or units: a positive whole number."""
    return _at_least(text, int, 1, "a positive whole number")


def _zoom(text: str) -> float:
    """The largest zoom of the weather: a number >= 1 (1: weather at its usual scale)."""
    return _at_least(text, float, 1.0, "a zoom of at least 1")


def _widths(text: str) -> tuple[int, ...]:
    """"32,64,128,192" -> (32, 64, 128, 192)."""
    return tuple(_positive(w) for w in text.split(","))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(SHIPPED_WEIGHTS), help="safetensors file to write")
    parser.add_argument("--steps", type=int, default=EstimatorTrainConfig.steps)
    parser.add_argument("--batch", type=int, default=EstimatorTrainConfig.batch)
    parser.add_argument("--workers", type=int, default=EstimatorTrainConfig.workers)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--init", help="start from these estimator weights (train longer)")
    parser.add_argument("--lr", type=float, default=EstimatorTrainConfig.lr)
    parser.add_argument("--seed", type=int, default=EstimatorTrainConfig.seed,
                        help="training weather and crops (give --init runs a new one)")
    parser.add_argument("--clean-p", type=float, default=EstimatorTrainConfig.clean_p,
                        help="share of training frames without weather")
    parser.add_argument("--night-p", type=float, default=EstimatorTrainConfig.night_p,
                        help="share of views relit as night streets with lamps")
    parser.add_argument("--zoom-p", type=float, default=EstimatorTrainConfig.zoom_p,
                        help="share of views whose weather is drawn up to --max-zoom times "
                             "closer (as a large photo read in tiles shows it)")
    parser.add_argument("--max-zoom", type=_zoom, default=EstimatorTrainConfig.max_zoom,
                        help="how much closer at most (>= 1)")
    parser.add_argument("--mixture-p", type=float, default=EstimatorTrainConfig.mixture_p,
                        help="share of weather frames with several types stacked (haze under "
                             "rain or snow, drops over rain, ...; 0.6 on four seeds, level on "
                             "real photos: docs/experiments.md)")
    parser.add_argument("--type-weights", type=_type_weights, default={}, metavar="T=W,...",
                        help="single-type recipes of these types more often, e.g. haze=2.5")
    parser.add_argument("--widths", type=_widths, metavar="W,...",
                        help="channels per stage, e.g. 32,64,128,192 (an --init is widened to "
                             "them); default: the init's, or 16,32,64,96")
    parser.add_argument("--hidden", type=_positive,
                        help="the head's hidden units (default: the init's, or 64)")
    parser.add_argument("--scenes", nargs="+", default=[], metavar="PATH",
                        help="your own clean frames to draw weather on, beside the shipped "
                             "photos: folders of images or videos (split by name, as the "
                             "restorer's training splits them)")
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        config = EstimatorTrainConfig(steps=args.steps, batch=args.batch, workers=args.workers,
                                      lr=args.lr, seed=args.seed, clean_p=args.clean_p,
                                      night_p=args.night_p, type_weights=args.type_weights,
                                      widths=args.widths, hidden=args.hidden,
                                      zoom_p=args.zoom_p, max_zoom=args.max_zoom,
                                      mixture_p=args.mixture_p)
    except ValueError as error:  # a share outside [0, 1], no steps, ...: said before any work
        parser.error(str(error))
    missing = [path for path in args.scenes if not Path(path).expanduser().exists()]
    if missing:
        parser.error(f"--scenes: no such folder or video: {', '.join(missing)}")
    try:
        scenes = default_scenes(*(Path(path).expanduser() for path in args.scenes))
    except OSError as error:  # a file that is no video
        parser.error(f"--scenes: {error}")
    began = time.time()
    model, losses = train_estimator(config, scenes, out=args.out, resume=not args.restart,
                                    init=args.init)
    metrics = held_out_metrics(model, scenes, config)
    minutes = (time.time() - began) / 60
    extra = {"metrics": metrics, "training": {**asdict(config), "init": args.init,
                                              "scenes": args.scenes,
                                              "final_loss": losses[-1],
                                              "wall_minutes_this_run": round(minutes, 1)},
             "labels": {"types": list(TYPES), "severities": list(SEVERITIES)}}
    carried = read_metadata(args.init).get("calibration") if args.init else None
    if carried:  # the init's real-photo calibration and tiled reading: better than none
        extra["calibration"] = carried
    out = save_weights(model, args.out, extra=extra)
    report = out.with_name(out.stem + "_metrics.json")
    report.write_text(json.dumps(extra, indent=2) + "\n")
    out.with_suffix(".train.pt").unlink(missing_ok=True)  # finished: a rerun starts afresh
    if metrics is None:
        print("no validation or test scenes here: held-out metrics skipped (measure the weights "
              "with `allweather eval --synthetic` or `--real` where the photos are)")
    else:
        for name, m in metrics["test"]["per_type"].items():
            print(f"{name:<9} accuracy {m['accuracy']:.3f}  F1 {m['f1']:.3f}  "
                  f"severity {m['severity_accuracy']}")
    print(f"wrote {out} and {report}")
    if carried:
        print(f"its calibration is {args.init}'s: refit it on labelled frames of your own with "
              "`python -m allweather_ros.evaluation.calibrate`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
