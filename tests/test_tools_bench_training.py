"""tools/bench_training.py trains each variant through the real loop and reads the figures the
loop logs: a change in log.jsonl's fields must show here, not on a benchmark day."""
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import TINY

ROOT = Path(__file__).resolve().parent.parent


def test_the_training_bench_prints_throughput_per_variant(tmp_path):
    model = tmp_path / "tiny.yaml"
    model.write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                     for k, v in {**TINY, "prior_dim": 384}.items()}))
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"model": str(model), "crop": 32, "batch_size": 2,
                                      "workers": 0, "threads": 1, "camera_p": 0.5}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ALLWEATHER_SCENES": str(tmp_path / "none"),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "tools/bench_training.py", "--config", str(config),
                           "--steps", "4", "--variants", "fp32", "bf16+channels_last", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    assert [r["variant"] for r in results] == ["fp32", "bf16+channels_last"]
    for r in results:
        assert r["samples_per_s"] > 0 and 0 <= r["data_wait"] <= 1 and 0 <= r["text_wait"] <= 1
    assert "| bf16+channels_last |" in done.stdout
