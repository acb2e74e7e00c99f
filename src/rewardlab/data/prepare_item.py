"""One item from a row to the token ids a model scores: a preference pair, the K responses of a ranking, a
completion to a prompt, or a plain text.

Training (`rewardlab.data.prepare`, over whole datasets), evaluation, `RewardModel`, `rewardlab score` and
`rewardlab serve` all prepare items here, so a scored pair is made of exactly the tokens the trainer trained on. Each
function validates the row (unless the caller already has), tokenizes it (`rewardlab.data.tokenize`), checks the ids
against the vocabulary, and applies the over-length policy (`rewardlab.data.truncation`) to the item's sequences
together, keeping the BOS/CLS tokens that all of them start with. A problem is an `InvalidRowError` naming the row
(when the caller gives its index) and the field, with its reason code.

Scoring differs from training in one way, `ItemRules.allow_identical`: a pair whose two sides tokenize alike, or a
ranking with responses that do, carries no preference to learn from, so training refuses it; it is still something
to score (P(chosen) = 0.5; a best-of-N tie), so scoring takes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardlab.choices import TRUNCATE_PROMPT
from rewardlab.data.formats import PreferenceFormat, detect_format, ranked_items
from rewardlab.data.positions import common_prefix_length, own_token_counts
from rewardlab.data.tokenize import (
    leading_special_count,
    tokenize_completion,
    tokenize_pair,
    tokenize_prompt,
    tokenize_ranking,
    tokenize_text,
)
from rewardlab.data.truncation import DROPPED, RESPONSE_TRUNCATED, truncate_group, truncate_sequence
from rewardlab.data.validate import (
    IDENTICAL,
    contradiction,
    validate_example,
    validate_ranked_example,
    validate_scored_pair,
    validate_scored_ranking,
)
from rewardlab.errors import InvalidRowError

# Reason code of an over-length row under policy "error": always raised, never skipped.
OVERLENGTH = "over max_length"
OUT_OF_VOCAB = "token id out of vocabulary"


@dataclass(frozen=True)
class ItemRules:
    """How a row becomes token ids: the tokenizer, the eos appended to plain text (`resolve_eos_token_id`), the
    length limit and over-length policy of the run, and `allow_identical` (scoring: see the module docstring)."""

    tokenizer: Any
    eos_token_id: int | None
    max_length: int | None = None
    policy: str = TRUNCATE_PROMPT
    allow_identical: bool = False
    vocab_size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab_size", len(self.tokenizer))


@dataclass
class PreparedItem:
    """An item's sequences as the model scores them (prompt included in each), the over-length status
    (`rewardlab.data.truncation.STATUSES`), each sequence's own tokens before the policy (its real length: after the
    prefix the item's sequences share), a ranking's scores, and a completion's prompt tokens as scored (what a
    prompt gate reads; a pair's or a ranking's is the prefix its sequences share, `positions.prompt_length`)."""

    sequences: list[list[int]]
    status: str
    full_tokens: list[int]
    scores: list[float] | None = None
    prompt_tokens: int | None = None

    @property
    def tokens(self) -> list[int]:
        """Each sequence's own tokens as scored (after the policy)."""
        return own_token_counts(self.sequences)


def prepare_pair(
    row: Mapping[str, Any],
    rules: ItemRules,
    *,
    index: int | None = None,
    fmt: PreferenceFormat | None = None,
    validated: bool = False,
) -> PreparedItem:
    """[chosen, rejected] of a pair row in any training format (`fmt`: the dataset's, else the row's own); a row the
    caller has validated already skips validation."""
    if not validated:
        _validate(row, rules, index, fmt, ranked=False)
    try:
        pair = tokenize_pair(row, rules.tokenizer, rules.eos_token_id)
    except InvalidRowError as e:
        raise e.at(index) from None
    chosen, rejected = pair["chosen_ids"], pair["rejected_ids"]
    if chosen == rejected and not rules.allow_identical:
        raise InvalidRowError(
            index,
            "rejected",
            "tokenizes to the same ids as 'chosen' (e.g. they differ only in case or spacing the tokenizer "
            "ignores); the pair carries no preference",
            IDENTICAL,
        )
    return _limit([chosen, rejected], ("chosen_ids", "rejected_ids"), rules, index, names=("chosen", "rejected"))


def prepare_ranking(
    row: Mapping[str, Any],
    rules: ItemRules,
    *,
    index: int | None = None,
    fmt: PreferenceFormat | None = None,
    validated: bool = False,
) -> PreparedItem:
    """The K responses of a ranked row (`responses` with optional `scores`, or lists in `chosen`/`rejected`) and
    their scores, truncated together as one group."""
    if not validated:
        _validate(row, rules, index, fmt, ranked=True)
    fields = ranked_items(row).fields
    try:
        ranking = tokenize_ranking(row, rules.tokenizer, rules.eos_token_id)
    except InvalidRowError as e:
        raise e.at(index) from None
    sequences, scores = ranking["response_ids"], ranking["scores"]
    if not rules.allow_identical and (clash := contradiction(sequences, scores)) is not None:
        i, j = clash
        raise InvalidRowError(
            index,
            fields[j],
            f"tokenizes to the same ids as '{fields[i]}' (e.g. they differ only in case or spacing the tokenizer "
            "ignores) but is scored differently; contradictory, fix or drop the row",
            IDENTICAL,
        )
    item = _limit(sequences, [f"response_ids[{j}]" for j in range(len(sequences))], rules, index)
    item.scores = scores
    # Two responses that share more than the group's prompt can become equal once cut at their ends: what tells them
    # apart lies beyond max_length. The data is fine, the limit is too short for it, so training drops the row for
    # length (and counts it as such) rather than reporting it invalid.
    cut_alike = item.status == RESPONSE_TRUNCATED and contradiction(item.sequences, scores) is not None
    if cut_alike and not rules.allow_identical:
        item.status = DROPPED
    return item


def prepare_completion(
    prompt: Any,
    completion: Any,
    rules: ItemRules,
    *,
    index: int | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
    prompt_cache: dict[str, list[int]] | None = None,
) -> PreparedItem:
    """`completion` to `prompt` (both strings, or both message lists) as one sequence, tokenized as a pair's response
    to an explicit prompt; over `max_length`, the oldest prompt tokens go first. `prompt_cache` keeps each prompt's
    own ids across calls (a GRPO group repeats its prompt)."""
    if not (isinstance(prompt, str) and isinstance(completion, str)) and not (
        _is_messages(prompt) and _is_messages(completion)
    ):
        raise InvalidRowError(
            index,
            "prompt",
            f"prompt and completion must both be strings or both be message lists (got {type(prompt).__name__} "
            f"and {type(completion).__name__})",
        )
    kwargs = dict(template_kwargs or {})
    cache = {} if prompt_cache is None else prompt_cache
    key = prompt if isinstance(prompt, str) else repr((prompt, sorted(kwargs.items())))
    try:
        ids = tokenize_completion(prompt, completion, rules.tokenizer, rules.eos_token_id, kwargs)
        if key not in cache:
            cache[key] = tokenize_prompt(prompt, rules.tokenizer, kwargs)
    except InvalidRowError as e:
        raise e.at(index) from None
    prompt_length = common_prefix_length(ids, cache[key])
    item = _limit_known_prompt(ids, prompt_length, rules, index)
    cut = item.sequences[0]
    if item.status == RESPONSE_TRUNCATED:  # only the leading BOS/CLS tokens are left of the prompt
        prompt = leading_special_count(cut, rules.tokenizer)
    else:  # the response is whole: the rest is prompt
        prompt = len(cut) - (len(ids) - prompt_length)
    item.prompt_tokens = max(1, min(prompt, len(cut) - 1))
    return item


def prepare_text(text: str, rules: ItemRules, *, index: int | None = None) -> PreparedItem:
    """A whole text as one sequence (eos appended, as training tokenizes plain text); over `max_length`, its oldest
    tokens go first, so its end, the response, is kept."""
    if not isinstance(text, str):
        raise InvalidRowError(index, "texts", f"must be a string, got {type(text).__name__}")
    ids = tokenize_text(rules.tokenizer, text, rules.eos_token_id)
    return _limit_known_prompt(ids, len(ids) - 1, rules, index)


def _validate(
    row: Mapping[str, Any], rules: ItemRules, index: int | None, fmt: PreferenceFormat | None, ranked: bool
) -> None:
    """Training's checks of a row in its format (`fmt`: the dataset's, else the row's own); with `allow_identical`,
    scoring's, which take a row that states no preference."""
    if rules.allow_identical:
        (validate_scored_ranking if ranked else validate_scored_pair)(row, index)
    else:
        (validate_ranked_example if ranked else validate_example)(row, index, fmt or detect_format(row))


def _limit(
    sequences: list[list[int]],
    id_fields: Sequence[str],
    rules: ItemRules,
    index: int | None,
    names: Sequence[str] | None = None,
) -> PreparedItem:
    """The over-length policy on an item's sequences, after checking them against the vocabulary."""
    _check_vocabulary(sequences, id_fields, rules.vocab_size, index)
    keep = min(leading_special_count(ids, rules.tokenizer) for ids in sequences)
    try:
        result = truncate_group(sequences, rules.max_length, rules.policy, keep, names=names)
    except ValueError as e:
        raise InvalidRowError(index, None, str(e), OVERLENGTH) from None
    return PreparedItem(result.sequences, result.status, own_token_counts(sequences))


def _limit_known_prompt(ids: list[int], prompt_length: int, rules: ItemRules, index: int | None) -> PreparedItem:
    """The over-length policy on one sequence whose first `prompt_length` tokens are its prompt."""
    _check_vocabulary([ids], ["input_ids"], rules.vocab_size, index)
    keep = leading_special_count(ids, rules.tokenizer)
    try:
        cut, status = truncate_sequence(ids, prompt_length, rules.max_length, rules.policy, keep)
    except ValueError as e:
        raise InvalidRowError(index, None, str(e), OVERLENGTH) from None
    return PreparedItem([cut], status, [len(ids)])


def _check_vocabulary(sequences: list[list[int]], fields: Sequence[str], vocab_size: int, index: int | None) -> None:
    """An `InvalidRowError` on the first token id outside the vocabulary (ids made with another tokenizer)."""
    for name, ids in zip(fields, sequences, strict=True):
        bad = next((t for t in ids if t >= vocab_size or t < 0), None)
        if bad is not None:
            raise InvalidRowError(
                index,
                name,
                f"token id {bad} is outside the tokenizer's vocabulary (size {vocab_size}); were these ids made "
                "with another tokenizer?",
                OUT_OF_VOCAB,
            )


def _is_messages(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(m, Mapping) for m in value)
