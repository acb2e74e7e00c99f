"""Planning the padding-free layouts, as plain functions on id lists: which sequences share a prefix, where each
reward is read, how sequences split into sub-batches and micro-batches.

Two ideas, both exact (they change which tensors are multiplied together, never a result):

* **Length-grouped sub-batches** (any architecture). The sequences of one batch are sorted by length and split into
  sub-batches whose padded area is close to their real token count; each runs through the model's own forward and
  the rewards are put back in the caller's order. The batch, and so the loss and its gradient, is the padded one's.

* **Prompt shared within a group, groups packed into one row** (causal models). Chosen and rejected (or the K
  responses to one prompt) start with the same tokens (the prompt, or for implicit-prompt data such as HH-RLHF the
  dialogue before the last reply). A pair is laid out as `prompt + chosen_response + rejected_response`: the prompt
  is computed once; the rejected response attends to the prompt and to itself, never to the chosen response, and
  its positions continue from the end of the prompt, so every token sees exactly what it would see in its own
  unpadded sequence. The groups of a batch are then concatenated into one row for the linear layers, while
  attention runs as variable-length segments with no mask over the row (`rewardlab.layout.varlen`). Sharing never
  costs more than computing the sequences apart: each later sequence's attention covers the prefix and itself,
  exactly what it would cover on its own, and the prefix's tokens are computed once.

The reward is read where `transformers`' `*ForSequenceClassification` reads it (`rewardlab.data.positions.
readout_index`), so the fast path and plain `transformers` agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rewardlab.data.positions import readout_index, shared_prefix_length


@dataclass(frozen=True)
class SharedPrefixGroup:
    """K sequences laid out as `prefix + tail_1 + ... + tail_K`: the prefix they share is computed once.

    A preference pair is the group [chosen, rejected]; responses to one prompt (a GRPO group, a ranking) are larger
    groups; a single sequence is a group of one (laid out as itself).
    """

    input_ids: list[int]
    position_ids: list[int]
    prefix_length: int  # tokens shared by every sequence
    tail_starts: list[int]  # where each sequence's own tokens start in the row; the last one ends the row
    readout_index: list[int]  # where each sequence's reward is read, in row coordinates

    def __len__(self) -> int:
        return len(self.input_ids)


def shared_prefix_group(
    sequences: Sequence[Sequence[int]], pad_token_id: int | None, prefix_length: int | None = None
) -> SharedPrefixGroup:
    """`sequences` laid out as one group; `prefix_length`: their `shared_prefix_length`, when already known."""
    if prefix_length is None:
        prefix_length = shared_prefix_length(*sequences) if len(sequences) > 1 else 0
    p = prefix_length
    input_ids, position_ids = list(sequences[0][:p]), list(range(p))
    tail_starts, readout = [], []
    for ids in sequences:
        tail_starts.append(len(input_ids))
        j = readout_index(ids, pad_token_id)
        # A read-out inside the shared prefix (a response made only of pad tokens) is read from the prefix itself.
        readout.append(j if j < p else len(input_ids) + (j - p))
        input_ids += ids[p:]
        position_ids += range(p, len(ids))
    return SharedPrefixGroup(input_ids, position_ids, p, tail_starts, readout)


def plan_sub_batches(lengths: Sequence[int], overhead_tokens: int = 0) -> list[list[int]]:
    """Split sequences into sub-batches of similar length, minimising padded tokens + `overhead_tokens` per sub-batch.

    Returns lists of indices into `lengths`, longest first. `overhead_tokens` prices one extra forward call (small
    on CPU, larger on GPUs where small kernels are inefficient). Exact dynamic programme over the sorted lengths,
    O(n^2).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    if n == 0:
        return []
    best = [0.0] + [float("inf")] * n  # best[k]: cost of splitting the k longest sequences
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(end - 1, -1, -1):
            cost = best[start] + (end - start) * lengths[order[start]] + overhead_tokens
            if cost < best[end]:
                best[end], cut[end] = cost, start
    groups, end = [], n
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


def split_by_token_budget(costs: Sequence[int], max_tokens: int, padded: bool = False) -> list[list[int]]:
    """Groups of item indices whose computed tokens stay within `max_tokens`, as few groups as the greedy finds.

    `costs[i]` is what item i adds to a forward pass: its tokens in a packed layout, or (`padded=True`) the tokens of
    its padded rows, in which case a group costs `len(group) * max(costs)` (every row padded to the longest). Items
    are placed longest first (first-fit decreasing; next-fit for padded groups, which keeps similar lengths together).
    An item over the budget on its own gets a group of its own: it cannot be split without changing its reward.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    order = sorted(range(len(costs)), key=lambda i: -costs[i])
    groups: list[list[int]] = []
    totals: list[int] = []
    for i in order:
        if padded:
            if groups and (len(groups[-1]) + 1) * costs[groups[-1][0]] <= max_tokens:
                groups[-1].append(i)
                continue
        else:
            fit = next((g for g, total in enumerate(totals) if total + costs[i] <= max_tokens), None)
            if fit is not None:
                groups[fit].append(i)
                totals[fit] += costs[i]
                continue
        groups.append([i])
        totals.append(costs[i])
    return groups


def group_by_shared_prefix(
    sequences: Sequence[Sequence[int]], min_shared_tokens: int = 16, max_group_tokens: int = 2048
) -> list[list[int]]:
    """Groups of sequences (indices) that start with the same `min_shared_tokens` or more, to be scored together.

    Responses to one prompt (a GRPO group, best-of-n samples) then compute the prompt once. Sequences are sorted
    lexicographically, so those with a common prefix are neighbours, and a group's prefix is the smallest common
    prefix of neighbours. A group stops growing where its packed length (prefix once + every tail) would exceed
    `max_group_tokens`: attention inside a group is computed densely with a mask, so very large groups cost more
    attention than sharing saves.
    """
    order = sorted(range(len(sequences)), key=lambda i: list(sequences[i]))
    groups: list[list[int]] = []
    prefix = length = 0
    for i in order:
        ids = sequences[i]
        if groups:
            previous = sequences[groups[-1][-1]]
            shared = min(prefix, shared_prefix_length(previous, ids))
            # The group's row if `ids` joins: the new prefix once, then every member's own tokens.
            grown = length + (prefix - shared) * len(groups[-1]) + len(ids) - shared
            if shared >= min_shared_tokens and grown <= max_group_tokens:
                groups[-1].append(i)
                prefix, length = shared, grown
                continue
        groups.append([i])
        prefix, length = len(ids), len(ids)
    return groups
