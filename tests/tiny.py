"""Tiny random models and tokenizers for offline tests.

Everything here is built locally from configs in well under a second, so tests never touch the Hub. Three
architectures are covered: Llama (BOS added by the tokenizer, no pad token), Qwen3 (ChatML, pad != eos, no BOS)
and BERT (an encoder with [CLS]/[SEP] and no eos token).
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    LlamaConfig,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForSequenceClassification,
)

ARCHITECTURES = ("llama", "qwen3", "bert")

_WORDS = (
    "the sky is blue green red what color of a an and or to you I me we it this that yes no please thanks "
    "human assistant user system tool weather city paris london rome today tomorrow sunny rainy cold warm hot "
    "how can help with question answer good bad better worse best worst sorry sure here there is are was were "
    "pen prank joke friend make list write code python function return value number one two three four five "
    "0 1 2 3 4 5 6 7 8 9 . , ! ? : ; ' \" ( ) [ ] { } - _ = + * / \\ < > | @ # $ % ^ & ~ `"
).split()

# A generic chat template that renders tools, tool calls and a template keyword (`enable_thinking`), so tests can
# check that `tools` and `chat_template_kwargs` reach the template.
_GENERIC_TEMPLATE = (
    "{{ bos_token if bos_token else '' }}"
    "{% if tools %}<|system|>\nTools: {{ tools | tojson }}{{ eos_token }}\n{% endif %}"
    "{% if enable_thinking is defined and not enable_thinking %}<|nothink|>\n{% endif %}"
    "{% for m in messages %}<|{{ m['role'] }}|>\n"
    "{% if m['content'] %}{{ m['content'] }}{% endif %}"
    "{% if m.tool_calls is defined and m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}"
    "{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CHATML_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] %}{{ m['content'] }}{% endif %}"
    "{% if m.tool_calls is defined and m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus() -> list[str]:
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(len(_WORDS), (400, 12), generator=g).tolist()
    return [" ".join(_WORDS[i] for i in row) for row in idx] + [" ".join(_WORDS)]


def _byte_level_bpe(special_tokens: list[str], vocab_size: int = 512) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    return tok


def make_tokenizer(arch: str) -> PreTrainedTokenizerFast:
    """A small fast tokenizer with a chat template, shaped like the real one of `arch`."""
    if arch == "llama":
        # Like Llama 2: BOS prepended by the tokenizer, eos `</s>`, and no pad token (the trainer must fall back).
        tok = _byte_level_bpe(["<unk>", "<s>", "</s>"])
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
        out = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
        out.chat_template = _GENERIC_TEMPLATE
    elif arch == "qwen3":
        # Like Qwen: ChatML, eos `<|im_end|>`, pad `<|endoftext|>`, nothing added by the tokenizer itself.
        tok = _byte_level_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        out = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
        out.chat_template = _CHATML_TEMPLATE
    elif arch == "bert":
        # Like BERT/MiniLM: WordPiece, `[CLS] text [SEP]`, pad `[PAD]`, no eos token.
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=special, show_progress=False)
        tok.train_from_iterator(_corpus(), trainer)
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
        )
        out = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
        out.chat_template = _GENERIC_TEMPLATE
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHITECTURES}")
    out.model_max_length = 512
    return out


def make_model(arch: str, tokenizer: PreTrainedTokenizerFast, seed: int = 0, **overrides) -> torch.nn.Module:
    """A randomly initialised `*ForSequenceClassification` with `num_labels=1`, sized for the tokenizer."""
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tokenizer), num_labels=1, pad_token_id=tokenizer.pad_token_id)
    if arch == "llama":
        config = LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **common,
        )
        config.update(overrides)
        return LlamaForSequenceClassification(config)
    if arch == "qwen3":
        config = Qwen3Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=1024,
            eos_token_id=tokenizer.eos_token_id,
            **common,
        )
        config.update(overrides)
        return Qwen3ForSequenceClassification(config)
    if arch == "bert":
        config = BertConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=512,
            **common,
        )
        config.update(overrides)
        return BertForSequenceClassification(config)
    raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHITECTURES}")


def save_tiny(arch: str, directory: str) -> str:
    """Save a tiny model and its tokenizer to `directory`, so it can be loaded by path like a hub checkpoint."""
    tokenizer = make_tokenizer(arch)
    model = make_model(arch, tokenizer)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
