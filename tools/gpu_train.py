"""Train the restorer or the built-in estimator on a lent GPU machine in one command.

A lent machine has no network and takes at most 64 MiB of working tree (the repository
included), so what training reads is packed here first:

    .venv/bin/python tools/gpu_train.py pack runs/gpu_pack            # here, about 50 MiB
    python3 tools/gpu_train.py train runs/gpu_pack --out $OUT/rt       # there (carry runs/gpu_pack)
    python3 tools/gpu_train.py train runs/gpu_pack --run rt_noprior --out $OUT/rt_noprior
    python3 tools/gpu_train.py train runs/gpu_pack --fresh --config my.yaml --run mine --out ...
    python3 tools/gpu_train.py estimator runs/gpu_pack --out $OUT/estimator.safetensors \
        --steps 8000 --lr 1e-3 --night-p 0.2 --seed 58 [--widths 32,64,128,192 ...]

The pack holds the training split's photos (shrunk to the 768 px the dataset loads them at,
JPEG), the checkpoints to resume from (by default the shipped network's and its no-prior
ablation's, so that both legs share a recipe), and the text encoder with every word-piece
row that no description can use zeroed and its weights rounded to fp16, compressed: the
descriptions use a few dozen of its 30,522 word pieces (an encoded description moves by about
1e-3; a text with any other word piece is refused, not silently mis-encoded). `train`
resumes one run's checkpoint with its training YAML's recipe on the GPU, many synthesis
workers feeding it, restarts the cosine at the checkpoint's step for `--steps` more, stops
after `--minutes` with the checkpoint written, and prints the YAML lines that continue the
same schedule on the CPU: copy OUT/<run>/last.safetensors to checkpoints/<run>/ and run
`allweather train --config ...`. Two runs side by side share the cores: give each `--workers`
of at most (cores - 4) / 2, so that the processes feeding the GPU keep a core each.
`--fresh` trains a YAML's network (another variant or recipe) from its first step instead.
`estimator` trains the built-in estimator on the same photos (from the shipped weights unless
`--init` says otherwise; any option of `python -m allweather_ros.training.estimator` passes on),
the network on the GPU, every core but two making its weather. Its steps are the whole run (a
cosine to zero), so size them to the time there: here a 2,000-step leg of 32 views took about
20 minutes on one core, which the weather's making bounds. Back here, calibrate it on the real
photos (`python -m allweather_ros.evaluation.calibrate`) before use.
Weights over the 16 MiB a file may come back from the device machine (`base`'s) are also
written in fp16 beside them (`weights.fp16.safetensors`), which `load_weights` reads as fp32.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGET = 64 * 2 ** 20  # what may travel to the device machine: the repository and the pack
ENCODER = "text_encoder"
PACKED_WEIGHTS = "model.fp16.safetensors.xz"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
DEFAULT_CHECKPOINTS = [ROOT / "checkpoints" / run / "last.safetensors"
                       for run in ("rt", "rt_noprior")]
SCENE_SIDE = 768  # SyntheticWeatherDataset's max_side: the photos as training loads them
RETURN_LIMIT = 16 * 2 ** 20  # the largest file that comes back from the device machine
SYNTHESIS_WORKERS = max((os.cpu_count() or 2) - 2, 1)  # all cores but two make the weather


def description_vocabulary(tokenizer) -> list[int]:
    """Every word-piece id that a training or estimated description can hold: every type,
    severity and place alone, a list of three (its comma and "and"), the clear and generic
    texts."""
    from allweather_ros.description import (
        CLEAN_TEXT,
        GENERIC_TEXT,
        LOCATIONS,
        SEVERITIES,
        TYPES,
        Degradation,
        describe,
    )

    texts = [CLEAN_TEXT, GENERIC_TEXT, describe([Degradation("rain", "slight"),
                                                 Degradation("snow", "heavy"),
                                                 Degradation("haze", "moderate")])]
    texts += [describe([Degradation(t, s, where)]) for t in TYPES for s in SEVERITIES
              for where in (None, *LOCATIONS)]
    return sorted({i for text in texts for i in tokenizer.encode(text).ids})


def pack_text_encoder(out: Path) -> dict:
    """The bundled encoder, unused word pieces zeroed, fp16, xz-compressed, into `out`."""
    from safetensors.numpy import load_file, save
    from tokenizers import Tokenizer

    from allweather_ros.network_io import file_sha256
    from allweather_ros.prior.text_encoder import (
        BUNDLED_SHA256,
        WEIGHT_FILE,
        bundled_model_dir,
        verify_sha256,
    )

    source = bundled_model_dir()
    verify_sha256(source / WEIGHT_FILE, BUNDLED_SHA256)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json"):
        shutil.copy2(source / name, out / name)
    keep = description_vocabulary(Tokenizer.from_file(str(source / "tokenizer.json")))
    state = load_file(source / WEIGHT_FILE)
    unused = np.ones(len(state[WORD_EMBEDDINGS]), bool)
    unused[keep] = False
    state[WORD_EMBEDDINGS][unused] = 0
    halved = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in state.items()}
    (out / PACKED_WEIGHTS).write_bytes(lzma.compress(save(halved), preset=6))
    return {"vocabulary": keep, "sha256": file_sha256(out / PACKED_WEIGHTS)}


def unpack_text_encoder(pack: Path, into: Path, cache_size: int = 8192, device: str = "cpu"):
    """The packed encoder, weights back in fp32 under `into`, run on `device`, refusing texts
    outside the packed vocabulary."""
    from safetensors.numpy import load, save_file

    from allweather_ros.network_io import file_sha256
    from allweather_ros.prior.text_encoder import (
        WEIGHT_FILE,
        TextEncoder,
        verify_sha256,
    )

    manifest = json.loads((pack / "manifest.json").read_text())
    packed = pack / ENCODER / PACKED_WEIGHTS
    verify_sha256(packed, manifest[ENCODER]["sha256"])
    into.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json"):
        shutil.copy2(pack / ENCODER / name, into / name)
    state = load(lzma.decompress(packed.read_bytes()))
    save_file({k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in state.items()},
              into / WEIGHT_FILE)
    known = frozenset(manifest[ENCODER]["vocabulary"])

    class PackedTextEncoder(TextEncoder):
        def tokenize(self, text: str) -> dict[str, np.ndarray]:
            tokens = super().tokenize(text)
            unknown = set(tokens["input_ids"][0].tolist()) - known
            if unknown:
                raise ValueError(f"the packed text encoder lacks word pieces {sorted(unknown)} "
                                 f"of {text!r}: pack again with this description vocabulary")
            return tokens

    return PackedTextEncoder(into, file_sha256(into / WEIGHT_FILE), device=device,
                             cache_size=cache_size)


def _tracked_bytes() -> int:
    """What the repository sends to the device machine besides the pack."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    return sum((ROOT / name).stat().st_size for name in listed.stdout.decode().split("\0")
               if name and (ROOT / name).is_file())


def pack(args: argparse.Namespace) -> int:
    import cv2

    from allweather_ros.data.sources import debian_scenes, scenes_in_split
    from allweather_ros.training.checkpoint import checkpoint_progress

    out = Path(args.pack)
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise SystemExit(f"{out} holds files and is not an earlier pack: choose an empty folder")
    if out.exists():
        shutil.rmtree(out)  # an earlier pack, replaced whole
    scenes = scenes_in_split(debian_scenes(), "train")
    if not scenes:
        raise SystemExit("no training photos found: run tools/data_fetch_debian_photos.sh first")
    for scene in scenes:  # skimage's photos ship with scikit-image there too
        target = out / "scenes" / scene.name
        target.parent.mkdir(parents=True, exist_ok=True)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(scene.load(SCENE_SIDE), cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        target.write_bytes(jpeg.tobytes())  # the name is kept: it decides the split
    runs = {}
    (out / "checkpoints").mkdir(parents=True)
    for checkpoint in map(Path, args.checkpoint or DEFAULT_CHECKPOINTS):
        run = checkpoint.parent.name  # checkpoints/<run>/last.safetensors
        if run in runs:
            raise SystemExit(f"two checkpoints of run {run!r}: pack one per folder name")
        shutil.copy2(checkpoint, out / "checkpoints" / f"{run}.safetensors")
        runs[run] = checkpoint_progress(checkpoint)["step"]
    manifest = {"scenes": len(scenes), "runs": runs, ENCODER: pack_text_encoder(out / ENCODER)}
    (out / "manifest.json").write_text(json.dumps(manifest))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    tree = _tracked_bytes()
    steps = ", ".join(f"{run} at step {step}" for run, step in runs.items())
    print(f"{out}: {manifest['scenes']} photos, checkpoints {steps}, "
          f"{size / 2 ** 20:.1f} MiB (+ {tree / 2 ** 20:.1f} MiB of repository = "
          f"{(size + tree) / 2 ** 20:.1f} of {BUDGET / 2 ** 20:.0f} MiB)")
    if size + tree > BUDGET:
        print("too large to travel: lower --quality", file=sys.stderr)
        return 1
    return 0


def half_copy(weights: Path) -> Path:
    """`weights` with every float tensor in fp16 (metadata kept) beside it: a `base` network's
    fp32 weights (23 MB) are too large to come back from the device machine; loading the copy
    (`load_weights`) widens them to fp32 again."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    out = weights.with_name(weights.stem + ".fp16.safetensors")
    save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
              str(out), metadata=metadata)
    return out


def train_on_pack(args: argparse.Namespace) -> int:
    pack_dir, out = Path(args.pack).resolve(), Path(args.out)
    os.environ["ALLWEATHER_SCENES"] = str(pack_dir / "scenes")  # read when sources is imported
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"  # the loop's choice, one process
    if device == "cpu":
        print("no CUDA device: training on the CPU", file=sys.stderr)
    from allweather_ros.training.checkpoint import checkpoint_progress
    from allweather_ros.training.loop import TrainConfig, train

    checkpoint = pack_dir / "checkpoints" / f"{args.run}.safetensors"
    if args.fresh:
        if not args.config:
            raise SystemExit("--fresh trains the --config YAML's network from its first step: "
                             "name the YAML")
        start = 0
    elif checkpoint.is_file():
        start = checkpoint_progress(checkpoint)["step"]
    else:
        raise SystemExit(f"the pack holds no checkpoint of run {args.run!r}: "
                         f"{sorted(p.stem for p in checkpoint.parent.glob('*.safetensors'))}")
    config = TrainConfig.from_yaml(args.config or ROOT / "config" / f"train_{args.run}.yaml")
    config = dataclasses.replace(  # two torch threads: the synthesis workers have the others
        config, out=str(out), steps=start + args.steps, restart_step=start,
        lr=args.lr or config.lr, max_minutes=args.minutes, threads=2,
        batch_size=args.batch_size or config.batch_size,
        workers=args.workers if args.workers is not None else SYNTHESIS_WORKERS)
    if (out / "last.safetensors").exists():
        raise SystemExit(f"{out} holds a checkpoint already: choose an empty --out")
    out.mkdir(parents=True, exist_ok=True)
    if not args.fresh:
        shutil.copy2(checkpoint, out / "last.safetensors")
    with tempfile.TemporaryDirectory() as tmp:
        weights = train(config, encoder=unpack_text_encoder(pack_dir, Path(tmp), device=device))
    if weights.stat().st_size > RETURN_LIMIT:
        print(f"{weights.name} is over the {RETURN_LIMIT // 2 ** 20} MiB a file may come back "
              f"from the device machine: also written in fp16 as {half_copy(weights).name}")
    reached = checkpoint_progress(out / "last.safetensors")["step"]
    print(f"trained steps {start}-{reached} into {out} ({weights.name} beside it); on the CPU, "
          f"with {out / 'last.safetensors'} in checkpoints/{args.run}/, the same schedule goes "
          f"on with the YAML's steps: {config.steps}, restart_step: {start}, lr: {config.lr}")
    return 0


def estimator_on_pack(args: argparse.Namespace, options: list[str]) -> int:
    """There: an estimator leg on the packed photos, `options` passed to the estimator's own
    command line after the defaults here (a later option wins)."""
    os.environ["ALLWEATHER_SCENES"] = str(Path(args.pack).resolve() / "scenes")
    from allweather_ros.prior.builtin import SHIPPED_WEIGHTS
    from allweather_ros.training import estimator

    return estimator.main(["--init", str(SHIPPED_WEIGHTS), "--threads", "2", "--workers",
                           str(SYNTHESIS_WORKERS), *options, "--out", args.out])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: photos, checkpoint and text encoder into a folder")
    p.add_argument("pack")
    p.add_argument("--checkpoint", action="append",
                   help="a checkpoints/<run>/last.safetensors to resume there, repeatable "
                        "(default: rt and rt_noprior)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of the photos")
    t = sub.add_parser("train", help="there: resume the packed checkpoint on the GPU")
    t.add_argument("pack")
    t.add_argument("--out", required=True)
    t.add_argument("--run", default="rt", help="which packed checkpoint to resume")
    t.add_argument("--config", help="training YAML (default: config/train_<run>.yaml)")
    t.add_argument("--fresh", action="store_true",
                   help="train the --config YAML's network (a new variant or recipe) from its "
                        "first step instead of resuming a packed checkpoint")
    t.add_argument("--minutes", type=float, default=8.0, help="stop, checkpoint written, after")
    t.add_argument("--steps", type=int, default=20000, help="the cosine's span after the resume")
    t.add_argument("--lr", type=float, default=0.0, help="restart learning rate (0: the YAML's)")
    t.add_argument("--batch-size", type=int, default=0, help="0: the YAML's")
    t.add_argument("--workers", type=int, help="synthesis workers (default: all cores but two)")
    e = sub.add_parser("estimator", help="there: an estimator leg on the packed photos; "
                                         "other options go to the estimator's trainer")
    e.add_argument("pack")
    e.add_argument("--out", required=True, help="the estimator weights file to write")
    args, options = parser.parse_known_args(argv)
    if args.command == "estimator":
        return estimator_on_pack(args, options)
    if options:
        parser.error(f"unrecognized arguments: {' '.join(options)}")
    return pack(args) if args.command == "pack" else train_on_pack(args)


if __name__ == "__main__":
    sys.exit(main())
