"""`allweather eval-bag` in direct mode: every frame of a camera topic through the pipeline, as
fast as the backend allows, with no ROS needed.

The prior is described synchronously on the first frame and then every `refresh_every` frames
(the node's refresh period in bag time, the readings pooled as its weather memory pools them),
so two runs over one bag give the same numbers. The
restored frames, degradation maps and priors go into an mcap bag beside `report.json`; when the
bag has a ground-truth topic, each restored frame is scored against the ground truth with the
same stamp (or, when stamps do not pair up, the same position), and so is the input, so that
the gain is visible. A damaged bag or a frame that cannot be read ends up in the report, never
in a lost run.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..pipeline import PipelineConfig, build_pipeline
from ..topics import CameraTopics, camera_topics
from .bags import (
    TYPESTORE,
    BagError,
    BagReader,
    BagWriter,
    decode_frame,
    image_message,
    map_message,
    stamp_ns,
    string_message,
    to_uint8,
)
from .scoring import psnr_ssim

log = logging.getLogger(__name__)

OUTPUT_BAG = "restored"
REPORT = "report.json"
SHEET_FRAMES = 4
MAX_ERRORS = 20  # distinct frame errors kept in the report


def output_names(topics: CameraTopics) -> dict[str, str]:
    """The outputs an evaluation records, by kind: the node's own topic names (topics.py)."""
    return {"restored": topics.restored, "map": topics.degradation_map, "prior": topics.prior}


def frame_stamps(reader: BagReader, topic: str) -> list[int]:
    """Header stamps of a topic's messages, read without decoding the pixels."""
    stamps = []
    for _, msgtype, bag_ns, raw in reader.messages({topic}):
        try:
            stamps.append(stamp_ns(TYPESTORE.deserialize_cdr(raw, msgtype).header))
        except Exception:  # a corrupt message: decode_frame reports it in the main pass
            stamps.append(bag_ns)
    return stamps


def frame_rate(stamps: list[int]) -> float | None:
    """Frames per second from first to last stamp; None for fewer than two distinct stamps."""
    span = (max(stamps) - min(stamps)) / 1e9 if stamps else 0.0
    return (len(stamps) - 1) / span if span > 0 else None


def gt_matching(inputs: list[int], truths: list[int]) -> str:
    """'stamp' when every stamp is unique and they pair up, else 'index' (a recorder that
    stamped the two topics separately)."""
    unique = len(set(inputs)) == len(inputs) and len(set(truths)) == len(truths)
    return "stamp" if unique and set(inputs) & set(truths) else "index"


class Scorer:
    """Per-frame records, with ground truth paired as it arrives (before or after its input)
    and sample frames kept for the contact sheet."""

    def __init__(self, matching: str | None, sample_indices: set[int]):
        self.matching = matching
        self.records: list[dict] = []
        self.samples: dict[int, dict] = {}
        self._sample_indices = sample_indices
        self._waiting: dict[int, tuple[dict, np.ndarray, np.ndarray]] = {}  # key -> input side
        self._truths: dict[int, np.ndarray] = {}
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._truth_count = 0  # ground-truth messages seen: their index for "index" matching

    def key(self, index: int, stamp: int) -> int:
        return stamp if self.matching == "stamp" else index

    def add(self, record: dict, rgb: np.ndarray, restored: np.ndarray,
            degradation_map: np.ndarray | None) -> None:
        """One restored frame; `record` holds its index, stamp and what the run measured."""
        record["change"] = float(np.abs(restored - rgb).mean())
        if degradation_map is not None:
            record["map_mean"] = float(degradation_map.mean())
        if self._previous is not None and self._previous[0].shape == rgb.shape:
            record["flicker"] = float(np.abs(restored - self._previous[1]).mean())
            record["input_flicker"] = float(np.abs(rgb - self._previous[0]).mean())
        self._previous = (rgb, restored)
        self.records.append(record)
        if record["index"] in self._sample_indices:
            self.samples[record["index"]] = {
                "input": to_uint8(rgb), "restored": to_uint8(restored), "gt": None,
                "map": degradation_map}
        if self.matching is not None:
            key = self.key(record["index"], record["stamp_ns"])
            truth = self._truths.pop(key, None)
            if truth is None:
                self._waiting[key] = (record, rgb, restored)
            else:
                self._score(record, rgb, restored, truth)

    def add_truth_message(self, msgtype: str, bag_ns: int, raw: bytes) -> None:
        """Decode the next ground-truth message of the bag and pair it (undecodable: skipped)."""
        truth = decode_frame(self._truth_count, msgtype, bag_ns, raw)
        self._truth_count += 1
        if truth.rgb is not None:
            self.add_truth(truth.index, truth.stamp_ns, truth.rgb)

    def add_truth(self, index: int, stamp: int, rgb: np.ndarray) -> None:
        key = self.key(index, stamp)
        waiting = self._waiting.pop(key, None)
        if waiting is None:
            self._truths[key] = rgb
        else:
            self._score(*waiting, rgb)

    def _score(self, record: dict, rgb: np.ndarray, restored: np.ndarray,
               truth: np.ndarray) -> None:
        if truth.shape != restored.shape:
            record["gt_error"] = f"ground truth is {truth.shape}, the frame {restored.shape}"
            return
        record["psnr"], record["ssim"] = psnr_ssim(restored, truth)
        record["input_psnr"], record["input_ssim"] = psnr_ssim(rgb, truth)
        sample = self.samples.get(record["index"])
        if sample is not None:
            sample["gt"] = to_uint8(truth)


def _mean(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if key in r]
    return float(np.mean(values)) if values else None


def summarize(records: list[dict], frames: int, errors: Counter) -> dict:
    """The headline numbers of a run from its per-frame records."""
    latencies = [r["latency_ms"] for r in records if "latency_ms" in r]
    summary = {
        "frames": frames,
        "restored_frames": len(records),
        "dropped": frames - len(records),
        "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_ms_p99": float(np.percentile(latencies, 99)) if latencies else None,
        "latency_ms_mean": float(np.mean(latencies)) if latencies else None,
        "scored_frames": sum("psnr" in r for r in records),
        "flicker": _mean(records, "flicker"),
        "input_flicker": _mean(records, "input_flicker"),
        "map_mean": _mean(records, "map_mean"),
        "frame_errors": dict(errors.most_common(MAX_ERRORS)),
    }
    for key in ("psnr", "ssim", "input_psnr", "input_ssim"):
        summary[key] = _mean(records, key)
    if summary["psnr"] is not None:
        summary["psnr_gain"] = summary["psnr"] - summary["input_psnr"]
        summary["ssim_gain"] = summary["ssim"] - summary["input_ssim"]
    return summary


def prepare_output(out: str | Path) -> Path:
    """The report folder, cleared of a previous run's bag (only a bag with its report beside
    it counts as ours to replace)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / OUTPUT_BAG
    if previous.exists():
        if not ((previous / "metadata.yaml").is_file() and (out / REPORT).is_file()):
            raise BagError(f"{previous} exists and is not an earlier eval-bag output; "
                           "choose another --out")
        shutil.rmtree(previous)
    return out


def sample_indices(frames: int, count: int = SHEET_FRAMES) -> set[int]:
    return set(np.linspace(0, max(frames - 1, 0), min(count, frames)).round().astype(int).tolist())


def write_report(out: Path, report: dict, samples: dict[int, dict]) -> Path:
    """report.json, then the markdown summary with its plots and the contact sheet."""
    from .report import write_markdown

    (out / REPORT).write_text(json.dumps(report, indent=2))
    return write_markdown(out, report, samples)


def eval_bag(bag: str | Path, topic: str, out: str | Path, *, gt_topic: str | None = None,
             config: PipelineConfig | None = None, refresh_every: int | None = None,
             progress: bool = True) -> dict:
    """Restore every frame of `topic`, write the output bag and the report; returns the report.

    `refresh_every` frames the prior is described anew; by default as often as the node would
    (its `prior_period_s` at the bag's frame rate).
    """
    config = config or PipelineConfig()
    out = prepare_output(out)
    reader = BagReader(bag)
    try:
        reader.topic(topic)
        if gt_topic:
            reader.topic(gt_topic)
        stamps = frame_stamps(reader, topic)
        matching = gt_matching(stamps, frame_stamps(reader, gt_topic)) if gt_topic else None
        fps = frame_rate(stamps)
        if refresh_every is None:
            refresh_every = max(1, round(config.prior_period_s * fps)) if fps else 1
        pipeline = build_pipeline(config, asynchronous=False)
        report = {"mode": "direct", "bag": str(bag), "topic": topic, "gt_topic": gt_topic,
                  "gt_matching": matching, "bag_fps": fps, "refresh_every": refresh_every,
                  "config": asdict(config), **{key: pipeline.describe()[key]
                                               for key in ("backend", "weights")},
                  "bag_notes": reader.notes}
        try:
            run = _restore(reader, pipeline, topic, gt_topic, out / OUTPUT_BAG, matching,
                           len(stamps), refresh_every, progress)
        finally:
            pipeline.close()
        report.update(run.pop("summary"))
        report.update(run)
        report["stopped"] = report.get("stopped") or reader.stopped
    finally:
        reader.close()
    samples = report.pop("samples")
    write_report(out, report, samples)
    return report


def _restore(reader: BagReader, pipeline, topic: str, gt_topic: str | None, bag_out: Path,
             matching: str | None, total: int, refresh_every: int, progress: bool) -> dict:
    """The frame loop; keeps everything done so far when a frame, the bag or the user stops
    it."""
    topics = output_names(camera_topics(topic))
    num_experts = pipeline.restorer_config["num_experts"]
    scorer = Scorer(matching, sample_indices(total))
    errors: Counter = Counter()
    priors, stopped, frames = [], None, 0
    wanted = {topic, gt_topic} - {None}
    started = time.perf_counter()
    with BagWriter(bag_out, "mcap") as writer, tqdm(total=total, desc="eval-bag", unit="frame",
                                                    disable=not progress) as bar:
        try:
            for name, msgtype, bag_ns, raw in reader.messages(wanted):
                if name != topic:
                    scorer.add_truth_message(msgtype, bag_ns, raw)
                    continue
                frame = decode_frame(frames, msgtype, bag_ns, raw)
                frames += 1
                bar.update()
                writer.write_raw(topic, msgtype, bag_ns, raw)
                if frame.error is not None:
                    errors[frame.error] += 1
                    continue
                record = {"index": frame.index, "stamp_ns": frame.stamp_ns}
                try:
                    if frame.index % refresh_every == 0 or not priors:
                        tic = time.perf_counter()
                        prior = pipeline.refresh_now(frame.rgb, remember=True)
                        priors.append({"index": frame.index, "text": prior.text,
                                       "confidence": prior.confidence,
                                       "ms": 1000 * (time.perf_counter() - tic)})
                        writer.write(topics["prior"], string_message(prior.to_json()), bag_ns)
                    result = pipeline.process(frame.rgb, stream=True)
                except Exception as exc:  # a backend failing on one frame must not end the run
                    errors[f"restoration failed: {type(exc).__name__}: {exc}"] += 1
                    continue
                record["latency_ms"] = 1000 * result.latency_s
                record["experts"] = (np.bincount(result.expert_indices.ravel(),
                                                 minlength=num_experts)
                                     / result.expert_indices.size).round(4).tolist()
                writer.write(topics["restored"], image_message(result.restored, frame.header),
                             bag_ns)
                writer.write(topics["map"], map_message(result.degradation_map, frame.header),
                             bag_ns)
                scorer.add(record, frame.rgb, result.restored, result.degradation_map)
        except KeyboardInterrupt:
            stopped = "interrupted by the user"
        output_counts = dict(writer.counts)
    wall = time.perf_counter() - started
    summary = summarize(scorer.records, frames, errors)
    summary["throughput_fps"] = len(scorer.records) / wall if wall > 0 else None
    return {"summary": summary, "stopped": stopped, "priors": priors,
            "output_bag": str(bag_out), "output_topics": output_counts,
            "per_frame": scorer.records, "samples": scorer.samples}
