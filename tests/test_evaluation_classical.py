"""The classical baselines do what their names say."""
import numpy as np
from skimage import data

from allweather_ros.description import Degradation
from allweather_ros.evaluation import classical
from allweather_ros.evaluation.scoring import psnr_ssim


def _clean() -> np.ndarray:
    return data.astronaut()[::2, ::2].astype(np.float32) / 255.0


def test_dark_channel_prior_removes_synthetic_haze():
    clean = _clean()
    depth = np.linspace(0.2, 1.0, clean.shape[0], dtype=np.float32)[:, None, None]
    t = np.exp(-1.5 * depth)
    hazy = clean * t + 0.9 * (1 - t)
    assert psnr_ssim(classical.dehaze_dark_channel(hazy), clean)[0] > psnr_ssim(hazy, clean)[0] + 3


def test_median_filter_removes_sparse_bright_streaks():
    clean = _clean()
    rainy = clean.copy()
    rainy[::9, :, :] = 1.0  # one-pixel bright lines
    restored = classical.restore(rainy, [Degradation("rain", "moderate")], median_kernel=3)
    assert psnr_ssim(restored, clean)[0] > psnr_ssim(rainy, clean)[0] + 3


def test_median_keeps_shape_and_range_for_large_kernels():
    out = classical.median(np.random.default_rng(0).random((20, 30, 3), dtype=np.float32), 7)
    assert out.shape == (20, 30, 3) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
