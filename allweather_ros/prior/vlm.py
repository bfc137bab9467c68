"""A local vision-language model as prior provider (LDR section 3.1).

Any transformers image-text-to-text model (LLaVA, Idefics3/SmolVLM, PaliGemma, Florence-2,
Qwen2-VL families) is asked a chain-of-thought question about the occurrence, type, severity
and location of the weather degradation. Nothing is downloaded unless the user allows it.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from allweather_ros.network_io import checked_frame
from allweather_ros.prior.prior import Encoder, Prior, PriorProvider, prior_from_text
from allweather_ros.prior.text_encoder import MAX_TOKENS

QUESTION = (
    "Look at this camera image and reason step by step. First, is the image degraded by "
    "adverse weather? Second, which kinds: rain streaks, raindrops on the lens, snow, or haze "
    "and fog? Third, how severe is each one: slight, moderate or heavy? Fourth, where in the "
    "image is it? Answer in one or two sentences."
)
TOKEN_SOURCES = ("text_encoder", "vlm_hidden")
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


class VLMPrior(PriorProvider):
    """Prior from a local VLM's answer.

    token_source="text_encoder" (default): the answer, restated in the training descriptions'
    words when the parser recognises it (`prior_from_text`), is encoded by `encoder` (the shared
    TextEncoder, C_txt = 384), so the restorer does not depend on which VLM is used; without an
    encoder the prior is text-only. token_source="vlm_hidden" (paper-faithful, LDR eq. 1): the
    tokens are the VLM's last-layer hidden states that produced the answer tokens, so C_txt is
    the VLM's text hidden size (`token_dim`) and the restorer's prior MLP must be trained for
    that VLM. Either way the answer is parsed into labels, severity and confidence.

    `model` is a local folder, or a hub id already in the local Hugging Face cache;
    `allow_download=True` lets transformers fetch it. `trust_remote_code` is only needed for
    checkpoints that ship their own code (e.g. the original Florence-2 repositories): the
    loader then falls back to AutoModelForCausalLM.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        encoder: Encoder | None = None,
        token_source: str = "text_encoder",
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        max_new_tokens: int = 48,
        question: str = QUESTION,
        allow_download: bool = False,
        trust_remote_code: bool = False,
    ):
        if token_source not in TOKEN_SOURCES:
            raise ValueError(f"token_source must be one of {TOKEN_SOURCES}, got {token_source!r}")
        self.device = device
        self.dtype = dtype or (torch.float16 if device.startswith("cuda") else torch.float32)
        self.token_source = token_source
        self.encoder = encoder
        self.max_new_tokens = max_new_tokens
        self.name = f"vlm:{Path(str(model)).name}"
        self._processor, self._model = _load(model, self.dtype, allow_download, trust_remote_code)
        self._model.to(device).eval()
        self._encoder_decoder = bool(self._model.config.is_encoder_decoder)
        self._prompt = _prompt(self._processor, question, self._encoder_decoder)
        self._special_ids = set(self._processor.tokenizer.all_special_ids)

    @property
    def token_dim(self) -> int | None:
        """C_txt of the tokens this provider produces (None for a text-only prior)."""
        if self.token_source == "vlm_hidden":
            return int(self._model.config.get_text_config().hidden_size)
        return None if self.encoder is None else int(self.encoder.dim)

    def describe(self, frame: np.ndarray) -> Prior:
        image = _to_pil(frame)
        inputs = self._processor(text=[self._prompt], images=[image], return_tensors="pt")
        inputs = {  # PaliGemma's processor adds training "labels": generation must not get them
            k: v.to(self.device, self.dtype if v.is_floating_point() else v.dtype)
            for k, v in inputs.items()
            if k != "labels"
        }
        hidden = self.token_source == "vlm_hidden"
        with torch.inference_mode():
            out = self._model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                num_beams=1,
                return_dict_in_generate=True,
                output_hidden_states=hidden,
            )
        # decoder-only: prompt + answer; encoder-decoder: decoder start token + answer
        start = 1 if self._encoder_decoder else inputs["input_ids"].shape[1]
        answer_ids = out.sequences[0, start:]
        answer = self._processor.decode(answer_ids, skip_special_tokens=True).strip()
        if not hidden:
            return prior_from_text(answer, self.name, self.encoder)
        steps = out.decoder_hidden_states if self._encoder_decoder else out.hidden_states
        tokens = self._answer_states(steps, answer_ids)
        return replace(prior_from_text(answer, self.name), tokens=tokens)

    def _answer_states(self, steps, answer_ids: torch.Tensor) -> torch.Tensor:
        """(L, H) last-layer states that produced the answer's non-special tokens (at least one)."""
        states = torch.stack([layers[-1][0, -1] for layers in steps])  # one per generated token
        keep = [i for i, t in enumerate(answer_ids.tolist()) if t not in self._special_ids]
        return states[keep or [0]][:MAX_TOKENS].float().cpu()


def _load(model: str | Path, dtype: torch.dtype, allow_download: bool, trust_remote_code: bool):
    """(processor, model) from a folder or the local cache; FileNotFoundError if neither has it."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor

    path = Path(model).expanduser()
    if not path.is_dir() and not (_REPO_ID.fullmatch(str(model)) and not path.exists()):
        raise FileNotFoundError(f"VLM folder not found: {path}")
    source = str(path) if path.is_dir() else str(model)
    kwargs = {"local_files_only": not allow_download, "trust_remote_code": trust_remote_code}
    try:
        processor = AutoProcessor.from_pretrained(source, **kwargs)
        try:
            vlm = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype, **kwargs)
        except ValueError:  # an architecture the auto class does not map (remote-code models)
            if not trust_remote_code:
                raise
            vlm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except OSError as e:
        where = "a local folder or the local Hugging Face cache"
        hint = "" if allow_download else " (downloads are off: pass allow_download=True)"
        raise FileNotFoundError(f"VLM {str(model)!r} not found in {where}{hint}: {e}") from e
    return processor, vlm


def _prompt(processor, question: str, encoder_decoder: bool) -> str:
    """The question in the model's chat format when it has one, else after its image token.
    Encoder-decoder VLMs (Florence-2) see the image in the encoder: their processor places it."""
    if encoder_decoder:
        return question
    if getattr(processor, "chat_template", None):
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
        ]
        return processor.apply_chat_template(messages, add_generation_prompt=True)
    image_token = getattr(processor, "image_token", None)
    return f"{image_token}\n{question}" if image_token else question


def _to_pil(frame: np.ndarray):
    """float RGB (H, W, 3) in [0, 1] -> 8-bit PIL image, the input VLM processors expect."""
    from PIL import Image

    return Image.fromarray((np.clip(checked_frame(frame), 0.0, 1.0) * 255.0 + 0.5)
                           .astype(np.uint8))
