"""tools/bench_prior_refresh.py runs end to end on a tiny frame: it idles and wakes the
refresher through its attributes, so a change there must show here, not on a benchmark day."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_refresh_bench_alternates_its_conditions_and_prints_both(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ALLWEATHER_CACHE": str(tmp_path),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "tools/bench_prior_refresh.py", "--size", "96x64",
                           "--frames", "6", "--block", "3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["refreshes_during_busy_run"] >= 1  # the busy blocks did describe frames
    for condition in ("without_refresh", "with_refresh_in_flight"):
        assert 0 < result[condition]["p50_ms"] <= result[condition]["p99_ms"]
