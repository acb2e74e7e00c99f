"""The over-length policy: what to do with a pair (or a ranking of K responses) whose sequences exceed `max_length`.

TRL drops such pairs silently. Truncating the end instead would cut exactly the tokens that make chosen and rejected
differ. So the default removes tokens from the left of the prompt they share (the oldest turns of a dialogue),
identically in all, and keeps every response whole. The prompt is found at token level as the common prefix of the
sequences, which also works for implicit-prompt data such as HH-RLHF where there is no prompt column. The rule is
written once, for K sequences (`truncate_group`); `truncate_pair` is its K=2 case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rewardlab.choices import DROP, ERROR, OVERLENGTH_POLICIES, TRUNCATE_PROMPT
from rewardlab.data.positions import common_prefix_length

OK = "ok"
PROMPT_TRUNCATED = "prompt_truncated"
RESPONSE_TRUNCATED = "response_truncated"
DROPPED = "dropped"
STATUSES = (OK, PROMPT_TRUNCATED, RESPONSE_TRUNCATED, DROPPED)


@dataclass
class TruncationResult:
    """The (possibly shortened) pair and what was done to it: one of `STATUSES`."""

    chosen_ids: list[int]
    rejected_ids: list[int]
    status: str


@dataclass
class GroupTruncationResult:
    """The (possibly shortened) sequences of a group, in their order, and what was done to them: one of `STATUSES`."""

    sequences: list[list[int]]
    status: str


def _drops(policy: str, size: str, max_length: int) -> bool:
    """For an over-length input: True to drop it, False to truncate it; raises for "error" and unknown policies."""
    if policy == DROP:
        return True
    if policy == ERROR:
        raise ValueError(
            f"{size}, more than max_length={max_length}; raise max_length, or set overlength_policy to "
            f"'{TRUNCATE_PROMPT}' or '{DROP}'"
        )
    if policy != TRUNCATE_PROMPT:
        raise ValueError(f"unknown overlength policy {policy!r}; use one of {', '.join(OVERLENGTH_POLICIES)}")
    return False


def _cut_end(ids: list[int], max_length: int) -> list[int]:
    """`ids` cut to `max_length` at its end, keeping its final token (an eos/[SEP] the model reads the score at)."""
    if len(ids) <= max_length:
        return ids
    return ids[: max_length - 1] + ids[-1:]


def _sizes(lengths: list[int], names: Sequence[str] | None) -> str:
    """Words for the lengths of an over-length group, e.g. "chosen has 9 tokens and rejected 5"."""
    if names is None:
        return f"{len(lengths)} responses of {', '.join(map(str, lengths))} tokens"
    rest = ", ".join(f"{name} {length}" for name, length in zip(names[1:], lengths[1:], strict=True))
    return f"{names[0]} has {lengths[0]} tokens and {rest}"


def truncate_group(
    sequences: Sequence[Sequence[int]],
    max_length: int | None,
    policy: str,
    keep_leading: int = 0,
    *,
    names: Sequence[str] | None = None,
) -> GroupTruncationResult:
    """Apply the over-length `policy` to K >= 1 sequences that answer one prompt (a pair, a ranking).

    - `max_length=None`, or every sequence fits: status "ok" (the lists unchanged).
    - "drop": an over-length group gets status "dropped" (ids unchanged); the caller leaves it out.
    - "error": an over-length group raises `ValueError` (the caller adds the row index; `names` label the lengths).
    - "truncate_prompt": remove `excess = max(len) - max_length` tokens from the left of the prefix shared by all
      sequences, after the first `keep_leading` tokens (BOS/CLS), identically in each, so every response stays whole:
      "prompt_truncated". When the whole shared prefix is not enough, it is all removed, and each sequence still too
      long is cut at its end to `max_length`, keeping its final token: "response_truncated".

    Each sequence keeps at least its final token out of the shared prefix, and the first token where the group
    diverges survives, so two sequences that differ right after the shared prefix still differ (for
    `max_length >= 2`). Two that share a longer prefix between themselves can become equal when cut: callers that
    need them distinct must check (see `prepare`).
    """
    group = [list(s) for s in sequences]
    lengths = [len(s) for s in group]
    if max_length is None or max(lengths, default=0) <= max_length:
        return GroupTruncationResult(group, OK)
    if _drops(policy, _sizes(lengths, names), max_length):
        return GroupTruncationResult(group, DROPPED)
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")

    # The shared prefix, less each sequence's final token (so none is emptied when one is a prefix of another).
    prefix = max(0, min(common_prefix_length(*group), min(lengths) - 1))
    keep = max(0, min(keep_leading, prefix))
    excess = max(lengths) - max_length
    if excess <= prefix - keep:
        return GroupTruncationResult([s[:keep] + s[keep + excess :] for s in group], PROMPT_TRUNCATED)
    # Even without the shared prompt a response is too long. Keep at most max_length - 2 leading tokens so that the
    # first differing token (right after them) is not cut away along with the response's end.
    keep = min(keep, max_length - 2)
    return GroupTruncationResult([_cut_end(s[:keep] + s[prefix:], max_length) for s in group], RESPONSE_TRUNCATED)


def truncate_pair(
    chosen_ids: Sequence[int],
    rejected_ids: Sequence[int],
    max_length: int | None,
    policy: str,
    keep_leading: int = 0,
) -> TruncationResult:
    """`truncate_group` for a pair: the over-length `policy` applied to chosen and rejected together.

    A pair that differed before still differs after (for `max_length >= 2`): its first differing token follows the
    shared prefix directly.
    """
    result = truncate_group([chosen_ids, rejected_ids], max_length, policy, keep_leading, names=("chosen", "rejected"))
    chosen, rejected = result.sequences
    return TruncationResult(chosen, rejected, result.status)


def truncate_sequence(
    ids: Sequence[int], prompt_length: int, max_length: int | None, policy: str, keep_leading: int = 0
) -> tuple[list[int], str]:
    """The over-length `policy` for one sequence to score, whose first `prompt_length` tokens are its prompt.

    The same rule as `truncate_pair` with the prompt known: "truncate_prompt" removes the oldest prompt tokens (after
    `keep_leading` BOS/CLS tokens) and keeps the response whole, or, if the response alone is too long, cuts it at
    its end keeping the final token. Returns the ids and a status from `STATUSES`; "error" raises `ValueError`.
    """
    ids = list(ids)
    if max_length is None or len(ids) <= max_length:
        return ids, OK
    if _drops(policy, f"{len(ids)} tokens", max_length):
        return ids, DROPPED
    prefix = max(0, min(prompt_length, len(ids) - 1))
    keep = max(0, min(keep_leading, prefix))
    excess = len(ids) - max_length
    if excess <= prefix - keep:
        return ids[:keep] + ids[keep + excess :], PROMPT_TRUNCATED
    keep = min(keep, max_length - 1)
    return _cut_end(ids[:keep] + ids[prefix:], max_length), RESPONSE_TRUNCATED
