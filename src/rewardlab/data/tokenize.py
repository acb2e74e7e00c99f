"""Turn one preference example into token ids: chosen and rejected as TRL 1.16's `RewardTrainer` does, or the K
responses of a ranking (`tokenize_ranking`), each tokenized exactly as a pair's response would be.

The ids must match what the model sees at scoring time: plain text is tokenized with the tokenizer's default special
tokens, exactly as `pipeline("text-classification")` would, and conversations go through the chat template with the
row's `tools` and `chat_template_kwargs`. The one deliberate difference from TRL is that the eos token is appended
as a token id rather than as text: the same ids for BPE tokenizers, but no doubled `[SEP]` on BERT-style tokenizers
whose post-processor already ends every sequence with the eos.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rewardlab.data.formats import LEGACY_ID_FIELDS, PreferenceFormat, detect_format, ranked_items
from rewardlab.errors import InvalidRowError, RewardlabError

CHAT_TEMPLATE_ERROR = "chat template error"


def _strip_none(value: Any) -> Any:
    """Drop dict keys whose value is None, recursively.

    Arrow stores a column of dicts as one struct type, so a key present in any row appears in every row, set to None
    where the row lacked it (e.g. `tool_calls: None` on every plain message, `enable_thinking: None` in the
    `chat_template_kwargs` of rows that did not set it). Templates test `is defined` as often as truthiness, so these
    phantom keys would change the rendering; removing them gives back what the user wrote.
    """
    if isinstance(value, Mapping):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _normalize_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages without Arrow's phantom None keys; `content` is kept even when None (a message with tool calls)."""
    out = []
    for message in messages:
        clean = _strip_none(message)
        if "content" in message and "content" not in clean:
            clean["content"] = None
        out.append(clean)
    return out


def _parse_tools(tools: Any) -> list | None:
    if tools is None:
        return None
    if isinstance(tools, str):
        tools = json.loads(tools)
    return _strip_none(tools) if tools else None


def has_chat_template(tokenizer: Any) -> bool:
    """Whether `tokenizer` can render conversations (a template string, or a dict of named ones)."""
    return bool(getattr(tokenizer, "chat_template", None))


def no_chat_template_error(dataset_name: str | None = None) -> RewardlabError:
    """The error for a conversational dataset with a tokenizer that has no chat template."""
    where = f"the {dataset_name} dataset" if dataset_name else "the dataset"
    return RewardlabError(
        f"{where} is conversational (message lists) but the tokenizer has no chat template; set one with "
        "`chat_template_path` (a .jinja file, or a tokenizer directory / hub id whose template is copied) or "
        "`tokenizer.chat_template`, or give the data as plain text"
    )


def render_messages(
    tokenizer: Any, messages: list, field: str, tools: list | None, kwargs: dict[str, Any]
) -> list[int]:
    """Token ids of a conversation through the chat template; a failing template is an `InvalidRowError` on `field`."""
    try:
        result = tokenizer.apply_chat_template(
            _normalize_messages(messages), tokenize=True, return_dict=True, tools=tools, **kwargs
        )
    except Exception as e:  # jinja2.TemplateError, TypeError/ValueError raised inside templates, ...
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        reason = f"chat template failed: {type(e).__name__}: {message}"[:300]
        raise InvalidRowError(None, field, reason, CHAT_TEMPLATE_ERROR) from e
    ids = result["input_ids"]
    # Some processors return a batch of one.
    if ids and isinstance(ids[0], list):
        ids = ids[0]
    return list(ids)


def resolve_eos_token_id(tokenizer: Any, eos_token: str | None) -> int | None:
    """The id of the eos appended to plain-text rows: `eos_token` if given (it must be in the vocabulary), else the
    tokenizer's; None (nothing appended) when the tokenizer has none, as BERT-style tokenizers."""
    if eos_token is None:
        return getattr(tokenizer, "eos_token_id", None)
    vocab = tokenizer.get_vocab()
    if eos_token not in vocab:
        raise RewardlabError(
            f"eos_token {eos_token!r} is not in the tokenizer's vocabulary; use a token it has "
            f"(its eos is {getattr(tokenizer, 'eos_token', None)!r}) or leave eos_token unset"
        )
    return vocab[eos_token]


def tokenize_text(tokenizer: Any, text: str, eos_token_id: int | None) -> list[int]:
    """Token ids of plain text with the tokenizer's own special tokens, ending with `eos_token_id` (if not None)."""
    ids = list(tokenizer(text)["input_ids"])
    if eos_token_id is not None and (not ids or ids[-1] != eos_token_id):
        ids.append(eos_token_id)
    return ids


def _sequence_encoder(
    example: Mapping[str, Any], fmt: PreferenceFormat, tokenizer: Any, eos_token_id: int | None
) -> Callable[[Any, str], list[int]]:
    """The function that turns one response of `example` into the ids of its whole sequence, prompt included.

    Shared by pairs and rankings so that a response is tokenized the same way in both: the row's prompt, tools and
    chat-template keyword arguments are resolved once, then applied to each response.
    """
    prompt = example["prompt"] if fmt.explicit_prompt else None  # None: an implicit-prompt row in a mixed stream
    if not fmt.conversational:

        def encode_text(response: str, field: str) -> list[int]:
            return tokenize_text(tokenizer, response if prompt is None else prompt + response, eos_token_id)

        return encode_text
    if not has_chat_template(tokenizer):
        raise no_chat_template_error()
    try:
        tools = _parse_tools(example.get("tools"))
    except json.JSONDecodeError as e:
        raise InvalidRowError(None, "tools", f"is a string but not valid JSON ({e.msg})") from None
    kwargs = _strip_none(dict(example.get("chat_template_kwargs") or {}))

    def encode_messages(response: list, field: str) -> list[int]:
        messages = response if prompt is None else prompt + response
        return render_messages(tokenizer, messages, field, tools, kwargs)

    return encode_messages


def tokenize_pair(example: Mapping[str, Any], tokenizer: Any, eos_token_id: int | None) -> dict[str, list[int]]:
    """Token ids of the chosen and rejected sequences of a (validated) example, prompt included.

    - explicit prompt: the prompt is prepended to each response (strings concatenated, message lists joined), as in
      TRL, so that each sequence is scored as one whole conversation;
    - conversational: `apply_chat_template(messages, tools=..., **chat_template_kwargs)` (`tools` may be a JSON
      string); no eos is added, the template ends the turn;
    - standard: `tokenizer(text)` with its default special tokens (the ids `pipeline("text-classification")` computes),
      then `eos_token_id` appended unless it is None or the ids already end with it;
    - pre-tokenized (`chosen_ids`/`rejected_ids`, or TRL's legacy `*_input_ids`): returned unchanged.

    A chat template that fails raises `InvalidRowError` (index None: the caller knows the row) with the template's
    message; a tokenizer without any chat template raises `RewardlabError`.
    """
    fmt = detect_format(example)
    if fmt.tokenized:
        out = {}
        for name in ("chosen_ids", "rejected_ids"):
            legacy = next(k for k, v in LEGACY_ID_FIELDS.items() if v == name)
            out[name] = list(example[name] if name in example else example[legacy])
        return out
    encode = _sequence_encoder(example, fmt, tokenizer, eos_token_id)
    return {
        "chosen_ids": encode(example["chosen"], "chosen"),
        "rejected_ids": encode(example["rejected"], "rejected"),
    }


def tokenize_completion(
    prompt: Any, completion: Any, tokenizer: Any, eos_token_id: int | None, template_kwargs: Mapping[str, Any]
) -> list[int]:
    """Token ids of `prompt` + `completion` (both strings, or both message lists), exactly as `tokenize_pair` tokenizes
    a response to an explicit prompt; `template_kwargs` go to the chat template."""
    conversational = isinstance(completion, list)
    example = {"prompt": list(prompt) if conversational else prompt, "chat_template_kwargs": dict(template_kwargs)}
    fmt = PreferenceFormat(conversational=conversational, explicit_prompt=True)
    return _sequence_encoder(example, fmt, tokenizer, eos_token_id)(
        list(completion) if conversational else completion, "completion"
    )


def tokenize_prompt(prompt: Any, tokenizer: Any, template_kwargs: Mapping[str, Any]) -> list[int]:
    """Token ids of a prompt alone (no eos; a message list through the chat template), to find where a completion
    starts in `tokenize_completion`'s ids."""
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    if not has_chat_template(tokenizer):
        raise no_chat_template_error()
    return render_messages(tokenizer, list(prompt), "prompt", None, _strip_none(dict(template_kwargs)))


def tokenize_ranking(example: Mapping[str, Any], tokenizer: Any, eos_token_id: int | None) -> dict[str, list]:
    """`response_ids` (K token-id lists, prompt included in each) and `scores` (K floats) of a validated ranked row.

    Any spelling (`responses`, `responses` + `scores`, tiered `chosen`/`rejected` lists, pre-tokenized
    `response_ids`); each response is tokenized exactly as `tokenize_pair` tokenizes a chosen or rejected response,
    so a ranking of two gives the ids of the equivalent pair. Errors as in `tokenize_pair`, naming e.g.
    `responses[2]`.
    """
    fields, responses, scores = ranked_items(example)
    fmt = detect_format(example)
    if fmt.tokenized:
        return {"response_ids": responses, "scores": scores}
    encode = _sequence_encoder(example, fmt, tokenizer, eos_token_id)
    return {"response_ids": [encode(r, f) for f, r in zip(fields, responses, strict=True)], "scores": scores}


def leading_special_count(ids: Sequence[int], tokenizer: Any) -> int:
    """How many tokens at the start of `ids` are the tokenizer's BOS or CLS token.

    Left truncation of the prompt must keep them: models are trained with them in first position (BERT pools
    `[CLS]`, Llama's first position is an attention sink), and a sequence without them scores differently.
    """
    specials = {
        t for t in (getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "cls_token_id", None)) if t is not None
    }
    count = 0
    for token in ids:
        if token not in specials:
            break
        count += 1
    return count
