"""Run by tests/test_training_ddp.py under torchrun: a few tiny training steps, then each rank
writes a digest of its own weights so the test can compare the ranks."""
import hashlib
import os
import sys
from pathlib import Path

import torch

from allweather_ros.training.loop import TrainConfig, train_model

model_file, out = sys.argv[1], Path(sys.argv[2])
net, _ = train_model(TrainConfig(model=model_file, crop=32, batch_size=2, workers=0, steps=3,
                                 checkpoint_every=3, out=str(out), threads=1, log_every=1))
digest = hashlib.sha256()
for name, value in sorted(net.state_dict().items()):
    digest.update(name.encode() + value.detach().to(torch.float32).numpy().tobytes())
(out.parent / f"rank{os.environ['RANK']}.sha256").write_text(digest.hexdigest())
