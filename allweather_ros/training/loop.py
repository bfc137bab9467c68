"""The training loop: Adam, cosine schedule, Charbonnier + edge (+ SSIM) loss, resumable, DDP-ready.

Started plainly it trains in one process; started by `torchrun --nproc_per_node N` it trains
with DistributedDataParallel (NCCL on GPUs, gloo on CPUs) without any change: rank 0 alone
writes checkpoints and shows progress.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..description import GENERIC_TEXT
from ..model import LDRNet, build_model
from ..model.losses import RestorationLoss, marked_error, worse_than_input
from ..model.weights import save_weights
from ..runtime.torch_backend import native_bf16
from .checkpoint import load_checkpoint, save_checkpoint
from .checks import check_weather_options
from .finite_steps import FiniteSteps

PRECISIONS = ("auto", "fp32", "bf16")


def resolved_precision(precision: str, device: torch.device) -> str:
    """The precision a run trains at: `precision`, with "auto" decided by native_bf16."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


@dataclass
class TrainConfig:
    """One training run; the YAML file's keys are these fields (see config/train_rt.yaml)."""

    model: str = "rt"  # variant name or model YAML
    prior: str = "text"  # "text": the sample's description; "none": the no-prior ablation
    scenes: list[str] = field(default_factory=list)  # extra photo folders or videos
    paired: list[str] = field(default_factory=list)  # public paired datasets (no text prior)
    crop: int = 128
    batch_size: int = 8
    workers: int = 1
    wrong_description_p: float = 0.2
    clean_p: float = 0.05  # share of weather-free frames, which must come back unchanged
    type_weights: dict[str, float] = field(default_factory=dict)  # single-type recipes; {}: even
    exposure_p: float = 0.0  # share of clean views re-exposed (data.datasets.reexpose)
    night_p: float = 0.0  # share of clean views relit as night streets (data.night)
    unplaced_p: float = 0.0  # share of descriptions without where (as estimators answer)
    estimated_p: float = 0.0  # share of descriptions the shipped built-in estimator gives instead
    misstated_p: float = 0.0  # share of slight or clean frames told an overstated description
    understated_p: float = 0.0  # share of moderate or heavy frames told every tier lower
    spurious_p: float = 0.0  # share of frames of any weather told a weather that is not there too
    unsaid_haze_p: float = 0.0  # share of frames with haze told everything but the haze
    camera_p: float = 0.0  # share of views through a random camera (data.camera)
    zoom_p: float = 0.0  # share of views whose weather is drawn up to max_zoom x closer
    road_p: float = 0.0  # share of clean views drawn as a road with lane markings (data.road)
    marking_weight: float = 0.0  # weight of the lane markings' own error (losses.marked_error)
    max_zoom: float = 2.0
    steps: int = 20000
    restart_step: int = 0  # where the cosine starts at `lr`: a later leg's warm restart
    lr: float = 2e-4
    min_lr: float = 1e-6
    edge_weight: float = 0.05
    ssim_weight: float = 0.0  # weight of (1 - SSIM); needs torchmetrics
    map_weight: float = 0.1
    harm_weight: float = 0.0  # weight of the do-no-harm term (losses.worse_than_input)
    checkpoint_every: int = 500
    out: str = "runs/rt"
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0 = torch's default
    precision: str = "auto"  # "bf16": autocast the forward pass to bfloat16 (weights stay fp32);
    # "auto": bf16 where the device computes it natively (native_bf16), else fp32
    channels_last: bool = False  # NHWC tensors: faster convolutions on CPUs with oneDNN
    log_every: int = 50  # steps between lines of log.jsonl (each line averages them)
    max_minutes: float = 0.0  # stop (checkpoint written) after this much wall time; 0: no limit

    def __post_init__(self):
        """Refuse a bad run before any data is made, whether it came from YAML or from Python."""
        if self.prior not in ("text", "none"):
            raise ValueError(f"prior must be 'text' or 'none', got {self.prior!r}")
        if not 0 <= self.restart_step < self.steps:
            raise ValueError(f"restart_step must lie in [0, steps), got {self.restart_step} "
                             f"with steps {self.steps}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.max_minutes < 0:
            raise ValueError(f"max_minutes must be >= 0, got {self.max_minutes}")
        if self.marking_weight < 0 or (self.marking_weight and not self.road_p):
            raise ValueError(f"marking_weight must be >= 0 and needs road_p > 0 (road views "
                             f"carry the markings), got {self.marking_weight} with road_p "
                             f"{self.road_p}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")
        check_weather_options(self, ("exposure_p", "night_p", "unplaced_p", "estimated_p",
                                     "misstated_p", "understated_p", "spurious_p", "unsaid_haze_p",
                                     "camera_p", "zoom_p", "road_p"))

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown training options {sorted(unknown)}")
        try:
            return cls(**raw)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


class PriorConditioned(nn.Module):
    """LDRNet with the prior encoded inside forward, so DDP sees one forward per step."""

    def __init__(self, net: LDRNet):
        super().__init__()
        self.net = net

    def forward(self, image, tokens, mask):
        return self.net(image, *self.net.encode_prior(tokens, mask))


def cosine_lr(step: int, total: int, lr: float, min_lr: float, start: int = 0) -> float:
    """`lr` at `start`, decayed by a half cosine to `min_lr` at `total`: a training leg resumed
    from a checkpoint can restart the schedule (SGDR's warm restart) instead of continuing it."""
    progress = min(max(step - start, 0), total - start) / max(total - start, 1)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def _distributed() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _dataset(config: TrainConfig):
    from ..data.datasets import PairedFolderDataset, SyntheticWeatherDataset
    from ..data.sources import default_scenes

    synthetic = SyntheticWeatherDataset(
        default_scenes(*config.scenes), "train", crop=config.crop, seed=config.seed,
        length=max(config.batch_size * 500, 1000),
        wrong_description_p=config.wrong_description_p, clean_p=config.clean_p,
        type_weights=config.type_weights, exposure_p=config.exposure_p, night_p=config.night_p,
        unplaced_p=config.unplaced_p, misstated_p=config.misstated_p,
        understated_p=config.understated_p, spurious_p=config.spurious_p,
        unsaid_haze_p=config.unsaid_haze_p, camera_p=config.camera_p, zoom_p=config.zoom_p,
        max_zoom=config.max_zoom, road_p=config.road_p)
    if not config.paired:
        return synthetic
    paired = [PairedFolderDataset(p, crop=config.crop, seed=config.seed) for p in config.paired]
    return torch.utils.data.ConcatDataset([synthetic, *paired])


def _one_thread_worker(_worker_id: int) -> None:
    """A synthesis worker computes on one core: the workers are the parallelism, and OpenCV's
    own threads in each (one per core by default) would crowd out the process that feeds the
    network (torch already gives each worker one thread). 0 runs OpenCV sequentially; 1 would
    resize the thread pool the worker inherited by fork, which hangs it."""
    import cv2

    cv2.setNumThreads(0)


def told(config: TrainConfig, texts: list[str]) -> list[str]:
    """What the network is told of a batch: each sample's description, or the generic text for
    the no-prior ablation (`prior: none`)."""
    return texts if config.prior == "text" else [GENERIC_TEXT] * len(texts)


def with_estimates(texts: list[str], frames: torch.Tensor, estimator, share: float,
                   generator: torch.Generator) -> list[str]:
    """`texts` with a `share` of them replaced by `estimator`'s description of the frame: the
    restorer learns how far to trust the words it is given at run time, this estimator's
    errors included (UniRestorer's point), not only the random ones of wrong_description_p."""
    chosen = torch.rand(len(texts), generator=generator) < share
    return [estimator.describe(frame.permute(1, 2, 0).numpy()).text if pick else text
            for text, frame, pick in zip(texts, frames, chosen.tolist(), strict=True)]


def train(config: TrainConfig, resume: bool = True, encoder=None) -> Path:
    """Train to config.steps (or config.max_minutes); resumes from out/last.safetensors when it
    exists. `encoder`: the text encoder (default: the bundled one, a TextEncoder)."""
    return train_model(config, resume, encoder)[1]


def train_model(config: TrainConfig, resume: bool = True,
                encoder=None) -> tuple[LDRNet, Path]:
    """`train`, also handing back this process's network (each rank's, under torchrun)."""
    from ..prior.text_encoder import TextEncoder

    rank, world = _distributed()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}"
                          if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed)
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    net = build_model(config.model).to(device, memory_format=layout)
    model: nn.Module = PriorConditioned(net)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    loss_fn = RestorationLoss(config.edge_weight, config.ssim_weight)
    out = Path(config.out)
    last = out / "last.safetensors"
    progress = {"step": 0, "epoch": 0, "seconds": 0.0}
    if resume and last.is_file():
        progress = load_checkpoint(last, net, optimizer)
    # on the training device: a description not yet cached costs a forward pass per text,
    # the likeliest cause of a lent GPU trained at the CPU's pace (every core synthesising)
    encoder = encoder or TextEncoder(device=str(device), cache_size=8192)
    estimator = None
    if config.estimated_p and config.prior == "text":
        from ..prior.builtin import BuiltinEstimator
        estimator = BuiltinEstimator()
    dataset = _dataset(config)
    sampler = DistributedSampler(dataset, world, rank, seed=config.seed) if world > 1 else None
    precision = resolved_precision(config.precision, device)
    bar = tqdm(total=config.steps, initial=progress["step"], disable=rank != 0,
               desc=f"train ({precision})")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    log = (out / "log.jsonl").open("a") if rank == 0 else None
    started = time.monotonic() - progress["seconds"]
    deadline = time.monotonic() + 60 * config.max_minutes if config.max_minutes else math.inf
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
    window = []  # (loss, psnr) since the last log line
    finite = FiniteSteps(optimizer, f"resume from {last} (the last saved) with a lower lr")
    # seconds spent waiting on the loader and encoding the descriptions since the last log line
    window_started, waited, encoding = time.monotonic(), 0.0, 0.0
    while progress["step"] < config.steps:
        for ds in getattr(dataset, "datasets", [dataset]):
            ds.set_epoch(progress["epoch"])
        if sampler is not None:
            sampler.set_epoch(progress["epoch"])
        loader = DataLoader(dataset, config.batch_size, shuffle=sampler is None, sampler=sampler,
                            num_workers=config.workers, drop_last=True,
                            persistent_workers=False, collate_fn=_collate,
                            worker_init_fn=_one_thread_worker)
        asked = time.monotonic()
        for batch in loader:
            waited += time.monotonic() - asked
            step = progress["step"]
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(step, config.steps, config.lr, config.min_lr,
                                        config.restart_step)
            texts = told(config, batch["text"])
            if estimator is not None:
                draw = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
                texts = with_estimates(texts, batch["degraded"], estimator,
                                       config.estimated_p, draw)
            encode_started = time.monotonic()
            tokens, mask = encoder.encode_batch(texts)
            encoding += time.monotonic() - encode_started
            degraded = batch["degraded"].to(device, memory_format=layout)
            clean = batch["clean"].to(device)
            with autocast:
                result = model(degraded, tokens.to(device), mask.to(device))
            loss = loss_fn(result.restored.float(), clean)
            if config.harm_weight:
                loss = loss + config.harm_weight * worse_than_input(
                    result.restored.float(), degraded.float(), clean)
            if config.marking_weight and "markings" in batch:
                loss = loss + config.marking_weight * marked_error(
                    result.restored.float(), clean, batch["markings"].to(device))
            if config.map_weight:
                loss = loss + config.map_weight * (
                    result.degradation_map.float() - batch["strength"].to(device)).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            finite.step(loss)
            progress["step"] = step + 1
            mse = (result.restored.detach().float().clamp(0, 1) - clean).pow(2).mean().item()
            psnr = 10 * math.log10(1 / max(mse, 1e-10))
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.2f}")
            window.append((loss.item(), psnr))
            if log and progress["step"] % config.log_every == 0:
                losses, psnrs = zip(*window, strict=True)
                seconds = time.monotonic() - window_started
                log.write(json.dumps({
                    "step": progress["step"], "loss": sum(losses) / len(window),
                    "psnr": sum(psnrs) / len(window),
                    "samples_per_s": len(window) * config.batch_size * world / seconds,
                    "data_wait": waited / seconds, "text_wait": encoding / seconds,
                    "skipped": finite.skipped}) + "\n")
                window.clear()
                window_started, waited, encoding = time.monotonic(), 0.0, 0.0
            done = progress["step"] >= config.steps or _past(deadline, world, device)
            if rank == 0 and (progress["step"] % config.checkpoint_every == 0 or done):
                progress["seconds"] = time.monotonic() - started
                save_checkpoint(last, net, optimizer, progress)
                log.flush()
            if done:
                break
            asked = time.monotonic()
        else:
            progress["epoch"] += 1
            continue
        break  # config.steps reached, or config.max_minutes spent
    bar.close()
    final = out / "weights.safetensors"
    if rank == 0:
        save_weights(net, final, {"train": {**asdict(config), "precision": precision},
                                  "steps": progress["step"],
                                  "seconds": time.monotonic() - started})
    if dist.is_initialized():
        dist.destroy_process_group()
    return net, final


def _past(deadline: float, world: int, device: torch.device) -> bool:
    """Whether the deadline has passed, rank 0's clock deciding for all ranks: a rank that
    stopped alone would leave the others waiting in their next all-reduce."""
    if deadline == math.inf:
        return False
    passed = torch.tensor([time.monotonic() >= deadline], dtype=torch.int32, device=device)
    if world > 1:
        dist.broadcast(passed, 0)
    return bool(passed.item())


def _collate(items: list[dict]) -> dict:
    """Stack the frames; paired data brings no text (generic prior) and no strength map (the
    degradation's magnitude stands in)."""
    batch = {key: torch.stack([item[key] for item in items]) for key in ("degraded", "clean")}
    batch["strength"] = torch.stack([
        item["strength"] if "strength" in item
        else (item["degraded"] - item["clean"]).abs().mean(0, keepdim=True).clamp(0, 1)
        for item in items])
    batch["text"] = [item.get("text") or GENERIC_TEXT for item in items]
    if any("markings" in item for item in items):  # paired frames have none marked
        batch["markings"] = torch.stack([item.get("markings", torch.zeros_like(item["clean"][:1]))
                                         for item in items])
    return batch
