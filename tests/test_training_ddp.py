"""Multi-process training: torchrun with gloo on the CPU, as on a many-GPU machine with NCCL."""
import os
import subprocess
import sys
from pathlib import Path

from conftest import TINY

from allweather_ros.model.weights import load_weights

HERE = Path(__file__).parent


def test_two_processes_train_the_same_weights_and_write_one_checkpoint(tmp_path):
    model_file = tmp_path / "tiny.yaml"
    model_file.write_text("\n".join(f"{k}: {list(v) if isinstance(v, tuple) else v}"
                                    for k, v in {**TINY, "prior_dim": 384}.items()))
    out = tmp_path / "runs" / "ddp"
    env = {**os.environ, "ALLWEATHER_SCENES": str(tmp_path / "no_scenes"),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", "0", "--rdzv_backend", "c10d", "--rdzv_endpoint", "127.0.0.1:0",
         str(HERE / "ddp_train_worker.py"), str(model_file), str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    digests = [(out.parent / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert digests[0] == digests[1], "the ranks' weights drifted apart"
    assert sorted(p.name for p in out.iterdir()) == ["last.safetensors", "log.jsonl",
                                                     "weights.safetensors"]
    assert load_weights(out / "weights.safetensors").config["width"] == TINY["width"]
    log_lines = (out / "log.jsonl").read_text().splitlines()
    assert len(log_lines) == 3, "rank 0 alone logs"
