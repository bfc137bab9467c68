"""Fit a restorer's frame gate (model/network.py `FrameGate`) with the rest of it frozen.

The restorer learns from the mean of a Charbonnier/SSIM loss, in which a slight frame scrubbed
because it was told "heavy" costs little beside a heavy frame restored a little less; so it
trusts the words. The gate is fitted on each frame's PSNR instead (`losses.psnr_loss`, capped),
so a slight frame made 2 dB worse weighs as much as a heavy frame restored 2 dB less. Frames,
descriptions and their misstatements come from the restorer's own recipe (its training YAML).
`--harm-weight` adds `losses.harm_loss`, the decibels by which a frame came out worse than it
went in: a knob from "gain most" (0) towards "never worse" (2: the cost of "heavy" on slight
halved and a third fewer frames made worse, for about 0.5 dB of mean gain). The shipped gates
use 0.6: with the built-in estimator's heavy rain holding the gate open
(prior/frame_gate_opening.py), real rain no longer pays for the caution (model card).

    python -m allweather_ros.training.frame_gate --weights allweather_ros/weights/rt.safetensors \
        --config config/train_rt.yaml --steps 1200 --seed 35 --harm-weight 0.6 \
        --out gated.safetensors
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.weather import RENDERERS
from ..model import LDRNet
from ..model.losses import harm_loss, psnr_loss
from ..model.weights import load_weights, read_metadata, save_weights
from .finite_steps import FiniteSteps
from .loop import TrainConfig, _collate, _dataset, cosine_lr, told

MSE_FLOOR = 3e-4  # PSNR capped at about 35 dB: frames restored past it must not dominate


def with_frame_gate(model: LDRNet, hidden: int) -> LDRNet:
    """The same network and weights plus a fresh frame gate (replacing any it had), the only
    part left trainable."""
    net = LDRNet(**{**model.config, "frame_gate": hidden})
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("frame_gate.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith("frame_gate.") for key in missing):
        raise ValueError(f"{unexpected or missing} do not fit {model.config}")
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(name.startswith("frame_gate."))
    return net.eval()


def fit_frame_gate(weights: str | Path, config: TrainConfig, out: str | Path, hidden: int = 32,
                   steps: int = 1200, lr: float = 3e-3, harm_weight: float = 0.0,
                   encoder=None) -> Path:
    """Fit the gate for `steps` batches of `config`'s training frames; write the gated weights
    (the restorer's metadata kept, with the fit's settings) to `out`."""
    from ..prior.text_encoder import TextEncoder

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    net = with_frame_gate(load_weights(weights), hidden)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=lr)
    finite = FiniteSteps(optimizer)
    encoder = encoder or TextEncoder(cache_size=8192)
    dataset = _dataset(config)
    step, epoch, bar = 0, 0, tqdm(total=steps, desc="frame gate")
    while step < steps:
        dataset.set_epoch(epoch)
        for batch in DataLoader(dataset, config.batch_size, shuffle=True, drop_last=True,
                                num_workers=config.workers, collate_fn=_collate):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(step, steps, lr, lr * 0.02)
            tokens, mask = encoder.encode_batch(told(config, batch["text"]))
            restored = net(batch["degraded"], *net.encode_prior(tokens, mask)).restored
            loss = psnr_loss(restored, batch["clean"], MSE_FLOOR)
            if harm_weight:
                loss = loss + harm_weight * harm_loss(restored, batch["degraded"], batch["clean"],
                                                      MSE_FLOOR)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            finite.step(loss)
            step += 1
            bar.update(1)
            bar.set_postfix(psnr=f"{-10 * loss.item():.2f}")
            if step >= steps:
                break
        epoch += 1
    bar.close()
    meta = {k: v for k, v in read_metadata(weights).items() if k != "config"}
    meta["frame_gate"] = {"weights": str(weights), "hidden": hidden, "steps": steps, "lr": lr,
                          "harm_weight": harm_weight, "mse_floor": MSE_FLOOR,
                          "recipe": asdict(config),  # the frames it saw: seed, batch, crop
                          # and who drew their weather: a gate fitted before a renderer was
                          # added has never seen that look and holds its correction back
                          "renderers": {kind: sorted(names) for kind, names in RENDERERS.items()}}
    return save_weights(net, out, meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="the restorer's weights")
    parser.add_argument("--config", default="config/train_rt.yaml",
                        help="training YAML whose data recipe the gate is fitted on")
    parser.add_argument("--out", required=True, help="gated weights to write")
    parser.add_argument("--hidden", type=int, default=32, help="the gate's hidden channels")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--harm-weight", type=float, default=0.0,
                        help="weight of the frames-made-worse term (losses.harm_loss); 0: none")
    parser.add_argument("--seed", type=int, default=35)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    config = TrainConfig.from_yaml(args.config)
    config.seed, config.batch_size = args.seed, args.batch_size
    out = fit_frame_gate(args.weights, config, args.out, args.hidden, args.steps, args.lr,
                         args.harm_weight)
    print(json.dumps({"out": str(out), **read_metadata(out)["frame_gate"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
