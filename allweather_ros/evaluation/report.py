"""The human side of a bag evaluation: `report.md` with plots and a contact sheet.

Plots are drawn on bare matplotlib Figures (no pyplot), so no display or global state is
needed. Without ground truth the quality plot falls back to no-reference statistics: how much
of the frame the model calls degraded and how much it changed.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from ..frames import quantize

SHEET = "contact_sheet.png"
PLOTS = "plots"


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["index"], r[key]) for r in records if r.get(key) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _figure(title: str, ylabel: str) -> tuple[Figure, object]:
    figure = Figure(figsize=(7, 3), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel("frame")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _lines(path: Path, title: str, ylabel: str, records: list[dict],
           lines: dict[str, str]) -> Path | None:
    """One line per (label -> record key) that has any values; None when none has."""
    figure, axes = _figure(title, ylabel)
    drawn = False
    for label, key in lines.items():
        x, y = _series(records, key)
        if x:
            axes.plot(x, y, label=label, linewidth=1.2)
            drawn = True
    if not drawn:
        return None
    axes.legend(loc="best", fontsize="small")
    figure.savefig(path, dpi=100)
    return path


def experts_figure(records: list[dict]) -> Figure | None:
    """Stacked expert shares per frame; the legend sits right of the plot, inside the figure
    (constrained layout makes room for it), in columns of at most 8."""
    rows = [(r["index"], r["experts"]) for r in records if r.get("experts")]
    if not rows:
        return None
    figure, axes = _figure("expert usage (share of the Top-K picks at the bottleneck)", "share")
    usage = np.array([r[1] for r in rows]).T
    axes.stackplot([r[0] for r in rows], usage, labels=[f"expert {i}" for i in range(len(usage))])
    axes.set_ylim(0, 1)
    figure.legend(loc="outside right upper", fontsize="x-small", ncol=-(-len(usage) // 8))
    return figure


def _experts(path: Path, records: list[dict]) -> Path | None:
    figure = experts_figure(records)
    if figure is None:
        return None
    figure.savefig(path, dpi=100)
    return path


def plots(folder: Path, report: dict) -> dict[str, Path]:
    """The report's plots that have data, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    records = report.get("per_frame", [])
    if report.get("scored_frames"):
        quality = _lines(folder / "psnr.png", "PSNR against ground truth", "dB", records,
                         {"restored": "psnr", "input": "input_psnr"})
    else:
        quality = _lines(folder / "no_reference.png", "no-reference statistics", "mean", records,
                         {"degradation map": "map_mean", "|restored - input|": "change"})
    made = {
        "quality": quality,
        "latency": _lines(folder / "latency.png", "latency per frame", "ms", records,
                          {"latency": "latency_ms"}),
        "flicker": _lines(folder / "flicker.png",
                          "temporal flicker: mean |frame - previous frame|", "mean abs diff",
                          records, {"restored": "flicker", "input": "input_flicker"}),
        "experts": _experts(folder / "experts.png", records),
    }
    return {name: path for name, path in made.items() if path is not None}


def _labelled(image: np.ndarray, label: str) -> np.ndarray:
    strip = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, image])


def contact_sheet(path: Path, samples: dict[int, dict]) -> Path | None:
    """Rows of sample frames: input | restored | ground truth (when there is one) | map."""
    if not samples:
        return None
    with_gt = any(s["gt"] is not None for s in samples.values())
    rows = []
    for index in sorted(samples):
        sample = samples[index]
        blank = np.zeros_like(sample["input"])
        cells = [("input", sample["input"]), ("restored", sample["restored"])]
        if with_gt:
            cells.append(("ground truth", sample["gt"] if sample["gt"] is not None else blank))
        if sample["map"] is not None:
            levels = quantize(sample["map"], np.dtype(np.uint8))
            colour = cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)[..., ::-1]
            if colour.shape[:2] != blank.shape[:2]:
                colour = cv2.resize(colour, blank.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            cells.append(("degradation map", colour))
        rows.append(np.hstack([_labelled(image, f"{label} #{index}") for label, image in cells]))
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))) for row in rows]
    cv2.imwrite(str(path), np.vstack(rows)[..., ::-1])
    return path


def _number(value, unit: str = "", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


TOLD_ROWS = 20  # priors listed in report.md; report.json keeps every one


def _told(priors: list[dict]) -> list[str]:
    """report.md's lines on what the restorer was told, prior by prior: a bag that comes back
    unchanged was most often described as clear, and this says so where a user looks."""
    if not priors:
        return []
    lines = ["## What the restorer was told", "",
             "| from frame | prior | confidence |", "|---|---|---|"]
    lines += [f"| {p['index']} | {p['text'].replace('|', '/')} | "
              f"{_number(p.get('confidence'))} |" for p in priors[:TOLD_ROWS]]
    if len(priors) > TOLD_ROWS:
        lines.append(f"| ... | {len(priors) - TOLD_ROWS} more in report.json | |")
    return [*lines, ""]


def write_markdown(out: Path, report: dict, samples: dict[int, dict]) -> Path:
    """report.md in `out`, beside report.json, with its plots and contact sheet."""
    made = plots(out / PLOTS, report)
    sheet = contact_sheet(out / SHEET, samples)
    lines = [f"# Bag evaluation ({report['mode']} mode)", "",
             f"Bag `{report['bag']}`, topic `{report['topic']}`"
             + (f", ground truth `{report['gt_topic']}` (matched by {report['gt_matching']})"
                if report.get("gt_topic") else ", no ground truth") + ".", "",
             "| measure | value |", "|---|---|",
             f"| frames in the bag | {report['frames']} |",
             f"| restored frames | {report['restored_frames']} |",
             f"| dropped | {report['dropped']} |",
             f"| latency p50 / p99 | {_number(report['latency_ms_p50'], ' ms', 1)} / "
             f"{_number(report['latency_ms_p99'], ' ms', 1)} |"]
    for key, label in (("throughput_fps", "throughput"), ("fps", "output rate"),
                       ("jitter_ms", "frame-to-frame jitter (std)")):
        if report.get(key) is not None:
            unit = " ms" if key.endswith("_ms") else " frames/s"
            lines.append(f"| {label} | {_number(report[key], unit)} |")
    if report.get("psnr") is not None:
        lines += [f"| PSNR restored / input | {_number(report['psnr'], ' dB')} / "
                  f"{_number(report['input_psnr'], ' dB')} "
                  f"(gain {_number(report['psnr_gain'], ' dB')}) |",
                  f"| SSIM restored / input | {_number(report['ssim'], '', 4)} / "
                  f"{_number(report['input_ssim'], '', 4)} |"]
    lines += [f"| flicker restored / input | {_number(report.get('flicker'), '', 4)} / "
              f"{_number(report.get('input_flicker'), '', 4)} |", ""]
    problems = list(report.get("bag_notes", []))
    if report.get("stopped"):
        problems.append(f"**Stopped early:** {report['stopped']} (the numbers cover what was "
                        "read before)")
    problems += [f"{count} frame(s): {error}"
                 for error, count in report.get("frame_errors", {}).items()]
    if problems:
        lines += ["## Problems", "", *(f"- {p}" for p in problems), ""]
    lines += _told(report.get("priors", []))
    if report.get("output_bag"):
        topics = ", ".join(f"`{t}` ({n})" for t, n in report.get("output_topics", {}).items())
        lines += [f"Output bag `{report['output_bag']}`: {topics}.", ""]
    if sheet:
        lines += ["## Frames", "", f"![contact sheet]({SHEET})", ""]
    if made:
        lines += ["## Plots", ""]
        lines += [f"![{name}]({path.relative_to(out).as_posix()})" for name, path in made.items()]
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
