"""VLMPrior with tiny random VLMs built here, saved, and loaded back by the production loader.

Random weights answer gibberish, so these tests check the plumbing (offline loading, prompt,
generation, both token sources, shapes), not the answers' content.
"""
import os
import socket

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

transformers = pytest.importorskip("transformers")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

from allweather_ros.prior.text_encoder import MAX_TOKENS  # noqa: E402
from allweather_ros.prior.vlm import QUESTION, VLMPrior  # noqa: E402

HIDDEN = 64
IMAGE = 64
PATCH = 16
LLAVA_CHAT = (
    "{% for m in messages %}USER: {% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %} ASSISTANT:{% endif %}"
)


def tokenizer(*special, image_token=True):
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<s>", "</s>", "<pad>", *special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(["is there heavy rain, raindrops, snow or haze fog? slight"] * 20,
                            trainer)
    extra = {"extra_special_tokens": {"image_token": "<image>"}} if image_token else {}
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", **extra)


def llama(tok):
    return dict(model_type="llama", hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def vision(model_type):
    return dict(model_type=model_type, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, image_size=IMAGE, patch_size=PATCH)


def build_llava(folder):
    tok = tokenizer("<image>")
    image_processor = transformers.CLIPImageProcessor(
        size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE})
    processor = transformers.LlavaProcessor(
        image_processor=image_processor, tokenizer=tok, patch_size=PATCH,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT)
    config = transformers.LlavaConfig(
        vision_config=vision("clip_vision_model"), text_config=llama(tok),
        image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
        vision_feature_select_strategy="default")
    transformers.LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def build_idefics3(folder):
    tok = tokenizer("<image>", "<fake_token_around_image>", "<global-img>",
                    "<end_of_utterance>", image_token=False)
    image_processor = transformers.Idefics3ImageProcessor(
        do_image_splitting=False, size={"longest_edge": IMAGE},
        max_image_size={"longest_edge": IMAGE})
    processor = transformers.Idefics3Processor(
        image_processor=image_processor, tokenizer=tok, image_seq_len=(IMAGE // PATCH) ** 2 // 4)
    config = transformers.Idefics3Config(
        vision_config={k: v for k, v in vision("idefics3_vision").items() if k != "model_type"},
        text_config=llama(tok), image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=2, pad_token_id=tok.pad_token_id)
    transformers.Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def build_paligemma(folder):
    tok = tokenizer("<image>")
    image_processor = transformers.SiglipImageProcessor(size={"height": IMAGE, "width": IMAGE})
    image_processor.image_seq_length = (IMAGE // PATCH) ** 2
    processor = transformers.PaliGemmaProcessor(image_processor=image_processor, tokenizer=tok)
    text = {**llama(tok), "model_type": "gemma", "head_dim": 16}
    config = transformers.PaliGemmaConfig(
        vision_config={**vision("siglip_vision_model"), "projection_dim": HIDDEN},
        text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
        projection_dim=HIDDEN)
    transformers.PaliGemmaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def build_florence2(folder):
    tok = tokenizer("<image>")
    image_processor = transformers.CLIPImageProcessor(
        size={"height": IMAGE, "width": IMAGE}, do_center_crop=False)
    image_processor.image_seq_length = (IMAGE // 8) ** 2 + 1  # DaViT stride 8, plus one
    processor = transformers.Florence2Processor(image_processor=image_processor, tokenizer=tok)
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
               eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.eos_token_id)
    text = dict(model_type="bart", d_model=HIDDEN, encoder_layers=1, decoder_layers=1,
                encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * HIDDEN,
                decoder_ffn_dim=2 * HIDDEN, vocab_size=len(tok), max_position_embeddings=1024,
                **ids)
    davit = dict(depths=(1, 1), patch_size=(7, 3), patch_stride=(4, 2), patch_padding=(3, 1),
                 patch_prenorm=(False, True), embed_dim=(32, HIDDEN), num_heads=(2, 4),
                 num_groups=(2, 4), window_size=4, projection_dim=HIDDEN)
    config = transformers.Florence2Config(
        vision_config=davit, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"))
    transformers.Florence2ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


BUILDERS = {"llava": build_llava, "idefics3": build_idefics3, "paligemma": build_paligemma,
            "florence2": build_florence2}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every connection attempt is recorded and refused; each test asserts there was none."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"network access attempted in an offline test: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield
    assert attempts == []


@pytest.fixture(scope="module")
def tiny_vlms(tmp_path_factory):
    torch.manual_seed(0)
    folders = {}
    for name, build in BUILDERS.items():
        folders[name] = tmp_path_factory.mktemp(name)
        build(folders[name])
    return folders


class CountingEncoder:
    dim = 8

    def __init__(self):
        self.texts = []

    def encode(self, text):
        self.texts.append(text)
        return torch.ones(max(1, len(text.split())), self.dim)


def frame():
    return np.random.default_rng(0).random((48, 80, 3), dtype=np.float32)


@pytest.mark.parametrize("family", BUILDERS)
def test_text_encoder_tokens(tiny_vlms, family):
    encoder = CountingEncoder()
    provider = VLMPrior(tiny_vlms[family], encoder=encoder, max_new_tokens=6)
    prior = provider.describe(frame())
    assert encoder.texts == [prior.text]  # the answer itself is what gets encoded
    assert prior.tokens.shape[1] == encoder.dim == provider.token_dim
    assert prior.provider == f"vlm:{tiny_vlms[family].name}"
    assert set(prior.labels) == {"rain", "raindrop", "snow", "haze"}
    assert 0.0 <= prior.confidence <= 1.0


@pytest.mark.parametrize("family", BUILDERS)
def test_vlm_hidden_tokens_are_the_answer_states(tiny_vlms, family):
    provider = VLMPrior(tiny_vlms[family], token_source="vlm_hidden", max_new_tokens=6)
    prior = provider.describe(frame())
    assert provider.token_dim == HIDDEN
    assert prior.tokens.dtype == torch.float32 and prior.tokens.shape[1] == HIDDEN
    assert 1 <= prior.tokens.shape[0] <= 6
    assert torch.isfinite(prior.tokens).all()


def test_generation_is_greedy_and_capped(tiny_vlms):
    provider = VLMPrior(tiny_vlms["llava"], token_source="vlm_hidden", max_new_tokens=3)
    first, second = provider.describe(frame()), provider.describe(frame())
    assert first.text == second.text and torch.equal(first.tokens, second.tokens)
    assert first.tokens.shape[0] <= 3


def test_hidden_tokens_are_capped_at_max_tokens(tiny_vlms):
    provider = VLMPrior(tiny_vlms["llava"], token_source="vlm_hidden",
                        max_new_tokens=MAX_TOKENS + 16)
    provider._model.generation_config.eos_token_id = None  # generate all MAX_TOKENS + 16
    provider._special_ids = set()  # and keep every one of them
    assert provider.describe(frame()).tokens.shape[0] == MAX_TOKENS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_in_half_precision_and_returns_cpu_float_tokens(tiny_vlms):
    provider = VLMPrior(tiny_vlms["llava"], token_source="vlm_hidden", device="cuda",
                        max_new_tokens=4)
    assert provider.dtype == torch.float16
    assert next(provider._model.parameters()).dtype == torch.float16
    tokens = provider.describe(frame()).tokens
    assert tokens.device.type == "cpu" and tokens.dtype == torch.float32


def test_prompt_uses_the_chat_template_when_there_is_one(tiny_vlms):
    llava = VLMPrior(tiny_vlms["llava"])
    assert llava._prompt.startswith("USER: <image>\n") and llava._prompt.endswith("ASSISTANT:")
    assert "severe" in llava._prompt
    idefics3 = VLMPrior(tiny_vlms["idefics3"])  # no template: image token, then the question
    assert idefics3._prompt.startswith("<image>\n") and "severe" in idefics3._prompt
    florence2 = VLMPrior(tiny_vlms["florence2"])  # encoder-decoder: its processor adds the image
    assert florence2._prompt == QUESTION


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="VLM folder not found"):
        VLMPrior(tmp_path / "no-such-vlm")


def test_uncached_hub_id_is_not_downloaded():
    with pytest.raises(FileNotFoundError, match="allow_download=True"):
        VLMPrior("nobody-here/no-such-tiny-vlm")


def test_bad_token_source_is_rejected(tiny_vlms):
    with pytest.raises(ValueError, match="token_source"):
        VLMPrior(tiny_vlms["llava"], token_source="logits")


def test_frame_must_be_rgb(tiny_vlms):
    with pytest.raises(ValueError, match="RGB"):
        VLMPrior(tiny_vlms["llava"]).describe(np.zeros((8, 8), np.float32))


def test_switching_to_the_vlm_at_run_time_gets_the_start_up_fallback(tiny_vlms,
                                                                    pipeline_config):
    """Pipeline.reconfigure builds the provider as build_pipeline does: the VLM with the
    built-in estimator standing in when it fails; a folder that does not load changes nothing."""
    from dataclasses import replace

    from allweather_ros.pipeline import build_pipeline

    vlm = {"provider": "vlm", "vlm_model": str(tiny_vlms["llava"])}
    started = build_pipeline(replace(pipeline_config, **vlm))
    switched = build_pipeline(pipeline_config)
    try:
        assert switched.describe()["refresher"]["fallback"] is None
        with pytest.raises(Exception, match="absent"):
            switched.reconfigure(provider="vlm", vlm_model=str(tiny_vlms["llava"] / "absent"))
        assert switched.describe()["refresher"]["primary"] == "none"
        assert switched.config.provider == "none"
        switched.reconfigure(**vlm)
        at_start, at_run_time = (p.describe()["refresher"] for p in (started, switched))
        assert at_run_time["primary"] == at_start["primary"] == f"vlm:{tiny_vlms['llava'].name}"
        assert at_run_time["fallback"] == at_start["fallback"] == "builtin"
    finally:
        started.close()
        switched.close()
