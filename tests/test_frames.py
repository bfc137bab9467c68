"""Camera messages <-> float RGB frames: exact where lossless, honest about every bad message."""
import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from allweather_ros import frames as conversions
from allweather_ros.frames import (
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
    map_to_colour,
    map_to_image,
    rgb_to_compressed,
    rgb_to_image,
)

RED = (1.0, 0.0, 0.0)


def header() -> Header:
    stamp = Header().stamp
    stamp.sec, stamp.nanosec = 1234, 5678
    return Header(stamp=stamp, frame_id="front_camera")


def image(samples: np.ndarray, encoding: str, step: int | None = None,
          is_bigendian: int = 0) -> Image:
    """A message holding (H, W[, C]) ``samples``, rows padded with 0xAB up to ``step``."""
    height, width = samples.shape[:2]
    rows = samples.reshape(height, -1).view(np.uint8)
    step = rows.shape[1] if step is None else step
    padded = np.full((height, step), 0xAB, np.uint8)
    padded[:, :rows.shape[1]] = rows
    return Image(header=header(), height=height, width=width, encoding=encoding,
                 is_bigendian=is_bigendian, step=step, data=padded.tobytes())


def samples_of(msg: Image, dtype: str, channels: int) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width, channels)


def random_samples(shape, dtype, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, shape, dtype=dtype,
                                                endpoint=True)


LOSSLESS = [("rgb8", "u1", 3), ("bgr8", "u1", 3), ("mono8", "u1", 1), ("8UC1", "u1", 1),
            ("8UC3", "u1", 3), ("rgb16", "<u2", 3), ("bgr16", "<u2", 3), ("mono16", "<u2", 1),
            ("16UC1", "<u2", 1), ("16UC3", "<u2", 3)]


@pytest.mark.parametrize(("encoding", "dtype", "channels"), LOSSLESS)
def test_integer_encodings_round_trip_exactly_with_header_and_encoding(encoding, dtype, channels):
    msg = image(random_samples((5, 7, channels), np.dtype(dtype).newbyteorder("=")), encoding)
    rgb = image_to_rgb(msg)
    assert rgb.dtype == np.float32 and rgb.shape == (5, 7, 3) and rgb.flags.c_contiguous
    assert rgb.min() >= 0 and rgb.max() <= 1
    back = rgb_to_image(rgb, like=msg)
    assert back.header == msg.header and back.encoding == encoding
    assert (back.height, back.width, back.step) == (5, 7, msg.step)
    assert bytes(back.data) == bytes(msg.data)


@pytest.mark.parametrize(("encoding", "dtype"), [("rgba8", "u1"), ("bgra8", "u1"),
                                                 ("8UC4", "u1"), ("rgba16", "<u2"),
                                                 ("bgra16", "<u2"), ("16UC4", "<u2")])
def test_alpha_is_dropped_on_the_way_in_and_opaque_on_the_way_out(encoding, dtype):
    samples = random_samples((4, 6, 4), np.dtype(dtype).newbyteorder("="))
    translucent = image(samples, encoding)
    samples[..., 3] = np.iinfo(samples.dtype).max
    opaque = image(samples, encoding)
    rgb = image_to_rgb(translucent)
    np.testing.assert_array_equal(rgb, image_to_rgb(opaque))
    assert bytes(rgb_to_image(rgb, like=translucent).data) == bytes(opaque.data)


@pytest.mark.parametrize(("encoding", "pixel"), [
    ("rgb8", [255, 0, 0]), ("bgr8", [0, 0, 255]), ("8UC3", [0, 0, 255]),
    ("rgba8", [255, 0, 0, 255]), ("bgra8", [0, 0, 255, 255]), ("8UC4", [0, 0, 255, 255])])
def test_channel_order_follows_the_encoding(encoding, pixel):
    red = np.array(pixel, np.uint8).reshape(1, 1, -1)
    frame = np.tile(red, (2, 3, 1))
    np.testing.assert_array_equal(image_to_rgb(image(frame, encoding)), np.tile(RED, (2, 3, 1)))
    out = rgb_to_image(np.tile(np.float32(RED), (2, 3, 1)), like=image(frame, encoding))
    np.testing.assert_array_equal(samples_of(out, "u1", len(pixel)), frame)


@pytest.mark.parametrize(("encoding", "dtype", "channels", "step"), [
    ("rgb8", "u1", 3, 64), ("bgr8", "u1", 3, 31), ("mono8", "u1", 1, 13),
    ("rgb16", "<u2", 3, 61), ("bgr16", "<u2", 3, 61), ("bayer_rggb16", "<u2", 1, 23),
    ("bayer_grbg8", "u1", 1, 16), ("yuv422", "u1", 2, 20), ("32FC1", "<f4", 1, 45)])
def test_row_padding_is_skipped(encoding, dtype, channels, step):
    dtype = np.dtype(dtype).newbyteorder("=")
    samples = (np.random.default_rng(1).random((4, 10, channels), np.float32)
               if dtype.kind == "f" else random_samples((4, 10, channels), dtype))
    padded = image(samples, encoding, step=step)
    np.testing.assert_array_equal(image_to_rgb(padded), image_to_rgb(image(samples, encoding)))
    assert rgb_to_image(image_to_rgb(padded), like=padded).step == 10 * channels * dtype.itemsize


@pytest.mark.parametrize(("encoding", "channels"), [("rgb16", 3), ("bgra16", 4), ("mono16", 1),
                                                   ("16UC1", 1), ("bayer_bggr16", 1)])
def test_big_endian_samples_are_swapped_both_ways(encoding, channels):
    samples = random_samples((4, 6, channels), np.uint16)
    little = image(samples, encoding)
    big = image(samples.astype(">u2"), encoding, is_bigendian=1)
    assert bytes(big.data) != bytes(little.data)
    rgb = image_to_rgb(big)
    np.testing.assert_array_equal(rgb, image_to_rgb(little))
    out = rgb_to_image(rgb, like=big)
    assert out.is_bigendian == 1
    np.testing.assert_array_equal(samples_of(out, ">u2", channels),
                                  samples_of(rgb_to_image(rgb, like=little), "<u2", channels))


def test_big_endian_float_images_are_read():
    values = np.random.default_rng(2).random((3, 5, 1), np.float32)
    big = image(values.astype(">f4"), "32FC1", is_bigendian=1)
    np.testing.assert_array_equal(image_to_rgb(big), np.repeat(values, 3, axis=2))


def test_mono_goes_out_as_luma():
    rgb = np.random.default_rng(3).random((4, 5, 3), np.float32)
    out = rgb_to_image(rgb, like=image(np.zeros((1, 1), np.uint8), "mono8"))
    assert (out.encoding, out.step) == ("mono8", 5)
    luma = rgb @ np.float32([0.299, 0.587, 0.114])
    np.testing.assert_allclose(samples_of(out, "u1", 1)[..., 0], np.rint(luma * 255), atol=1)


def test_float_images_are_clipped_and_non_finite_ones_refused():
    values = np.float32([[[-0.5, 0.25, 2.0]]])
    np.testing.assert_array_equal(image_to_rgb(image(values, "32FC3")), [[[1.0, 0.25, 0.0]]])
    values[0, 0, 1] = np.nan
    values[0, 0, 2] = np.inf
    with pytest.raises(ImageConversionError, match="32FC3 image has 2 NaN or infinite samples"):
        image_to_rgb(image(values, "32FC3"))


def test_float_output_keeps_values():
    rgb = np.random.default_rng(4).random((3, 4, 3), np.float32)
    out = rgb_to_image(rgb, like=image(np.zeros((1, 1, 3), np.float32), "32FC3"))
    np.testing.assert_array_equal(samples_of(out, "<f4", 3), rgb[..., ::-1])


def test_out_of_range_and_non_finite_output_is_clipped():
    rgb = np.float32([[[-0.2, 1.7, np.nan], [np.inf, -np.inf, 0.5]]])
    for encoding, dtype, top in (("rgb8", "u1", 255), ("rgb16", "<u2", 65535),
                                 ("32FC3", "<f4", 1.0)):
        out = rgb_to_image(rgb, like=image(np.zeros((1, 1, 3), dtype), encoding))
        expected = [[[0, top, 0], [top, 0, 0.5 * top]]]
        np.testing.assert_allclose(samples_of(out, dtype, 3)[..., ::-1] if encoding == "32FC3"
                                   else samples_of(out, dtype, 3), expected, atol=0.5)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_is_demosaicked_and_mosaicked_back(pattern):
    colour = {"r": 200, "g": 100, "b": 50}
    mosaic = np.empty((6, 8), np.uint8)
    for position, name in enumerate(pattern):
        row, column = divmod(position, 2)
        mosaic[row::2, column::2] = colour[name]
    msg = image(mosaic, f"bayer_{pattern}8")
    rgb = image_to_rgb(msg)
    np.testing.assert_allclose(rgb[2:-2, 2:-2], np.broadcast_to(np.float32([200, 100, 50]) / 255,
                                                                (2, 4, 3)), atol=1e-6)
    noise = image(random_samples((6, 8), np.uint8), f"bayer_{pattern}8")
    again = samples_of(rgb_to_image(image_to_rgb(noise), like=noise), "u1", 1)[..., 0]
    # Bilinear demosaicking keeps each pixel's own sample; OpenCV only guesses the border.
    np.testing.assert_array_equal(again[1:-1, 1:-1], samples_of(noise, "u1", 1)[1:-1, 1:-1, 0])


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_round_trips_flat_colours(encoding):
    rgb = np.broadcast_to(np.float32([0.8, 0.4, 0.2]), (4, 6, 3))
    msg = rgb_to_image(rgb, like=image(np.zeros((1, 2, 2), np.uint8), encoding))
    assert (msg.encoding, msg.step, len(msg.data)) == (encoding, 12, 48)
    np.testing.assert_allclose(image_to_rgb(msg), rgb, atol=3 / 255)


def test_yuv422_packings_differ():
    rgb = np.broadcast_to(np.float32([0.8, 0.4, 0.2]), (2, 2, 3))
    uyvy = rgb_to_image(rgb, like=image(np.zeros((1, 2, 2), np.uint8), "uyvy"))
    yuyv = rgb_to_image(rgb, like=image(np.zeros((1, 2, 2), np.uint8), "yuyv"))
    assert bytes(uyvy.data)[1::2] == bytes(yuyv.data)[0::2]  # the luma samples swap places


def test_encoding_names_are_case_insensitive():
    samples = random_samples((2, 3, 3), np.uint8)
    np.testing.assert_array_equal(image_to_rgb(image(samples, "RGB8")),
                                  image_to_rgb(image(samples, "rgb8")))


def compressed(rgb: np.ndarray, fmt: str) -> CompressedImage:
    return rgb_to_compressed(rgb, like=CompressedImage(header=header(), format=fmt))


def smooth_frame(height=48, width=64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x / width, y / height, 0.5 + 0.4 * np.sin(x / 9)], axis=-1)


@pytest.mark.parametrize("fmt", ["jpeg", "jpg", "rgb8; jpeg compressed bgr8",
                                 "bgr8; jpeg compressed rgb8", "bgra8; jpeg compressed bgr8"])
def test_jpeg_round_trip_within_jpeg_tolerance(fmt):
    rgb = smooth_frame()
    msg = compressed(rgb, fmt)
    assert msg.format == fmt and msg.header == header()
    assert bytes(msg.data[:2]) == b"\xff\xd8"
    back = compressed_to_rgb(msg)
    assert back.shape == rgb.shape and back.dtype == np.float32
    assert np.abs(back - rgb).mean() < 2 / 255


@pytest.mark.parametrize(("fmt", "tolerance"), [("png", 0.5 / 255), ("bgr8; png compressed bgr8",
                                                0.5 / 255), ("rgb16; png compressed bgr16",
                                                0.5 / 65535), ("rgba8; png compressed rgba8",
                                                0.5 / 255)])
def test_png_round_trip_is_exact_to_the_bit_depth(fmt, tolerance):
    rgb = smooth_frame()
    np.testing.assert_allclose(compressed_to_rgb(compressed(rgb, fmt)), rgb, atol=tolerance)


def test_compressed_channel_order_follows_the_payload_encoding():
    red = np.tile(np.float32(RED), (8, 8, 1))
    as_rgb = compressed(red, "rgb8; png compressed rgb8")
    as_bgr = compressed(red, "rgb8; png compressed bgr8")
    # The file written from an RGB array holds the channels "swapped" as far as PNG knows.
    assert cv2.imdecode(np.frombuffer(as_rgb.data, np.uint8), cv2.IMREAD_UNCHANGED)[0, 0, 0] == 255
    assert cv2.imdecode(np.frombuffer(as_bgr.data, np.uint8), cv2.IMREAD_UNCHANGED)[0, 0, 2] == 255
    for msg in (as_rgb, as_bgr):
        np.testing.assert_array_equal(compressed_to_rgb(msg), red)


def test_mono_payload_is_compressed_as_one_channel():
    msg = compressed(smooth_frame(), "mono8; jpeg compressed mono8")
    assert cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_UNCHANGED).ndim == 2
    back = compressed_to_rgb(msg)
    np.testing.assert_array_equal(back[..., 0], back[..., 2])


def test_compressed_depth_keeps_its_header_and_16_bits():
    config = bytes(range(12))
    like = CompressedImage(header=header(), format="16UC1; compressedDepth png",
                           data=config + b"old payload")
    values = np.random.default_rng(5).random((6, 7), np.float32)
    rgb = np.repeat(values[..., None], 3, axis=2)
    msg = rgb_to_compressed(rgb, like=like)
    assert bytes(msg.data[:12]) == config and bytes(msg.data[12:16]) == b"\x89PNG"
    np.testing.assert_allclose(compressed_to_rgb(msg), rgb, atol=0.6 / 65535)


def test_degradation_map_is_published_as_32fc1_unchanged():
    values = np.random.default_rng(6).random((5, 9), np.float32) * 3 - 1
    msg = map_to_image(values, header(), Image)
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("32FC1", 5, 9, 36)
    assert msg.header == header() and msg.is_bigendian == 0
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.float32).reshape(5, 9), values)


def test_degradation_map_colour_uses_the_colour_map_in_rgb_order():
    values = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    msg = map_to_colour(values, header(), Image, colormap=cv2.COLORMAP_JET)
    assert (msg.encoding, msg.step, msg.header) == ("rgb8", 15, header())
    expected = cv2.applyColorMap(np.rint(values * 255).astype(np.uint8), cv2.COLORMAP_JET)
    np.testing.assert_array_equal(samples_of(msg, "u1", 3), expected[..., ::-1])
    jet = samples_of(msg, "u1", 3)
    assert jet[0, 0, 2] > 100 and jet[0, 0, 0] == 0  # JET starts blue ...
    assert jet[-1, -1, 0] > 100 and jet[-1, -1, 2] == 0  # ... and ends red


def frame_message(**fields) -> Image:
    base = dict(height=2, width=3, encoding="rgb8", step=9, data=bytes(18))
    return Image(**{**base, **fields})


@pytest.mark.parametrize(("fields", "expected"), [
    (dict(data=bytes(17)), "data has 17 bytes, but step x height = 9 x 2 = 18"),
    (dict(data=bytes(19)), "data has 19 bytes, but step x height = 9 x 2 = 18"),
    (dict(step=8, data=bytes(16)), "step 8 is shorter than one row: width 3 x 3 channels x 1 "
                                   "bytes = 9"),
    (dict(encoding="rgb16"), "step 9 is shorter than one row: width 3 x 3 channels x 2 bytes = 18"),
    (dict(width=0, step=0, data=b""), "empty image: width 0, height 2"),
    (dict(height=0, data=b""), "empty image: width 3, height 0"),
    (dict(width=20000, height=1), "20000x1 pixels is over the limit of 16384 per side"),
    (dict(width=16384, height=16385), "16384x16385 pixels is over the limit"),
    (dict(encoding="rbg8"), "unsupported encoding 'rbg8' (did you mean 'rgb8'?)"),
    (dict(encoding="bayer_rggb"), "(did you mean 'bayer_rggb8'?)"),
    (dict(encoding="8SC3"), "unsupported encoding '8SC3'"),
    (dict(encoding="nv12"), "unsupported encoding 'nv12'"),
    (dict(encoding="x" * 1000), "unsupported encoding 'xxxxxxxx"),
    (dict(encoding="yuv422", step=6, data=bytes(12)), "width must be even, not 3"),
    (dict(encoding="bayer_rggb8", height=1, step=3, data=bytes(3)), "at least 2x2 pixels for"),
    (dict(encoding="32FC1", step=12, data=np.full(6, np.nan, np.float32).tobytes()),
     "32FC1 image has 6 NaN or infinite samples of 6"),
])
def test_bad_images_are_refused_with_the_reason_and_numbers(fields, expected):
    with pytest.raises(ImageConversionError) as refused:
        image_to_rgb(frame_message(**fields))
    assert expected in str(refused.value)


def test_unsupported_encoding_lists_the_supported_ones():
    with pytest.raises(ImageConversionError, match="supported: mono8, rgb8"):
        image_to_rgb(frame_message(encoding="hsv8"))


def test_size_limit_is_configurable(monkeypatch):
    monkeypatch.setattr(conversions, "MAX_PIXELS", 5)
    with pytest.raises(ImageConversionError, match="3x2 pixels is over the limit .* 5 pixels"):
        image_to_rgb(frame_message())


@pytest.mark.parametrize(("rgb", "like", "expected"), [
    (np.zeros((2, 3)), frame_message(), "expected a numeric (H, W, 3) RGB array, got float64"),
    (np.zeros((2, 3, 4)), frame_message(), "got float64 array of shape (2, 3, 4)"),
    ([[[0.0, 0.0, 0.0]]], frame_message(), "got list"),
    (np.zeros((2, 3, 3), bool), frame_message(), "got bool array"),
    (np.zeros((0, 3, 3)), frame_message(), "empty image: width 3, height 0"),
    (np.zeros((2, 3, 3)), frame_message(encoding="bgr"), "(did you mean 'bgr8'?)"),
    (np.zeros((2, 3, 3)), frame_message(encoding="yuv422"), "width must be even, not 3"),
    (np.zeros((1, 3, 3)), frame_message(encoding="bayer_gbrg16"),
     "at least 2x2 pixels for its colour pattern, got 3x1"),
])
def test_bad_frames_to_publish_are_refused(rgb, like, expected):
    with pytest.raises(ImageConversionError) as refused:
        rgb_to_image(rgb, like=like)
    assert expected in str(refused.value)


def test_bad_maps_are_refused():
    with pytest.raises(ImageConversionError, match=r"\(H, W\) array, got float32 array of shape"):
        map_to_image(np.zeros((2, 3, 1), np.float32), header(), Image)
    with pytest.raises(ImageConversionError, match="empty image"):
        map_to_colour(np.zeros((0, 3), np.float32), header(), Image)


def jpeg_bytes() -> bytes:
    return bytes(compressed(smooth_frame(), "jpeg").data)


def png_bytes() -> bytes:
    return bytes(compressed(smooth_frame(), "png").data)


def huge_png() -> bytes:
    """A valid-looking PNG header that claims 100000 x 100000 pixels: never decode it."""
    data = bytearray(png_bytes())
    data[16:24] = (100000).to_bytes(4, "big") * 2
    return bytes(data)


@pytest.mark.parametrize(("fmt", "data", "expected"), [
    ("jpeg", lambda: jpeg_bytes()[:300], "truncated JPEG: 300 bytes without an end-of-image"),
    ("png", lambda: png_bytes()[:100], "corrupt or truncated PNG of 100 bytes"),
    ("jpeg", lambda: b"\xff\xd8" + bytes(50) + b"\xff\xd9", "corrupt JPEG: no frame header"),
    ("jpeg", lambda: jpeg_bytes()[:200] + b"\xff\xd9", "corrupt image data: OpenCV could not"),
    ("jpeg", lambda: b"GIF89a" + bytes(30), "neither JPEG nor PNG (starts with 474946383961"),
    ("jpeg", lambda: b"", "data of 0 bytes is neither JPEG nor PNG"),
    ("png", huge_png, "100000x100000 pixels is over the limit"),
    ("pgn", png_bytes, "unknown compressed format 'pgn' (did you mean 'png'?)"),
    ("", jpeg_bytes, "unknown compressed format ''"),
    ("rgb8; webp compressed bgr8", jpeg_bytes, "unknown compressed format"),
    ("rgb8; jpeg compressed bgr16", jpeg_bytes, "jpeg cannot hold bgr16"),
    ("rgb8; jpeg compressed bgr9", jpeg_bytes,
     "compressed format 'rgb8; jpeg compressed bgr9': unsupported encoding 'bgr9' (did you mean"),
    ("32FC1; compressedDepth", png_bytes, "only 16UC1 compressedDepth as PNG"),
    ("16UC1; compressedDepth rvl", png_bytes, "only 16UC1 compressedDepth as PNG"),
    ("16UC1; compressedDepth png", lambda: b"\0" * 5, "shorter than its 12-byte header"),
])
def test_bad_compressed_images_are_refused_with_the_reason(fmt, data, expected):
    with pytest.raises(ImageConversionError) as refused:
        compressed_to_rgb(CompressedImage(format=fmt, data=data()))
    assert expected in str(refused.value)


def test_compressed_depth_template_must_carry_its_header():
    like = CompressedImage(format="16UC1; compressedDepth png", data=b"\0" * 3)
    with pytest.raises(ImageConversionError, match="3 bytes, too few to copy its 12-byte header"):
        rgb_to_compressed(smooth_frame(), like=like)


def test_jpeg_header_scan_is_bounded():
    endless_fill = b"\xff\xd8" + b"\xff" * 100_000 + b"\xff\xd9"
    with pytest.raises(ImageConversionError, match="no frame header"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=endless_fill))


def test_input_message_is_left_untouched():
    msg = image(random_samples((3, 4, 3), np.uint8), "bgr8")
    before = bytes(msg.data)
    rgb = image_to_rgb(msg)
    rgb[:] = 0
    rgb_to_image(rgb, like=msg)
    assert bytes(msg.data) == before
