"""DeferredBackend: the fallback serves while the primary is made in a thread, then it switches."""
import logging
import threading
import time

import pytest
import torch

from allweather_ros.model import LDROutput, PriorCache
from allweather_ros.runtime.backend import Backend
from allweather_ros.runtime.deferred import DeferredBackend

IMAGE = torch.zeros(1, 3, 8, 8)


def prior(value: float) -> PriorCache:
    return PriorCache(torch.full((1, 2, 4, 8), value), torch.zeros(1, 4))


class Fake(Backend):
    """Answers with a constant frame naming itself; remembers the priors it was given."""

    def __init__(self, name: str, value: float, prior_delay: float = 0.0):
        self.name, self.value, self.prior_delay = name, value, prior_delay
        self.priors: list[float] = []

    def set_prior(self, cache: PriorCache) -> None:
        time.sleep(self.prior_delay)
        self.priors.append(cache.kv.flatten()[0].item())

    def infer(self, image: torch.Tensor) -> LDROutput:
        if not self.priors:
            raise RuntimeError("set_prior must be called before infer")
        restored = torch.full_like(image, self.value)
        return LDROutput(restored, restored[:, :1], restored[:, :2], restored[:, :2].long())


class Gate:
    """A primary factory that blocks until released, as a long TensorRT build does."""

    def __init__(self, backend=None, error=None):
        self.backend, self.error = backend, error
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self):
        self.started.set()
        assert self.release.wait(10)
        if self.error is not None:
            raise self.error
        return self.backend


def test_serves_the_fallback_while_the_primary_builds_then_switches():
    gate = Gate(Fake("tensorrt", 2.0))
    deferred = DeferredBackend(gate, Fake("onnxruntime", 1.0), label="tensorrt")
    deferred.set_prior(prior(0.5))
    assert gate.started.wait(5)
    assert deferred.state == "building" and deferred.name == "onnxruntime"
    assert deferred.infer(IMAGE).restored.unique().item() == 1.0
    assert deferred.describe()["deferred"]["state"] == "building"

    gate.release.set()
    assert deferred.wait(5)
    assert deferred.state == "ready" and deferred.name == "tensorrt"
    assert deferred.infer(IMAGE).restored.unique().item() == 2.0
    assert gate.backend.priors == [0.5]  # primed with the prior before taking over
    info = deferred.describe()
    assert info["backend"] == "tensorrt" and info["deferred"]["build_seconds"] > 0


def test_a_prior_set_during_priming_reaches_the_primary_before_the_switch():
    primary = Fake("tensorrt", 2.0, prior_delay=0.2)
    gate = Gate(primary)
    deferred = DeferredBackend(gate, Fake("torch", 1.0))
    deferred.set_prior(prior(0.125))
    gate.release.set()
    time.sleep(0.05)  # the build thread is now priming the primary with 0.125
    deferred.set_prior(prior(0.875))
    assert deferred.wait(5)
    assert primary.priors[-1] == 0.875
    deferred.set_prior(prior(0.75))  # after the switch, priors go to the primary
    assert primary.priors[-1] == 0.75


def test_build_failure_keeps_the_fallback_and_logs_why(caplog):
    gate = Gate(error=RuntimeError("TensorRT could not parse model.onnx"))
    fallback = Fake("onnxruntime", 1.0)
    with caplog.at_level(logging.ERROR, logger="allweather_ros.runtime.deferred"):
        deferred = DeferredBackend(gate, fallback, label="tensorrt")
        deferred.set_prior(prior(0.25))
        gate.release.set()
        assert deferred.wait(5)
    assert deferred.state == "failed" and deferred.name == "onnxruntime"
    assert "could not parse" in caplog.text and "staying on onnxruntime" in caplog.text
    assert deferred.infer(IMAGE).restored.unique().item() == 1.0
    assert deferred.describe()["deferred"]["error"] == "TensorRT could not parse model.onnx"
    deferred.set_prior(prior(0.375))
    assert fallback.priors == [0.25, 0.375]


def test_infer_never_waits_for_the_build():
    gate = Gate(Fake("tensorrt", 2.0))
    deferred = DeferredBackend(gate, Fake("torch", 1.0))
    deferred.set_prior(prior(0.5))
    assert gate.started.wait(5)
    start = time.monotonic()
    for _ in range(100):
        deferred.infer(IMAGE)
    assert time.monotonic() - start < 1.0
    assert deferred.state == "building"
    gate.release.set()
    assert deferred.wait(5)


@pytest.mark.parametrize("with_prior", [False, True])
def test_switch_without_a_prior_leaves_set_prior_to_the_caller(with_prior):
    primary = Fake("tensorrt", 2.0)
    deferred = DeferredBackend(lambda: primary, Fake("torch", 1.0))
    assert deferred.wait(5) and deferred.state == "ready"
    assert primary.priors == []
    if with_prior:
        deferred.set_prior(prior(0.625))
        assert deferred.infer(IMAGE).restored.unique().item() == 2.0
    else:
        with pytest.raises(RuntimeError, match="set_prior"):
            deferred.infer(IMAGE)
