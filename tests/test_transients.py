"""Transient suppression (transients.py): falling streaks taken out of a stream, everything that
stays, that a 2-D warp cannot follow or that moves on its own left alone."""
import cv2
import numpy as np
import pytest
from skimage import data

from allweather_ros.data.road import road_view
from allweather_ros.transients import TransientSuppressor


def scene(shift: tuple[float, float] = (0.0, 0.0), size: tuple[int, int] = (240, 320),
          zoom: float = 1.0) -> np.ndarray:
    """A real photo's 240x320 view, moved by `shift` (x, y) pixels (a panning camera) and
    magnified `zoom` times about its centre."""
    photo = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    photo = photo.astype(np.float32) / 255.0
    centre = np.array([240.0, 240.0]) - shift
    half = np.array(size[::-1]) / 2
    warp = np.float32([[1 / zoom, 0, centre[0] - half[0] / zoom],
                       [0, 1 / zoom, centre[1] - half[1] / zoom]])
    return cv2.warpAffine(photo, warp, size[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def rained(frame: np.ndarray, seed: int, streaks: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """`frame` with thin, bright, slanted streaks; and where they are."""
    rng = np.random.default_rng(seed)
    where = np.zeros(frame.shape[:2], np.uint8)
    for _ in range(streaks):
        x, y = rng.integers(10, frame.shape[1] - 10), rng.integers(10, frame.shape[0] - 20)
        cv2.line(where, (int(x), int(y)), (int(x) + 3, int(y) + 14), 1, 1)
    return np.clip(frame + 0.3 * where[..., None], 0, 1).astype(np.float32), where.astype(bool)


def mse(a, b, mask=None):
    diff = (a - b) ** 2
    return float(diff[mask].mean() if mask is not None else diff.mean())


@pytest.mark.parametrize("pan", [(0.0, 0.0), (2.5, -1.5)])
def test_streaks_of_a_still_or_panning_camera_are_taken_out(pan):
    suppressor = TransientSuppressor(frames=3)
    for t in range(4):
        suppressor(rained(scene((pan[0] * t, pan[1] * t)), seed=t, streaks=30)[0])
    truth = scene((pan[0] * 4, pan[1] * 4))
    frame, streaks = rained(truth, seed=4, streaks=30)
    out = suppressor(frame)
    assert suppressor.last_share > 0
    # most of the streaks' error is gone (not where the texture is as bright, nor a streak
    # that lines up with past ones or with thin texture of its contrast: see the module), and
    # the rest of the frame is left as it was
    assert mse(out, truth, streaks) < 0.5 * mse(frame, truth, streaks)
    untouched = ~cv2.dilate(streaks.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.abs(out - frame)[untouched].max() < 0.05
    assert mse(out, truth) < 0.5 * mse(frame, truth)


def test_a_clean_stream_is_left_as_it_came():
    suppressor = TransientSuppressor(frames=2)
    rng = np.random.default_rng(0)
    worst = np.inf
    for t in range(8):
        frame = np.clip(scene((1.5 * t, 0.7 * t)) + rng.normal(0, 0.01, (240, 320, 3)), 0, 1)
        frame = frame.astype(np.float32)
        out = suppressor(frame)
        if t >= 2:
            worst = min(worst, 10 * np.log10(1 / max(mse(out, frame), 1e-12)))
    assert worst > 45  # at most a few noise pixels, never a visible change


@pytest.mark.parametrize("max_zoom", [0.002, np.inf])
def test_a_forward_drive_keeps_its_lane_markings(max_zoom):
    """The road flows towards the camera unlike any 2-D warp; its dashes are thin and bright,
    but the picture zooms, and (where that is not looked at) the past frames show each of them
    coming."""
    suppressor = TransientSuppressor(max_zoom=max_zoom)
    photo = data.astronaut().astype(np.float32) / 255.0
    changed = []
    for t in range(12):
        frame, markings = road_view(0.3 * t, photo)  # 32 km/h at 30 frames a second
        changed.append((np.abs(suppressor(frame) - frame).max(axis=2) > 0.05)[markings])
    assert np.concatenate(changed).mean() < 0.002


@pytest.mark.parametrize(("zoom", "stands_aside"), [(1.01, True), (1.001, False)])
def test_it_stands_aside_while_the_picture_zooms(zoom, stands_aside):
    """1% a frame is a dash cam's forward drive; 0.1% is within what a still camera's warps
    wander by."""
    suppressor = TransientSuppressor(frames=3)
    for t in range(4):
        suppressor(rained(scene(zoom=zoom ** t), seed=t, streaks=30)[0])
    truth = scene(zoom=zoom ** 4)
    frame, streaks = rained(truth, seed=4, streaks=30)
    out = suppressor(frame)
    if stands_aside:
        assert suppressor.last_share == 0 and out is frame and suppressor.last_state == "zooming"
    else:
        assert suppressor.last_share > 0 and suppressor.last_state == "applied"
        assert mse(out, truth, streaks) < 0.5 * mse(frame, truth, streaks)


@pytest.mark.parametrize(("width", "speed"), [(2, 6), (3, 4)])
def test_a_thin_bright_thing_moving_across_the_scene_is_kept(width, speed):
    """A pole's highlight, a cyclist's reflective strip: thin, bright and never in the same
    place twice, but on a track."""
    suppressor = TransientSuppressor()
    for t in range(8):
        frame = scene().copy()
        x = 40 + speed * t
        frame[100:125, x:x + width] = 0.95
        out = suppressor(frame)
        if t >= 3:
            assert np.array_equal(out[100:125, x:x + width], frame[100:125, x:x + width])


@pytest.mark.parametrize("light", ["point", "bar"])
@pytest.mark.parametrize("lit_frames", [1, 2])
def test_a_flashing_white_light_is_kept(light, lit_frames):
    """A strobe, a beacon, a blinking lamp or a light bar comes on for a frame or two where
    the past frames saw none: new, thin and colourless like a streak, but not streak-shaped.
    A driving or surveillance stack must see it."""
    suppressor = TransientSuppressor()
    where = np.zeros((240, 320), np.uint8)
    if light == "point":
        cv2.circle(where, (200, 60), 2, 1, -1)  # five pixels across: under max_width
    else:
        where[60:62, 180:215] = 1  # a level bar two pixels high
    where = where.astype(bool)
    for t in range(16):
        frame = scene().copy()
        lit = t % 6 < lit_frames
        frame[where] = 1.0 if lit else frame[where]
        out = suppressor(frame)
        if lit and t >= 6:
            assert suppressor.last_state == "applied"
            assert np.array_equal(out[where], frame[where])


def test_what_comes_into_view_or_changes_colour_is_kept():
    """A wide bright object entering, and a thin light turning red, are not weather."""
    suppressor = TransientSuppressor(frames=2)
    for _ in range(3):
        suppressor(scene())
    frame = scene().copy()
    frame[100:160, 40:120] = 0.95  # a white van arrives
    frame[30:80, 200:202] = frame[30:80, 200:202] + np.float32([0.4, 0.0, 0.0])  # a red lamp
    frame = np.clip(frame, 0, 1)
    out = suppressor(frame)
    assert np.array_equal(out, frame)
    assert suppressor.last_share == 0.0


def test_a_cut_a_gap_or_a_new_size_changes_nothing():
    suppressor = TransientSuppressor(frames=2)
    for t in range(3):
        suppressor(rained(scene(), seed=t)[0])
    cut = rained(cv2.resize(data.chelsea(), (320, 240)).astype(np.float32) / 255, seed=9)[0]
    assert np.array_equal(suppressor(cut), cut)  # another scene: nothing to align
    assert suppressor.last_state == "misaligned"

    suppressor.max_gap_s = 0.0  # every past is now too old (a paused stream)
    for t in range(3):
        frame = rained(scene(), seed=10 + t)[0]
        assert np.array_equal(suppressor(frame), frame)
        assert suppressor.last_state == "filling"  # each frame starts the past over

    suppressor = TransientSuppressor(frames=2)
    for t in range(3):
        suppressor(rained(scene(), seed=t)[0])
    small = rained(scene(size=(120, 160)), seed=5)[0]
    assert np.array_equal(suppressor(small), small)


def test_off_with_no_past_frames_and_on_again_from_a_fresh_past():
    suppressor = TransientSuppressor(frames=0)
    for t in range(4):
        frame = rained(scene(), seed=t)[0]
        assert np.array_equal(suppressor(frame), frame) and suppressor.last_state == "off"
    suppressor.frames = 2  # switched on at run time: the next two frames fill the past
    for t in range(4, 6):
        frame = rained(scene(), seed=t)[0]
        assert np.array_equal(suppressor(frame), frame) and suppressor.last_state == "filling"
    suppressor(rained(scene(), seed=6)[0])
    assert suppressor.last_share > 0 and suppressor.last_state == "applied"


def test_frames_are_aligned_only_where_they_share_a_picture():
    """Phase correlation's peak decides before ECC is paid for: a pan is followed, a cut or a
    camera sending noise is not aligned at all."""
    from allweather_ros.transients import _alignment, _small_grey

    pan = _alignment(_small_grey(scene((4.0, 2.0))), _small_grey(scene()))
    assert pan is not None
    assert np.allclose(pan[:2, 2], [-2.0, -1.0], atol=0.1)  # the 4, 2 pixels at half size
    cat = cv2.resize(data.chelsea(), (320, 240)).astype(np.float32) / 255
    assert _alignment(_small_grey(cat), _small_grey(scene())) is None
    rng = np.random.default_rng(0)
    noise = [_small_grey(rng.random((240, 320, 3), dtype=np.float32)) for _ in range(2)]
    assert _alignment(*noise) is None
