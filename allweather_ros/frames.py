"""Camera messages <-> the float RGB frames the restoration pipeline works on.

No ROS import: messages are read by their fields, and built as the type of the message given
(rclpy's in the node, rosbags' in the bag evaluation), so the direct bag evaluation needs no
ROS. This is the node's hot path. Inputs are read through zero-copy numpy views of ``msg.data`` that
honour ``step`` and the byte order; OpenCV reorders or demosaics them in their own sample type
and they are cast to float once. Outputs are built in their final layout and copied into the
message once. A malformed message always ends in :class:`ImageConversionError` (never an
IndexError or cv2.error), so the node can log it and go on with the next frame.

Float images (32FC*) holding NaN or inf are refused, not sanitised: a depth-like image with
holes is not a camera frame, and guessing the missing values would hide a broken source.
"""
from __future__ import annotations

import array
import difflib
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # annotations only: the code reads fields and never imports ROS
    from sensor_msgs.msg import CompressedImage, Image

MAX_SIDE = 16384
"""Largest width or height accepted: a bigger one is corruption or an attack, not a camera."""
MAX_PIXELS = 1 << 28
"""Largest width x height accepted (268M pixels, about 3.2 GB as float RGB)."""
JPEG_QUALITY = 95
"""image_transport's default JPEG quality."""
PNG_LEVEL = 3
"""image_transport's default PNG compression level."""


class ImageConversionError(ValueError):
    """A message that cannot be read as, or written from, a camera frame; the text says why."""


@dataclass(frozen=True)
class _Layout:
    """How one encoding lays out a pixel's samples in ``msg.data``."""

    channels: int
    sample: str  # numpy type code without byte order: "u1", "u2" or "f4"
    order: str  # "gray", "rgb", "bgr", a Bayer pattern ("rggb", ...) or a 4:2:2 packing

    def dtype(self, bigendian: int) -> np.dtype:
        return np.dtype(self.sample).newbyteorder(">" if bigendian else "<")


# OpenCV names a Bayer pattern after the second row's second and third pixels.
_BAYER_TO_RGB = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}
_YUV422 = {"uyvy": cv2.COLOR_YUV2RGB_UYVY, "yuyv": cv2.COLOR_YUV2RGB_YUYV}
# OpenCV conversions to RGB, keyed by (order, channels); other layouts are sliced by _CHANNELS.
_TO_RGB = {
    ("gray", 1): cv2.COLOR_GRAY2RGB,
    ("rgb", 4): cv2.COLOR_RGBA2RGB,
    ("bgr", 3): cv2.COLOR_BGR2RGB,
    ("bgr", 4): cv2.COLOR_BGRA2RGB,
    **{(pattern, 1): code for pattern, code in _BAYER_TO_RGB.items()},
    **{(packing, 2): code for packing, code in _YUV422.items()},
}
_FROM_RGB = {
    ("rgb", 4): cv2.COLOR_RGB2RGBA,
    ("bgr", 3): cv2.COLOR_RGB2BGR,
    ("bgr", 4): cv2.COLOR_RGB2BGRA,
    # OpenCV before 4.7 (ROS Humble's) has no RGB -> 4:2:2 conversion.
    **{(packing, 2): getattr(cv2, f"COLOR_RGB2YUV_{packing.upper()}")
       for packing in _YUV422 if hasattr(cv2, f"COLOR_RGB2YUV_{packing.upper()}")},
}
# Which samples of a pixel hold R, G, B (a single gray sample is broadcast to all three).
_CHANNELS = {"gray": slice(0, 1), "rgb": slice(0, 3), "bgr": slice(2, None, -1)}


def _build_encodings() -> dict[str, _Layout]:
    table = {}
    for bits, sample in ((8, "u1"), (16, "u2")):
        table[f"mono{bits}"] = _Layout(1, sample, "gray")
        for order in ("rgb", "bgr"):
            table[f"{order}{bits}"] = _Layout(3, sample, order)
            table[f"{order}a{bits}"] = _Layout(4, sample, order)
        for pattern in _BAYER_TO_RGB:
            table[f"bayer_{pattern}{bits}"] = _Layout(1, sample, pattern)
    # OpenCV's generic types: three or four channels are BGR(A), as in a cv::Mat.
    for depth, sample in (("8U", "u1"), ("16U", "u2"), ("32F", "f4")):
        for channels, order in ((1, "gray"), (3, "bgr"), (4, "bgr")):
            table[f"{depth}C{channels}"] = _Layout(channels, sample, order)
    for name, packing in (("uyvy", "uyvy"), ("yuv422", "uyvy"), ("yuyv", "yuyv"),
                          ("yuv422_yuy2", "yuyv")):
        table[name] = _Layout(2, "u1", packing)
    return table


_ENCODINGS = _build_encodings()
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)
_BY_LOWER = {name.lower(): name for name in _ENCODINGS}


def _shown(text: str) -> str:
    """A bounded repr, so a garbage field cannot flood the log."""
    return repr(text if len(text) <= 64 else text[:64] + "...")


def _suggestion(word: str, names: dict[str, str]) -> str:
    close = difflib.get_close_matches(word[:64].lower(), list(names), n=1)
    return f" (did you mean {names[close[0]]!r}?)" if close else ""


def _layout(encoding: str) -> _Layout:
    name = _BY_LOWER.get(encoding.lower())
    if name is None:
        raise ImageConversionError(
            f"unsupported encoding {_shown(encoding)}{_suggestion(encoding, _BY_LOWER)}; "
            f"supported: {', '.join(SUPPORTED_ENCODINGS)}")
    return _ENCODINGS[name]


def _check_size(width: int, height: int) -> None:
    if width == 0 or height == 0:
        raise ImageConversionError(f"empty image: width {width}, height {height}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageConversionError(
            f"image of {width}x{height} pixels is over the limit of {MAX_SIDE} per side "
            f"and {MAX_PIXELS} pixels in all")


def _check_pattern(encoding: str, layout: _Layout, width: int, height: int) -> None:
    """Encodings that spread colour over several pixels need whole groups of them."""
    if layout.order in _YUV422 and width % 2:
        raise ImageConversionError(
            f"{encoding} shares colour between pixel pairs, so its width must be even, "
            f"not {width}")
    if layout.order in _BAYER_TO_RGB and min(width, height) < 2:
        raise ImageConversionError(
            f"{encoding} needs at least 2x2 pixels for its colour pattern, got {width}x{height}")


def _check_image(msg: Image, layout: _Layout) -> None:
    _check_size(msg.width, msg.height)
    itemsize = np.dtype(layout.sample).itemsize
    row = msg.width * layout.channels * itemsize
    if msg.step < row:
        raise ImageConversionError(
            f"step {msg.step} is shorter than one row: width {msg.width} x {layout.channels} "
            f"channels x {itemsize} bytes = {row}")
    expected = msg.step * msg.height
    if len(msg.data) != expected:
        raise ImageConversionError(
            f"data has {len(msg.data)} bytes, but step x height = {msg.step} x {msg.height} "
            f"= {expected}")
    _check_pattern(msg.encoding, layout, msg.width, msg.height)


def _view(msg: Image, layout: _Layout) -> np.ndarray:
    """A zero-copy, read-only (H, W, C) view of ``msg.data`` honouring step and byte order."""
    dtype = layout.dtype(msg.is_bigendian)
    pixels = np.ndarray(
        (msg.height, msg.width, layout.channels), dtype, buffer=msg.data,
        strides=(msg.step, layout.channels * dtype.itemsize, dtype.itemsize))
    pixels.flags.writeable = False
    return pixels


def _for_opencv(pixels: np.ndarray) -> np.ndarray:
    """OpenCV needs native byte order and rows aligned to the sample size: copy only if not."""
    if pixels.dtype.isnative and pixels.strides[0] % pixels.itemsize == 0:
        return pixels
    return np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("="))


def _to_float_rgb(pixels: np.ndarray, order: str) -> np.ndarray:
    """A new C-contiguous float32 RGB frame in [0, 1] from any (H, W, C) sample view.

    OpenCV reorders, demosaics or unpacks in the sample type (cheap), then one cast to float.
    """
    code = _TO_RGB.get((order, pixels.shape[2]))
    if code is not None:
        pixels, order = cv2.cvtColor(_for_opencv(pixels), code), "rgb"
    source = np.broadcast_to(pixels[..., _CHANNELS[order]], (*pixels.shape[:2], 3))
    rgb = source.astype(np.float32, order="C")
    if pixels.dtype.kind == "f":
        np.clip(rgb, 0.0, 1.0, out=rgb)
    else:
        rgb *= np.float32(1 / np.iinfo(pixels.dtype).max)
    return rgb


def image_to_rgb(msg: Image) -> np.ndarray:
    """The frame in ``msg`` as C-contiguous float32 RGB in [0, 1], shape (height, width, 3).

    Integer samples are scaled by their type's maximum; float samples are taken as [0, 1] and
    clipped. Raises ImageConversionError for anything that is not a readable camera frame.
    """
    layout = _layout(msg.encoding)
    _check_image(msg, layout)
    pixels = _view(msg, layout)
    if pixels.dtype.kind == "f":
        bad = pixels.size - np.count_nonzero(np.isfinite(pixels))
        if bad:
            raise ImageConversionError(
                f"{msg.encoding} image has {bad} NaN or infinite samples of {pixels.size}")
    return _to_float_rgb(pixels, layout.order)


def quantize(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` clipped to [0, 1], scaled to ``dtype``'s range and rounded, as ``dtype``. Every
    restored frame or map the package hands on goes through it (messages, files, bags, report
    sheets).

    NaN becomes 0 here, before any cast: fmax/fmin return the number where one side is NaN,
    whereas clip keeps NaN and what a cast makes of it differs between OpenCV releases (5.1's
    convertScaleAbs gives 255).
    """
    clipped = np.fmax(values, 0.0)
    np.fmin(clipped, 1.0, out=clipped)
    if dtype == np.uint8:
        return cv2.convertScaleAbs(clipped, alpha=255)  # scale, round and cast in one pass
    if dtype.kind == "f":
        return clipped
    clipped *= np.float32(np.iinfo(dtype).max)
    np.rint(clipped, out=clipped)
    return clipped.astype(dtype)


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample RGB back onto a Bayer pattern such as "rggb", as (H, W, 1)."""
    mosaic = np.empty((*rgb.shape[:2], 1), rgb.dtype)
    for position, colour in enumerate(pattern):
        row, column = divmod(position, 2)
        mosaic[row::2, column::2, 0] = rgb[row::2, column::2, "rgb".index(colour)]
    return mosaic


def _from_float_rgb(rgb: np.ndarray, layout: _Layout, dtype: np.dtype) -> np.ndarray:
    """C-contiguous (H, W, C) samples of ``dtype`` in the layout's order; alpha is opaque.

    Reduced to the layout's colours in float, cast once, then OpenCV reorders or packs in the
    sample type (cheap); a big-endian ``dtype`` costs one more byte-swapping pass.
    """
    order = layout.order
    if order in _YUV422:
        if (order, 2) not in _FROM_RGB:
            raise ImageConversionError(
                f"OpenCV {cv2.__version__} cannot write {order}; it needs OpenCV 4.7 or newer")
    elif order == "gray":
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]
    elif order in _BAYER_TO_RGB:
        rgb = _mosaic(rgb, order)
    native = np.dtype(layout.sample)
    samples = quantize(rgb, native)
    code = _FROM_RGB.get((order, layout.channels))
    if code is not None:
        samples = cv2.cvtColor(samples, code)
    return samples.reshape(*rgb.shape[:2], layout.channels).astype(dtype, copy=False)


def _checked_float(frame: np.ndarray, ndim: int) -> np.ndarray:
    """The frame as C-contiguous float32 (copied only when it is not already), sizes checked."""
    if (not isinstance(frame, np.ndarray) or frame.ndim != ndim
            or frame.shape[2:] not in ((), (3,)) or frame.dtype.kind not in "fiu"):
        wanted = "(H, W, 3) RGB" if ndim == 3 else "(H, W)"
        got = f"{frame.dtype} array of shape {frame.shape}" if isinstance(
            frame, np.ndarray) else type(frame).__name__
        raise ImageConversionError(f"expected a numeric {wanted} array, got {got}")
    _check_size(frame.shape[1], frame.shape[0])
    return np.ascontiguousarray(frame, np.float32)


def _byte_array(samples: np.ndarray) -> array.array:
    """The message field type; filling it from the buffer is one memcpy (a list would crawl)."""
    data = array.array("B")
    data.frombytes(samples.reshape(-1).view(np.uint8))
    return data


def rgb_to_image(rgb: np.ndarray, like: Image) -> Image:
    """The restored RGB frame as a message with ``like``'s header, encoding and byte order.

    Values are clipped to [0, 1] (NaN becomes 0) and rounded to the encoding's integer type;
    mono encodings get the luma, Bayer encodings are re-mosaicked, alpha is set opaque.
    """
    layout = _layout(like.encoding)
    rgb = _checked_float(rgb, 3)
    height, width = rgb.shape[:2]
    _check_pattern(like.encoding, layout, width, height)
    dtype = layout.dtype(like.is_bigendian)
    samples = _from_float_rgb(rgb, layout, dtype)
    return type(like)(header=like.header, height=height, width=width, encoding=like.encoding,
                 is_bigendian=like.is_bigendian, step=width * layout.channels * dtype.itemsize,
                 data=_byte_array(samples))


# compressed_image_transport and compressed_depth_image_transport formats.
_CODECS = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}
_DEPTH_HEADER = 12  # compressedDepth's ConfigHeader (format enum and two floats) before the PNG
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_MAX_SEGMENTS = 1024  # real files reach their frame header within a few dozen


@dataclass(frozen=True)
class _Format:
    """What a CompressedImage.format says: the codec and the layout handed to the encoder."""

    extension: str
    payload: _Layout
    depth: bool  # compressedDepth: a config header precedes the PNG


def _parse_format(text: str) -> _Format:
    """Read "jpeg", "png", "rgb8; jpeg compressed bgr8" or "16UC1; compressedDepth png"."""
    original, _, transport = text.rpartition(";")
    words = transport.lower().split()
    if words[:1] == ["compresseddepth"]:
        if original.strip().lower() not in ("16uc1", "mono16") or words[1:] not in ([], ["png"]):
            raise ImageConversionError(
                f"compressed format {_shown(text)}: only 16UC1 compressedDepth as PNG is "
                "supported (32FC1 holds quantised inverse depth, not a camera frame)")
        return _Format(".png", _ENCODINGS["16UC1"], depth=True)
    if not words or words[0] not in _CODECS:
        raise ImageConversionError(
            f"unknown compressed format {_shown(text)}"
            f"{_suggestion(words[0] if words else '', {c: c for c in _CODECS})}; expected "
            "'jpeg', 'png' or image_transport's '<encoding>; <jpeg|png> compressed <encoding>'")
    extension = _CODECS[words[0]]
    payload = _ENCODINGS["bgr8"]
    if len(words) >= 3 and words[1] == "compressed":
        try:
            payload = _layout(words[2])
        except ImageConversionError as error:
            raise ImageConversionError(f"compressed format {_shown(text)}: {error}") from None
        channels = (1, 3) if extension == ".jpg" else (1, 3, 4)
        samples = ("u1",) if extension == ".jpg" else ("u1", "u2")
        if (payload.order not in _CHANNELS or payload.channels not in channels
                or payload.sample not in samples):
            raise ImageConversionError(
                f"compressed format {_shown(text)}: {words[0]} cannot hold {words[2]}")
    return _Format(extension, payload, depth=False)


def _encoded_size(data: np.ndarray) -> tuple[int, int]:
    """Width and height from the PNG or JPEG header, checking the file is complete.

    Read before decoding so that a few bytes cannot make OpenCV allocate gigabytes, and so that
    a truncated file is refused instead of decoded into a half-grey frame.
    """
    head = data[:24].tobytes()
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 24 or head[12:16] != b"IHDR" or data[-8:].tobytes() != _PNG_END:
            raise ImageConversionError(f"corrupt or truncated PNG of {data.size} bytes")
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith(b"\xff\xd8"):
        if not data[-64:].tobytes().rstrip(b"\0").endswith(b"\xff\xd9"):
            raise ImageConversionError(
                f"truncated JPEG: {data.size} bytes without an end-of-image marker")
        return _jpeg_size(memoryview(data))
    raise ImageConversionError(
        f"data of {data.size} bytes is neither JPEG nor PNG (starts with {head[:8].hex()})")


def _jpeg_size(buf: memoryview) -> tuple[int, int]:
    """Width and height from the frame header, found by hopping over the segments before it."""
    position = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        if position + 9 > len(buf) or buf[position] != 0xFF:
            break
        marker = buf[position + 1]
        if marker in _JPEG_SOF:
            return (buf[position + 7] << 8 | buf[position + 8],
                    buf[position + 5] << 8 | buf[position + 6])
        if marker in (0xD9, 0xDA):  # end of image or start of scan: no frame header came
            break
        # 0xFF is a fill byte; every other marker here carries a two-byte length.
        position += 1 if marker == 0xFF else 2 + (buf[position + 2] << 8 | buf[position + 3])
    raise ImageConversionError("corrupt JPEG: no frame header (SOF) before the image data")


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """The JPEG or PNG frame in ``msg`` as C-contiguous float32 RGB in [0, 1], (H, W, 3).

    The decoder trusts the data, not the format string, for the codec; the format string
    gives the channel order the encoder was handed (BGR unless it says rgb).
    """
    fmt = _parse_format(msg.format)
    data = np.frombuffer(msg.data, np.uint8)
    if fmt.depth:
        if data.size < _DEPTH_HEADER:
            raise ImageConversionError(
                f"compressedDepth data of {data.size} bytes is shorter than its "
                f"{_DEPTH_HEADER}-byte header")
        data = data[_DEPTH_HEADER:]
    _check_size(*_encoded_size(data))
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise ImageConversionError(f"OpenCV could not decode {data.size} bytes: {error}") from None
    if decoded is None or decoded.dtype not in (np.uint8, np.uint16):
        raise ImageConversionError(f"corrupt image data: OpenCV could not decode {data.size} bytes")
    pixels = decoded.reshape(*decoded.shape[:2], -1)
    order = "gray" if pixels.shape[2] < 3 else "rgb" if fmt.payload.order == "rgb" else "bgr"
    return _to_float_rgb(pixels, order)


def rgb_to_compressed(rgb: np.ndarray, like: CompressedImage, *, jpeg_quality: int = JPEG_QUALITY,
                      png_level: int = PNG_LEVEL) -> CompressedImage:
    """The restored RGB frame compressed as ``like`` says, with ``like``'s header and format."""
    fmt = _parse_format(like.format)
    rgb = _checked_float(rgb, 3)
    samples = _from_float_rgb(rgb, fmt.payload, np.dtype(fmt.payload.sample))
    if fmt.extension == ".jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, png_level]
    try:
        ok, encoded = cv2.imencode(fmt.extension, samples, params)
    except cv2.error as error:
        raise ImageConversionError(f"OpenCV could not encode {fmt.extension}: {error}") from None
    if not ok:
        raise ImageConversionError(f"OpenCV could not encode {rgb.shape} as {fmt.extension}")
    data = array.array("B")
    if fmt.depth:
        if len(like.data) < _DEPTH_HEADER:
            raise ImageConversionError(
                f"compressedDepth template has {len(like.data)} bytes, too few to copy its "
                f"{_DEPTH_HEADER}-byte header from")
        data.extend(like.data[:_DEPTH_HEADER])
    data.frombytes(encoded)
    return type(like)(header=like.header, format=like.format, data=data)


def map_to_image(degradation_map: np.ndarray, header, image_type: type):
    """The (H, W) degradation map as a 32FC1 `image_type` message, values unchanged."""
    values = _checked_float(degradation_map, 2)
    height, width = values.shape
    return image_type(header=header, height=height, width=width, encoding="32FC1",
                 is_bigendian=int(sys.byteorder == "big"), step=width * 4,
                 data=_byte_array(values))


@lru_cache(maxsize=8)
def _rgb_colormap(colormap: int) -> np.ndarray:
    """OpenCV's colour map as a (256, 1, 3) RGB lookup table, so no BGR->RGB pass per frame."""
    levels = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return np.ascontiguousarray(cv2.applyColorMap(levels, colormap)[..., ::-1])


def map_to_colour(degradation_map: np.ndarray, header, image_type: type,
                  colormap: int = cv2.COLORMAP_INFERNO):
    """An rgb8 `image_type` picture of the (H, W) map, values expected in [0, 1], for viewers."""
    values = _checked_float(degradation_map, 2)
    levels = quantize(values, np.dtype(np.uint8))
    colours = cv2.applyColorMap(levels, _rgb_colormap(colormap))
    height, width = values.shape
    return image_type(header=header, height=height, width=width, encoding="rgb8", is_bigendian=0,
                 step=width * 3, data=_byte_array(colours))
