"""Shared fixtures: small seeded models, priors and scenes, so tests are fast and repeatable."""
import cv2
import numpy as np
import pytest
import torch

from allweather_ros.data.sources import folder_scenes, split_of
from allweather_ros.model import LDRNet
from allweather_ros.pipeline import PipelineConfig


@pytest.fixture
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy CPU the threads wait for each
    other: 20 training steps took 27 s with two threads and 0.6 s with one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    """Forty small smooth 'photos', enough for every split to hold a few."""
    folder = tmp_path_factory.mktemp("scenes") / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        small = rng.integers(0, 255, (6, 8, 3), np.uint8)
        cv2.imwrite(str(folder / f"p{i:02d}.png"), cv2.resize(small, (96, 72)))
    found = folder_scenes(folder)
    assert {split_of(s) for s in found} == {"train", "val", "test"}
    return found


TINY = dict(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1), ldr_blocks=1,
            prior_dim=24, heads=2, num_experts=4, top_k=2, expert_expand=2, smooth_kernel=3)


@pytest.fixture
def tiny_model() -> LDRNet:
    torch.manual_seed(0)
    return LDRNet(**TINY).eval()


class HashEncoder:
    """A deterministic stand-in for the text encoder: different texts, different tokens."""

    def encode(self, text: str) -> torch.Tensor:
        g = torch.Generator().manual_seed(abs(hash(text)) % 2**31)
        return torch.randn(3 + len(text) % 5, TINY["prior_dim"], generator=g)


def random_prior(length: int, dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, length, dim, generator=g), torch.ones(1, length, dtype=torch.bool)


def trained_like(model: LDRNet) -> LDRNet:
    """Open the paths that start closed at initialisation (zero residual scales, zero output
    conv), as training would, so the prior's effect on the frame is visible."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.fill_(0.5)
            elif name.startswith(("ending.", "gain.")):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def pipeline_config(tmp_path_factory) -> PipelineConfig:
    """A tiny model with the text encoder's 384-d prior, torch backend, no prior estimator."""
    from allweather_ros.model.weights import save_weights

    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    weights = save_weights(LDRNet(**{**TINY, "prior_dim": 384}).eval(),
                           folder / "tiny.safetensors")
    return PipelineConfig(weights=str(weights), backend="torch", provider="none",
                          cache_dir=str(folder / "cache"))


@pytest.fixture(scope="module")
def domain(request):
    """A ROS domain of this test module's own, claimed so concurrent runs never share one."""
    from test_ros_node_integration import claimed_domain

    with claimed_domain(request.module.__name__) as claimed:
        yield claimed


@pytest.fixture(scope="module")
def probe(domain):
    """This test process's participant in the module's domain."""
    from test_ros_node_integration import Probe

    made = Probe(domain)
    yield made
    made.close()
