#!/usr/bin/env python3
"""Rebuild the real-weather evaluation set (issue #18) from snapshots of public repositories.

Real weather photographs, labelled by eye, are what tells whether the degradation prior reads
real weather rather than our renderer. They are for research use: to evaluate and to calibrate
the prior, never to train shipped weights; so no image is committed. `real_weather_set.json`
beside this script records, for each photo, the repository, the commit and the path, and the
labels (see its "about"); this script extracts the photos from local clones into a cache folder
with a `labels.json` that `allweather eval --real` reads.

    python tools/real_weather_set.py build [--mirrors DIR] [--out DIR] [--max-side 1024]
    python tools/real_weather_set.py list       # photos per type and per source
    python tools/real_weather_set.py pairs [--mirrors DIR] [--out DIR] [--max-side 640]

`pairs` extracts the manifest's few real pairs (real weather beside its clean scene, the only
real photos with a truth) as OUT/<type>/{input,gt}/NAME.png, which `allweather eval --paired
OUT/<type>` scores.

A clone of OWNER/NAME is looked for under the mirrors folder (default $ALLWEATHER_MIRRORS, else
~/.cache/allweather_ros/mirrors) as OWNER+NAME, OWNER+NAME/repo or OWNER/NAME, bare or not;
make one with `git clone https://github.com/OWNER/NAME MIRRORS/OWNER+NAME`. The photos are read
from the recorded commit with `git show`, so later commits do not change the set.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

MANIFEST = Path(__file__).resolve().with_name("real_weather_set.json")
DEFAULT_MIRRORS = Path(os.environ.get("ALLWEATHER_MIRRORS",
                                      Path.home() / ".cache" / "allweather_ros" / "mirrors"))
DEFAULT_OUT = Path(os.environ.get("ALLWEATHER_REAL_SET",
                                  Path.home() / ".cache" / "allweather_ros" / "real_weather"))
DEFAULT_PAIRS_OUT = Path(os.environ.get("ALLWEATHER_REAL_PAIRS",
                                        Path.home() / ".cache" / "allweather_ros" / "real_pairs"))
LABELS_FILE = "labels.json"  # allweather_ros.evaluation.real.LABELS_FILE
JPEG_QUALITY = 95


def load_manifest(path: Path = MANIFEST) -> dict:
    manifest = json.loads(path.read_text())
    missing = ({p["repo"] for p in manifest["photos"] + manifest.get("pairs", [])}
               - set(manifest["sources"]))
    if missing:
        raise ValueError(f"{path}: photos from repositories without a commit: {sorted(missing)}")
    return manifest


def _git(git_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True)


def find_mirror(mirrors: Path, repo: str, commit: str) -> Path:
    """The git directory of a local clone of `repo` that holds `commit`."""
    owner, name = repo.split("/")
    for folder in (mirrors / f"{owner}+{name}", mirrors / f"{owner}+{name}" / "repo",
                   mirrors / owner / name):
        for git_dir in (folder / ".git", folder):
            if git_dir.is_dir() and _git(git_dir, "cat-file", "-e",
                                         f"{commit}^{{commit}}").returncode == 0:
                return git_dir
    raise FileNotFoundError(
        f"no clone of {repo} holding commit {commit[:12]} under {mirrors}; make one with\n"
        f"  git clone https://github.com/{repo} {mirrors / f'{owner}+{name}'}")


def output_name(repo: str, path: str) -> str:
    """Where a photo lands in the set, relative to it: OWNER+NAME/path, as JPEG."""
    return str(Path(repo.replace("/", "+")) / Path(path).with_suffix(".jpg"))


def extract(git_dir: Path, commit: str, path: str, max_side: int) -> np.ndarray:
    """The photo at `commit:path` as 8-bit BGR, its longer side shrunk to `max_side` at most."""
    shown = _git(git_dir, "show", f"{commit}:{path}")
    if shown.returncode != 0:
        raise FileNotFoundError(f"{path} is not in {git_dir} at {commit[:12]}: "
                                f"{shown.stderr.decode().strip()}")
    image = cv2.imdecode(np.frombuffer(shown.stdout, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path} at {commit[:12]} is not an image OpenCV can read "
                         "(a Git LFS pointer?)")
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    return image


def build(mirrors: Path, out: Path, max_side: int, manifest: dict) -> int:
    """Extract every photo into `out` and write `out/labels.json`; returns the photo count."""
    names = [output_name(p["repo"], p["path"]) for p in manifest["photos"]]
    clashes = [n for n, c in Counter(names).items() if c > 1]
    if clashes:
        raise ValueError(f"two photos would land on the same file: {clashes}")
    git_dirs = {repo: find_mirror(mirrors, repo, source["commit"])
                for repo, source in manifest["sources"].items()}
    labels = []
    for photo, name in zip(manifest["photos"], names, strict=True):
        commit = manifest["sources"][photo["repo"]]["commit"]
        target = out / name
        if not target.is_file():
            image = extract(git_dirs[photo["repo"]], commit, photo["path"], max_side)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise OSError(f"cannot write {target}")
        labels.append({"file": name, "types": photo["types"],
                       "calibrate": photo.get("calibrate", True),
                       **({"note": photo["note"]} if "note" in photo else {}),
                       "source": {"repo": photo["repo"], "commit": commit,
                                  "path": photo["path"]}})
    (out / LABELS_FILE).write_text(json.dumps({"about": manifest["about"], "photos": labels},
                                              indent=1))
    return len(labels)


def build_pairs(mirrors: Path, out: Path, max_side: int, manifest: dict) -> int:
    """Extract every pair into `out`/<type>/input and /gt under one name (PNG: no JPEG loss on
    either side of a comparison); returns the pair count."""
    pairs = manifest.get("pairs", [])
    git_dirs = {p["repo"]: find_mirror(mirrors, p["repo"], manifest["sources"][p["repo"]]["commit"])
                for p in pairs}
    for pair in pairs:
        commit = manifest["sources"][pair["repo"]]["commit"]
        degraded, clean = (extract(git_dirs[pair["repo"]], commit, pair[side], max_side)
                           for side in ("input", "gt"))
        if degraded.shape != clean.shape:
            raise ValueError(f"{pair['input']} {degraded.shape[:2]} and {pair['gt']} "
                             f"{clean.shape[:2]} differ in size: not a pair")
        name = f"{pair['repo'].replace('/', '+')}+{Path(pair['input']).stem}.png"
        for side, image in (("input", degraded), ("gt", clean)):
            target = out / pair["type"] / side / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), image):
                raise OSError(f"cannot write {target}")
    return len(pairs)


def counts(manifest: dict) -> str:
    """Photos per primary type, per type present, and per source, as text."""
    photos = manifest["photos"]
    primary = Counter(next(iter(p["types"]), "clean") for p in photos)
    present = Counter(t for p in photos for t in p["types"])
    severity = Counter((t, s) for p in photos for t, s in list(p["types"].items())[:1])
    lines = [f"{len(photos)} photos", "primary type: " + ", ".join(
        f"{t} {n}" for t, n in primary.most_common()),
        "type present: " + ", ".join(f"{t} {n}" for t, n in present.most_common()),
        "primary severity: " + ", ".join(f"{t}/{s} {n}" for (t, s), n in sorted(
            severity.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))))]
    lines += [f"  {n:4d}  {repo} @ {manifest['sources'][repo]['commit'][:12]}"
              for repo, n in Counter(p["repo"] for p in photos).most_common()]
    return "\n".join(lines)


def _extraction(sub, command: str, help_: str, out: Path, max_side: int) -> None:
    """A subcommand that extracts images from the mirrors into `out`."""
    parser = sub.add_parser(command, help=help_)
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS,
                        help=f"folder of local clones (default {DEFAULT_MIRRORS})")
    parser.add_argument("--out", type=Path, default=out, help=f"where to (default {out})")
    parser.add_argument("--max-side", type=int, default=max_side,
                        help="shrink images whose longer side is larger (pixels)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _extraction(sub, "build", "extract the photos and labels.json into a folder", DEFAULT_OUT,
                1024)
    sub.add_parser("list", help="photos per type and per source")
    _extraction(sub, "pairs", "extract the real pairs into <out>/<type>/{input,gt}",
                DEFAULT_PAIRS_OUT, 640)
    args = parser.parse_args(argv)
    manifest = load_manifest()
    if args.command == "list":
        print(counts(manifest))
        return 0
    try:
        if args.command == "pairs":
            count = build_pairs(args.mirrors, args.out, args.max_side, manifest)
            print(f"{count} pairs in {args.out}/<type>/{{input,gt}}")
            return 0
        count = build(args.mirrors, args.out, args.max_side, manifest)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"real_weather_set: error: {exc}", file=sys.stderr)
        return 2
    print(f"{count} photos and {LABELS_FILE} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
