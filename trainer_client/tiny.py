"""Tiny language models and tokenizers built from a config in code: for tests and the CPU proof that
GRPO learns, where nothing may be downloaded.

The tokenizer is word-level over a fixed vocabulary: text is split on whitespace and every word is one
token, so tags, object names and coordinates are single tokens and a completion of a few dozen tokens
holds a whole relation graph. Decoding joins tokens with single spaces, which the reward parser reads
as it reads any whitespace (`{ "chair" : [ 1.5 , 2 ] }` is JSON).

The model is a Qwen2-style decoder (the text half of Qwen2.5-VL, the paper's model family), small
enough to train on two CPU cores in minutes.
"""

from __future__ import annotations

from collections.abc import Iterable

from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"


def word_tokenizer(words: Iterable[str], *, model_max_length: int = 1024) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: one token per whitespace-separated word of `words`, plus pad, eos, unk."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab: dict[str, int] = {}
    for word in (PAD, EOS, UNK, *words):
        if any(c.isspace() for c in word):
            raise ValueError(f"a word-level token cannot hold whitespace: {word!r}")
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
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
