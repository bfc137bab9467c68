"""How well a prior provider reads real weather photographs, labelled by eye, without ground truth.

The synthetic test split flatters an estimator trained on the same renderer, so the figures that
count are on real photographs: `tools/real_weather_set.py` extracts such a set (research use:
evaluation and calibration only, never training) into a folder with a `labels.json`, and this
module scores a provider on any folder of that form. The labels give each photo's weather types,
the first one primary (the one hiding most of the scene), each with a severity where it could be
judged; no types means a clean photo.

Reported: per type, top-1 accuracy (the provider's most probable type is the primary one), recall
and false alarms of the "present" call, the share of photos of that weather called weather-free;
clean photos called clean; severity confusion where labelled; the reliability of the type
probabilities (a diagram when an output folder is given) and how well they rank the photos
(ROC AUC, weather against clean and per type). Beside them, when given, the same
figures on held-out synthetic frames (evaluation/synthetic_prior.py). With `short_side`, each
photo is first shrunk (area averaging) to at most that short side: the set as a camera of that
resolution would see it, since the weather's scale and what a tile of the frame shows change
with it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..description import SEVERITIES, TYPES
from ..media import read_rgb
from ..prior.batch import prior_record
from ..prior.parse import NO_SEVERITY
from ..prior.prior import PriorProvider
from ..working_resolution import downscale
from .drives import drive_estimates

if TYPE_CHECKING:
    from ..prior.builtin import BuiltinEstimator

LABELS_FILE = "labels.json"
RELIABILITY_BINS = 10
ABSENT = "absent"  # severity column: the provider said the type is not there


@dataclass(frozen=True)
class LabelledPhoto:
    """One photo of the set: `types` maps each weather type seen to its severity (None where it
    could not be judged), the primary type first; empty for a clean photo."""

    file: Path
    types: dict[str, str | None]
    calibrate: bool = True  # False: may come from a public test split, so evaluate only

    @property
    def primary(self) -> str:
        return next(iter(self.types), "clean")


def load_labels(folder: str | Path) -> list[LabelledPhoto]:
    """The photos `folder/labels.json` lists, checked: known types and severities, files there."""
    folder = Path(folder)
    path = folder / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; build the set with "
                                "`python tools/real_weather_set.py build`")
    photos = []
    for entry in json.loads(path.read_text())["photos"]:
        types = dict(entry["types"])
        bad = [(t, s) for t, s in types.items()
               if t not in TYPES or (s is not None and s not in SEVERITIES)]
        if bad:
            raise ValueError(f"{path}: {entry['file']} has unknown labels {bad}")
        file = folder / entry["file"]
        if not file.is_file():
            raise FileNotFoundError(f"{file} is listed in {path} but missing")
        photos.append(LabelledPhoto(file, types, entry.get("calibrate", True)))
    if not photos:
        raise ValueError(f"{path} lists no photos")
    return photos


FOLDS = ("fit", "check")


def fold(photo: LabelledPhoto) -> str:
    """"fit" or "check", stable per file name: the calibration (evaluation/calibrate.py) and any
    other choice made on the set are fitted on "fit" and scored on "check"; photos that may not
    be tuned on are "check"."""
    if not photo.calibrate:
        return "check"
    digest = hashlib.sha256(photo.file.name.encode() + str(photo.types).encode()).digest()
    return "fit" if digest[0] % 2 == 0 else "check"


def photos_in(folder: str | Path, only_fold: str | None = None) -> list[LabelledPhoto]:
    """The labelled photos of `folder` (`load_labels`), or those of one fold of it (`fold`)."""
    if only_fold is not None and only_fold not in FOLDS:
        raise ValueError(f"fold must be one of {FOLDS}, got {only_fold!r}")
    photos = [p for p in load_labels(folder) if only_fold in (None, fold(p))]
    if not photos:
        raise ValueError(f"{folder} has no photos in the {only_fold!r} fold")
    return photos


def _record(photo: LabelledPhoto, prior) -> dict:
    """A prior's record (batch.prior_record) of a photo, with the photo's labels."""
    return {"file": str(photo.file), "truth": photo.types, "calibrate": photo.calibrate,
            **prior_record(prior)}


def at_short_side(frame: np.ndarray, short_side: int | None) -> np.ndarray:
    """`frame` shrunk by area averaging so that its short side is at most `short_side`."""
    height, width = frame.shape[:2]
    scale = 1.0 if short_side is None else short_side / min(height, width)
    if scale >= 1.0:
        return frame
    return downscale(frame, (max(1, round(height * scale)), max(1, round(width * scale))))


def _read_each(photos: list[LabelledPhoto], read: Callable[[np.ndarray], Any],
               progress: Callable[[], None] | None, short_side: int | None = None) -> list:
    """`read` of each photo's pixels (at most `short_side` on its short side), in order,
    `progress` called after each."""
    results = []
    for photo in photos:
        results.append(read(at_short_side(read_rgb(photo.file), short_side)))
        if progress is not None:
            progress()
    return results


def describe_photos(provider: PriorProvider, photos: list[LabelledPhoto],
                    progress: Callable[[], None] | None = None,
                    short_side: int | None = None) -> list[dict]:
    """The provider's record (batch.prior_record) of each photo, with the photo's labels."""
    priors = _read_each(photos, provider.describe, progress, short_side)
    return [_record(photo, prior) for photo, prior in zip(photos, priors, strict=True)]


def drive_records(estimator: BuiltinEstimator, photos: list[LabelledPhoto], folder: str | Path,
                  readings: int, estimates: list[tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """Each photo read as the newest of a drive (evaluation/drives.py) with up to
    `readings - 1` other photos of the same source (the set's first folder level: one camera,
    site or collection) and the same primary weather; `estimates` are the photos' own
    (BuiltinEstimator.estimate)."""
    keys = [(photo.file.relative_to(folder).parts[0], photo.primary) for photo in photos]
    return [{**_record(photo, estimator.prior_from(probabilities, severity)), "pooled": pooled}
            for photo, (probabilities, severity, pooled) in zip(
                photos, drive_estimates(estimates, keys, readings), strict=True)]


def _share(flags: list[bool]) -> dict:
    return {"rate": float(np.mean(flags)) if flags else None, "n": len(flags)}


def score(records: list[dict]) -> dict:
    """The figures the module docstring lists, from `describe_photos` records."""
    weather = [r for r in records if r["truth"]]
    top = {id(r): max(TYPES, key=r["labels"].get) for r in records}
    per_type = {}
    for t in TYPES:
        primary = [r for r in weather if next(iter(r["truth"])) == t]
        having = [r for r in weather if t in r["truth"]]
        per_type[t] = {
            "photos": len(primary),
            "top1": _share([top[id(r)] == t for r in primary]),
            "recall": _share([t in r["types"] for r in having]),
            "false_alarm": _share([t in r["types"] for r in records if t not in r["truth"]]),
            "called_no_weather": _share([not r["types"] for r in having]),
        }
    clean = [r for r in records if not r["truth"]]
    return {
        "photos": len(records),
        "per_type": per_type,
        "top1": _share([top[id(r)] == next(iter(r["truth"])) for r in weather]),
        "top1_any_true_type": _share([top[id(r)] in r["truth"] for r in weather]),
        "weather_called_no_weather": _share([not r["types"] for r in weather]),
        "clean_called_clean": _share([not r["types"] for r in clean]),
        "severity": severity_confusion(records),
        "reliability": reliability(records),
        "reliability_per_type": {t: reliability(records, (t,)) for t in TYPES},
        "roc_auc": separation(records),
    }


def separation(records: list[dict]) -> dict:
    """How well the probabilities rank photos, whatever floor turns them into words: the ROC
    AUC (the chance that a photo with the weather scores above one without, ties half) of
    weather against clean photos by the likeliest type's probability, and of each type
    against the photos without it: two estimators compare on it even where their calibrations
    put their floors apart. None where a side is empty."""
    from scipy.stats import mannwhitneyu  # here: it costs 50 MB, and only scoring needs it

    def auc(scores: list[float], positive: list[bool]) -> float | None:
        pos = [s for s, y in zip(scores, positive, strict=True) if y]
        neg = [s for s, y in zip(scores, positive, strict=True) if not y]
        if not pos or not neg:
            return None
        return float(mannwhitneyu(pos, neg).statistic) / (len(pos) * len(neg))

    top = [max(r["labels"].values()) for r in records]
    return {"weather_vs_clean": auc(top, [bool(r["truth"]) for r in records]),
            **{t: auc([r["labels"][t] for r in records], [t in r["truth"] for r in records])
               for t in TYPES}}


def severity_confusion(records: list[dict]) -> dict:
    """Per type, counts[true severity][said severity or "absent"] over the photos with that type
    at a judged severity; `accuracy` counts "absent" as wrong; `heavy_of_slight` is the share
    of slight ones called heavy (the costly mistake: the restorer scrubs the frame);
    `overstated` and `understated` are the shares said a tier or more too high or too low among
    those found with a severity."""
    columns = (ABSENT, *SEVERITIES, NO_SEVERITY)
    out = {}
    for t in TYPES:
        counts = {s: dict.fromkeys(columns, 0) for s in SEVERITIES}
        for r in records:
            truth = r["truth"].get(t)
            if truth is not None:
                counts[truth][r["severity"].get(t, ABSENT)] += 1
        total = sum(sum(row.values()) for row in counts.values())
        slight = sum(counts["slight"].values())
        tiers = [(SEVERITIES.index(true), SEVERITIES.index(said), n)
                 for true, row in counts.items() for said, n in row.items() if said in SEVERITIES]
        found = sum(n for _, _, n in tiers)
        out[t] = {
            "counts": counts,
            "overstated": sum(n for a, b, n in tiers if b > a) / found if found else None,
            "understated": sum(n for a, b, n in tiers if b < a) / found if found else None,
            "n": total,
            "accuracy": sum(counts[s][s] for s in SEVERITIES) / total if total else None,
            "heavy_of_slight": counts["slight"]["heavy"] / slight if slight else None,
        }
    return out


def reliability(records: list[dict], types: tuple[str, ...] = TYPES,
                bins: int = RELIABILITY_BINS) -> dict:
    """Every (photo, type) probability against whether the photo has that type, in equal-width
    bins; ECE is the count-weighted mean gap between a bin's mean probability and its share of
    positives."""
    p = np.array([r["labels"][t] for r in records for t in types], dtype=float)
    y = np.array([t in r["truth"] for r in records for t in types], dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = index == b
        if not inside.any():
            continue
        mean_p, positive = float(p[inside].mean()), float(y[inside].mean())
        table.append({"low": b / bins, "high": (b + 1) / bins, "n": int(inside.sum()),
                      "mean_probability": mean_p, "positive_share": positive})
        ece += inside.sum() / len(p) * abs(mean_p - positive)
    return {"bins": table, "ece": float(ece), "pairs": int(len(p))}


def plot_reliability(records: list[dict], path: str | Path, title: str = "") -> Path:
    """The reliability diagram (all types pooled, and each type) with the bins' counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, counts) = plt.subplots(2, 1, figsize=(5, 6.5), height_ratios=(3, 1), sharex=True)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    pooled = reliability(records)
    curves = [("all types", pooled, dict(color="k", linewidth=2, marker="o"))]
    curves += [(t, reliability(records, (t,)), dict(linewidth=1, marker=".")) for t in TYPES]
    for name, subset, style in curves:
        xs = [b["mean_probability"] for b in subset["bins"]]
        ys = [b["positive_share"] for b in subset["bins"]]
        ax.plot(xs, ys, label=f"{name} (ECE {subset['ece']:.2f})", **style)
    ax.set_ylabel("share of photos with the type")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or "Type probabilities on real photos", fontsize=9)
    centres = [(b["low"] + b["high"]) / 2 for b in pooled["bins"]]
    counts.bar(centres, [b["n"] for b in pooled["bins"]], width=0.9 / RELIABILITY_BINS,
               color="0.5")
    counts.set_xlabel("stated probability")
    counts.set_ylabel("pairs")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def evaluate_real(provider: PriorProvider, folder: str | Path, out: str | Path | None = None,
                  progress: Callable[[], None] | None = None,
                  synthetic: dict | None = None, drive_readings: int = 1,
                  short_side: int | None = None, only_fold: str | None = None) -> dict:
    """Score `provider` on the labelled folder; with `out`, also write results.json (figures
    and every photo's record) and reliability.png there. `synthetic`: the provider's figures on
    synthetic frames (renderer set -> `score`), reported beside the real ones. A remembering
    provider is also scored on drives of `drive_readings` photos (`drive_records`), as the
    node's weather memory pools its readings. `short_side`: each photo shrunk to at most that
    short side first (the module docstring). `only_fold`: the photos of that fold (`fold`)
    only; "check" gives figures of photos that no fit or choice made on "fit" has seen."""
    photos = photos_in(folder, only_fold)
    drives = None
    if provider.remembers and drive_readings > 1:  # one reading of each photo serves both
        estimates = _read_each(photos, provider.estimate, progress, short_side)
        records = [_record(photo, provider.prior_from(*estimate))
                   for photo, estimate in zip(photos, estimates, strict=True)]
        drives = drive_records(provider, photos, folder, drive_readings, estimates)
    else:
        records = describe_photos(provider, photos, progress, short_side)
    result = {"folder": str(folder), "short_side": short_side, "fold": only_fold,
              **score(records)}
    if drives is not None:
        result["drives"] = {"readings": drive_readings, **score(drives)}
    if synthetic is not None:
        result["synthetic"] = synthetic
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({**result, "records": records}, indent=1))
        plot_reliability(records, out / "reliability.png",
                         f"{records[0]['provider']} on {len(records)} real photos")
    return result


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _auc(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def table(result: dict) -> str:
    """The figures as Markdown."""
    def pct(share: dict) -> str:
        """The rate ± its binomial standard error: 3 of 7 lens-drop photos is 43 ± 19%."""
        if share["rate"] is None:
            return "-"
        p, n = share["rate"], share["n"]
        return f"{100 * p:.0f} ± {100 * np.sqrt(p * (1 - p) / n):.0f}% ({n})"

    shrunk = result.get("short_side")
    at = f", each shrunk to a short side of at most {shrunk} pixels" if shrunk else ""
    of = f" (the {result['fold']} fold)" if result.get("fold") else ""
    lines = [f"{result['photos']} photos in {result['folder']}{of}{at}", "",
             "| type | photos | top-1 | recall | false alarms | called no weather |"
             " severity acc. | too high | too low | heavy of slight |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t, row in result["per_type"].items():
        sev = result["severity"][t]
        acc = "-" if sev["accuracy"] is None else f"{100 * sev['accuracy']:.0f}% ({sev['n']})"
        over, under, hos = (_rate(sev[k]) for k in ("overstated", "understated",
                                                       "heavy_of_slight"))
        lines.append(f"| {t} | {row['photos']} | {pct(row['top1'])} | {pct(row['recall'])} | "
                     f"{pct(row['false_alarm'])} | {pct(row['called_no_weather'])} | {acc} | "
                     f"{over} | {under} | {hos} |")
    lines += ["", f"top-1 over all weather photos: {pct(result['top1'])}; "
              f"a true type on top: {pct(result['top1_any_true_type'])}",
              f"weather photos called no weather: {pct(result['weather_called_no_weather'])}",
              f"clean photos called clean: {pct(result['clean_called_clean'])}",
              f"type probabilities: ECE {result['reliability']['ece']:.3f} over "
              f"{result['reliability']['pairs']} (photo, type) pairs",
              "ROC AUC: " + ", ".join(f"{name.replace('_', ' ')} {_auc(value)}"
                                      for name, value in result["roc_auc"].items())]
    if "drives" in result:
        drives, per_type = result["drives"], result["drives"]["per_type"]
        lines += ["", f"Each photo the newest of a drive, pooled with up to "
                  f"{drives['readings'] - 1} others of its source and weather (weather memory):",
                  "top-1 " + ", ".join(f"{t} {pct(per_type[t]['top1'])}" for t in TYPES)
                  + f"; over all weather {pct(drives['top1'])}",
                  f"rain photos called no weather: {pct(per_type['rain']['called_no_weather'])}"
                  f"; clean photos called clean: {pct(drives['clean_called_clean'])}"]
    if "synthetic" in result:
        lines += ["", beside_synthetic(result)]
    return "\n".join(lines)


def beside_synthetic(result: dict) -> str:
    """Real figures next to the synthetic ones (`result["synthetic"]`), as Markdown."""
    sets = {"real": result, **result["synthetic"]}
    order = " / ".join(sets)
    lines = ["Real photos beside held-out synthetic frames (" + ", ".join(
        f"{name}: {s['photos']}" for name, s in result["synthetic"].items()) + " frames)", "",
        f"| type | top-1 ({order}) | severity acc. | heavy of slight |", "|---|---|---|---|"]
    for t in TYPES:
        top1 = " / ".join(_rate(s["per_type"][t]["top1"]["rate"]) for s in sets.values())
        accuracy = " / ".join(_rate(s["severity"][t]["accuracy"]) for s in sets.values())
        heavy = " / ".join(_rate(s["severity"][t]["heavy_of_slight"]) for s in sets.values())
        lines.append(f"| {t} | {top1} | {accuracy} | {heavy} |")
    lines.append("")
    for key, what in (("top1", "top-1 over all weather"),
                      ("weather_called_no_weather", "weather called no weather"),
                      ("clean_called_clean", "clean called clean")):
        lines.append(f"{what}: " + ", ".join(f"{n} {_rate(s[key]['rate'])} ({s[key]['n']})"
                                              for n, s in sets.items()))
    return "\n".join(lines)
