"""Training throughput (samples/s) per precision and memory layout, through the real loop.

Each variant trains `--steps` steps of the given training YAML from fresh weights into a
temporary folder (synthesis workers, losses, optimizer and all) and its figure is read from
log.jsonl: the first half of the steps warms up (worker start, oneDNN's kernels), the second
half is measured. `data wait` is the share of the measured time spent waiting on the weather
synthesis: near 1, more `workers` (or cores) would pay more than faster arithmetic. `text wait`
is the share spent encoding descriptions not yet in the text encoder's cache.

    .venv/bin/python tools/bench_training.py [--config config/train_rt.yaml] [--steps 60]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from allweather_ros.training.loop import TrainConfig, resolved_precision, train  # noqa: E402

VARIANTS = {  # name: (precision, channels_last)
    "fp32": ("fp32", False), "fp32+channels_last": ("fp32", True),
    "bf16": ("bf16", False), "bf16+channels_last": ("bf16", True),
}


def measure(config: TrainConfig, steps: int, out: Path) -> dict:
    """Train `steps` steps (half warm-up) into `out`; the measured half's log line."""
    half = max(steps // 2, 1)
    run = dataclasses.replace(config, steps=2 * half, restart_step=0, out=str(out),
                              checkpoint_every=10 ** 9, log_every=half)
    train(run, resume=False)
    lines = (out / "log.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "train_rt.yaml"))
    parser.add_argument("--steps", type=int, default=60, help="per variant, half of them warm-up")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (half warm-up, half measured)")
    config = TrainConfig.from_yaml(args.config)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            precision, channels_last = VARIANTS[name]
            variant = dataclasses.replace(config, precision=precision,
                                          channels_last=channels_last)
            line = measure(variant, args.steps, Path(tmp) / name)
            results.append({"variant": name, "samples_per_s": line["samples_per_s"],
                            "data_wait": line["data_wait"], "text_wait": line["text_wait"],
                            "loss": line["loss"]})
    print(f"\n{Path(args.config).name}: batch {config.batch_size} of {config.crop} px, "
          f"{config.workers} synthesis worker(s), {config.threads or 'default'} torch thread(s), "
          f"{args.steps} steps per variant (half measured); precision auto trains "
          f"{resolved_precision('auto', torch.device('cpu'))} on this CPU")
    print("| variant | samples/s | data wait | text wait |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['variant']} | {r['samples_per_s']:.2f} | {r['data_wait']:.0%} "
              f"| {r['text_wait']:.0%} |")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
