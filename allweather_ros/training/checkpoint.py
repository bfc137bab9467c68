"""Resumable training checkpoints in safetensors: model, optimizer state and progress.

Optimizer state is flattened into named tensors (`optim.<param>.<key>`); scalars and the
schedule go into the file's JSON metadata, so nothing is ever unpickled.
"""
from __future__ import annotations

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
