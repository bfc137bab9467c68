"""tools/int8_check.py's accuracy rule: read on the frames with weather, clean frames apart."""
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from int8_check import summarise  # noqa: E402


def test_a_clean_frame_returned_untouched_does_not_make_the_rule_infinite():
    """fp32 gives a clean frame back bit for bit (infinite PSNR); averaged in, the fp32 mean and
    the int8 loss were infinite and the 0.2 dB rule could not be read."""
    weather = {"fp32_vs_truth": [30.0, 20.0], "int8_vs_truth": [29.8, 19.9],
               "int8_vs_fp32": [50.0, 48.0]}
    clean = {"fp32_vs_truth": [math.inf, 60.0], "int8_vs_truth": [52.0, 55.0],
             "int8_vs_fp32": [52.0, 57.0]}
    result = summarise(weather, clean)
    assert result["frames"] == 2 and result["clean_frames"] == 2
    assert math.isclose(result["loss_db"], 0.15)
    assert math.isclose(result["fp32_vs_truth"], 25.0)
    assert result["clean_worst"] == {"fp32_vs_truth": 60.0, "int8_vs_truth": 52.0,
                                     "int8_vs_fp32": 52.0}
