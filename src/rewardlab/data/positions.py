"""Positions in token-id sequences that answer one prompt: the prefix they share, each one's own tokens, and the
token a sequence-classification model reads its reward at.

The one home of these rules: truncation cuts the shared prefix, the layouts compute it once, and the scorer and the
trainer count each response's own tokens with them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def common_prefix_length(*sequences: Sequence[int]) -> int:
    """Number of leading tokens all `sequences` have in common (a single sequence: its length; none: 0)."""
    # os.path.commonprefix compares any sequences item by item; lists, so that lists and tuples mix.
    return len(os.path.commonprefix([s if isinstance(s, list) else list(s) for s in sequences]))


def shared_prefix_length(*sequences: Sequence[int]) -> int:
    """Tokens all `sequences` have in common at the start, leaving each at least one token of its own.

    The cap matters when one sequence is a prefix of another: its reward is still read inside its own part.
    """
    return max(0, min(common_prefix_length(*sequences), min(len(s) for s in sequences) - 1))


def own_token_counts(sequences: Sequence[Sequence[int]]) -> list[int]:
    """Each sequence's tokens after the prefix all of them share (for a pair or a ranking, the prompt): the
    responses' lengths, which evaluation reports and `length_debias` trains out. A single sequence owns all its
    tokens."""
    shared = common_prefix_length(*sequences) if len(sequences) > 1 else 0
    return [len(ids) - shared for ids in sequences]


def prompt_length(sequences: Sequence[Sequence[int]]) -> int:
    """The leading tokens of an item's sequences that a prompt gate reads as its prompt: the prefix they all share
    (for a pair or a ranking, the prompt and any opening words every response shares, which weigh every response
    alike), at least one token. A single completion's prompt is known instead (`PreparedItem.prompt_tokens`)."""
    return max(1, common_prefix_length(*sequences))


def readout_index(ids: Sequence[int], pad_token_id: int | None) -> int:
    """Index of the token `*ForSequenceClassification` reads the reward at: the rightmost one that is not pad
    (when pad == eos, trailing eos tokens are skipped).

    With no pad id it is the last token; if every token is pad, transformers' argmax gives 0, and so does this.
    """
    if pad_token_id is None:
        return len(ids) - 1
    for i in range(len(ids) - 1, -1, -1):
        if ids[i] != pad_token_id:
            return i
    return 0
