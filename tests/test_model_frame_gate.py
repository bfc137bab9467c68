"""The frame gate: a part of the restorer fitted on its own, which scales the correction down
where the frame does not bear it out, and leaves the rest of the network as it was."""
import numpy as np
import onnxruntime as ort
import torch
from conftest import TINY, random_prior, trained_like

from allweather_ros.data.weather import RENDERERS
from allweather_ros.description import GENERIC_TEXT
from allweather_ros.model import LDRNet
from allweather_ros.model.losses import harm_loss, psnr_loss
from allweather_ros.model.weights import load_weights, save_weights
from allweather_ros.network_io import GATE_OPENING, INPUTS, read_metadata, without_frame_gate
from allweather_ros.pipeline import (
    DEFAULT_WEIGHTS,
    PipelineConfig,
    build_pipeline,
    restorer_weights,
)
from allweather_ros.runtime.export import export_onnx
from allweather_ros.training.frame_gate import fit_frame_gate, with_frame_gate
from allweather_ros.training.loop import TrainConfig


def _restorer() -> LDRNet:
    torch.manual_seed(0)
    return trained_like(LDRNet(**{**TINY, "prior_dim": 384})).eval()


def test_a_fresh_gate_passes_the_same_share_of_the_correction_everywhere():
    plain = _restorer()
    gated = with_frame_gate(plain, hidden=4)
    image = torch.rand(1, 3, 24, 32)
    cache = plain.encode_prior(*random_prior(5, 384))
    with torch.no_grad():
        before, after = plain(image, *cache).restored, gated(image, *cache).restored
    assert not torch.allclose(before, image)
    share = torch.sigmoid(torch.tensor(3.0))
    assert torch.allclose(after - image, share * (before - image), atol=1e-6)
    trainable = {n for n, p in gated.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("frame_gate.") for n in trainable)
    refitted = with_frame_gate(gated, hidden=8)  # a gate fitted again starts afresh
    assert refitted.config["frame_gate"] == 8
    with torch.no_grad():
        assert torch.allclose(refitted(image, *cache).restored, after, atol=1e-6)


def test_psnr_loss_weighs_each_frame_in_decibels_up_to_its_cap():
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.stack([torch.full((3, 4, 4), 0.1), torch.full((3, 4, 4), 0.01)])
    # 20 dB and 40 dB frames: the mean of their log10(MSE) is -3, i.e. 30 dB on average
    assert abs(psnr_loss(pred, target, 0.0).item() + 3.0) < 1e-5
    capped = psnr_loss(pred, target, 1e-3).item()  # the 40 dB frame counts as about 30 dB
    assert abs(capped - (np.log10(1e-2 + 1e-3) + np.log10(1e-4 + 1e-3)) / 2) < 1e-5


def test_harm_loss_counts_only_the_frames_made_worse_than_they_came_in():
    target = torch.zeros(2, 3, 4, 4)
    degraded = torch.full((2, 3, 4, 4), 0.1)  # both frames came in at 20 dB
    pred = torch.stack([torch.full((3, 4, 4), 0.01), torch.full((3, 4, 4), 0.2)])
    # the first is restored (40 dB: counts nothing), the second made 6 dB worse (14 dB)
    assert abs(harm_loss(pred, degraded, target, 0.0).item() - np.log10(4.0) / 2) < 1e-5
    assert harm_loss(degraded, degraded, target, 0.0).item() == 0.0


def test_fitting_the_gate_trains_the_gate_alone_and_records_how(tmp_path, monkeypatch):
    weights = save_weights(_restorer(), tmp_path / "plain.safetensors", {"note": "kept"})
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    config = TrainConfig(crop=32, batch_size=2, workers=0, threads=1, misstated_p=1.0, seed=3)
    out = fit_frame_gate(weights, config, tmp_path / "gated.safetensors", hidden=4, steps=3,
                         harm_weight=2.0)
    before, after = load_weights(weights).state_dict(), load_weights(out).state_dict()
    assert load_weights(out).config["frame_gate"] == 4
    assert all(torch.equal(before[k], after[k]) for k in before)
    gate = {k: v for k, v in after.items() if k.startswith("frame_gate.")}
    assert not torch.all(gate["frame_gate.body.2.weight"] == 0), "the gate learnt something"
    meta = read_metadata(out)
    assert meta["note"] == "kept" and meta["frame_gate"]["steps"] == 3
    assert meta["frame_gate"]["harm_weight"] == 2.0
    assert meta["frame_gate"]["recipe"]["misstated_p"] == 1.0  # the frames it was fitted on
    assert meta["frame_gate"]["recipe"]["seed"] == 3
    assert meta["frame_gate"]["renderers"]["rain"] == sorted(RENDERERS["rain"])


def test_the_no_prior_ablation_gets_its_gate_fitted_on_the_generic_text(tmp_path, monkeypatch):
    told = []

    class Recording:
        def encode_batch(self, texts):
            told.extend(texts)
            return torch.zeros(len(texts), 3, 384), torch.ones(len(texts), 3, dtype=torch.bool)

    weights = save_weights(_restorer(), tmp_path / "plain.safetensors")
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    config = TrainConfig(prior="none", crop=32, batch_size=2, workers=0, threads=1)
    fit_frame_gate(weights, config, tmp_path / "gated.safetensors", hidden=4, steps=2,
                   encoder=Recording())
    assert told == [GENERIC_TEXT] * 4


def test_a_gated_network_exports_to_onnx_with_the_same_output_at_any_opening(tmp_path):
    net = with_frame_gate(_restorer(), hidden=4)
    torch.nn.init.normal_(net.frame_gate.body[2].weight, std=0.5)  # a gate that varies
    path = export_onnx(net, tmp_path / "gated.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [*INPUTS, GATE_OPENING]
    image = torch.rand(1, 3, 37, 53)
    cache = net.encode_prior(*random_prior(6, 384))
    for opening in (0.0, 0.5, 1.0):
        with torch.no_grad():
            want = net(image, *cache._replace(gate_opening=torch.tensor([opening])))
        got = session.run(None, {"image": image.numpy(), "prior_kv": cache.kv.detach().numpy(),
                                 "prior_bias": cache.bias.numpy(),
                                 GATE_OPENING: np.array([opening], np.float32)})[0]
        want = want.restored.numpy()
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-4


def test_a_prior_holds_the_frame_gate_open_as_far_as_it_says():
    gated = with_frame_gate(_restorer(), hidden=4)
    torch.nn.init.normal_(gated.frame_gate.body[2].weight, std=0.5)
    image = torch.rand(1, 3, 24, 32)
    cache = gated.encode_prior(*random_prior(5, 384))
    with torch.no_grad():
        told = {opening: gated(image, *cache._replace(gate_opening=torch.tensor([opening])))
                .restored for opening in (0.0, 0.5, 1.0)}
        left_to_the_frame = gated(image, *cache).restored  # no opening: 0
        gated.frame_gate = None
        whole = gated(image, *cache).restored
    assert torch.equal(told[0.0], left_to_the_frame) and torch.allclose(told[1.0], whole)
    assert not torch.allclose(told[0.0], whole)
    assert torch.allclose(told[0.5], (told[0.0] + told[1.0]) / 2, atol=1e-6)


def test_weights_without_their_frame_gate_restore_as_the_network_before_it(tmp_path):
    gated = with_frame_gate(_restorer(), hidden=4)
    torch.nn.init.normal_(gated.frame_gate.body[2].weight, std=0.5)
    source = save_weights(gated, tmp_path / "gated.safetensors", {"frame_gate": {"hidden": 4}})
    ungated = without_frame_gate(source, tmp_path / "cache")
    assert ungated.parent == tmp_path / "cache" and ungated != source
    assert "frame_gate" not in read_metadata(ungated)  # the gate's fit went with the gate
    plain = load_weights(ungated)
    assert plain.frame_gate is None and plain.config["frame_gate"] == 0
    image = torch.rand(1, 3, 24, 32)
    cache = gated.encode_prior(*random_prior(5, 384))
    with torch.no_grad():
        want = gated(image, *cache)
        gated.frame_gate = None  # the same network, its correction whole
        whole = gated(image, *cache).restored
        got = plain(image, *cache).restored
    assert torch.equal(got, whole) and not torch.allclose(got, want.restored)
    written = ungated.stat().st_mtime_ns
    assert without_frame_gate(source, tmp_path / "cache") == ungated  # written once
    assert ungated.stat().st_mtime_ns == written
    assert without_frame_gate(ungated, tmp_path / "cache") == ungated  # nothing to take off


def test_the_frame_gate_option_restores_with_the_whole_correction(tmp_path):
    frame = np.random.default_rng(0).random((40, 56, 3), dtype=np.float32)
    told = "The image is degraded by heavy rain streaks across the whole frame."
    outputs, configs, files = {}, {}, {}
    for gate in (True, False):
        config = PipelineConfig(backend="torch", provider="fixed", fixed_text=told,
                                frame_gate=gate, cache_dir=str(tmp_path / "cache"))
        pipeline = build_pipeline(config, asynchronous=False)
        pipeline.refresh_now(frame)
        outputs[gate] = pipeline.process(frame).restored
        configs[gate] = pipeline.restorer_config
        files[gate] = pipeline.describe()["weights"]["restorer_weights"]
    assert configs[True]["frame_gate"] > 0 and configs[False]["frame_gate"] == 0
    assert files[True].startswith(str(DEFAULT_WEIGHTS))  # what diagnostics say runs
    assert files[False].startswith(str(tmp_path / "cache" / "rt-no-frame-gate-"))
    assert np.abs(outputs[True] - outputs[False]).max() > 1e-3
    assert restorer_weights(PipelineConfig(frame_gate=False, cache_dir=str(tmp_path / "cache"))
                            ).parent == tmp_path / "cache"
