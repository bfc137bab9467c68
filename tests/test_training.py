"""Training runs, checkpoints in safetensors, and resumes where it stopped."""
import itertools
import json
import math

import pytest
import torch
from conftest import TINY

from allweather_ros.cli import main
from allweather_ros.model import LDRNet
from allweather_ros.model.weights import load_weights
from allweather_ros.network_io import read_metadata
from allweather_ros.prior.builtin import BuiltinEstimator
from allweather_ros.training import loop
from allweather_ros.training.checkpoint import (
    average_checkpoints,
    checkpoint_progress,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from allweather_ros.training.finite_steps import MAX_IN_A_ROW
from allweather_ros.training.loop import (
    TrainConfig,
    _collate,
    _dataset,
    cosine_lr,
    train,
    with_estimates,
)


def test_cosine_schedule_ends_at_the_minimum():
    assert cosine_lr(0, 100, 1e-3, 1e-6) == 1e-3
    assert abs(cosine_lr(100, 100, 1e-3, 1e-6) - 1e-6) < 1e-12
    assert abs(cosine_lr(50, 100, 1e-3, 1e-6) - (1e-3 + 1e-6) / 2) < 1e-12


def test_a_warm_restart_starts_the_cosine_again_at_the_peak():
    assert cosine_lr(60, 100, 1e-3, 1e-6, start=60) == 1e-3
    assert abs(cosine_lr(80, 100, 1e-3, 1e-6, start=60) - (1e-3 + 1e-6) / 2) < 1e-12
    assert abs(cosine_lr(100, 100, 1e-3, 1e-6, start=60) - 1e-6) < 1e-12
    assert cosine_lr(30, 100, 1e-3, 1e-6, start=60) == 1e-3  # before it: held at the peak


def test_a_restart_outside_the_run_is_refused(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("steps: 100\nrestart_step: 100\n")
    with pytest.raises(ValueError, match="restart_step"):
        TrainConfig.from_yaml(path)


@pytest.mark.parametrize("options,field", [({"prior": "clip"}, "prior"),
                                           ({"steps": 10, "restart_step": -1}, "restart_step"),
                                           ({"type_weights": {"rain": -1.0}}, "type weights"),
                                           ({"clean_p": 1.0}, "clean_p"),
                                           ({"exposure_p": 1.5}, "exposure_p"),
                                           ({"night_p": -0.5}, "night_p"),
                                           ({"unplaced_p": -0.1}, "unplaced_p"),
                                           ({"estimated_p": 2.0}, "estimated_p"),
                                           ({"marking_weight": 1.0}, "marking_weight"),
                                           ({"marking_weight": -1.0, "road_p": 0.5},
                                            "marking_weight")])
def test_a_config_built_in_python_is_checked_too(options, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**options)


def test_clean_p_sets_the_share_of_weather_free_training_frames():
    frames = _dataset(TrainConfig(crop=24, clean_p=0.8))
    clean = sum(float(frames[i]["types"].sum()) == 0 for i in range(40))
    assert clean >= 24  # 32 expected; 5% (the default) would give about 2


def test_road_views_bring_their_markings_to_the_batch():
    """The markings' mask travels with a road view into the batch, zero on other views, so
    the loop can weigh their error (`marking_weight`)."""
    frames = _dataset(TrainConfig(crop=48, road_p=0.5, marking_weight=1.0))
    batch = _collate([frames[i] for i in range(8)])
    marked = batch["markings"].flatten(1).sum(1)
    assert batch["markings"].shape == (8, 1, 48, 48)
    assert 0 < int((marked > 0).sum()) < 8  # some views are roads, some are not
    plain = _dataset(TrainConfig(crop=48))[0]
    assert "markings" not in _collate([plain])
    mixed = _collate([frames[i] for i in range(8)] + [plain])  # a paired frame: none marked
    assert torch.equal(mixed["markings"][:8], batch["markings"])
    assert not mixed["markings"][8].any()


def test_a_train_override_on_the_command_line_is_checked_too(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text(f"out: {tmp_path / 'run'}\nsteps: 2\n")
    assert main(["train", "--config", str(config), "--set", "max_zoom=0.5"]) == 2
    assert "max_zoom must be >= 1, got 0.5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before any data or checkpoint is made


@pytest.mark.parametrize("override, field, value", [
    ("channels_last=false", "channels_last", False), ("lr=3e-5", "lr", 3e-5),
    ("type_weights={rain: 2.0}", "type_weights", {"rain": 2.0}),
    ("scenes=[a, b]", "scenes", ["a", "b"])])
def test_train_overrides_take_the_option_type(tmp_path, monkeypatch, override, field, value):
    config = tmp_path / "train.yaml"
    config.write_text("channels_last: true\n")
    taken = []
    monkeypatch.setattr(loop, "train", lambda config, resume: taken.append(config) or "w")
    assert main(["train", "--config", str(config), "--set", override]) == 0
    assert getattr(taken[0], field) == value


def test_a_list_option_given_a_word_is_refused_by_name(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("steps: 2\n")
    assert main(["train", "--config", str(config), "--set", "scenes=footage"]) == 2
    assert "--set scenes=footage: expected a YAML list" in capsys.readouterr().err


def test_zoom_p_draws_the_training_weather_closer():
    plain, zoomed = (_dataset(TrainConfig(crop=32, clean_p=0.0, zoom_p=p, max_zoom=3.0))
                     for p in (0.0, 1.0))
    for i in range(4):
        a, b = plain[i], zoomed[i]
        assert b["degraded"].shape == b["clean"].shape == a["degraded"].shape
        assert not torch.equal(a["clean"], b["clean"])  # the same draw, seen through a window


def test_estimated_p_gives_that_share_the_estimators_own_words():
    estimator = BuiltinEstimator()  # the shipped one, as training uses
    batch = _collate([_dataset(TrainConfig(crop=48, clean_p=0.0))[i] for i in range(6)])
    said = [estimator.describe(f.permute(1, 2, 0).numpy()).text for f in batch["degraded"]]
    assert said != batch["text"]
    assert with_estimates(batch["text"], batch["degraded"], estimator, 1.0,
                          torch.Generator().manual_seed(0)) == said
    assert with_estimates(batch["text"], batch["degraded"], estimator, 0.0,
                          torch.Generator().manual_seed(0)) == batch["text"]
    half = [with_estimates(batch["text"], batch["degraded"], estimator, 0.5,
                           torch.Generator().manual_seed(s)) for s in (3, 3)]
    assert half[0] == half[1]  # the same draw for the same step: a resumed run repeats it
    picked = torch.rand(6, generator=torch.Generator().manual_seed(3)) < 0.5
    assert half[0] == [e if p else t for t, e, p in zip(batch["text"], said, picked.tolist(),
                                                         strict=True)]


def test_unknown_weather_in_type_weights_is_refused(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("type_weights: {rain: 2.0, hail: 1.0}\n")
    with pytest.raises(ValueError, match="hail"):
        TrainConfig.from_yaml(path)


def _trained_one_step(model: LDRNet) -> torch.optim.Optimizer:
    """An Adam optimizer that has taken one step on `model`, so that it holds state."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(1, 3, 16, 16), *model.encode_prior(torch.randn(1, 3, 24),
                                                        torch.ones(1, 3, dtype=torch.bool))
          ).restored.sum().backward()
    optimizer.step()
    return optimizer


def test_checkpoint_round_trip_restores_model_and_optimizer(tmp_path):
    torch.manual_seed(0)
    model = LDRNet(**TINY)
    optimizer = _trained_one_step(model)
    path = save_checkpoint(tmp_path / "c.safetensors", model, optimizer, {"step": 7})
    fresh = LDRNet(**TINY)
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    assert load_checkpoint(path, fresh, fresh_opt) == {"step": 7}
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    state, fresh_state = optimizer.state_dict()["state"], fresh_opt.state_dict()["state"]
    for index in state:
        assert torch.equal(state[index]["exp_avg"], fresh_state[index]["exp_avg"])
        assert float(state[index]["step"]) == float(fresh_state[index]["step"])
    assert model_from_checkpoint(path)[1] == {"step": 7}


def test_a_short_run_learns_and_resumes(tmp_path, monkeypatch):
    model_file = tmp_path / "tiny.yaml"
    text_encoder_width = {"prior_dim": 384}  # the real text encoder feeds the prior
    model_file.write_text("\n".join(f"{k}: {list(v) if isinstance(v, tuple) else v}"
                                    for k, v in {**TINY, **text_encoder_width}.items()))
    config = TrainConfig(model=str(model_file), crop=32, batch_size=2, workers=0, steps=4,
                         checkpoint_every=2, out=str(tmp_path / "run"), threads=1,
                         estimated_p=0.5, log_every=1)
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    weights = train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]
    assert load_weights(weights).config["width"] == TINY["width"]
    config.steps = 6
    train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log][-2:] == [5, 6], "resumed after step 4"


def _tiny_model_file(tmp_path):
    model_file = tmp_path / "tiny.yaml"
    model_file.write_text("\n".join(f"{k}: {list(v) if isinstance(v, tuple) else v}"
                                    for k, v in {**TINY, "prior_dim": 384}.items()))
    return model_file


def test_bf16_channels_last_run_with_camera_and_misstated_frames_logs_averages(tmp_path,
                                                                             monkeypatch):
    config = TrainConfig(model=str(_tiny_model_file(tmp_path)), crop=32, batch_size=2,
                         workers=0, steps=4, checkpoint_every=4, out=str(tmp_path / "run"),
                         threads=1, precision="bf16", channels_last=True, camera_p=1.0,
                         misstated_p=1.0, log_every=2)
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    weights = train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [2, 4]
    assert all(math.isfinite(entry["loss"]) for entry in log)
    assert all(entry["samples_per_s"] > 0 and 0 <= entry["data_wait"] <= 1
               and 0 <= entry["text_wait"] <= 1 for entry in log)
    state = load_weights(weights).state_dict()
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_is_bf16_only_where_the_device_computes_it_natively(tmp_path, monkeypatch,
                                                                          native):
    monkeypatch.setattr(loop, "native_bf16", lambda device: native)
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    config = TrainConfig(model=str(_tiny_model_file(tmp_path)), crop=32, batch_size=2,
                         workers=0, steps=2, out=str(tmp_path / "run"), threads=1)
    assert config.precision == "auto"
    weights = train(config)
    assert read_metadata(weights)["train"]["precision"] == ("bf16" if native else "fp32")
    assert loop.resolved_precision("fp32", torch.device("cpu")) == "fp32"
    assert loop.resolved_precision("bf16", torch.device("cpu")) == "bf16"


def test_a_time_limit_stops_the_run_with_its_checkpoint_written(tmp_path, monkeypatch):
    config = TrainConfig(model=str(_tiny_model_file(tmp_path)), crop=32, batch_size=2,
                         workers=0, steps=1000, checkpoint_every=500, out=str(tmp_path / "run"),
                         threads=1, max_minutes=1e-9)
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    weights = train(config)
    assert checkpoint_progress(tmp_path / "run" / "last.safetensors")["step"] == 1
    assert load_weights(weights).config["width"] == TINY["width"]


@pytest.mark.parametrize("field, value", [("precision", "fp16"), ("log_every", 0),
                                          ("max_minutes", -1.0),
                                          ("misstated_p", 1.5), ("understated_p", 2.0),
                                          ("spurious_p", 1.2), ("unsaid_haze_p", 1.5),
                                          ("camera_p", -0.1),
                                          ("zoom_p", 1.5), ("max_zoom", 0.5)])
def test_bad_speed_and_data_options_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_averaged_checkpoints_hold_the_mean_network_and_resume_from_the_last(tmp_path):
    nets, optimizers, paths = [], [], []
    for step in (4, 9):
        torch.manual_seed(step)
        net = LDRNet(**TINY)
        optimizer = _trained_one_step(net)
        nets.append(net)
        optimizers.append(optimizer)
        paths.append(save_checkpoint(tmp_path / f"{step}.safetensors", net, optimizer,
                                     {"step": step}))
    out = average_checkpoints(paths, tmp_path / "soup.safetensors")
    resumed = LDRNet(**TINY)
    resumed_opt = torch.optim.Adam(resumed.parameters(), lr=1e-3)
    assert load_checkpoint(out, resumed, resumed_opt) == {"step": 9}
    for name, value in resumed.state_dict().items():
        first, last = nets[0].state_dict()[name], nets[1].state_dict()[name]
        assert torch.allclose(value, (first + last) / 2, atol=1e-6), name
    assert any(not torch.equal(v, nets[1].state_dict()[k])
               for k, v in resumed.state_dict().items())
    last_state = optimizers[1].state_dict()["state"]
    for index, entry in resumed_opt.state_dict()["state"].items():
        assert torch.equal(entry["exp_avg"], last_state[index]["exp_avg"])
    assert [entry["step"] for entry in read_metadata(out)["averaged"]] == [4, 9]
    wider = LDRNet(**{**TINY, "width": TINY["width"] * 2})
    other = save_checkpoint(tmp_path / "wider.safetensors", wider,
                            torch.optim.Adam(wider.parameters()), {"step": 1})
    with pytest.raises(ValueError, match="another network"):
        average_checkpoints([paths[0], other], tmp_path / "no.safetensors")


def test_synthesis_workers_compute_on_one_opencv_thread_each(tmp_path, monkeypatch):
    """OpenCV's own threads in every worker would crowd out the process feeding the network."""
    import cv2

    real_init = loop._one_thread_worker

    def recording_init(worker_id):
        real_init(worker_id)
        (tmp_path / f"worker{worker_id}").write_text(str(cv2.getNumThreads()))

    monkeypatch.setattr(loop, "_one_thread_worker", recording_init)
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    config = TrainConfig(model=str(_tiny_model_file(tmp_path)), crop=32, batch_size=2,
                         workers=1, steps=2, checkpoint_every=2, out=str(tmp_path / "run"),
                         threads=1)
    train(config)
    assert (tmp_path / "worker0").read_text() == "1"


def _forked_worker(answers):
    import cv2
    import numpy as np

    loop._one_thread_worker(0)
    cv2.GaussianBlur(np.zeros((256, 256, 3), np.float32), (31, 31), 5)
    answers.put(cv2.getNumThreads())


def test_a_worker_forked_from_a_parent_whose_opencv_threads_ran_does_not_hang():
    """Resizing the thread pool a fork inherited hangs the worker (seen with 1 thread)."""
    import multiprocessing

    import cv2
    import numpy as np

    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    worker = context.Process(target=_forked_worker, args=(answers,))
    frame = np.random.rand(2000, 2000, 3).astype(np.float32)
    for _ in range(5):  # the parent's pool has threads now, as after a worker-less epoch
        cv2.GaussianBlur(frame, (31, 31), 5)
    worker.start()
    worker.join(30)
    hung = worker.is_alive()
    if hung:
        worker.kill()
    assert not hung and worker.exitcode == 0
    assert answers.get(timeout=5) == 1


def _loss_spoiled_at(spoiled):
    """RestorationLoss whose value is NaN at the (0-based) calls for which `spoiled` is true."""
    calls = itertools.count()

    class Spoiled(loop.RestorationLoss):
        def forward(self, restored, clean):
            loss = super().forward(restored, clean)
            return loss * math.nan if spoiled(next(calls)) else loss

    return Spoiled


def test_a_step_with_a_non_finite_loss_is_skipped_and_logged(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "RestorationLoss", _loss_spoiled_at(lambda call: call in (1, 2)))
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    config = TrainConfig(model=str(_tiny_model_file(tmp_path)), crop=32, batch_size=2,
                         workers=0, steps=4, out=str(tmp_path / "run"), threads=1,
                         log_every=2, map_weight=0.0)
    weights = train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["skipped"] for entry in log] == [1, 2]  # so far: steps 2 and 3
    assert all(torch.isfinite(v).all() for v in load_weights(weights).state_dict().values()
               if v.is_floating_point())
    state, _ = model_from_checkpoint(tmp_path / "run" / "last.safetensors")
    assert all(torch.isfinite(v).all() for v in state.state_dict().values())


def test_a_run_whose_gradient_stays_non_finite_stops_with_its_checkpoint_intact(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("ALLWEATHER_SCENES", str(tmp_path / "no_scenes"))
    config = TrainConfig(model=str(_tiny_model_file(tmp_path)), crop=32, batch_size=2,
                         workers=0, steps=3, checkpoint_every=3, out=str(tmp_path / "run"),
                         threads=1, map_weight=0.0)
    train(config)
    saved, _ = model_from_checkpoint(tmp_path / "run" / "last.safetensors")
    monkeypatch.setattr(loop, "RestorationLoss", _loss_spoiled_at(lambda call: True))
    config.steps, config.checkpoint_every = 3 + 2 * MAX_IN_A_ROW, 1
    with pytest.raises(FloatingPointError, match=f"{MAX_IN_A_ROW} steps in a row.*resume from"):
        train(config)
    after, progress = model_from_checkpoint(tmp_path / "run" / "last.safetensors")
    assert progress["step"] == 3 + MAX_IN_A_ROW - 1
    for name, value in after.state_dict().items():
        assert torch.equal(value, saved.state_dict()[name]), name
