"""tools/lights_check.py: small lights on clean scenes told heavy weather, the shipped network
alone against it with the light keeper, and the keeper's cost on frames told the truth."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import lights_check  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_night_lights_told_heavy_rain_are_kept_and_a_clear_word_changes_nothing(monkeypatch):
    monkeypatch.setattr(lights_check, "TOLD", {k: lights_check.TOLD[k]
                                               for k in ("no weather", "heavy rain")})
    report = lights_check.check_lights(lights_check.argparse.Namespace(
        split="val", scenes=1, weights=""))
    clear, rain = report["no weather"], report["heavy rain"]
    assert all(s["lowest"] == 1.0 for s in clear.values())
    for size in ("3 px", "5 px", "7 px"):
        alone, kept = rain[f"alone, night, {size}"], rain[f"keeper, night, {size}"]
        assert kept["mean"] > 0.95 and kept["mean"] > alone["mean"] + 0.1, (size, alone, kept)
        assert kept["lights"] == alone["lights"] > 0


def test_the_cost_is_counted_on_both_renderer_sets(capsys):
    assert lights_check.main(["--cost", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["training renderers", "left-out renderer"]
    assert all("31 frames" in line for line in lines)


def test_rain_lit_by_lamps_is_not_put_back(capsys):
    """Lamp-lit streaks are as bright and coloured as lights: the keeper leaves what the
    network took out of them taken out."""
    assert lights_check.main(["--lamp-lit", "--scenes", "1", "--json"]) == 0
    report = lights_check.json.loads(capsys.readouterr().out)
    assert set(report) == {"sodium", "white"}
    for lamp in report.values():
        assert lamp["alone"] < 0.6 and lamp["keeper"] < lamp["alone"] + 0.05, lamp
