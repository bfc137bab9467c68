"""tools/working_resolution_check.py runs end to end on tiny frames (it builds a pipeline by
hand, so an interface change in the pipeline must show here, not on the next benchmark day),
and more frames than the evaluation grid holds draw it again, each scored under its weather."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_working_resolution_check_prints_its_table(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ALLWEATHER_CACHE": str(tmp_path),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "tools/working_resolution_check.py", "--frames", "33",
                           "--size", "192x108", "--max-sides", "96", "--threads", "1",
                           "--left-out"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 96 | vs full |")]
    assert len(rows) == 1
    psnr = float(rows[0].split("|")[3])
    assert psnr > 30, rows[0]  # the guided upsampling carries the network's correction over
    weathers = {line.split("|")[1].strip(): int(line.split("|")[2])
                for line in done.stdout.split("by weather")[1].splitlines()
                if line.startswith("| ") and not line.startswith("| weather")}
    # the 31-recipe grid (every type and mixture at every severity, and a clean frame) and two
    # frames of it drawn again
    assert weathers == {"clean": 1, "haze": 3, "mixture": 18, "rain": 4, "raindrop": 4,
                        "snow": 3}, done.stdout
