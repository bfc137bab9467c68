"""tools/lane_check.py: lane markings' contrast on rendered drives, in the input and through
the default pipeline, clean drives told a description and rainy ones told the truth."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import lane_check  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_markings_are_scored_against_the_clean_view(monkeypatch):
    monkeypatch.setattr(lane_check, "CASES", [("rain", "heavy")])
    report = lane_check.check(lane_check.argparse.Namespace(
        split="val", scenes=1, views=2, weights=""))
    clear = report["clean, told"]["no weather"]
    assert clear == {"views": 2, "input": 1.0, "restored": 1.0, "lowest": 1.0}
    told_heavy = report["clean, told"]["heavy rain"]
    assert told_heavy["input"] == 1.0 and told_heavy["restored"] < 1.0  # a wrong word costs
    rainy = report["weather, told the truth"]["heavy rain"]
    assert rainy["views"] == 2 and 0.0 < rainy["input"] < 0.95  # the rain hides the markings
