"""Torch datasets: synthetic samples with (sometimes wrong) priors, and public paired folders."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from allweather_ros.data.datasets import (
    PairedFolderDataset,
    SyntheticWeatherDataset,
    _zoomed,
    balanced_recipes,
    corrupt_description,
    misstate,
    reexpose,
    synthetic_test_set,
    with_spurious,
)
from allweather_ros.data.night import night_view
from allweather_ros.data.sources import split_of
from allweather_ros.description import (
    GENERIC_TEXT,
    LOCATIONS,
    SEVERITIES,
    TYPES,
    Degradation,
    describe,
)


def test_items_have_the_documented_shapes_and_types(scenes):
    ds = SyntheticWeatherDataset(scenes, "train", crop=33, length=8)
    item = ds[0]
    assert item["degraded"].shape == item["clean"].shape == (3, 33, 33)
    assert item["strength"].shape == (1, 33, 33) and item["degraded"].dtype == torch.float32
    assert 0 <= item["degraded"].min() and item["degraded"].max() <= 1
    assert item["types"].shape == (4,) and item["severity"].dtype == torch.long
    assert ((item["severity"] >= 0) == (item["types"] > 0)).all()
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    assert batch["degraded"].shape == (4, 3, 33, 33) and len(batch["text"]) == 4


def test_items_are_reproducible_and_epochs_bring_new_weather(scenes):
    a = SyntheticWeatherDataset(scenes, "train", crop=32, seed=3, length=4)
    b = SyntheticWeatherDataset(scenes, "train", crop=32, seed=3, length=4)
    assert torch.equal(a[2]["degraded"], b[2]["degraded"]) and a[2]["text"] == b[2]["text"]
    before = a[2]["degraded"]
    a.set_epoch(1)
    assert not torch.equal(a[2]["degraded"], before)


def test_scenes_come_only_from_the_requested_split(scenes):
    for split in ("train", "val", "test"):
        ds = SyntheticWeatherDataset(scenes, split, crop=24, length=12)
        assert {split_of(s) for s in ds.scenes} == {split}
        assert all(split_of(next(s for s in scenes if s.name == ds[i]["scene"])) == split
                   for i in range(12))
    with pytest.raises(ValueError, match="no scenes"):
        SyntheticWeatherDataset(scenes[:0], "test")


def test_wrong_description_probability_is_roughly_honoured(scenes):
    ds = SyntheticWeatherDataset(scenes, "train", crop=24, length=300, wrong_description_p=0.3)
    items = [ds[i] for i in range(300)]
    wrong = [not it["description_correct"] for it in items]
    assert 0.22 < np.mean(wrong) < 0.38
    assert all((it["text"] != it["true_text"]) == w for it, w in zip(items, wrong, strict=True))
    exact = SyntheticWeatherDataset(scenes, "train", crop=24, length=30, wrong_description_p=0.0)
    assert all(exact[i]["text"] == exact[i]["true_text"] for i in range(30))


def test_reexposed_views_are_flatter_and_spread_over_brightness():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (32, 32, 3)).astype(np.float32)
    views = [reexpose(image, rng) for _ in range(60)]
    assert all(v.dtype == np.float32 and 0 <= v.min() and v.max() <= 1 for v in views)
    assert all(v.std() <= image.std() + 1e-6 for v in views)
    means = [float(v.mean()) for v in views]
    assert min(means) < 0.4 and max(means) > 0.75  # dusk to snowfield


def test_exposure_p_reexposes_the_clean_target(scenes):
    plain = SyntheticWeatherDataset(scenes, "train", crop=24, length=20, clean_p=0.9)
    exposed = SyntheticWeatherDataset(scenes, "train", crop=24, length=20, clean_p=0.9,
                                      exposure_p=1.0)
    items = [exposed[i] for i in range(20)]
    assert all(torch.equal(it["degraded"], it["clean"]) for it in items if not it["types"].any())
    assert np.mean([float(it["clean"].std()) for it in items]) < np.mean(
        [float(plain[i]["clean"].std()) for i in range(20)])


def test_night_views_are_dark_scenes_with_a_few_bright_lamps():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.3, 1.0, (96, 128, 3)).astype(np.float32)
    views = [night_view(image, rng) for _ in range(20)]
    assert all(v.shape == image.shape and v.dtype == np.float32 for v in views)
    assert all(0 <= v.min() and v.max() <= 1 for v in views)
    for v in views:
        lit = v.max(axis=2) > 0.9  # lamp cores
        assert 0 < lit.mean() < 0.05  # a few small lights, not a lit frame
        assert np.median(v) < 0.25 * np.median(image)  # the daylight is gone
    assert not np.array_equal(views[0], views[1])


def test_night_p_relights_the_clean_target_before_the_weather(scenes):
    plain = SyntheticWeatherDataset(scenes, "train", crop=24, length=20, clean_p=0.9)
    night = SyntheticWeatherDataset(scenes, "train", crop=24, length=20, clean_p=0.9,
                                    night_p=1.0, exposure_p=1.0)
    items = [night[i] for i in range(20)]
    assert all(torch.equal(it["degraded"], it["clean"]) for it in items if not it["types"].any())
    assert np.median([float(it["clean"].median()) for it in items]) < 0.5 * np.median(
        [float(plain[i]["clean"].median()) for i in range(20)])


def _relative_gradient(strength: torch.Tensor) -> float:
    """How finely the weather's opacity varies: small for large, smooth particles."""
    return float((strength[..., 1:] - strength[..., :-1]).abs().mean() / strength.mean())


def test_zoomed_weather_is_drawn_closer_and_cut_to_the_crop(scenes):
    recipes = [[Degradation("rain", "heavy")], [Degradation("snow", "heavy")]]
    # one renderer per type, so that both sets draw the same kind of particles (drawn at random,
    # a sheet of spray in one set and sparse dashes in the other decide the comparison), and
    # rain as lines without a veil, whose sharpness is all particle
    kwargs = dict(crop=128, seed=1, length=16, recipes=recipes, wrong_description_p=0.0,
                  renderers={"rain": "drizzle", "snow": "flakes"})
    plain = SyntheticWeatherDataset(scenes, "train", **kwargs)
    zoomed = SyntheticWeatherDataset(scenes, "train", zoom_p=1.0, max_zoom=3.0, **kwargs)
    items = [zoomed[i] for i in range(16)]
    assert all(it["degraded"].shape == it["clean"].shape == (3, 128, 128) for it in items)
    assert all(it["strength"].shape == (1, 128, 128) for it in items)
    assert all(torch.equal(it["types"], plain[i]["types"]) for i, it in enumerate(items))
    fine = np.mean([_relative_gradient(plain[i]["strength"]) for i in range(16)])
    assert np.mean([_relative_gradient(it["strength"]) for it in items]) < 0.8 * fine
    again = SyntheticWeatherDataset(scenes, "train", zoom_p=1.0, max_zoom=3.0, **kwargs)
    assert torch.equal(again[3]["degraded"], items[3]["degraded"])
    with pytest.raises(ValueError, match="zoom_p needs a crop"):
        SyntheticWeatherDataset(scenes, "train", crop=None, zoom_p=0.5)
    with pytest.raises(ValueError, match="max_zoom >= 1"):
        SyntheticWeatherDataset(scenes, "train", crop=48, zoom_p=0.5, max_zoom=0.5)


def test_a_zoomed_window_never_cuts_sparse_weather_away_from_its_label():
    image = np.random.default_rng(0).uniform(0, 1, (96, 96, 3)).astype(np.float32)
    strength = np.zeros((96, 96), np.float32)
    strength[4:10, 80:86] = 1.0  # one drop in a corner
    windows = 0
    for seed in range(40):
        out, weight = _zoomed((image, strength), 32, np.random.default_rng(seed))
        assert out.shape == (32, 32, 3) and weight.shape == (32, 32)
        assert weight.mean() >= 0.5 * strength.mean() - 1e-6
        windows += any(np.array_equal(out, image[y:y + 32, x:x + 32])
                       for y in range(65) for x in range(65))
    assert 0 < windows < 40  # some windows hold the drop, the rest shrink the whole view


def test_corrupted_descriptions_always_differ_and_use_every_kind():
    rng = np.random.default_rng(0)
    kinds = set()
    recipes = balanced_recipes() + [[Degradation(t, "slight") for t in TYPES]]
    for recipe in recipes * 10:
        text, kind = corrupt_description(recipe, rng)
        kinds.add(kind)
        assert text != describe(recipe)
        assert text == GENERIC_TEXT or text.startswith("The image is")
    assert kinds == {"drop", "swap", "severity", "add", "unknown"}


def test_a_spurious_degradation_is_placed_like_the_true_ones():
    rng = np.random.default_rng(1)
    placed = [Degradation("rain", "heavy", LOCATIONS[0])]
    unplaced = [Degradation("rain", "heavy")]
    for told, with_place in ((placed, True), (unplaced, False)):
        added = []
        while len(added) < 5:
            text, kind = corrupt_description(told, rng)
            if kind == "add":
                added.append(text.split(" and ")[1])
        assert all(any(loc in a for loc in LOCATIONS) == with_place for a in added), added


def test_unplaced_p_drops_where_but_keeps_what_and_how_much(scenes):
    ds = SyntheticWeatherDataset(scenes, "train", crop=32, length=30, unplaced_p=1.0,
                                 wrong_description_p=0.0)
    items = [ds[i] for i in range(30)]
    weather = [it for it in items if it["types"].any()]
    assert weather and all(not any(loc in it["text"] for loc in LOCATIONS) for it in weather)
    assert all(any(loc in it["true_text"] for loc in LOCATIONS) for it in weather)
    for it in weather:  # the same words once the places are taken out of the true text
        stripped = it["true_text"]
        for loc in LOCATIONS:
            stripped = stripped.replace(" " + loc, "")
        assert it["text"] == stripped and it["description_correct"]


def test_synthetic_test_set_is_fixed_and_balanced(scenes):
    first = synthetic_test_set(scenes, crop=32, repeats=1)
    second = synthetic_test_set(scenes, crop=32, repeats=1)
    assert len(first) == len(balanced_recipes())
    for i in (0, 7, len(first) - 1):
        assert torch.equal(first[i]["degraded"], second[i]["degraded"])
        assert first[i]["text"] == first[i]["true_text"]
    types = {tuple(d.type for d in r) for r in balanced_recipes()}
    assert {(t,) for t in TYPES} <= types and () in types


# --------------------------------------------------------------------------- public layouts


def write(path: Path, value: int, size=(20, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*size, 3), value, np.uint8))


def by_name(ds) -> dict:
    return {ds[i]["name"]: ds[i] for i in range(len(ds))}


def types_of(item) -> set:
    return {t for t, on in zip(TYPES, item["types"], strict=True) if on}


def test_allweather_list_layout(tmp_path):
    write(tmp_path / "input" / "im_0001_s80_a04.png", 200)
    write(tmp_path / "gt" / "im_0001_s80_a04.png", 100)
    write(tmp_path / "input" / "3_rain.png", 180)
    write(tmp_path / "gt" / "3_clean.png", 90)
    write(tmp_path / "input" / "snowy_street.jpg", 170)
    write(tmp_path / "gt" / "snowy_street.jpg", 80)
    (tmp_path / "allweather.txt").write_text(
        "input/im_0001_s80_a04.png\n./input/3_rain.png\ninput/snowy_street.jpg\n\n"
    )
    ds = PairedFolderDataset(tmp_path)
    assert ds.layout == "list" and len(ds) == 3
    items = by_name(ds)
    assert types_of(items["input/im_0001_s80_a04.png"]) == {"rain", "haze"}
    assert types_of(items["input/3_rain.png"]) == {"raindrop"}
    assert abs(items["input/3_rain.png"]["clean"].mean().item() - 90 / 255) < 0.01
    (tmp_path / "broken.txt").write_text("input/missing.png\n")
    with pytest.raises(FileNotFoundError):
        PairedFolderDataset(tmp_path, list_file="broken.txt")


def test_public_folder_layouts_outdoor_rain_snow100k_raindrop(tmp_path):
    write(tmp_path / "test1" / "input" / "im_0002_s90_a05.png", 200)
    write(tmp_path / "test1" / "gt" / "im_0002.png", 100)
    write(tmp_path / "Snow100K-L" / "synthetic" / "beach_001.jpg", 210)
    write(tmp_path / "Snow100K-L" / "gt" / "beach_001.jpg", 110)
    write(tmp_path / "Snow100K-L" / "mask" / "beach_001.jpg", 255)
    write(tmp_path / "raindrop" / "test_a" / "data" / "0_rain.png", 190, size=(21, 25))
    write(tmp_path / "raindrop" / "test_a" / "gt" / "0_clean.png", 120)
    write(tmp_path / "raindrop" / "test_a" / "data" / "9_rain.png", 190)  # no ground truth
    ds = PairedFolderDataset(tmp_path)
    assert ds.layout == "folders" and len(ds) == 3
    items = by_name(ds)
    assert types_of(items["test1/input/im_0002_s90_a05.png"]) == {"rain", "haze"}
    assert types_of(items["Snow100K-L/synthetic/beach_001.jpg"]) == {"snow"}
    drop = items["raindrop/test_a/data/0_rain.png"]
    assert types_of(drop) == {"raindrop"} and drop["degraded"].shape == (3, 20, 24)
    cropped = PairedFolderDataset(tmp_path, crop=16, seed=1)
    item = cropped[0]
    assert item["degraded"].shape == item["clean"].shape == (3, 16, 16)
    assert torch.allclose(item["degraded"] - item["clean"], torch.tensor(100 / 255), atol=0.01)
    padded = PairedFolderDataset(tmp_path, crop=32)[0]
    assert padded["degraded"].shape == (3, 32, 32)


def test_weatherstream_layouts(tmp_path):
    scene = tmp_path / "WeatherStream_train_rain" / "street_01"
    for i in range(3):
        write(scene / f"degraded_{i:03d}.png", 150 + i)
    write(scene / "gt.png", 60)
    fog = tmp_path / "WeatherStream_test" / "fog_bridge"
    write(fog / "degraded_000.png", 170)
    write(fog / "gt.png", 70)
    ds = PairedFolderDataset(tmp_path)
    assert ds.layout == "weatherstream" and len(ds) == 4
    items = by_name(ds)
    assert types_of(items["WeatherStream_train_rain/street_01/degraded_002.png"]) == {"rain"}
    assert types_of(items["WeatherStream_test/fog_bridge/degraded_000.png"]) == {"haze"}
    assert abs(items["WeatherStream_test/fog_bridge/degraded_000.png"]["clean"].mean().item()
               - 70 / 255) < 0.01

    twin = tmp_path / "twin"
    write(twin / "input" / "snow_park" / "0001.png", 160)
    write(twin / "input" / "snow_park" / "0002.png", 161)
    write(twin / "target" / "snow_park" / "gt.png", 50)
    twin_ds = PairedFolderDataset(twin, layout="weatherstream")
    assert len(twin_ds) == 2 and types_of(twin_ds[0]) == {"snow"}


def test_unknown_layout_names_what_was_expected(tmp_path):
    write(tmp_path / "photos" / "a.png", 10)
    (tmp_path / "readme.txt").write_text("nothing to see")
    with pytest.raises(ValueError, match="unknown dataset layout.*expected") as error:
        PairedFolderDataset(tmp_path)
    assert "allweather.txt" in str(error.value) and "gt.png" in str(error.value)
    with pytest.raises(ValueError, match="unknown layout"):
        PairedFolderDataset(tmp_path, layout="kitti")
    with pytest.raises(FileNotFoundError):
        PairedFolderDataset(tmp_path / "absent")


def test_plain_iteration_ends_after_length_items():
    from allweather_ros.data.sources import skimage_scenes

    dataset = SyntheticWeatherDataset(skimage_scenes(), "train", crop=32, length=3)
    assert len(list(dataset)) == 3
    with pytest.raises(IndexError):
        dataset[3]


def test_understated_frames_are_told_every_severity_a_tier_lower(scenes):
    ds = SyntheticWeatherDataset(scenes, "train", crop=24, length=60, wrong_description_p=0.0,
                                 understated_p=1.0)
    items = [ds[i] for i in range(60)]
    lower = {"moderate": "slight", "heavy": "moderate", "slight": "slight"}
    heavier = [bool((it["severity"] > 0).any()) for it in items]
    assert any(heavier), "the recipes draw moderate and heavy weather"
    for it, heavy in zip(items, heavier, strict=True):
        if heavy:
            assert not it["description_correct"]
            expected = it["true_text"]
            for word in ("slight", "moderate", "heavy"):
                expected = expected.replace(word, word.upper())
            for word, said in lower.items():
                expected = expected.replace(word.upper(), said)
            assert it["text"] == expected
        else:  # clean or only slight: nothing to understate
            assert it["text"] == it["true_text"]


def test_misstated_light_weather_is_overstated_or_given_weather_that_is_not_there():
    """Every way an estimator overstates a light frame turns up: the generic text, severities
    raised, and a spurious type beside the true one, said unplaced and never "heavy"."""
    from allweather_ros.prior.parse import parse

    true = [Degradation("snow", "slight", "at the top")]
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(200):
        text = misstate(true, rng)
        if text == GENERIC_TEXT:
            kinds.add("generic")
            continue
        said = parse(text).severities
        if set(said) == {"snow"}:
            assert SEVERITIES.index(said["snow"]) > 0  # raised, one or two tiers
            kinds.add("raised")
        else:
            (spurious,) = set(said) - {"snow"}
            assert said["snow"] == "slight" and said[spurious] != "heavy"
            assert "at the top" not in text  # placed alike: the wording gives nothing away
            kinds.add("spurious")
    assert kinds == {"generic", "raised", "spurious"}
    clear = {misstate([], rng) for _ in range(50)} - {GENERIC_TEXT}
    assert clear and all(parse(t).severities for t in clear)  # weather named on a clear frame


def test_spurious_weather_is_added_beside_the_truth_haze_most_often(scenes):
    """A frame of any weather told the truth and one weather that is not there, at any
    severity, placed like the truth; haze about half the time (the estimator's costliest false
    call); in the dataset the target stays the true clean frame."""
    from allweather_ros.prior.parse import parse

    true = [Degradation("raindrop", "heavy", "at the top")]
    rng = np.random.default_rng(0)
    added = []
    for _ in range(300):
        said = parse(text := with_spurious(true, rng)).severities
        assert said.pop("raindrop") == "heavy" and len(said) == 1
        added.append(next(iter(said.items())))
        assert "at the top" in text
    kinds = [k for k, _ in added]
    assert 0.55 < kinds.count("haze") / len(kinds) < 0.75  # half, plus its share of the rest
    assert set(kinds) == {"rain", "snow", "haze"} and {s for _, s in added} == set(SEVERITIES)
    hazy = parse(with_spurious([Degradation("haze", "slight")], rng)).severities
    assert hazy.pop("haze") == "slight" and len(hazy) == 1  # the one added is another type
    ds = SyntheticWeatherDataset(scenes, "train", crop=24, length=60, spurious_p=1.0,
                                 wrong_description_p=0.0)
    for item in (ds[i] for i in range(60)):
        told, truth = parse(item["text"]).severities, parse(item["true_text"]).severities
        assert not item["description_correct"] and set(truth) < set(told)
        assert len(set(told) - set(truth)) == 1 and all(told[t] == s for t, s in truth.items())


def test_unsaid_haze_leaves_only_the_haze_out_and_keeps_the_true_target(scenes):
    """A frame with haze told everything but the haze (the estimator's costliest miss); frames
    without haze keep their words; the target is the true clean frame either way."""
    from allweather_ros.prior.parse import parse

    kwargs = dict(crop=24, length=80, wrong_description_p=0.0, type_weights={"haze": 3.0})
    told_plain = SyntheticWeatherDataset(scenes, "train", **kwargs)
    unsaid = SyntheticWeatherDataset(scenes, "train", unsaid_haze_p=1.0, **kwargs)
    hazy = 0
    for i in range(80):
        item, plain = unsaid[i], told_plain[i]
        truth = parse(item["true_text"]).severities
        told = parse(item["text"]).severities
        assert torch.equal(item["clean"], plain["clean"])
        assert torch.equal(item["degraded"], plain["degraded"])
        if "haze" in truth:
            hazy += 1
            assert not item["description_correct"] and "haze" not in told
            assert told == {t: s for t, s in truth.items() if t != "haze"}
        else:
            assert item["description_correct"] and item["text"] == item["true_text"]
    assert 10 < hazy < 80


def test_road_views_show_lane_markings_kept_in_the_clean_target(scenes):
    """A share of clean views drawn as a drive down a marked road past the scene (data/road.py):
    the markings, thin and white like streaks, are in the target under the rain."""
    kwargs = dict(crop=192, seed=2, length=6, recipes=[[Degradation("rain", "heavy")]],
                  wrong_description_p=0.0)
    roads = SyntheticWeatherDataset(scenes, "train", road_p=1.0, **kwargs)
    for item in (roads[i] for i in range(6)):
        clean = item["clean"].numpy()
        assert clean.shape == (3, 192, 192)
        assert np.allclose(clean[:, 2, 96], (0.55, 0.65, 0.8))  # the sky between the walls
        road = clean[:, 90:, :].mean(0)  # below the horizon
        assert (road >= 0.84).sum() > 40  # the markings' white on the asphalt
        assert not torch.equal(item["degraded"], item["clean"])  # under the rain
    plain = SyntheticWeatherDataset(scenes, "train", **kwargs)
    assert not np.allclose(plain[0]["clean"].numpy()[:, 2, 96], (0.55, 0.65, 0.8))
    with pytest.raises(ValueError, match="road_p needs a crop"):
        SyntheticWeatherDataset(scenes, "train", crop=None, road_p=0.5)
