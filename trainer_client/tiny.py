"""Tiny language models and tokenizers built from a config in code: for tests and the CPU proof that
GRPO learns, where nothing may be downloaded.

The tokenizer is word-level over a vocabulary read from a corpus: text is split on whitespace, then
into quoted strings (`"chair_1"`), tags (`<think>`), numbers (`-1.5`), names (`chair_1`) and single
punctuation marks, and each piece is one token. So tags, object names and coordinates are single tokens
and a completion of a few dozen tokens holds a whole relation graph. Decoding joins tokens with single
spaces, which the reward parser reads as it reads any whitespace: `{ "chair_1" : [ 1.5 , 2 ] }` is JSON.

The model is a Qwen2-style decoder (the text half of Qwen2.5-VL, the paper's model family), small
enough to train on two CPU cores in minutes; `tiny_qwen2_5_vl` adds Qwen2.5-VL's vision tower, for the
video path on CPU and the GPU smoke (with Qwen's chat markers and video placeholders as special tokens
and a chat template that writes a video as `<|vision_start|><|video_pad|><|vision_end|>`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from trainer_client.rollout import VISION_TOKENS

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
# Qwen2.5-VL's markers: chat turns, and a video's start, placeholder (expanded to its token count) and end
QWEN_VL_TOKENS = ("<|im_start|>", "<|im_end|>", *VISION_TOKENS)
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


PIECES = r"\"[^\"\s]*\"|</?[A-Za-z_]+>|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|[^\sA-Za-z0-9_]"


def _pre_tokenizer() -> Any:
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                    pre_tokenizers.Split(Regex(PIECES), behavior="isolated")])


def vocabulary_of(texts: Iterable[str]) -> list[str]:
    """The pieces of `texts`, in order of first appearance: a vocabulary for `word_tokenizer`."""
    split = _pre_tokenizer()
    seen: dict[str, None] = {}
    for text in texts:
        for piece, _ in split.pre_tokenize_str(text):
            seen.setdefault(piece, None)
    return list(seen)


def word_tokenizer(words: Iterable[str], *, model_max_length: int = 1024,
                   special: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `words` (pieces as `vocabulary_of` makes them), plus pad, eos, unk and
    `special` tokens (kept whole, whatever they hold, and dropped by `skip_special_tokens`)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models

    special = list(special)
    vocab: dict[str, int] = {}
    for word in (PAD, EOS, UNK, *special, *words):
        if any(c.isspace() for c in word):
            raise ValueError(f"a word-level token cannot hold whitespace: {word!r}")
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = _pre_tokenizer()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with one space
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (PAD, EOS, UNK, *special)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                        model_max_length=model_max_length, padding_side="left",
                                        extra_special_tokens=special)
    if special:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_qwen2(tokenizer: PreTrainedTokenizerFast, *, hidden: int = 64, layers: int = 2, heads: int = 4,
               kv_heads: int = 2, intermediate: int = 128, max_positions: int = 512, seed: int = 0) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 decoder over `tokenizer`'s vocabulary (seeded)."""
    import torch

    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=kv_heads, intermediate_size=intermediate, max_position_embeddings=max_positions,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id, use_cache=True,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def tiny_qwen2_5_vl(tokenizer: PreTrainedTokenizerFast, *, hidden: int = 64, layers: int = 2, heads: int = 4,
                    vision_depth: int = 1, seed: int = 0) -> Any:
    """A randomly initialised Qwen2.5-VL (vision tower and decoder) over `tokenizer`, which must hold
    `QWEN_VL_TOKENS` (`word_tokenizer(..., special=QWEN_VL_TOKENS)`)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids: dict[str, int] = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in QWEN_VL_TOKENS}  # type: ignore[arg-type]
    half = hidden // heads // 2  # the rotary half of a head, split over time, height and width
    section = [half // 4, half * 3 // 8, half * 3 // 8]  # Qwen2.5-VL-7B's [16, 24, 24] of 64, scaled
    section[0] += half - sum(section)
    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": hidden, "intermediate_size": 2 * hidden,
                     "num_hidden_layers": layers, "num_attention_heads": heads,
                     "num_key_value_heads": max(1, heads // 2), "max_position_embeddings": 4096,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section},
                     "bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id, "tie_word_embeddings": True},
        vision_config={"depth": vision_depth, "hidden_size": hidden, "intermediate_size": hidden,
                       "num_heads": max(1, heads // 2), "out_hidden_size": hidden, "fullatt_block_indexes": [0],
                       "window_size": 56},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
