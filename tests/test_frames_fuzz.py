"""Whatever arrives on a camera topic, conversion returns a proper frame or ImageConversionError.

Thousands of generated messages, mostly almost right (the dangerous kind), some plain garbage.
"""
import re

import cv2
import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sensor_msgs.msg import CompressedImage, Image

from allweather_ros.frames import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
    rgb_to_compressed,
    rgb_to_image,
)

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UINT32 = 2**32 - 1

BYTES_PER_PIXEL = {
    encoding: rgb_to_image(np.zeros((2, 2, 3)), like=Image(encoding=encoding)).step // 2
    for encoding in SUPPORTED_ENCODINGS}
known = st.sampled_from(SUPPORTED_ENCODINGS)
unknown = st.one_of(
    st.sampled_from(["RGB8", "rbg8", "8SC1", "nv12", "bayer_rggb", "yuv420", "", "16UC2"]),
    st.text(max_size=20))
small = st.integers(1, 12)
huge = st.sampled_from([0, 16383, 16384, 16385, 10**5, UINT32])


def mostly(likely, rarely):
    """``likely`` four times in five: the almost-right messages are the dangerous ones."""
    return st.integers(0, 4).flatmap(lambda roll: likely if roll else rarely)


def assert_frame(rgb: np.ndarray, height: int | None = None, width: int | None = None) -> None:
    assert isinstance(rgb, np.ndarray) and rgb.dtype == np.float32 and rgb.flags.c_contiguous
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.size > 0
    assert height is None or rgb.shape[:2] == (height, width)
    assert np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1


@st.composite
def images(draw) -> Image:
    """Messages whose fields agree with each other more often than chance would make them."""
    encoding = draw(mostly(known, unknown))
    width, height = draw(mostly(small, huge)), draw(mostly(small, huge))
    pixel = draw(mostly(st.just(BYTES_PER_PIXEL.get(encoding, 3)), st.integers(1, 12)))
    step = draw(mostly(st.integers(0, 3).map(lambda pad: width * pixel + pad),
                       st.integers(0, UINT32)))
    size = step * height
    if size > 20_000:  # cannot be a real buffer here; keep the field values, send a small one
        size = draw(st.integers(0, 64))
    size = draw(mostly(st.just(size), st.sampled_from([max(size - 1, 0), size + 1])))
    data = draw(st.one_of(st.binary(min_size=size, max_size=size),
                          st.sampled_from([b"\0", b"\xff", b"\x7f\xc0"]).map(
                              lambda fill: (fill * size)[:size])))
    return Image(height=height, width=width, encoding=encoding,
                 is_bigendian=draw(st.integers(0, 255)), step=step, data=data)


def converted(convert, *args, **kwargs):
    """convert(*args, **kwargs), or None when it refuses with ImageConversionError; either way
    the outcome is recorded for hypothesis' statistics (refusals by their message's shape)."""
    try:
        result = convert(*args, **kwargs)
    except ImageConversionError as refused:
        event("refused: " + re.sub(r"\d+|'.*?'|\".*?\"", "_", str(refused))[:32])
        return None
    event("converted")
    return result


@FUZZ
@given(images())
def test_any_image_message_converts_or_is_refused(msg):
    rgb = converted(image_to_rgb, msg)
    if rgb is None:
        return
    assert_frame(rgb, msg.height, msg.width)


side = mostly(st.integers(1, 9), st.just(0))
frames = st.tuples(side, side, mostly(st.just(3), st.sampled_from([1, 4]))).flatmap(
    lambda shape: arrays(np.float32, shape, elements=mostly(
        st.floats(0, 1, width=32), st.floats(width=32, allow_nan=True, allow_infinity=True))))


@settings(FUZZ, max_examples=600)
@given(frames, mostly(known, unknown), st.integers(0, 255))
def test_any_frame_is_published_or_refused_and_reads_back(rgb, encoding, is_bigendian):
    like = Image(encoding=encoding, is_bigendian=is_bigendian)
    msg = converted(rgb_to_image, rgb, like=like)
    if msg is None:
        return
    assert (msg.encoding, msg.is_bigendian) == (encoding, is_bigendian)
    assert (msg.height, msg.width) == rgb.shape[:2] and len(msg.data) == msg.step * msg.height
    assert_frame(image_to_rgb(msg), *rgb.shape[:2])


formats = mostly(
    st.sampled_from(["jpeg", "png", "jpg", "PNG", "rgb8; jpeg compressed bgr8",
                     "bgr8; png compressed bgr8", "bgr8; png compressed bgr16",
                     "rgb8; png compressed rgb8", "mono8; jpeg compressed mono8",
                     "rgba8; png compressed rgba8", "16UC1; compressedDepth png",
                     "16UC1; compressedDepth"]),
    st.one_of(st.sampled_from(["32FC1; compressedDepth", "jpeg compressed", "; ;",
                               "bgr8; jpeg compressed bgra8"]), st.text(max_size=30)))


def encoded(fmt: str, height: int, width: int, seed: int) -> bytes:
    """A genuine small JPEG or PNG to mutate, with the compressedDepth header when asked."""
    rgb = np.random.default_rng(seed).random((height, width, 3), np.float32)
    like = CompressedImage(format=fmt, data=bytes(12))
    try:
        return bytes(rgb_to_compressed(rgb, like=like).data)
    except ImageConversionError:
        ok, data = cv2.imencode(".png", (rgb * 255).astype(np.uint8))
        return data.tobytes()


@st.composite
def compressed_messages(draw) -> CompressedImage:
    fmt = draw(formats)
    data = encoded(fmt, draw(st.integers(1, 12)), draw(st.integers(1, 12)),
                   draw(st.integers(0, 3)))
    mutation = draw(st.sampled_from(["none", "truncate", "flip", "splice", "garbage"]))
    if mutation == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif mutation == "flip":
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    elif mutation == "splice":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=64)) + data[at:]
    elif mutation == "garbage":
        data = draw(st.sampled_from([b"", b"\xff\xd8", b"\x89PNG\r\n\x1a\n"])) + draw(
            st.binary(max_size=300))
    return CompressedImage(format=fmt, data=data)


@FUZZ
@given(compressed_messages())
def test_any_compressed_message_converts_or_is_refused(msg):
    rgb = converted(compressed_to_rgb, msg)
    if rgb is None:
        return
    assert_frame(rgb)


@settings(FUZZ, max_examples=400)
@given(frames, formats, st.binary(max_size=16))
def test_any_frame_is_compressed_or_refused_and_reads_back(rgb, fmt, template):
    msg = converted(rgb_to_compressed, rgb, like=CompressedImage(format=fmt, data=template))
    if msg is None:
        return
    assert msg.format == fmt
    assert_frame(compressed_to_rgb(msg), *rgb.shape[:2])
