"""The pinned all-MiniLM-L6-v2 text encoder: verification, shapes, padding, determinism, cache."""
import hashlib

import pytest
import torch

from allweather_ros.description import Degradation, describe
from allweather_ros.prior.providers import FixedPrior, NoPrior
from allweather_ros.prior.text_encoder import (
    BUNDLED_SHA256,
    MAX_TOKENS,
    WEIGHT_FILE,
    TextEncoder,
    WeightHashError,
    bundled_model_dir,
    pad_tokens,
)


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


def test_encode_gives_384d_tokens_one_per_wordpiece(encoder):
    tokens = encoder.encode("heavy rain")
    # [CLS] heavy rain [SEP]: padding and nothing else excluded
    assert tokens.shape == (4, 384) and tokens.dtype == torch.float32
    assert encoder.dim == 384
    assert torch.isfinite(tokens).all()


def test_encode_caps_long_texts_at_max_tokens(encoder):
    tokens = encoder.encode(" ".join(["heavy rain and dense fog"] * 40))
    assert tokens.shape == (MAX_TOKENS, 384)


def test_encode_batch_pads_and_masks(encoder):
    texts = ["fog", describe([Degradation("rain", "heavy"), Degradation("haze", "slight")])]
    tokens, mask = encoder.encode_batch(texts)
    lengths = [encoder.encode(t).shape[0] for t in texts]
    assert tokens.shape == (2, max(lengths), 384) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == lengths
    for i, text in enumerate(texts):
        assert torch.equal(tokens[i, : lengths[i]], encoder.encode(text))
        assert not tokens[i, lengths[i]:].any()


def test_encode_is_deterministic_and_cached(encoder):
    text = "moderate falling snow in the upper half"
    first = encoder.encode(text)
    first.zero_()  # callers get copies: the cache cannot be corrupted
    again = encoder.encode(text)
    assert again.abs().sum() > 0
    assert torch.equal(again, torch.from_numpy(encoder._forward(text)))  # as a fresh pass


def test_encode_separates_different_weather(encoder):
    def sentence(text):
        return encoder.encode(text).mean(0)

    rain = sentence("heavy rain streaks")
    assert torch.cosine_similarity(rain, sentence("heavy rain streaks"), dim=0) > 0.999
    assert torch.cosine_similarity(rain, sentence("dense haze"), dim=0) < 0.99


def test_pad_tokens_rejects_empty():
    with pytest.raises(ValueError):
        pad_tokens([])


def test_tampered_weights_are_refused_naming_file_and_hashes(tmp_path):
    (tmp_path / WEIGHT_FILE).write_bytes(b"not the pinned weights")
    with pytest.raises(WeightHashError) as err:
        TextEncoder(tmp_path, expected_sha256=BUNDLED_SHA256)
    message = str(err.value)
    assert str(tmp_path / WEIGHT_FILE) in message and BUNDLED_SHA256 in message
    assert hashlib.sha256(b"not the pinned weights").hexdigest() in message


def test_user_folder_with_its_own_hash_loads(tmp_path):
    for f in bundled_model_dir().iterdir():
        if f.is_file():
            (tmp_path / f.name).symlink_to(f)
    with pytest.raises(WeightHashError):
        TextEncoder(tmp_path, expected_sha256="0" * 64)
    own = TextEncoder(tmp_path, expected_sha256=BUNDLED_SHA256.upper(), max_tokens=8)
    assert own.encode(" ".join(["rain"] * 20)).shape == (8, 384)


def test_user_folder_needs_a_hash_and_weights(tmp_path):
    with pytest.raises(ValueError, match="expected_sha256"):
        TextEncoder(tmp_path)
    with pytest.raises(FileNotFoundError, match=WEIGHT_FILE):
        TextEncoder(tmp_path, expected_sha256=BUNDLED_SHA256)
    with pytest.raises(ValueError, match="max_tokens"):
        TextEncoder(max_tokens=MAX_TOKENS + 1)


def test_fixed_and_no_prior_carry_encoder_tokens(encoder):
    fixed = FixedPrior("Dense fog near the river.", encoder).describe(None)
    assert fixed.provider == "fixed" and fixed.confidence == 1.0
    assert fixed.labels["haze"] > 0.5 and fixed.severity == "heavy"
    # The tokens are those of the training descriptions' wording the restorer learnt.
    assert fixed.text == "The image is degraded by heavy haze across the whole frame."
    assert fixed.source_text == "Dense fog near the river."
    assert torch.equal(fixed.tokens, encoder.encode(fixed.text))
    unrecognised = FixedPrior("The lens looks odd today.", encoder).describe(None)
    assert unrecognised.text == "The lens looks odd today." and unrecognised.source_text is None
    generic = NoPrior(encoder).describe(None)
    assert torch.equal(generic.tokens, encoder.encode(generic.text))
