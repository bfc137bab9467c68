"""Torch datasets: freshly synthesized weather on clean scenes, and the public paired folders.

Synthetic samples are drawn from a numpy Generator seeded by (seed, epoch, index), so any worker
of any process reproduces the same sample, the test split is identical on every run, and a new
epoch (`set_epoch`) brings new weather on the same scenes.

Part of the training samples carry a wrong or partial description: at run time the prior comes
from an estimator that errs, and the restoration must then degrade gracefully instead of
following the wrong text (UniRestorer's point about degradation-estimation error).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..description import (
    GENERIC_TEXT,
    LOCATIONS,
    SEVERITIES,
    TYPES,
    Degradation,
    describe,
    in_type_order,
)
from .camera import camera_sensor, camera_view
from .night import night_view
from .road import road_view
from .sources import IMAGE_SUFFIXES, Scene, scenes_in_split
from .synthesis import MIXTURE_P, MIXTURES, sample_recipe, synthesize, type_probabilities

CORRUPTIONS = ("drop", "swap", "severity", "add", "unknown")
TEST_SEED = 20240917  # the fixed seed of the synthetic test split: never change it


def corrupt_description(
    degradations: list[Degradation], rng: np.random.Generator
) -> tuple[str, str]:
    """A description that is wrong or partial for `degradations`, and how it was spoiled:
    one degradation dropped, one type swapped, one severity changed, a spurious one added,
    or no information at all. A spurious degradation is placed like the true ones (somewhere,
    or nowhere when none of them is), so its wording never tells it apart."""
    present = {d.type for d in degradations}
    kinds = [k for k in CORRUPTIONS if degradations or k in ("add", "unknown")]
    if len(present) == len(TYPES):
        kinds = [k for k in kinds if k not in ("swap", "add")]
    kind = kinds[rng.integers(len(kinds))]
    listed = list(degradations)
    absent = [t for t in TYPES if t not in present]
    if kind == "unknown":
        return GENERIC_TEXT, kind
    if kind == "add":
        listed.append(spurious(degradations, rng))
    else:
        i = rng.integers(len(listed))
        d = listed[i]
        if kind == "drop":
            del listed[i]
        elif kind == "swap":
            listed[i] = Degradation(absent[rng.integers(len(absent))], d.severity, d.location)
        else:
            others = [s for s in SEVERITIES if s != d.severity]
            listed[i] = Degradation(d.type, others[rng.integers(2)], d.location)
    return describe(in_type_order(listed)), kind


SPURIOUS_HAZE_SHARE = 0.5  # see with_spurious


def spurious(degradations: list[Degradation], rng: np.random.Generator,
             haze_share: float = 0.0) -> Degradation:
    """A weather that is not in `degradations`, at any severity, placed like them (somewhere,
    or nowhere when none of them is) so that its wording never tells it apart; haze with
    probability `haze_share` where haze is absent, else any absent type alike."""
    absent = [t for t in TYPES if t not in {d.type for d in degradations}]
    kind = ("haze" if haze_share and "haze" in absent and rng.random() < haze_share
            else absent[rng.integers(len(absent))])
    placed = not degradations or any(d.location for d in degradations)
    return Degradation(kind, SEVERITIES[rng.integers(3)],
                       LOCATIONS[rng.integers(len(LOCATIONS))] if placed else None)


def with_spurious(degradations: list[Degradation], rng: np.random.Generator) -> str:
    """The true description and a weather that is not there, on a frame of any weather: the
    built-in estimator's false calls. Haze half the time (SPURIOUS_HAZE_SHARE): it is that
    estimator's commonest false call and the costliest, since told haze the restorer lifts the
    contrast of the whole frame (validation, step 62,000: 5 to 25 dB lost on frames with lens
    drops or snow). Trained with the true clean target, so that the frame, not the word, says
    whether there is a veil to remove."""
    said = [*degradations, spurious(degradations, rng, SPURIOUS_HAZE_SHARE)]
    return describe(in_type_order(said))


def misstate(degradations: list[Degradation], rng: np.random.Generator) -> str:
    """A description that overstates a frame with little or no weather: every severity raised
    one or two tiers, weather named on a clear frame, a weather that is not there named beside
    the true one (an estimator's commonest error on light weather: "slight haze" of a frame
    with slight snow), or the generic text. Trained with the true clean target, so that a frame
    is not scrubbed or dehazed because an estimator said so."""
    if rng.random() < 0.25:
        return GENERIC_TEXT
    absent = [t for t in TYPES if t not in {d.type for d in degradations}]
    if not degradations or (absent and rng.random() < 0.4):
        tiers = 2 if degradations else 3  # beside weather, said as an estimator would: not heavy
        spurious = Degradation(absent[rng.integers(len(absent))], SEVERITIES[rng.integers(tiers)])
        said = [replace(d, location=None) for d in degradations] + [spurious]  # alike unplaced
        return describe(in_type_order(said))
    raised = [replace(d, severity=SEVERITIES[min(2, SEVERITIES.index(d.severity)
                                               + int(rng.integers(1, 3)))])
              for d in degradations]
    return describe(raised)


def without_haze(degradations: list[Degradation]) -> str:
    """The true description with its haze left out: the built-in estimator's costliest miss
    (haze under other weather, or faint: on validation nearly all the decibels its words lose
    against the truth). Trained with the true clean target, so that a veil the words do not
    name is still lifted where the frame shows it, as the no-prior network does."""
    return describe([d for d in degradations if d.type != "haze"])


def understate(degradations: list[Degradation]) -> str:
    """Every severity a tier lower (slight stays slight): what an estimator that leans low says
    of real weather. Trained with the true clean target, so that the frame, not only the word,
    sets how much is removed."""
    return describe([replace(d, severity=SEVERITIES[max(0, SEVERITIES.index(d.severity) - 1)])
                     for d in degradations])


def labels(degradations: list[Degradation]) -> dict[str, torch.Tensor]:
    """Multi-hot weather types (4,), per-type severity index (4,) and per-type location index
    into LOCATIONS (4,), -1 where absent (or, for the location, unplaced): the truth an
    evaluation tells the restorer must say where the weather lies, as the true text does."""
    types = torch.zeros(len(TYPES))
    severity = torch.full((len(TYPES),), -1, dtype=torch.long)
    location = torch.full((len(TYPES),), -1, dtype=torch.long)
    for d in degradations:
        i = TYPES.index(d.type)
        types[i] = 1.0
        severity[i] = SEVERITIES.index(d.severity)
        if d.location is not None:
            location[i] = LOCATIONS.index(d.location)
    return {"types": types, "severity": severity, "location": location}


def balanced_recipes() -> list[list[Degradation]]:
    """Every type and every mixture at every severity, plus a clean frame: the evaluation grid."""
    combos = [(t,) for t in TYPES] + list(MIXTURES)
    grid = [[Degradation(t, s) for t in combo] for s in SEVERITIES for combo in combos]
    return grid + [[]]


class SyntheticWeatherDataset(Dataset):
    """Random crops (hflipped half the time) of one split's scenes under fresh synthetic weather.

    Each item holds `degraded` and `clean` (3, h, w) float tensors in [0, 1], `strength`
    (1, h, w), the prior `text` (wrong with probability `wrong_description_p`), the
    `true_text`, `description_correct`, the `types` / `severity` labels and the `scene` name.
    With `recipes`, item i uses recipes[i % len(recipes)] instead of a random one;
    `type_weights` (e.g. {"rain": 2}) makes single-type recipes of some types more frequent.
    `exposure_p` is the share of clean views re-exposed (see `reexpose`) before the weather,
    `night_p` the share relit as a night street with lamps (`night.night_view`; exclusive of
    re-exposure);
    `unplaced_p` the share of descriptions that say what and how much but not where, as the
    built-in estimator and most VLMs answer; `misstated_p` the share of frames with only
    slight weather or none whose description overstates it (`misstate`); `understated_p` the
    share of frames with moderate or heavy weather told every severity a tier lower
    (`understate`, as a cautious estimator says it); `spurious_p` the share of the other
    frames, of any weather, told the truth and a weather that is not there (`with_spurious`);
    `unsaid_haze_p` the share of frames with haze told everything but the haze (`without_haze`),
    before any other change of the words; `camera_p` the share
    of views through a random camera (`camera`). `renderers` (type -> renderer name) fixes
    which renderer draws each type, e.g. the left-out one; None draws a training renderer.
    `zoom_p` is the share of samples whose weather is drawn for a view up to `max_zoom` times
    the crop's side and seen through a crop-sized window of it (`_zoomed`): the renderers size
    weather to the frame, so without it every crop shows streaks, flakes and drops at one
    scale, while a photo shows them at any. `road_p` is the share of clean views drawn as a
    forward drive down a road with lane markings between walls carrying the scene (`road`):
    markings are thin and white like streaks, and must come back in the target. `mixture_p`
    is the share of weather recipes that stack several types (`synthesis.MIXTURES`).
    """

    def __init__(
        self,
        scenes: list[Scene],
        split: str = "train",
        crop: int | None = 128,
        seed: int = 0,
        length: int = 1000,
        wrong_description_p: float = 0.2,
        clean_p: float = 0.05,
        max_side: int = 768,
        flips: bool = True,
        recipes: list[list[Degradation]] | None = None,
        type_weights: dict[str, float] | None = None,
        exposure_p: float = 0.0,
        night_p: float = 0.0,
        unplaced_p: float = 0.0,
        misstated_p: float = 0.0,
        understated_p: float = 0.0,
        spurious_p: float = 0.0,
        unsaid_haze_p: float = 0.0,
        camera_p: float = 0.0,
        renderers: dict[str, str] | None = None,
        zoom_p: float = 0.0,
        max_zoom: float = 2.0,
        road_p: float = 0.0,
        mixture_p: float = MIXTURE_P,
    ):
        self.scenes = scenes_in_split(scenes, split)
        if not self.scenes:
            raise ValueError(
                f"no scenes in the {split!r} split of {len(scenes)} scenes; fetch more with "
                "tools/data_fetch_debian_photos.sh or pass a folder of photos"
            )
        self.split, self.crop, self.seed, self.length = split, crop, seed, length
        self.wrong_description_p, self.clean_p = wrong_description_p, clean_p
        self.max_side, self.flips, self.recipes = max_side, flips, recipes
        self.exposure_p, self.night_p, self.unplaced_p = exposure_p, night_p, unplaced_p
        self.misstated_p, self.camera_p, self.renderers = misstated_p, camera_p, renderers
        self.understated_p, self.spurious_p = understated_p, spurious_p
        self.unsaid_haze_p, self.mixture_p = unsaid_haze_p, mixture_p
        if zoom_p and (self.crop is None or max_zoom < 1.0):
            raise ValueError(f"zoom_p needs a crop and max_zoom >= 1, got crop {self.crop} "
                             f"and max_zoom {max_zoom}")
        self.zoom_p, self.max_zoom = zoom_p, max_zoom
        if road_p and self.crop is None:
            raise ValueError("road_p needs a crop: a road view is drawn at the crop's size")
        self.road_p = road_p
        self.type_p = type_probabilities(type_weights) if type_weights else None
        self.epoch = 0
        self._cache: dict[str, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        """New weather and crops for a new epoch, identically in every worker and process."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:  # ends plain iteration (`for item in dataset`)
            raise IndexError(f"index {index} outside a dataset of {self.length}")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        scene = self.scenes[rng.integers(len(self.scenes))]
        zoom = 1.0
        if self.zoom_p and rng.random() < self.zoom_p:
            zoom = float(np.exp(rng.uniform(0.0, np.log(self.max_zoom))))
        markings = None if not self.road_p else np.zeros((self.crop, self.crop), np.float32)
        if self.road_p and rng.random() < self.road_p:
            clean, markings = _road(self._scene(scene), self.crop, rng)
        else:
            clean = self._view(self._scene(scene), rng, zoom).astype(np.float32) / 255.0
        if self.night_p and rng.random() < self.night_p:
            clean = night_view(clean, rng)
        elif self.exposure_p and rng.random() < self.exposure_p:
            clean = reexpose(clean, rng)
        through_camera = self.camera_p and rng.random() < self.camera_p
        if through_camera:
            clean = camera_view(clean, rng)
        if self.recipes is not None:
            recipe = self.recipes[index % len(self.recipes)]
        else:
            recipe = sample_recipe(rng, clean_probability=self.clean_p, type_p=self.type_p,
                                   mixture_probability=self.mixture_p)
        sample = synthesize(clean, rng, recipe, self.renderers)
        degraded, clean = sample.degraded, sample.clean
        if through_camera:
            degraded, clean = camera_sensor(degraded, clean, rng)
        strength = sample.strength
        if zoom > 1.0:
            degraded, clean, strength = _zoomed((degraded, clean, strength), self.crop, rng)
        told = sample.degradations
        if self.unplaced_p and rng.random() < self.unplaced_p:
            told = [replace(d, location=None) for d in told]
        text, correct = describe(told), True
        light = all(d.severity == "slight" for d in told)
        hazy = any(d.type == "haze" for d in told)
        if hazy and self.unsaid_haze_p and rng.random() < self.unsaid_haze_p:
            text, correct = without_haze(told), False
        elif light and self.misstated_p and rng.random() < self.misstated_p:
            text, correct = misstate(told, rng), False
        elif not light and self.understated_p and rng.random() < self.understated_p:
            text, correct = understate(told), False
        elif (self.spurious_p and len(told) < len(TYPES)
              and rng.random() < self.spurious_p):
            text, correct = with_spurious(told, rng), False
        elif rng.random() < self.wrong_description_p:
            text, _ = corrupt_description(told, rng)
            correct = False
        return {
            "degraded": _chw(degraded),
            "clean": _chw(clean),
            "strength": torch.from_numpy(strength[None].copy()),
            "text": text,
            "true_text": sample.text,
            "description_correct": correct,
            "scene": scene.name,
            "renderers": ",".join(f"{t}:{r}" for t, r in sample.renderers.items()),
            **labels(sample.degradations),
            **({} if markings is None else {"markings": torch.from_numpy(markings[None])}),
        }

    def _scene(self, scene: Scene) -> np.ndarray:
        if scene.name not in self._cache:
            self._cache[scene.name] = scene.load(self.max_side)
        return self._cache[scene.name]

    def _view(self, image: np.ndarray, rng: np.random.Generator, zoom: float = 1.0
              ) -> np.ndarray:
        """A square crop of random size and place, resized to `crop` (times `zoom`): the scene
        at many scales."""
        if self.crop is None:
            view = image
        else:
            h, w = image.shape[:2]
            side = min(h, w)
            out = round(self.crop * zoom)
            size = side if side <= out else round(np.exp(rng.uniform(np.log(out), np.log(side))))
            y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            view = cv2.resize(
                image[y : y + size, x : x + size], (out, out),
                interpolation=cv2.INTER_AREA if size > out else cv2.INTER_LINEAR,
            )
        if self.flips and rng.random() < 0.5:
            view = view[:, ::-1]
        return np.ascontiguousarray(view)


def _road(photo: np.ndarray, crop: int, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """A crop-sized float view down a road with lane markings, somewhere along it, through a
    lens of random width, between walls carrying `photo` (uint8); and its markings' float mask."""
    view, markings = road_view(rng.uniform(0.0, 9.0), photo.astype(np.float32) / 255.0,
                               (crop, crop), focal=crop * rng.uniform(0.6, 1.2))
    return view, markings.astype(np.float32)


def _zoomed(images: tuple[np.ndarray, ...], crop: int, rng: np.random.Generator,
            tries: int = 3):
    """The same random crop-sized window of each image (weather drawn for the larger view then
    looks as close up as in a high-resolution photo read in tiles). The last image is the
    weather's opacity: a window must hold at least half the view's mean of it, so that sparse
    drops or flakes are not cut away from under their label; failing that, the whole view
    shrunk to the crop (the weather at its usual scale)."""
    h, w = images[0].shape[:2]
    strength = images[-1]
    enough = 0.5 * strength.mean()
    for _ in range(tries):
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        if strength[y:y + crop, x:x + crop].mean() >= enough:
            return tuple(np.ascontiguousarray(i[y:y + crop, x:x + crop]) for i in images)
    return tuple(cv2.resize(i, (crop, crop), interpolation=cv2.INTER_AREA) for i in images)


def reexpose(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clean view with its contrast flattened towards a new mean brightness: an overcast
    sky, a snowfield, dusk. Low contrast and brightness alone must not read as haze, so such
    frames are trained with their own (true) descriptions as the clean target."""
    mean = image.mean(axis=(0, 1), keepdims=True)
    contrast = rng.uniform(0.4, 1.0)
    level = rng.uniform(0.3, 0.85)
    return np.clip(level + (mean - mean.mean()) + contrast * (image - mean), 0.0, 1.0)


def synthetic_test_set(
    scenes: list[Scene], crop: int | None = 256, repeats: int = 4, max_side: int = 768,
    renderers: dict[str, str] | None = None, split: str = "test", seed: int = TEST_SEED,
) -> SyntheticWeatherDataset:
    """The fixed evaluation set: the test scenes under every recipe of `balanced_recipes`,
    `repeats` times, with true descriptions; the same images on every run and machine.
    `renderers` fixes the renderer per type (e.g. the left-out one for every type)."""
    recipes = balanced_recipes()
    return SyntheticWeatherDataset(
        scenes, split, crop=crop, seed=seed, length=len(recipes) * repeats,
        wrong_description_p=0.0, max_side=max_side, flips=False, recipes=recipes,
        renderers=renderers,
    )


# --------------------------------------------------------------------------- public datasets

DEGRADED_DIRS = ("input", "data", "synthetic", "rain", "degraded", "haze", "snow")
CLEAN_DIRS = ("gt", "clean", "target", "norain", "groundtruth")
LAYOUTS = ("list", "folders", "weatherstream")
_OUTDOOR_RAIN = re.compile(r"^(im_\d+)_s\d+_a\d+$")  # im_0001_s80_a04 -> im_0001
_WEATHER_WORDS = {  # whole words of folder names ("train" must not read as "rain")
    "rain": {"rain", "rainy", "rainstreak", "derain"},
    "raindrop": {"raindrop", "raindrops"},
    "snow": {"snow", "snowy", "desnow"},
    "haze": {"haze", "hazy", "fog", "foggy", "dehaze"},
}


@dataclass(frozen=True)
class Pair:
    degraded: Path
    clean: Path
    types: tuple[str, ...]  # the weather known to be in it, from the dataset's conventions


class PairedFolderDataset(Dataset):
    """Degraded/clean pairs of the public adverse-weather datasets.

    Layouts (`layout="auto"` finds which one `root` holds):
    - "list": a text file (TransWeather's allweather.txt style) of `input/...` paths relative to
      `root`; each clean image is the same path under `gt/`;
    - "folders": anywhere under `root`, a folder of degraded images (input/, data/, synthetic/,
      ...) beside a folder of clean ones (gt/, clean/, target/, ...): All-weather, Outdoor-Rain
      (`im_X_sN_aM` -> `im_X`), Snow100K (synthetic/ + gt/), Raindrop (data/ + gt/,
      `N_rain` -> `N_clean`);
    - "weatherstream": per-scene folders holding `degraded_*` frames and one `gt.png`.
    Items hold `degraded`, `clean` (3, H, W) tensors, `types` (4,) multi-hot from the dataset's
    naming (zeros when unknown) and `name`. Public pairs carry no description: their prior has
    to come from an estimator. With `crop`, a random crop (and hflip) by (seed, epoch, index).
    """

    def __init__(
        self,
        root: str | Path,
        layout: str = "auto",
        list_file: str | None = None,
        crop: int | None = None,
        seed: int = 0,
        flips: bool = True,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no such dataset folder: {self.root}")
        if layout == "auto":
            layout = "list" if list_file else _detect_layout(self.root)
        if layout == "list":
            self.pairs = _list_pairs(self.root, list_file)
        elif layout == "folders":
            self.pairs = _folder_pairs(self.root)
        elif layout == "weatherstream":
            self.pairs = _stream_pairs(self.root)
        else:
            raise ValueError(f"unknown layout {layout!r}; expected 'auto' or one of {LAYOUTS}")
        if not self.pairs:
            raise ValueError(f"no degraded/clean pairs found in {self.root} ({layout} layout)")
        self.layout = layout
        self.crop, self.seed, self.flips, self.epoch = crop, seed, flips, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        degraded, clean = _read_rgb(pair.degraded), _read_rgb(pair.clean)
        h = min(degraded.shape[0], clean.shape[0])  # a few public pairs differ by a pixel or two
        w = min(degraded.shape[1], clean.shape[1])
        degraded, clean = degraded[:h, :w], clean[:h, :w]
        if self.crop is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            degraded, clean = _paired_crop(degraded, clean, self.crop, rng, self.flips)
        types = torch.zeros(len(TYPES))
        for t in pair.types:
            types[TYPES.index(t)] = 1.0
        name = pair.degraded.relative_to(self.root).as_posix()
        return {"degraded": _chw(degraded), "clean": _chw(clean), "types": types, "name": name}


def _detect_layout(root: Path) -> str:
    if any(_is_input_list(p) for p in root.glob("*.txt")):
        return "list"
    if _stream_ground_truths(root):
        return "weatherstream"
    if _degraded_clean_dirs(root):
        return "folders"
    raise ValueError(
        f"unknown dataset layout in {root}: expected one of\n"
        "  list:          <root>/allweather.txt listing input/<name> with <root>/gt/<name>\n"
        f"  folders:       a degraded folder {DEGRADED_DIRS} beside a clean folder {CLEAN_DIRS}\n"
        "  weatherstream: <root>/.../<scene>/degraded_*.png with <scene>/gt.png, or\n"
        "                 <root>/input/<scene>/*.png with <root>/target/<scene>/gt.png"
    )


def _is_input_list(path: Path) -> bool:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return bool(lines) and (path.parent / lines[0].removeprefix("./")).is_file()


def _list_pairs(root: Path, list_file: str | None) -> list[Pair]:
    lists = [root / list_file] if list_file else sorted(filter(_is_input_list, root.glob("*.txt")))
    if not lists or not lists[0].is_file():
        raise ValueError(f"no list of input images (e.g. allweather.txt) in {root}")
    pairs = []
    for line in filter(None, map(str.strip, lists[0].read_text().splitlines())):
        degraded = root / line.removeprefix("./")
        clean_dir = root.joinpath(
            *("gt" if p == "input" else p for p in degraded.relative_to(root).parts[:-1])
        )
        clean = _clean_match(clean_dir, degraded.stem)
        if clean is None:
            raise FileNotFoundError(f"no ground truth for {degraded} in {clean_dir}")
        pairs.append(Pair(degraded, clean, _types_from_name(degraded)))
    return pairs


def _degraded_clean_dirs(root: Path) -> list[tuple[Path, Path]]:
    found = []
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        children = {c.name.lower(): c for c in folder.iterdir() if c.is_dir()}
        clean = next((children[n] for n in CLEAN_DIRS if n in children), None)
        for name in DEGRADED_DIRS:
            if clean is not None and name in children:
                found.append((children[name], clean))
    return found


def _folder_pairs(root: Path) -> list[Pair]:
    pairs = []
    for degraded_dir, clean_dir in _degraded_clean_dirs(root):
        for degraded in _images(degraded_dir):
            clean = _clean_match(clean_dir, degraded.stem)
            if clean is not None:
                pairs.append(Pair(degraded, clean, _types_from_name(degraded)))
    return pairs


def _stream_ground_truths(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("gt.*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _stream_pairs(root: Path) -> list[Pair]:
    """WeatherStream: each scene's degraded frames share the scene's one clean frame, either in
    the same folder (degraded_*.png + gt.png) or in parallel input/ and target/ trees."""
    pairs = []
    for gt in _stream_ground_truths(root):
        frames = [p for p in _images(gt.parent) if p.name.startswith("degraded")]
        parts = gt.parent.relative_to(root).parts
        if not frames and "target" in parts:
            twin = root.joinpath(*("input" if p == "target" else p for p in parts))
            frames = _images(twin) if twin.is_dir() else []
        pairs += [Pair(f, gt, _types_from_name(f)) for f in frames]
    return pairs


def _clean_match(clean_dir: Path, stem: str) -> Path | None:
    """The clean image for a degraded file name, by the public datasets' naming conventions."""
    outdoor = _OUTDOOR_RAIN.match(stem)
    candidates = [stem, stem.replace("_rain", "_clean")]
    if outdoor:
        candidates.append(outdoor.group(1))
    for candidate in candidates:
        for suffix in IMAGE_SUFFIXES:
            path = clean_dir / f"{candidate}{suffix}"
            if path.is_file():
                return path
    return None


def _types_from_name(path: Path) -> tuple[str, ...]:
    """The weather a public image is known to hold, from its dataset's naming conventions."""
    if _OUTDOOR_RAIN.match(path.stem):
        return ("rain", "haze")  # Outdoor-Rain: streaks with rain accumulation (fog)
    if path.stem.endswith("_rain"):
        return ("raindrop",)  # Raindrop: N_rain.png
    words = {w for part in path.parts for w in re.split(r"[^a-z]+", part.lower())}
    found = {kind for kind, names in _WEATHER_WORDS.items() if words & names}
    return tuple(t for t in TYPES if t in found)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return image[:, :, ::-1].astype(np.float32) / 255.0


def _paired_crop(degraded, clean, crop: int, rng: np.random.Generator, flips: bool):
    h, w = degraded.shape[:2]
    if min(h, w) < crop:  # small images are padded by reflection, never resized
        pad = ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0))
        degraded, clean = np.pad(degraded, pad, "reflect"), np.pad(clean, pad, "reflect")
        h, w = degraded.shape[:2]
    y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
    degraded, clean = degraded[y : y + crop, x : x + crop], clean[y : y + crop, x : x + crop]
    if flips and rng.random() < 0.5:
        degraded, clean = degraded[:, ::-1], clean[:, ::-1]
    return degraded, clean


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
