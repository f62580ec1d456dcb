"""Tiny language models and tokenizers built from a config in code: for tests and the CPU proof that
GRPO learns, where nothing may be downloaded.

The tokenizer is word-level over a vocabulary read from a corpus: text is split on whitespace, then
into quoted strings (`"chair_1"`), tags (`<think>`), numbers (`-1.5`), names (`chair_1`) and single
punctuation marks, and each piece is one token. So tags, object names and coordinates are single tokens
and a completion of a few dozen tokens holds a whole relation graph. Decoding joins tokens with single
spaces, which the reward parser reads as it reads any whitespace: `{ "chair_1" : [ 1.5 , 2 ] }` is JSON.

The model is a Qwen2-style decoder (the text half of Qwen2.5-VL, the paper's model family), small
enough to train on two CPU cores in minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


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


def word_tokenizer(words: Iterable[str], *, model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `words` (pieces as `vocabulary_of` makes them), plus pad, eos, unk."""
    from tokenizers import Tokenizer, decoders, models

    vocab: dict[str, int] = {}
    for word in (PAD, EOS, UNK, *words):
        if any(c.isspace() for c in word):
            raise ValueError(f"a word-level token cannot hold whitespace: {word!r}")
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = _pre_tokenizer()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with one space
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   model_max_length=model_max_length, padding_side="left")


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
