"""Synthetic weather: reproducible, physically plausible, ordered by severity, well described."""
import cv2
import numpy as np
import pytest
from skimage import data

from allweather_ros.data.synthesis import (
    MIXTURES,
    SEVERITY_EDGES,
    locate,
    measured_severity,
    sample_recipe,
    structural_change,
    synthesize,
    type_probabilities,
)
from allweather_ros.data.weather import EXTERNAL, RENDERERS, renderer
from allweather_ros.description import LOCATIONS, SEVERITIES, TYPES, Degradation, describe


def photo(h=128, w=128, gain=1.0) -> np.ndarray:
    image = cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA)
    return (image.astype(np.float32) / 255.0) * gain


def psnr(a, b) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def run(kind, severity, seed, image=None, renderer=None):
    """One type drawn by `renderer` (default: the type's first renderer, whose look the
    type-specific tests below describe)."""
    image = photo() if image is None else image
    name = renderer or next(iter(RENDERERS[kind]))
    return synthesize(image, np.random.default_rng(seed), [Degradation(kind, severity)],
                      {kind: name})


def test_same_seed_same_sample_and_other_seed_differs():
    a = synthesize(photo(), np.random.default_rng(7))
    b = synthesize(photo(), np.random.default_rng(7))
    c = synthesize(photo(), np.random.default_rng(8))
    assert np.array_equal(a.degraded, b.degraded) and np.array_equal(a.strength, b.strength)
    assert a.text == b.text
    assert not np.array_equal(a.degraded, c.degraded) or a.text != c.text


@pytest.mark.parametrize("shape", [(37, 53), (129, 64), (20, 201)])
@pytest.mark.parametrize("recipe", [(t,) for t in TYPES] + [MIXTURES[-1]])
def test_ranges_dtypes_and_odd_shapes(shape, recipe):
    clean = photo(*shape)
    sample = synthesize(clean, np.random.default_rng(0), [Degradation(t, "heavy") for t in recipe])
    assert sample.degraded.shape == clean.shape and sample.degraded.dtype == np.float32
    assert sample.strength.shape == shape and sample.strength.dtype == np.float32
    assert 0.0 <= sample.degraded.min() and sample.degraded.max() <= 1.0
    assert 0.0 <= sample.strength.min() and sample.strength.max() <= 1.0
    assert np.array_equal(sample.clean, clean)
    assert sample.strength.max() > 0.05


def test_rejects_non_rgb_or_integer_images():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        synthesize(np.zeros((8, 8), np.float32), rng)
    with pytest.raises(ValueError):
        synthesize(np.zeros((8, 8, 3), np.uint8), rng)


@pytest.mark.parametrize("kind", TYPES)
def test_heavier_severity_degrades_more(kind):
    mean = {
        s: np.mean([psnr(run(kind, s, seed).degraded, photo()) for seed in range(4)])
        for s in SEVERITIES
    }
    assert mean["slight"] > mean["moderate"] > mean["heavy"], mean


def test_rain_adds_bright_thin_oriented_streaks():
    dark = photo(gain=0.4)
    sample = run("rain", "moderate", 3, dark)
    diff = (sample.degraded - dark).mean(axis=2)
    diff -= np.median(diff)  # the streaks, without the faint veil a downpour adds everywhere
    changed = np.abs(diff) > 0.03
    assert 0.005 < changed.mean() < 0.5  # thin streaks, not a wash over the frame
    assert (diff[changed] > 0).mean() > 0.9  # light added
    assert coherence(sample.strength) > 0.3  # one dominant orientation
    assert coherence(run("snow", "moderate", 3, dark).strength) < 0.2  # unlike round flakes


def coherence(image: np.ndarray) -> float:
    """How strongly the gradients share one orientation: 0 isotropic, 1 all parallel."""
    gy, gx = np.gradient(image)
    tensor = [[(gx * gx).sum(), (gx * gy).sum()], [(gx * gy).sum(), (gy * gy).sum()]]
    small, large = np.linalg.eigvalsh(np.array(tensor, np.float64))
    return float((large - small) / (large + small))


def fine_detail(change: np.ndarray) -> np.ndarray:
    """What a layer drew, without its smooth veil or mist: the streaks themselves."""
    grey = change.mean(axis=2)
    return grey - cv2.GaussianBlur(grey, (0, 0), 4)


def streak_angle(image: np.ndarray) -> float:
    """Degrees by which the dominant streaks lean off vertical (their gradients lie across)."""
    gy, gx = np.gradient(image)
    return float(abs(np.degrees(0.5 * np.arctan2(2 * (gx * gy).sum(),
                                                 (gx * gx).sum() - (gy * gy).sum()))))


def test_fast_shutter_rain_falls_near_vertical_and_wind_driven_rain_leans():
    """Real heavy rain frozen into short dashes was read as snow blown into slanted dashes, and
    long faint wind-driven streaks as no weather: the two rain looks drawn for them keep the
    orientation that tells them apart."""
    dark = photo(256, 256, gain=0.4)
    angles = {}
    for name in ("splashing", "gusts"):
        drawn = [fine_detail(run("rain", "heavy", seed, dark, name).degraded - dark)
                 for seed in range(6)]
        assert min(coherence(d) for d in drawn) > 0.3  # one dominant orientation
        angles[name] = np.median([streak_angle(d) for d in drawn])
    assert angles["splashing"] < 10.0 and 15.0 < angles["gusts"] < 45.0, angles


def test_haze_lowers_contrast_more_with_depth():
    clean = photo()
    top, bottom = slice(0, 64), slice(64, 128)
    for seed in range(4):
        sample = run("haze", "moderate", seed)
        assert sample.degraded.std() < clean.std()
        assert sample.strength[top].mean() > sample.strength[bottom].mean()
        kept = [sample.degraded[rows].std() / clean[rows].std() for rows in (top, bottom)]
        assert kept[0] < kept[1]


def test_raindrops_are_local_blobs():
    for seed in range(3):
        sample = run("raindrop", "moderate", seed)
        blobs = (sample.strength > 0.5).astype(np.uint8)
        count, _ = cv2.connectedComponents(blobs)
        assert count - 1 >= 1
        assert blobs.mean() < 0.6
        untouched = np.abs(sample.degraded - sample.clean).max(axis=2) < 1e-4
        assert untouched.mean() > 0.3


def _drops(name, seed):
    """Connected drops (opacity > 0.5) of a moderate lens-drop layer by renderer `name` on a
    480x640 frame: (count, median area as a share of the frame)."""
    sample = run("raindrop", "moderate", seed, photo(480, 640), name)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (sample.strength > 0.5).astype(np.uint8))
    return count - 1, float(np.median(stats[1:, cv2.CC_STAT_AREA])) / (480 * 640)


def test_a_drop_field_is_many_small_drops_where_refraction_is_few_large_ones():
    for seed in range(3):
        field, refraction = _drops("field", seed), _drops("refraction", seed)
        assert field[0] > 2 * refraction[0], (field, refraction)
        assert field[1] < refraction[1] / 2, (field, refraction)


def test_beads_are_smaller_and_more_numerous_than_a_drop_field():
    for seed in range(3):
        beads, field = _drops("beads", seed), _drops("field", seed)
        assert beads[0] > 1.5 * field[0], (beads, field)
        assert beads[1] < field[1] / 2, (beads, field)


def test_a_water_film_smears_the_scene_under_it_and_leaves_the_rest():
    for seed in range(3):
        sample = run("raindrop", "moderate", seed, photo(240, 320), "film")
        under, free = sample.strength > 0.7, sample.strength < 1e-3
        assert under.mean() > 0.05 and free.mean() > 0.2
        degraded, clean = (np.abs(cv2.Laplacian(im, cv2.CV_32F)).mean(axis=2)
                           for im in (sample.degraded, sample.clean))
        assert degraded[under].mean() < 0.5 * clean[under].mean()
        assert np.abs(sample.degraded - sample.clean)[free].max() < 1e-3


def _cover(kind, severity, shape, visible):
    """Mean share of the frame where the layer's opacity exceeds `visible`, over six seeds."""
    return float(np.mean([(run(kind, severity, seed, photo(*shape)).strength > visible).mean()
                          for seed in range(6)]))


@pytest.mark.parametrize("kind, visible", [("raindrop", 0.5), ("rain", 0.25)])
def test_a_training_crop_and_a_camera_frame_show_the_same_share_of_weather(kind, visible):
    """Drops and streaks are sized per frame and counted to match, so a 128-pixel training
    crop shows the same wet lens or downpour as a 480x640 frame (rain's veil stays below
    `visible`, so only streaks count)."""
    for severity in ("moderate", "heavy"):
        small = _cover(kind, severity, (128, 128), visible)
        large = _cover(kind, severity, (480, 640), visible)
        assert 0.6 < small / large < 1.6, (severity, small, large)


def test_lens_drop_severities_cover_clearly_different_shares():
    cover = {s: _cover("raindrop", s, (480, 640), 0.5) for s in SEVERITIES}
    assert 0.01 < cover["slight"] < cover["moderate"] / 3
    assert cover["moderate"] < cover["heavy"] / 2, cover


@pytest.mark.parametrize("severity", SEVERITIES)
def test_snow_brightens(severity):
    sample = run("snow", severity, 1)
    assert sample.degraded.mean() > sample.clean.mean() + 0.005


def test_description_matches_applied_degradations():
    recipe = [Degradation("haze", "slight"), Degradation("rain", "heavy")]
    sample = synthesize(photo(), np.random.default_rng(0), recipe,
                        {"haze": "depth", "rain": "streaks"})
    assert [d.type for d in sample.degradations] == ["rain", "haze"]  # canonical order
    assert all(d.location in LOCATIONS for d in sample.degradations)
    assert sample.text == describe(sample.degradations)
    rain, haze = sample.degradations
    assert f"{rain.severity} rain streaks" in sample.text and f"{haze.severity} haze" in sample.text
    clean = synthesize(photo(), np.random.default_rng(0), [])
    assert clean.text == describe([]) and np.array_equal(clean.degraded, clean.clean)
    assert clean.strength.max() == 0.0
    with pytest.raises(ValueError):
        synthesize(photo(), np.random.default_rng(0), recipe + [Degradation("rain", "slight")])


def test_locate_names_the_half_that_holds_the_degradation():
    strength = np.zeros((40, 60), np.float32)
    assert locate(strength + 0.5) == "across the whole frame"
    strength[:20] = 0.8
    assert locate(strength) == "in the upper part of the frame"
    strength[:] = 0.0
    strength[:, 30:] = 0.8
    assert locate(strength) == "on the right side of the frame"


def test_recipes_cover_types_mixtures_and_clean():
    rng = np.random.default_rng(0)
    recipes = [sample_recipe(rng, clean_probability=0.1) for _ in range(400)]
    kinds = {tuple(d.type for d in r) for r in recipes}
    assert () in kinds and {(t,) for t in TYPES} <= kinds and len(kinds & set(MIXTURES)) >= 3
    heavy = [sample_recipe(rng, "heavy", clean_probability=0.0) for _ in range(50)]
    assert all(r and all(d.severity == "heavy" for d in r) for r in heavy)
    with pytest.raises(ValueError):
        sample_recipe(rng, "extreme")


def test_type_weights_make_single_type_recipes_of_a_type_more_frequent():
    def share_of_rain(type_p):
        rng = np.random.default_rng(3)
        singles = [r for r in (sample_recipe(rng, clean_probability=0.0, type_p=type_p)
                               for _ in range(2000)) if len(r) == 1]
        return sum(r[0].type == "rain" for r in singles) / len(singles)

    expected = [0.4 if t == "rain" else 0.2 for t in TYPES]
    assert type_probabilities({"rain": 2.0}) == pytest.approx(expected)
    even, skewed = share_of_rain(None), share_of_rain(type_probabilities({"rain": 2.0}))
    assert abs(even - 0.25) < 0.04 and abs(skewed - 0.4) < 0.04


@pytest.mark.parametrize("weights", [{"hail": 1.0}, {"rain": -1.0},
                                     {"rain": 0, "snow": 0, "haze": 0, "raindrop": 0}])
def test_bad_type_weights_are_refused(weights):
    with pytest.raises(ValueError, match="type"):
        type_probabilities(weights)


ALL_RENDERERS = [(kind, name) for kind in TYPES for name in [*RENDERERS[kind], EXTERNAL]]


@pytest.mark.parametrize("kind, name", ALL_RENDERERS)
def test_every_renderer_degrades_reproducibly_within_range(kind, name):
    clean = photo(96, 120)
    a = renderer(kind, name)(clean, "moderate", np.random.default_rng(5))
    b = renderer(kind, name)(clean, "moderate", np.random.default_rng(5))
    for out, alpha in (a,):
        assert out.shape == clean.shape and alpha.shape == clean.shape[:2]
        assert 0.0 <= alpha.min() and alpha.max() <= 1.0
        assert np.abs(np.clip(out, 0, 1) - clean).mean() > 0.002  # it did something
    assert np.array_equal(a[0], b[0])


@pytest.mark.parametrize("kind, name", ALL_RENDERERS)
def test_every_renderer_hides_more_of_the_scene_when_asked_for_heavier_weather(kind, name):
    clean = photo()
    change = {s: np.mean([structural_change(clean, np.clip(
        renderer(kind, name)(clean, s, np.random.default_rng(seed))[0], 0, 1).astype(np.float32))
        for seed in range(4)]) for s in ("slight", "heavy")}
    assert change["heavy"] > 1.5 * change["slight"], change


@pytest.mark.parametrize("kind", TYPES)
def test_severity_is_measured_on_the_frame_alike_for_every_renderer(kind):
    """The described severity follows what the layer did, not the renderer's own scale: it
    never decreases with the structural change, whichever renderer drew the layer."""
    clean = photo()
    low, high = SEVERITY_EDGES[kind]
    seen = []
    for name in RENDERERS[kind]:
        for seed, asked in enumerate(SEVERITIES * 2):
            sample = run(kind, asked, seed, clean, name)
            change = structural_change(clean, sample.degraded)
            told = sample.degradations[0].severity
            assert told == measured_severity(kind, clean, sample.degraded)
            assert told == ("slight" if change < low else "moderate" if change < high
                            else "heavy")
            seen.append(told)
    assert set(seen) == set(SEVERITIES)


def test_a_random_recipe_is_drawn_by_one_of_the_training_renderers_of_each_type():
    used = {t: set() for t in TYPES}
    for seed in range(160):
        kind = TYPES[seed % len(TYPES)]
        sample = synthesize(photo(48, 48), np.random.default_rng(seed),
                            [Degradation(kind, "moderate")])
        used[kind].add(sample.renderers[kind])
    assert used == {t: set(RENDERERS[t]) for t in TYPES}  # all of them, never the left-out one


def test_unknown_renderer_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="drizzle"):
        renderer("rain", "hail")
