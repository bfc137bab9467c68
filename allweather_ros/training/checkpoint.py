"""Resumable training checkpoints in safetensors: model, optimizer state and progress.

Optimizer state is flattened into named tensors (`optim.<param>.<key>`); scalars and the
schedule go into the file's JSON metadata, so nothing is ever unpickled.

    python -m allweather_ros.training.checkpoint A.safetensors B.safetensors --out C.safetensors

averages the networks of checkpoints along one run (a weight soup), see `average_checkpoints`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..model import LDRNet


def save_checkpoint(path: Path, model: LDRNet, optimizer: torch.optim.Optimizer,
                    progress: dict) -> Path:
    tensors = {f"model.{k}": v.detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    scalars = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value) and value.dim() > 0:
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = float(value)
    metadata = {"config": json.dumps(model.config), "progress": json.dumps(progress),
                "optim_scalars": json.dumps(scalars),
                "param_groups": json.dumps(state["param_groups"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def load_checkpoint(path: Path, model: LDRNet, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model and optimizer in place; returns the saved progress (step, epoch, ...)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        saved = {**model.defaults(), **json.loads(meta["config"])}  # older files lack newer args
        if saved != json.loads(json.dumps(model.config)):
            raise ValueError(f"{path} was trained with another model config: "
                             f"{meta['config']} vs {json.dumps(model.config)}")
        model.load_state_dict({k[6:]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")})
        state: dict = {"state": {}, "param_groups": json.loads(meta["param_groups"])}
        for key in f.keys():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state["state"].setdefault(int(index), {})[name] = f.get_tensor(key)
    for key, value in json.loads(meta["optim_scalars"]).items():
        index, name = key.split(".", 1)
        state["state"].setdefault(int(index), {})[name] = torch.tensor(value)
    optimizer.load_state_dict(state)
    return json.loads(meta["progress"])


def model_from_checkpoint(path: Path) -> tuple[LDRNet, dict]:
    """The network of a training checkpoint (no optimizer), and its progress."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        config = json.loads(meta["config"])
        for key in ("enc_blocks", "dec_blocks"):
            config[key] = tuple(config[key])
        model = LDRNet(**config)
        model.load_state_dict({k[6:]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")})
    return model.eval(), json.loads(meta["progress"])


def checkpoint_progress(path: Path) -> dict:
    """A checkpoint's progress (step, epoch, seconds), read from its metadata alone."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["progress"])


def average_checkpoints(sources: list[Path], out: Path) -> Path:
    """The mean of `sources`' networks (points of one run, e.g. before and after a leg: a soup
    keeps what each leg gained in common and evens out what one leg over-fitted), with the last
    source's optimizer state and progress, so that training resumes from the average."""
    if len(sources) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    sums: dict[str, torch.Tensor] = {}
    network = None
    for path in sources:
        with safe_open(str(path), framework="pt") as f:
            config = json.loads(f.metadata()["config"])
            network = network or config
            if config != network:
                raise ValueError(f"{path} holds another network than {sources[0]}")
            for key in (k for k in f.keys() if k.startswith("model.")):
                tensor = f.get_tensor(key).double()
                sums[key] = sums[key] + tensor if key in sums else tensor
    with safe_open(str(sources[-1]), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = dict(f.metadata())
    for key, total in sums.items():
        if tensors[key].is_floating_point():
            tensors[key] = (total / len(sources)).to(tensors[key].dtype)
    metadata["averaged"] = json.dumps([checkpoint_progress(p) for p in sources])
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=metadata)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Average the networks of training checkpoints.")
    parser.add_argument("sources", nargs="+", type=Path, help="checkpoints of one run")
    parser.add_argument("--out", required=True, type=Path, help="the averaged checkpoint")
    args = parser.parse_args(argv)
    print(average_checkpoints(args.sources, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
