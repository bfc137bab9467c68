"""Lens-drop renderers: water on the glass in front of the camera, out of focus, drawn six
ways (large refracting drops, a field of small ones, glass beaded with many tiny ones, blurred
blobs, drops running down in trails, and sheets of water film)."""
from __future__ import annotations

import cv2
import numpy as np

from .common import band, fractal_noise, line_kernel, scale

# Per frame (radius in pixels of a 256-pixel frame). Bands set by the share of the frame the
# drops cover (about 2%, 13% and 40%), as in lens-drop datasets.
_COUNT = {"slight": (8, 20), "moderate": (20, 45), "heavy": (40, 80)}
_RADIUS = {"slight": (4, 10), "moderate": (6, 16), "heavy": (8, 24)}


def _drop_count(shape, severity, rng, counts=_COUNT) -> int:
    """Drops are sized in frame units, so their number (`counts`: per 256-pixel frame, per
    severity) is per frame too (aspect ratio only): the share of the frame they cover is the
    same for a training crop and a camera frame."""
    h, w = shape[:2]
    return max(1, rng.poisson(band(rng, severity, counts) * h * w / (256.0 * scale(shape)) ** 2))


def _radii(n, sizes, rng, s):
    """`n` radii drawn log-uniformly from the band `sizes` (pixels of a 256-pixel frame)."""
    low, high = sizes
    return np.exp(rng.uniform(np.log(low), np.log(high), n)) * s


def _composite(image, view, inside, rng, s, rim=(0.0, 0.15), edge=(0.7, 2.5)):
    """The drops' view over the scene with soft edges (blur band `edge`, pixels of a 256-pixel
    frame) and a dark rim (strength band `rim`)."""
    alpha = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), rng.uniform(*edge) * s)
    rim = 4.0 * alpha * (1.0 - alpha) * rng.uniform(*rim)
    out = image * (1.0 - alpha[..., None]) + view * alpha[..., None]
    return out * (1.0 - rim[..., None]), np.clip(alpha + rim, 0.0, 1.0)


def _refracted(image, cx, cy, radius, rng, s, blur, inverted_share=0.6, minified=(1.5, 5.0)):
    """Drops at (cx, cy) of `radius`, each a tiny lens showing a flipped view of the scene
    around and above it, shrunk by a factor from the band `minified` (`inverted_share` of them;
    the flatter rest, a blurred local view), out of focus by a blur drawn from the band `blur`
    (pixels of a 256-pixel frame): (the view through the drops, their mask)."""
    h, w = image.shape[:2]
    n = len(radius)
    inverted = rng.random(n) < inverted_share
    zoom = np.where(inverted, -rng.uniform(*minified, n), rng.uniform(0.2, 0.9, n))
    shift_y = -rng.uniform(0.0, 1.5, n) * radius * np.abs(zoom) * inverted
    label = np.zeros((h, w), np.int32)
    for i in range(n):
        axes = (max(1, int(radius[i])), max(1, int(radius[i] * rng.uniform(0.6, 1.0))))
        centre = (int(cx[i]), int(cy[i]))
        cv2.ellipse(label, centre, axes, rng.uniform(0, 180), 0, 360, i + 1, -1)
        if rng.random() < 0.4:  # a smaller drop merged into this one
            offset = rng.normal(0, radius[i] * 0.6, 2).astype(int)
            cv2.circle(label, (centre[0] + offset[0], centre[1] + offset[1]),
                       max(1, int(radius[i] * rng.uniform(0.3, 0.7))), i + 1, -1)
    inside = label > 0
    idx = label[inside] - 1
    yy, xx = np.nonzero(inside)
    map_x = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    map_y = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    map_x[inside] = cx[idx] + zoom[idx] * (xx - cx[idx])
    map_y[inside] = cy[idx] + zoom[idx] * (yy - cy[idx]) + shift_y[idx]
    blurred = cv2.GaussianBlur(image, (0, 0), rng.uniform(*blur) * s)
    view = cv2.remap(blurred, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return view * rng.uniform(0.9, 1.2) + rng.uniform(0.0, 0.08), inside  # water gathers light


def refracting_drops(image, severity, rng):
    """Large drops, each a tiny out-of-focus lens; sometimes they gather on one side."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    n = _drop_count(image.shape, severity, rng)
    y0, y1, x0, x1 = 0.0, 1.0, 0.0, 1.0
    if rng.random() < 0.35:  # drops gathered in one half of the glass
        side = rng.integers(4)
        y0, y1, x0, x1 = [(0, 0.5, 0, 1), (0.5, 1, 0, 1), (0, 1, 0, 0.5), (0, 1, 0.5, 1)][side]
    cy = rng.uniform(y0, y1, n) * h
    cx = rng.uniform(x0, x1, n) * w
    radius = _radii(n, _RADIUS[severity], rng, s)
    view, inside = _refracted(image, cx, cy, radius, rng, s, (1.0, 4.0))
    return _composite(image, view, inside, rng, s)


# Drops per 256-pixel frame, and their radius, for a glass plate or windscreen beaded all over
# (the look of the Raindrop dataset): many small drops, the camera focused on the scene beyond.
_FIELD_COUNT = {"slight": (50, 110), "moderate": (110, 240), "heavy": (240, 450)}
_FIELD_RADIUS = (3.0, 8.0)


def drop_field(image, severity, rng):
    """Glass beaded all over with small drops: each a lens out of focus, soft-edged with a dark
    rim, and the wet glass between them scatters a faint veil of light."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    n = _drop_count(image.shape, severity, rng, _FIELD_COUNT)
    radius = _radii(n, _FIELD_RADIUS, rng, s)
    cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
    view, inside = _refracted(image, cx, cy, radius, rng, s, (1.0, 3.0))
    out, alpha = _composite(image, view, inside, rng, s, rim=(0.15, 0.4), edge=(0.6, 1.2))
    veil = rng.uniform(0.0, 0.3) * alpha.mean()  # the wet glass as a whole
    return out * (1.0 - veil) + veil, np.clip(alpha + veil, 0.0, 1.0)


# Beads per 256-pixel frame and their radius: a windscreen or lens cover beaded with many small
# round drops close to the camera (the dashcam look of real rain), covering about 4%, 9%, 18%.
_BEAD_COUNT = {"slight": (60, 140), "moderate": (160, 330), "heavy": (380, 750)}
_BEAD_RADIUS = (1.5, 5.0)


def beads(image, severity, rng):
    """Glass beaded with many small round drops: each a wide-angle lens holding a tiny flipped
    picture of the scene and the sky above it rather than of what it covers (so brighter under
    a bright sky); soft-edged and partly clear when the camera is focused beyond the glass,
    faintly ringed, most with a glint. Shrunk, they read as speckle: real beaded glass was
    called snow while only larger, local-view drops were drawn."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    n = _drop_count(image.shape, severity, rng, _BEAD_COUNT)
    radius = _radii(n, _BEAD_RADIUS, rng, s)
    cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
    view, inside = _refracted(image, cx, cy, radius, rng, s, (0.5, 2.0), inverted_share=0.9,
                              minified=(4.0, 15.0))
    sky = np.clip(image[: max(1, h // 8)].mean((0, 1)) * rng.uniform(1.0, 1.3), 0.0, 1.0)
    view = view + rng.uniform(0.2, 0.6) * (sky - view)  # what the wide angle sees above
    clear = inside * np.float32(rng.uniform(0.65, 1.0))  # defocused drops let the scene through
    out, alpha = _composite(image, view, clear, rng, s, rim=(0.0, 0.3), edge=(0.4, 1.6))
    glints = np.zeros((h, w), np.float32)
    for i in np.flatnonzero((radius > 1.5 * s) & (rng.random(n) < 0.6)):
        cv2.circle(glints, (int(cx[i] - 0.3 * radius[i]), int(cy[i] - 0.35 * radius[i])),
                   max(1, int(0.2 * radius[i])), float(rng.uniform(0.4, 0.9)), -1)
    glints = cv2.GaussianBlur(glints, (0, 0), 0.5 * s)[..., None]
    return out + glints * (1.0 - out), np.clip(alpha + glints[..., 0], 0.0, 1.0)


# The share of the glass a film of water covers, per severity.
_FILM_COVER = {"slight": (0.08, 0.2), "moderate": (0.2, 0.45), "heavy": (0.45, 0.85)}


def water_film(image, severity, rng):
    """A wet lens: irregular sheets of water through which the scene is smeared and brightened
    (a camera on a vehicle after spray or wipers), running down the glass."""
    s = scale(image.shape)
    field = fractal_noise(image.shape, rng, (3, 6, 12))
    if rng.random() < 0.5:  # water gathers low on the glass
        low = np.linspace(-0.5, 0.5, image.shape[0], dtype=np.float32)[:, None]
        field = field + rng.uniform(0.2, 0.8) * low
    sheet = (field >= np.quantile(field, 1.0 - band(rng, severity, _FILM_COVER))).astype(
        np.float32)
    alpha = cv2.GaussianBlur(sheet, (0, 0), rng.uniform(2.0, 6.0) * s) * rng.uniform(0.75, 1.0)
    smear = cv2.filter2D(image, -1, line_kernel(rng.uniform(8.0, 30.0) * s,
                                                rng.uniform(-0.5, 0.5)))
    smear = cv2.GaussianBlur(smear, (0, 0), rng.uniform(3.0, 8.0) * s)
    glow = rng.uniform(0.05, 0.25)
    view = smear * (1.0 - glow) + glow * cv2.GaussianBlur(image, (0, 0), 20.0 * s).mean((0, 1))
    return image * (1.0 - alpha[..., None]) + view * alpha[..., None], alpha


def defocused_blobs(image, severity, rng):
    """Drops far out of focus: round soft blobs through which the scene is smeared to its
    local colour, a little brighter or darker, with a specular glint on some."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    n = _drop_count(image.shape, severity, rng)
    radius = _radii(n, _RADIUS[severity], rng, s) * rng.uniform(0.8, 1.3)
    inside = np.zeros((h, w), np.uint8)
    glints = np.zeros((h, w), np.float32)
    for r in radius:
        cy, cx = int(rng.uniform(0, h)), int(rng.uniform(0, w))
        cv2.circle(inside, (cx, cy), max(1, int(r)), 1, -1)
        if rng.random() < 0.5:
            gy, gx = int(cy - 0.4 * r), int(cx - 0.3 * r)
            cv2.circle(glints, (gx, gy), max(1, int(0.15 * r)), float(rng.uniform(0.3, 0.8)), -1)
    smeared = cv2.blur(image, (max(3, int(12 * s)) | 1,) * 2)
    smeared = cv2.GaussianBlur(smeared, (0, 0), rng.uniform(3.0, 8.0) * s)
    view = smeared * rng.uniform(0.85, 1.15) + rng.uniform(-0.03, 0.06)
    glints = cv2.GaussianBlur(glints, (0, 0), 1.0 * s)[..., None]
    view = view + glints * (1.0 - view)
    return _composite(image, view, inside.astype(bool), rng, s)


def running_trails(image, severity, rng):
    """Drops that have run down the glass: a bead with a wet trail above it, narrower than the
    bead, showing the scene slightly displaced and blurred through the water film."""
    h, w = image.shape[:2]
    s = scale(image.shape)
    n = _drop_count(image.shape, severity, rng)
    n = max(1, int(n * rng.uniform(0.4, 0.8)))  # trails cover more glass per drop
    radius = _radii(n, _RADIUS[severity], rng, s) * 0.8
    inside = np.zeros((h, w), np.uint8)
    for r in radius:
        cy, cx = rng.uniform(0.1, 1.0) * h, rng.uniform(0, w)
        trail = rng.uniform(2.0, 10.0) * r
        points = [(cx, cy)]
        for k in range(1, 12):  # a wandering path upwards, as water finds its way down
            points.append((points[-1][0] + rng.normal(0, 0.25 * r), cy - trail * k / 11))
        width = max(1, int(r * rng.uniform(0.4, 0.8)))
        cv2.polylines(inside, [np.array(points, np.int32)], False, 1, width)
        cv2.ellipse(inside, (int(cx), int(cy)), (max(1, int(r)), max(1, int(r * 1.2))), 0, 0, 360,
                    1, -1)
    shift = np.float32(rng.uniform(2.0, 6.0) * s)
    sideways = shift * np.float32(rng.choice((-1, 1)))
    map_x = np.tile(np.arange(w, dtype=np.float32), (h, 1)) + sideways
    map_y = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w)) - shift
    blurred = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.5, 4.0) * s)
    view = cv2.remap(blurred, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    view = view * rng.uniform(0.9, 1.15) + rng.uniform(0.0, 0.06)
    return _composite(image, view, inside.astype(bool), rng, s)
