"""ONNX export of the per-frame graph and its parity with PyTorch."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from allweather_ros.model import build_model
from allweather_ros.runtime.export import INPUTS, export_onnx


@pytest.mark.parametrize("variant", ["rt", "base"])
def test_exported_graph_matches_pytorch_at_several_sizes(variant, tmp_path):
    torch.manual_seed(0)
    model = build_model(variant).eval()
    path = export_onnx(model, tmp_path / f"{variant}.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(INPUTS)
    for height, width, length in [(48, 64, 16), (37, 53, 5)]:
        tokens = torch.randn(1, length, model.config["prior_dim"])
        cache = model.encode_prior(tokens, torch.ones(1, length, dtype=torch.bool))
        image = torch.rand(1, 3, height, width)
        with torch.no_grad():
            ref = model(image, *cache)
        out = session.run(None, {"image": image.numpy(), "prior_kv": cache.kv.detach().numpy(),
                                 "prior_bias": cache.bias.numpy()})
        for got, want in zip(out, ref, strict=True):
            want = want.numpy()
            assert got.shape == want.shape
            if want.dtype.kind == "f":
                rel = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-12)
                assert rel < 1e-4, rel
        assert (out[3] == ref.expert_indices.numpy()).mean() > 0.999
