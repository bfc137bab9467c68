"""The synthetic evaluation as files: JSON, a markdown table, a contact sheet, expert usage."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..frames import quantize  # noqa: E402
from .scoring import PSNR_CAP, WORSE_DB  # noqa: E402

METHOD_NAMES = {"input": "input", "classical": "classical", "no_prior": "no prior"}


def method_names(result: dict) -> dict[str, str]:
    """METHOD_NAMES and the full model's columns, named by what it was told (`evaluate`'s
    "full_told": a paired dataset has no true text, so there it reads the estimate) and by
    which provider estimated ("estimate_name": the built-in estimator, a VLM, a fixed text)."""
    return {**METHOD_NAMES, "full": f"full ({result['full_told']})",
            "full_estimated": f"full ({result['estimate_name']})"}


IMAGES = ("examples", "renderer_examples")
SHEET_TILE = 160  # pixels high per frame in the renderers' sheet (a row per renderer)


def to_json(result: dict) -> dict:
    """The result without its example images (nested results too)."""
    return {k: to_json(v) if isinstance(v, dict) else v
            for k, v in result.items() if k not in IMAGES}


def _scores_table(result: dict, heading: str, rows: dict, psnr_only: bool = False) -> str:
    """Markdown: a row per group of `rows` (PSNR / SSIM and its frame count, or PSNR alone), a
    column per method the result scored."""
    names = method_names(result)
    methods = [m for m in names if m in result["overall"]]
    lines = [f"| {heading} | " + " | ".join(names[m] for m in methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for group, scores in rows.items():
        if psnr_only:
            label, cells = group, [f"{scores[m]['psnr']:.2f}" for m in methods]
        else:
            label = f"{group} (n={scores['input']['n']})"
            cells = [f"{scores[m]['psnr']:.2f} / {scores[m]['ssim']:.3f}" for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(result: dict) -> str:
    """Markdown: PSNR / SSIM per degradation type (rows) and method (columns)."""
    return _scores_table(result, "type", {**result["by_type"], "all weather": result["overall"]})


def worse_line(result: dict) -> str:
    """How many frames each method made worse than they came in, the do-no-harm count."""
    counts, names = result["frames_made_worse"], method_names(result)
    methods = [m for m in names if m in counts]
    listed = ", ".join(f"{names[m]} {counts[m]['frames']}" for m in methods)
    return (f"Frames made worse (more than {WORSE_DB} dB below the input; a clean frame "
            f"changed at all), of {counts[methods[0]]['n']}: {listed}.\n\n")


def clean_line(result: dict) -> str:
    """The worst clean frame of each method: a frame with no weather must come back at 40 dB
    or more (issue #17), which a mean over clean frames can hide."""
    clean = result["by_type"].get("clean")
    if not clean:
        return ""
    names = method_names(result)
    listed = ", ".join(f"{names[m]} {clean[m]['lowest_psnr']:.2f}" for m in names if m in clean)
    return f"Clean frames, the lowest PSNR of {clean['input']['n']} (dB): {listed}.\n\n"


def paired_line(result: dict) -> str:
    """The method differences frame by frame, with their standard errors."""
    paired = result.get("paired_db", {})
    if not paired:
        return ""
    names = method_names(result)
    listed = "; ".join(
        f"{' minus '.join(names[m] for m in key.split(' - '))} "
        f"{d['mean']:+.2f} ± {d['se']:.2f}" for key, d in paired.items())
    n = next(iter(paired.values()))["n"]
    return (f"Paired over the {n} weather frames, mean ± standard error (dB; a fresh draw of "
            f"the weather moves a mean by about its standard error): {listed}.\n\n")


def drive_line(result: dict) -> str:
    """The default pipeline read alone and on drives (`synthetic.drive_scores`)."""
    drives = result.get("drives")
    if not drives:
        return ""
    psnrs, worse = drives["weather_psnr"], drives["frames_made_worse"]
    return (f"On drives (each frame read after up to {drives['readings'] - 1} others of its "
            f"weather on other scenes, the {result['estimate_name']}'s types pooled as on a "
            f"stream, `prior.memory`): weather frames {psnrs['alone']:.2f} dB read alone, "
            f"{psnrs['drive']:.2f} on drives; frames made worse {worse['alone']} and "
            f"{worse['drive']} of {drives['n']}.\n\n")


def severity_table(result: dict) -> str:
    """PSNR per type and severity: a mean over a type hides slight weather made worse."""
    return _scores_table(result, "type / severity", result["by_type_severity"], psnr_only=True)


def renderer_table(result: dict) -> str:
    """PSNR / SSIM of single-type frames per renderer: does the gain hold on every one?"""
    return _scores_table(result, "renderer", result["by_renderer"])


# The costs also broken down by type: the wrong words whose cost the issue bounds.
BY_GROUP_COSTS = ("one_tier_higher", "heavy")
# The words as a VLM's reach the restorer, its rain severity checked by the built-in estimator
# (prior/severity_check.py): what the check costs a right word and saves a wrong one, on the
# frames it acts on (rain alone and in mixtures).
CHECKED_COSTS = ("truth", "one_tier_higher", "one_tier_lower", "heavy")


def harm_table(harms: dict[str, dict]) -> str:
    """The do-no-harm figures side by side for each test set (columns)."""
    names = list(harms)
    rows = []
    for key in ("one_tier_higher", "one_tier_lower", "heavy", "generic", "false_haze"):
        rows.append((f"cost of {key.replace('_', ' ')} (dB, mean ± s.e. / worst)",
                     [_cost(h["cost_db"].get(key)) for h in harms.values()]))
    for key in CHECKED_COSTS:
        by_group = [h["cost_db_by_group"].get(f"{key}_checked", {}) for h in harms.values()]
        if any(by_group):
            rows += [(f"cost of {key.replace('_', ' ')} on {g} frames, the rain word checked "
                      f"(dB, mean ± s.e. / worst, n)",
                      [_cost(costs.get(g), with_n=True) for costs in by_group])
                     for g in ("rain", "mixture")]
    for key in BY_GROUP_COSTS:
        by_group = [h["cost_db_by_group"].get(key, {}) for h in harms.values()]
        rows += [(f"cost of {key.replace('_', ' ')} on {g} frames (dB, mean ± s.e. / worst, n)",
                  [_cost(costs.get(g), with_n=True) for costs in by_group])
                 for g in sorted({g for costs in by_group for g in costs})]
    for key, told in (("clean_psnr", "so"), ("clean_generic_psnr", "the generic text"),
                      ("clean_false_haze_psnr", "moderate haze")):
        rows.append((f"clean frames, told {told} (dB, mean / lowest)",
                     [_pair(h.get(key), "mean", "lowest") for h in harms.values()]))
    types = sorted({t for h in harms.values() for t in h["slight_gain_db"]})
    rows += [(f"slight {t}: gain over input (dB)",
              [f"{h['slight_gain_db'][t]:+.2f}" if t in h["slight_gain_db"] else "-"
               for h in harms.values()]) for t in types]
    groups = sorted({g for h in harms.values() for g in h["tone_error"]})
    rows += [(f"tone error, {g} slight (input -> restored)",
              [_pair(h["tone_error"].get(g), "input", "restored", " -> ", "{:.4f}")
               for h in harms.values()]) for g in groups]
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


def _cost(d, with_n: bool = False) -> str:
    if d is None:
        return "-"
    text = f"{d['mean']:.2f} ± {d['se']:.2f} / {d['worst']:.2f}"
    return f"{text}, {d['n']}" if with_n else text


def _pair(d, a, b, sep=" / ", fmt="{:.2f}") -> str:
    return "-" if d is None else f"{fmt.format(d[a])}{sep}{fmt.format(d[b])}"


def renderer_sheet(examples: list[dict], path: Path) -> None:
    """Rows of (input, restored, truth) for each renderer's slight then heavy frame."""
    rows = []
    for slight, heavy in zip(examples[::2], examples[1::2], strict=True):
        row = [slight[k] for k in ("input", "restored", "clean")]
        row += [heavy[k] for k in ("input", "restored", "clean")]
        rows.append(np.concatenate(row, axis=1))
    _write_sheet(rows, path, tile=SHEET_TILE)


def _write_sheet(rows: list[np.ndarray], path: Path, tile: int | None = None) -> None:
    """The rows stacked into one JPEG (a PNG of them weighs megabytes in the history), each
    frame shrunk to `tile` pixels high when given."""
    sheet = quantize(np.concatenate(rows, axis=0), np.dtype(np.uint8))
    if tile is not None:
        f = tile / rows[0].shape[0]
        sheet = cv2.resize(sheet, (round(sheet.shape[1] * f), round(sheet.shape[0] * f)),
                           interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])


def contact_sheet(result: dict, path: Path) -> list[str]:
    """One row per example, one column per method then the ground truth; returns the columns."""
    if not result["examples"]:
        return []
    names = method_names(result)
    columns = [m for m in names if m in result["examples"][0]] + ["clean"]
    rows = [np.concatenate([ex[c] for c in columns], axis=1) for ex in result["examples"]]
    _write_sheet(rows, path)
    return [names.get(c, "ground truth") for c in columns]


def expert_usage_plot(result: dict, path: Path) -> None:
    """Top-1 expert frequency per degradation type, as in the LDR paper's Fig. 8."""
    usage = result["expert_usage"]
    groups = sorted(usage)
    experts = len(next(iter(usage.values())))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(groups)
    for i, group in enumerate(groups):
        ax.bar(np.arange(experts) + i * width, usage[group], width, label=group)
    ax.set_xlabel("expert")
    ax.set_ylabel("top-1 usage frequency")
    ax.set_xticks(np.arange(experts) + 0.4, [str(e) for e in range(experts)])
    ax.legend(ncol=len(groups), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(result: dict, out_dir: str | Path, command: str) -> Path:
    """results.json, report.md, contact_sheet.jpg and expert_usage.png in `out_dir` (and the
    left-out renderer's tables and renderers_sheet.jpg where the result has them)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(to_json(result), indent=2))
    columns = contact_sheet(result, out / "contact_sheet.jpg")
    expert_usage_plot(result, out / "expert_usage.png")
    left_out = ""
    if "left_out" in result:
        harms = {"training renderers": result["harm"], "left-out renderer": result["left_out"][
            "harm"]}
        left_out = (
            f"## The left-out renderer\n\nThe same test scenes and recipes drawn by a "
            f"renderer never used in training (albumentations' RandomRain, Spatter, RandomSnow "
            f"and RandomFog): what says whether the network generalises. RandomSnow, as called "
            f"here, lifts the frame's darker pixels (a bleached look) and draws no falling "
            f"flakes.\n\n"
            f"{table(result['left_out'])}\n\n{worse_line(result['left_out'])}"
            f"{clean_line(result['left_out'])}"
            f"{paired_line(result['left_out'])}{drive_line(result['left_out'])}"
            f"## Per renderer (single-type frames)\n\n"
            f"{renderer_table(result)}\n\n{renderer_table(result['left_out'])}\n\n"
            f"## Do no harm\n\nCosts are PSNR told the truth (the true text, placed where the "
            f"weather lies) minus PSNR told that, over the "
            f"frames with weather (one tier too high: every severity raised; heavy: frames with "
            f"only slight weather told heavy; false haze: frames without haze told the truth and "
            f"moderate haze); clean frames are given as their PSNR (capped at "
            f"100 dB when untouched). The rain word checked: the words as a VLM's reach the "
            f"restorer (`prior.vlm_rain_check`), rain's severity weighed against the built-in "
            f"estimator's reading of the frame; the truth's cost is what the check costs a right "
            f"word. Tone error: mean absolute difference of the heavily "
            f"blurred frame from the blurred truth (sigma 1/8 of the shorter side).\n\n"
            f"{harm_table(harms)}\n\n")
    if result.get("renderer_examples"):
        renderer_sheet(result["renderer_examples"], out / "renderers_sheet.jpg")
        labels = ", ".join(dict.fromkeys(e["label"] for e in result["renderer_examples"]))
        left_out += (f"## Every renderer, held-out scenes\n\nRows: {labels}. Columns: "
                     f"slight input, restored, truth; heavy input, restored, truth.\n\n"
                     f"![renderers](renderers_sheet.jpg)\n\n")
    severity = severity_table(result)
    if "left_out" in result:
        severity = (f"The training renderers:\n\n{severity}\n\nThe left-out renderer:\n\n"
                    f"{severity_table(result['left_out'])}")
    kernel = f"median {result['median_kernel']}x{result['median_kernel']}"
    if "split" in result:  # evaluate_synthetic's
        about = (f"# Synthetic {result['split']} split\n\nReproduce: `{command}`\n\n"
                 f"{result['samples']} frames of held-out scenes, every type and mixture at "
                 f"every severity, fixed seed.")
        told = (f"the true description, and (where scored) the {result['estimate_name']}, "
                f"exactly as the pipeline uses it")
    else:  # a paired dataset's: its frames come with their types, not with descriptions
        about = (f"# Paired dataset\n\nReproduce: `{command}`\n\n{result['samples']} "
                 f"degraded frames with their clean truth, typed by the dataset's folders.")
        told = f"the {result['full_told']}, as the pipeline reads a frame"
    report = out / "report.md"
    report.write_text(
        f"{about} PSNR (dB) / SSIM on RGB, scikit-image; a frame left untouched counts "
        f"{PSNR_CAP:.0f} dB. Classical: dark channel prior for "
        f"haze, {kernel} (chosen on the validation split) for rain, snow and lens drops, "
        f"chained for mixtures, each told the true type. No prior: the same network trained "
        f"with the generic text. Full: told {told}.\n\n{table(result)}\n\n"
        f"{worse_line(result)}{clean_line(result)}{paired_line(result)}{drive_line(result)}"
        f"{left_out}"
        f"## PSNR per type and severity\n\n{severity}\n\n"
        f"## Examples\n\nColumns: {', '.join(columns)}.\n\n"
        f"![examples](contact_sheet.jpg)\n\n## Expert usage per type\n\n"
        f"![expert usage](expert_usage.png)\n")
    return report
