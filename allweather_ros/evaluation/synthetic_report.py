"""The synthetic evaluation as files: JSON, a markdown table, a contact sheet, expert usage."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

METHOD_NAMES = {"input": "input", "classical": "classical", "no_prior": "no prior",
                "full": "full (true text)", "full_estimated": "full (built-in estimate)"}


def to_json(result: dict) -> dict:
    """The result without its example images."""
    return {k: v for k, v in result.items() if k != "examples"}


def table(result: dict) -> str:
    """Markdown: PSNR / SSIM per degradation type (rows) and method (columns)."""
    methods = [m for m in METHOD_NAMES if m in result["overall"]]
    head = "| type | " + " | ".join(METHOD_NAMES[m] for m in methods) + " |"
    lines = [head, "|---" * (len(methods) + 1) + "|"]
    rows = {**result["by_type"], "all weather": result["overall"]}
    for group, scores in rows.items():
        cells = [f"{scores[m]['psnr']:.2f} / {scores[m]['ssim']:.3f}" for m in methods]
        lines.append(f"| {group} (n={scores['input']['n']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def severity_table(result: dict) -> str:
    methods = [m for m in METHOD_NAMES if m in result["overall"]]
    lines = ["| type / severity | " + " | ".join(METHOD_NAMES[m] for m in methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for key, scores in result["by_type_severity"].items():
        lines.append(f"| {key} | " + " | ".join(f"{scores[m]['psnr']:.2f}" for m in methods)
                     + " |")
    return "\n".join(lines)


def contact_sheet(result: dict, path: Path) -> list[str]:
    """One row per example, one column per method then the ground truth; returns the columns."""
    if not result["examples"]:
        return []
    columns = [m for m in METHOD_NAMES if m in result["examples"][0]] + ["clean"]
    rows = [np.concatenate([ex[c] for c in columns], axis=1) for ex in result["examples"]]
    sheet = (np.concatenate(rows, axis=0).clip(0, 1) * 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return [METHOD_NAMES.get(c, "ground truth") for c in columns]


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
    """results.json, report.md, contact_sheet.png and expert_usage.png in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(to_json(result), indent=2))
    columns = contact_sheet(result, out / "contact_sheet.png")
    expert_usage_plot(result, out / "expert_usage.png")
    report = out / "report.md"
    report.write_text(
        f"# Synthetic test split\n\nReproduce: `{command}`\n\n"
        f"{result['samples']} frames of held-out scenes, every type and mixture at every "
        f"severity, fixed seed. PSNR (dB) / SSIM on RGB, scikit-image. Classical: dark "
        f"channel prior for haze, median {result['median_kernel']}x{result['median_kernel']} "
        f"(chosen on the validation split) for rain, snow and lens drops, chained for "
        f"mixtures, each told the true type. No prior: the same network trained with the "
        f"generic text. Full: told the true description, and (where scored) the built-in "
        f"estimator's, exactly as the pipeline uses it.\n\n{table(result)}\n\n"
        f"## PSNR per type and severity\n\n{severity_table(result)}\n\n"
        f"## Examples\n\nColumns: {', '.join(columns)}.\n\n"
        f"![examples](contact_sheet.png)\n\n## Expert usage per type\n\n"
        f"![expert usage](expert_usage.png)\n")
    return report
