"""tools/load_test.py's memory verdict: a leak fails it, a working set that swings does not;
and the node it starts takes the user's own parameters after its own."""
import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import load_test  # noqa: E402

MB = 2**20
WARMUP, WINDOW, END = 60.0, 30.0, 660.0


def samples(rss_mb) -> list[tuple[float, int]]:
    """One resident-memory sample a second, as the load test takes them."""
    return [(float(t), int(rss_mb(t) * MB)) for t in np.arange(0.0, END + 1.0)]


def test_a_swinging_working_set_is_not_growth():
    """The 100-second medians of a real run swung by about 30 MB with no trend (docs/
    load_test.md); from a low at the start to a high at the end, the first and last spans
    differ by 5.5%."""
    swing = samples(lambda t: 550.0 - 15.0 * np.cos(2 * np.pi * (t - WARMUP) / 240.0))
    verdict = load_test._memory_verdict(swing, WARMUP, WINDOW)
    assert verdict["rss_at_end_mb"] / verdict["rss_after_warmup_mb"] > 1.05
    assert verdict["ok"] and abs(verdict["growth_percent"]) < 2.0


@pytest.mark.parametrize("mb_per_min", [6.0, 12.0])
def test_a_leak_fails_it_swinging_or_not(mb_per_min):
    for swing_mb in (0.0, 15.0):
        leak = samples(lambda t, s=swing_mb: 550.0 + mb_per_min * (t - WARMUP) / 60.0
                       - s * np.cos(2 * np.pi * (t - WARMUP) / 240.0))
        verdict = load_test._memory_verdict(leak, WARMUP, WINDOW)
        assert not verdict["ok"]
        assert verdict["slope_mb_per_min"] == pytest.approx(mb_per_min, rel=0.35)
        assert verdict["growth_percent"] > 5.0


def test_too_short_a_run_has_no_verdict():
    verdict = load_test._memory_verdict([(0.0, 1), (70.0, 1)], WARMUP, WINDOW)
    assert not verdict["ok"] and "too few" in verdict["reason"]


def test_the_users_parameters_reach_the_node_after_the_tests_own():
    args = argparse.Namespace(backend="auto", provider="fixed",
                              param=["processing_max_side:=320", "prior.fixed_text:=snow"])
    overrides = load_test.node_overrides(args, "w.safetensors", ["/cam0/image_raw"])
    pairs = list(zip(overrides[::2], overrides[1::2], strict=True))
    assert all(flag == "-p" for flag, _ in pairs)
    values = [value for _, value in pairs]
    assert "input_topics:=[/cam0/image_raw]" in values and "weights:=w.safetensors" in values
    assert values[-2:] == ["processing_max_side:=320", "prior.fixed_text:=snow"]
    assert values.index("prior.fixed_text:=light rain") < values.index("prior.fixed_text:=snow")
