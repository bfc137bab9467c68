"""The restoration gate: the frame passes unchanged where the network measures no weather, and
the gate chosen for a set of weights is the one that makes the fewest frames worse."""
import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY, random_prior, trained_like
from safetensors.torch import save_file

from allweather_ros.evaluation.gate import OFF, Score, choose
from allweather_ros.model import LDRNet
from allweather_ros.model.network import gated
from allweather_ros.model.weights import load_weights, save_weights
from allweather_ros.runtime.export import cached_onnx
from allweather_ros.runtime.select import create_backend
from allweather_ros.training.checkpoint import load_checkpoint


def _net(**gate) -> LDRNet:
    torch.manual_seed(0)
    return trained_like(LDRNet(**TINY, **gate)).eval()


def test_the_gate_blends_by_the_map_between_floor_and_floor_plus_span():
    image, restored = torch.zeros(1, 3, 1, 4), torch.ones(1, 3, 1, 4)
    strength = torch.tensor([0.0, 0.1, 0.2, 0.5]).view(1, 1, 1, 4)
    out = gated(image, restored, strength, floor=0.1, span=0.2)
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.0, 0.0, 0.5, 1.0]))
    assert gated(image, restored, strength, 0.1, 0.0) is restored  # span 0: off


def test_a_gated_network_keeps_the_frame_where_its_map_is_low_and_restores_elsewhere():
    image = torch.rand(1, 3, 24, 32)
    cache = _net().encode_prior(*random_prior(5, TINY["prior_dim"]))
    ungated = _net()(image, *cache)
    assert not torch.allclose(ungated.restored, image)
    shut = _net(gate_floor=1.0, gate_span=0.1)(image, *cache)  # the map never exceeds 1
    assert torch.equal(shut.restored, image)
    assert torch.equal(shut.degradation_map, ungated.degradation_map)
    wide_open = _net(gate_floor=0.0, gate_span=1e-6)(image, *cache)
    torch.testing.assert_close(wide_open.restored, ungated.restored)


def test_bad_gates_are_refused():
    with pytest.raises(ValueError, match="restoration gate"):
        LDRNet(**TINY, gate_floor=-0.1, gate_span=0.01)


def test_the_gate_travels_with_the_weights_and_into_the_onnx_graph(tmp_path):
    model = _net(gate_floor=0.48, gate_span=0.02)  # this untrained map is about 0.489: half open
    loaded = load_weights(save_weights(model, tmp_path / "gated.safetensors"))
    assert (loaded.config["gate_floor"], loaded.config["gate_span"]) == (0.48, 0.02)
    assert cached_onnx(loaded, tmp_path) != cached_onnx(_net(), tmp_path)  # another graph
    image = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        cache = model.encode_prior(*random_prior(4, TINY["prior_dim"]))
        expected = model(image, *cache).restored.numpy()
        assert not np.allclose(expected, image.numpy(), atol=1e-4)
        assert not np.allclose(expected, _net()(image, *cache).restored.numpy(), atol=1e-4)
    backend = create_backend("onnxruntime", loaded, tmp_path)
    backend.set_prior(cache)
    np.testing.assert_allclose(backend.infer(image).restored, expected, rtol=1e-4, atol=1e-5)


def test_a_checkpoint_saved_before_the_gate_existed_still_resumes(tmp_path):
    model = _net()
    state = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    old_config = {k: v for k, v in model.config.items() if not k.startswith("gate_")}
    save_file(state, str(tmp_path / "last.safetensors"), metadata={
        "config": json.dumps(old_config), "progress": json.dumps({"step": 3}),
        "optim_scalars": "{}", "param_groups": json.dumps(
            torch.optim.Adam(model.parameters()).state_dict()["param_groups"])})
    fresh = LDRNet(**TINY)
    assert load_checkpoint(tmp_path / "last.safetensors", fresh,
                           torch.optim.Adam(fresh.parameters())) == {"step": 3}



def test_the_chosen_gate_makes_fewest_frames_worse_within_the_psnr_tolerance():
    scores = {OFF: Score(20, [22.00]), (0.0, 0.01): Score(15, [22.01]),
              (0.002, 0.01): Score(12, [21.96]), (0.003, 0.01): Score(12, [21.97]),
              (0.005, 0.02): Score(5, [21.90])}  # fewest worse, but 0.1 dB lower: not eligible
    assert choose(scores) == (0.003, 0.01)  # a tie on frames made worse goes to the PSNR
    assert choose({OFF: Score(3, [22.0]), (0.0, 0.01): Score(3, [21.99])}) == OFF
    assert math.isnan(Score().mean_psnr)
