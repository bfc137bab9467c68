"""tools/gpu_check.py on this CPU: trained weights load as the network their file describes."""
import sys
from pathlib import Path

import torch

from allweather_ros.pipeline import load_model as pipeline_model

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402


def test_shipped_weights_load_with_their_frame_gate():
    """The shipped `rt` carries a frame gate the bare variant lacks; the check must time and
    compare the network users run, not refuse the file or drop the gate."""
    shipped = ROOT / "allweather_ros" / "weights" / "rt.safetensors"
    model = gpu_check.load_model("rt", str(shipped))
    assert model.frame_gate is not None
    want = pipeline_model("")
    for (name, got), (_, ref) in zip(model.state_dict().items(), want.state_dict().items(),
                                     strict=True):
        assert torch.equal(got, ref), name


def test_random_weights_make_every_block_show():
    """Without weights the variant gets seeded random weights, zero-initialised output convs
    included, so parity compares a graph that does something (a fresh LDRNet is the identity)."""
    model = gpu_check.load_model("rt", None)
    again = gpu_check.load_model("rt", None)
    frame = torch.rand(1, 3, 64, 64)
    tokens = torch.randn(1, 4, model.config["prior_dim"])
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        out = model(frame, *model.encode_prior(tokens, mask)).restored
        out_again = again(frame, *again.encode_prior(tokens, mask)).restored
    assert not torch.allclose(out, frame, atol=1e-3)
    assert torch.equal(out, out_again)
