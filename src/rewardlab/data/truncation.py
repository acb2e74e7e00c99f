"""The over-length policy: what to do with a pair whose chosen or rejected sequence exceeds `max_length`.

TRL drops such pairs silently. Truncating the end instead would cut exactly the tokens that make chosen and rejected
differ. So the default removes tokens from the left of the prompt they share (the oldest turns of a dialogue),
identically in both, and keeps both responses whole. The prompt is found at token level as the common prefix of the
two sequences, which also works for implicit-prompt data such as HH-RLHF where there is no prompt column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading tokens `a` and `b` have in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _drops(policy: str, size: str, max_length: int) -> bool:
    """For an over-length input: True to drop it, False to truncate it; raises for "error" and unknown policies."""
    if policy == "drop":
        return True
    if policy == "error":
        raise ValueError(
            f"{size}, more than max_length={max_length}; raise max_length, or set overlength_policy to "
            "'truncate_prompt' or 'drop'"
        )
    if policy != "truncate_prompt":
        raise ValueError(f"unknown overlength policy {policy!r}; use 'truncate_prompt', 'drop' or 'error'")
    return False


def _cut_end(ids: list[int], max_length: int) -> list[int]:
    """`ids` cut to `max_length` at its end, keeping its final token (an eos/[SEP] the model reads the score at)."""
    if len(ids) <= max_length:
        return ids
    return ids[: max_length - 1] + ids[-1:]


def truncate_pair(
    chosen_ids: Sequence[int],
    rejected_ids: Sequence[int],
    max_length: int | None,
    policy: str,
    keep_leading: int = 0,
) -> TruncationResult:
    """Apply the over-length `policy` to one pair (lists are returned unchanged when nothing needs doing).

    - `max_length=None`, or both sequences fit: status "ok".
    - "drop": an over-length pair gets status "dropped" (ids unchanged); the caller leaves it out.
    - "error": an over-length pair raises `ValueError` (the caller adds the row index).
    - "truncate_prompt": remove `excess = max(len) - max_length` tokens from the left of the shared prefix of both
      sequences, after the first `keep_leading` tokens (BOS/CLS), so both responses stay whole: "prompt_truncated".
      When the whole shared prefix is not enough, it is all removed, and each sequence still too long is cut at its
      end to `max_length`, keeping its final token: "response_truncated".

    Each sequence keeps at least its final token out of the shared prefix, and the first token where chosen and
    rejected differ always survives, so a pair that differed before still differs after (for `max_length >= 2`).
    """
    chosen, rejected = list(chosen_ids), list(rejected_ids)
    if max_length is None or (len(chosen) <= max_length and len(rejected) <= max_length):
        return TruncationResult(chosen, rejected, OK)
    if _drops(policy, f"chosen has {len(chosen)} tokens and rejected {len(rejected)}", max_length):
        return TruncationResult(chosen, rejected, DROPPED)
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")

    # The shared prefix, less each sequence's final token (so neither is emptied when one is a prefix of the other).
    prefix = min(common_prefix_length(chosen, rejected), len(chosen) - 1, len(rejected) - 1)
    keep = max(0, min(keep_leading, prefix))
    excess = max(len(chosen), len(rejected)) - max_length
    if excess <= prefix - keep:
        return TruncationResult(
            chosen[:keep] + chosen[keep + excess :], rejected[:keep] + rejected[keep + excess :], PROMPT_TRUNCATED
        )
    # Even without the shared prompt a response is too long. Keep at most max_length - 2 leading tokens so that the
    # first differing token (right after them) is not cut away along with the response's end.
    keep = min(keep, max_length - 2)
    chosen = _cut_end(chosen[:keep] + chosen[prefix:], max_length)
    rejected = _cut_end(rejected[:keep] + rejected[prefix:], max_length)
    return TruncationResult(chosen, rejected, RESPONSE_TRUNCATED)


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
