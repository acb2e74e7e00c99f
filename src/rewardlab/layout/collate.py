"""Collate sequences into a batch of one layout (`rewardlab.layout.batch`), for training, evaluation and scoring.

`lay_out` is the one function that builds every layout from token-id lists; the collators turn prepared examples
(pairs or rankings) into its input, add what the losses need (margins, scores), and split a batch over the token
budget into micro-batches of whole examples. `RewardModel` calls `lay_out` directly, so scoring sees exactly the
training layouts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers.data.data_collator import DataCollatorMixin

from rewardlab.config import DEFAULT_SUB_BATCH_OVERHEAD_TOKENS
from rewardlab.data.positions import own_token_counts, prompt_length
from rewardlab.layout.batch import LAYOUT_KEY, Layout
from rewardlab.layout.plan import (
    SharedPrefixGroup,
    plan_sub_batches,
    shared_prefix_group,
    split_by_token_budget,
)
from rewardlab.layout.varlen import VARLEN_KEY, group_segments, varlen_plan
from rewardlab.losses.gate import PROMPTS_KEY

Groups = list[list[int]]  # positions of the sequences that answer one prompt, one list per example


def pad_right(
    sequences: Sequence[Sequence[int]], pad_value: int, pad_to_multiple_of: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack id lists into (S, T) `input_ids` padded on the right (T a multiple of `pad_to_multiple_of` if given),
    and the (S, T) `attention_mask`."""
    rows = [torch.as_tensor(list(s), dtype=torch.long) for s in sequences]
    input_ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad_value)
    attention_mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(r) for r in rows], batch_first=True)
    if pad_to_multiple_of:
        extra = -input_ids.shape[1] % pad_to_multiple_of
        input_ids = F.pad(input_ids, (0, extra), value=pad_value)
        attention_mask = F.pad(attention_mask, (0, extra), value=0)
    return input_ids, attention_mask


def lay_out(
    sequences: Sequence[Sequence[int]],
    layout: Layout,
    pad_token_id: int,
    *,
    groups: Groups | None = None,
    prefix_groups: Sequence[SharedPrefixGroup] | None = None,
    overhead_tokens: int = DEFAULT_SUB_BATCH_OVERHEAD_TOKENS,
    pad_to_multiple_of: int | None = None,
) -> dict[str, Any]:
    """One batch of `sequences` in `layout`; the model's rewards for it come back in the order of `sequences`.

    `groups` lists the sequences that answer one prompt (positions in `sequences`, each exactly once): the
    `SHARED_PREFIX` layout computes their shared prefix once. Other layouts ignore it (`PACKED_CAUSAL` packs the
    same sequences without sharing). `prefix_groups`: the groups already laid out (`shared_prefix_groups`), when the
    caller built them to measure them.
    `overhead_tokens` prices one more forward call when planning `SUB_BATCHES`; `pad_to_multiple_of` pads `PADDED`.

    >>> lay_out([[1, 2, 3], [1, 2, 4, 5]], Layout.SHARED_PREFIX, pad_token_id=0, groups=[[0, 1]])["input_ids"]
    tensor([[1, 2, 3, 4, 5]])
    """
    layout = Layout(layout)
    if layout is Layout.SHARED_PREFIX:
        groups = groups or [[i] for i in range(len(sequences))]
        if prefix_groups is None:
            prefix_groups = shared_prefix_groups(sequences, groups, pad_token_id)
        batch = _shared_prefix_batch(prefix_groups, groups, len(sequences))
    elif layout is Layout.PACKED:
        batch = pack_sequences(sequences)
    elif layout is Layout.PACKED_CAUSAL:  # every sequence a group of its own: nothing is shared
        singles = [[i] for i in range(len(sequences))]
        batch = _shared_prefix_batch(shared_prefix_groups(sequences, singles, pad_token_id), singles, len(sequences))
    elif layout is Layout.SUB_BATCHES:
        batch = length_grouped_sub_batches(sequences, pad_token_id, overhead_tokens)
    elif layout is Layout.PADDED:  # exactly TRL's batch, which names no layout
        input_ids, attention_mask = pad_right(sequences, pad_token_id, pad_to_multiple_of)
        return {"input_ids": input_ids, "attention_mask": attention_mask}
    else:
        raise ValueError(f"lay_out builds one batch; {layout} is made by split_into_micro_batches")
    batch[LAYOUT_KEY] = layout
    return batch


def add_prompts(
    sequences: Sequence[Sequence[int]],
    groups: Groups,
    prompt_lengths: Sequence[int] | None = None,
    max_tokens: int | None = None,
) -> tuple[list[list[int]], Groups]:
    """`sequences` followed by each group's prompt (the first `prompt_lengths[g]` tokens of its first sequence;
    default: the group's `prompt_length`), each prompt a member of its own group: what a prompt gate reads.
    `max_tokens` keeps a longer prompt's first token ([CLS]) and its last `max_tokens - 1` (an encoder's gate).

    In the `SHARED_PREFIX` layout a prompt is the group's shared prefix, so it adds a token or two to the row (a
    group's members keep one token each of their own); other layouts compute it as one more sequence.
    """
    sequences = [list(s) for s in sequences]
    out_groups = []
    for g, group in enumerate(groups):
        first = sequences[group[0]]
        length = prompt_lengths[g] if prompt_lengths is not None else prompt_length([sequences[i] for i in group])
        prompt = first[:length]
        if max_tokens is not None and len(prompt) > max_tokens:
            prompt = prompt[:1] + prompt[len(prompt) - max_tokens + 1 :]
        out_groups.append([*group, len(sequences)])
        sequences.append(prompt)
    return sequences, out_groups


def response_lengths(sequences: Sequence[Sequence[int]], groups: Groups) -> torch.Tensor:
    """(S,) each sequence's own tokens: those after the prefix it shares with the other sequences of its group (for a
    pair or a ranking, the prompt), the length `rewardlab eval` measures and `length_debias` trains out."""
    lengths = torch.zeros(len(sequences), dtype=torch.float)
    for group in groups:
        lengths[group] = torch.tensor(own_token_counts([sequences[i] for i in group]), dtype=torch.float)
    return lengths


def shared_prefix_groups(
    sequences: Sequence[Sequence[int]], groups: Groups, pad_token_id: int
) -> list[SharedPrefixGroup]:
    """Each group of `sequences` laid out with its shared prefix once: built once, then measured and packed."""
    return [shared_prefix_group([sequences[i] for i in group], pad_token_id) for group in groups]


def example_costs(
    sequences: Sequence[Sequence[int]],
    groups: Groups,
    layout: Layout,
    prefix_groups: Sequence[SharedPrefixGroup] | None = None,
) -> list[int]:
    """The tokens each example (a group of `sequences`) adds to a forward pass in `layout`: its packed row (shared
    prefix once: the length of its `prefix_groups` entry) for `SHARED_PREFIX`, its padded rows (K x longest) for
    `PADDED`, its own tokens otherwise."""
    if layout is Layout.SHARED_PREFIX:
        return [len(group) for group in prefix_groups]
    lengths = [[len(sequences[i]) for i in group] for group in groups]
    if layout is Layout.PADDED:
        return [len(own) * max(own) for own in lengths]
    return [sum(own) for own in lengths]


def plan_passes(
    sequences: Sequence[Sequence[int]], groups: Groups, layout: Layout, pad_token_id: int, max_tokens: int | None
) -> tuple[list[list[int]], list[SharedPrefixGroup] | None]:
    """The examples (positions in `groups`) of each forward pass that computes at most `max_tokens` tokens in
    `layout` (`split_by_token_budget`; an example over the budget alone is a pass; None: one pass), and the
    `SHARED_PREFIX` groups, built once to be measured here and packed by `lay_out`."""
    layout = Layout(layout)
    built = shared_prefix_groups(sequences, groups, pad_token_id) if layout is Layout.SHARED_PREFIX else None
    if max_tokens is None:
        return [list(range(len(groups)))], built
    costs = example_costs(sequences, groups, layout, built)
    return split_by_token_budget(costs, max_tokens, padded=layout is Layout.PADDED), built


def forward_passes(
    sequences: Sequence[Sequence[int]],
    groups: Groups,
    layout: Layout,
    pad_token_id: int,
    max_tokens: int,
    *,
    overhead_tokens: int = DEFAULT_SUB_BATCH_OVERHEAD_TOKENS,
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """Batches that score `sequences` in forward passes under `max_tokens`, whole `groups` (positions of sequences
    laid out together) at a time: (the positions of a pass's sequences, its batch), the batch's rewards in that
    order."""
    passes, built = plan_passes(sequences, groups, layout, pad_token_id, max_tokens)
    for passed in passes:
        index, local = [], []  # the pass's sequences, and its groups as positions among them
        for g in passed:
            local.append(list(range(len(index), len(index) + len(groups[g]))))
            index += groups[g]
        batch = lay_out(
            [sequences[i] for i in index],
            layout,
            pad_token_id,
            groups=local,
            prefix_groups=None if built is None else [built[g] for g in passed],
            overhead_tokens=overhead_tokens,
        )
        yield index, batch


def length_grouped_sub_batches(
    sequences: Sequence[Sequence[int]], pad_token_id: int, overhead_tokens: int
) -> dict[str, Any]:
    """`SUB_BATCHES`: sub-batches of sequences of similar length (`plan_sub_batches`), each padded to its own longest
    sequence and carrying `sequence_index`, the positions of its sequences in `sequences`."""
    sub_batches = []
    for group in plan_sub_batches([len(s) for s in sequences], overhead_tokens):
        input_ids, attention_mask = pad_right([sequences[i] for i in group], pad_token_id)
        sub_batches.append(
            {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "sequence_index": torch.tensor(group),
            }
        )
    return {"sub_batches": sub_batches}


def pack_shared_prefix_groups(groups: Sequence[SharedPrefixGroup]) -> dict[str, Any]:
    """`SHARED_PREFIX` rows: `groups` concatenated into one row, attention as causal varlen segments (each
    sequence's own tokens over the group's prefix and themselves: `rewardlab.layout.varlen`).

    `input_ids`/`position_ids` (1, n); `varlen`: the row's `varlen_plan`; `readout_index` (S,): every sequence's
    read-out position, group after group.
    """
    input_ids, position_ids, segments, readout, spans = [], [], [], [], []  # spans: each group's segments
    for group in groups:
        offset = len(input_ids)
        input_ids += group.input_ids
        position_ids += group.position_ids
        own = group_segments(offset, group.prefix_length, group.tail_starts, len(group))
        spans.append((len(segments), len(segments) + len(own)))
        segments += own
        readout += [offset + j for j in group.readout_index]
    queries, keys = zip(*segments, strict=True) if segments else ((), ())
    return {
        "input_ids": torch.tensor([input_ids]),
        "position_ids": torch.tensor([position_ids]),
        VARLEN_KEY: varlen_plan(queries, keys, causal=True, groups=spans),
        "readout_index": torch.tensor(readout),
    }


def _shared_prefix_batch(parts: Sequence[SharedPrefixGroup], groups: Groups, num_sequences: int) -> dict[str, Any]:
    order = [i for group in groups for i in group]
    if sorted(order) != list(range(num_sequences)):
        raise ValueError("groups must name every sequence exactly once")
    batch = pack_shared_prefix_groups(parts)
    # The row's read-outs come group after group; the caller expects them in the order of `sequences`.
    readout = torch.empty_like(batch["readout_index"])
    readout[torch.tensor(order)] = batch["readout_index"]
    batch["readout_index"] = readout
    return batch


def pack_sequences(sequences: Sequence[Sequence[int]]) -> dict[str, Any]:
    """`PACKED`: whole sequences concatenated into one row, each attending to itself only, positions restarting.

    `input_ids`/`position_ids` (1, n); `varlen`: one non-causal segment per sequence (`rewardlab.layout.varlen`);
    `first_index` (S,): where each sequence starts (the [CLS] token the pooler reads).
    """
    input_ids, position_ids, spans = [], [], []
    for sequence in sequences:
        offset = len(input_ids)
        input_ids += list(sequence)
        position_ids += range(len(sequence))
        spans.append((offset, len(input_ids)))
    return {
        "input_ids": torch.tensor([input_ids]),
        "position_ids": torch.tensor([position_ids]),
        VARLEN_KEY: varlen_plan(spans, [[span] for span in spans], causal=False),
        "first_index": torch.tensor([start for start, _ in spans]),
    }


def objective_ids(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """`objective_id` (one per example: the head its loss uses) of a multi-objective run's examples; else nothing."""
    if "objective_id" not in examples[0]:
        return {}
    return {"objective_id": torch.tensor([int(e["objective_id"]) for e in examples])}


@dataclass
class LayoutCollator(DataCollatorMixin):
    """The collator of one `layout`: examples to sequences (`sequences_of`), sequences to a batch (`lay_out`), and,
    with `max_tokens_per_batch`, a batch that would compute more tokens than that split into `MICRO_BATCHES` of
    whole examples (`plan_passes`), so peak memory follows the budget while the loss and gradients stay
    the whole batch's. `with_response_lengths` adds every sequence's `response_lengths` (for `length_debias`);
    `with_prompts` adds each example's prompt as one more sequence after all the others (`add_prompts`, for a
    prompt gate; at most `max_prompt_tokens` of it), and their count as `num_prompts`. Subclasses say how examples
    become sequences and what else a batch carries."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    max_tokens_per_batch: int | None = None
    return_tensors: str = "pt"
    layout: Layout = Layout.PADDED
    overhead_tokens: int = DEFAULT_SUB_BATCH_OVERHEAD_TOKENS
    with_response_lengths: bool = False
    with_prompts: bool = False
    max_prompt_tokens: int | None = None

    def __post_init__(self):
        self.layout = Layout(self.layout)  # also accept the layout's name

    def sequences_of(self, examples: list[dict[str, Any]]) -> tuple[list[list[int]], Groups]:
        """The sequences of `examples` in batch order, and each example's positions among them."""
        raise NotImplementedError

    def fields(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Per-example tensors the loss needs (margins, scores), for a batch of `examples`."""
        raise NotImplementedError

    def laid_out_sequences(self, examples: list[dict[str, Any]]) -> tuple[list[list[int]], Groups]:
        """`sequences_of(examples)`, and each example's prompt after them `with_prompts`."""
        sequences, groups = self.sequences_of(examples)
        if not self.with_prompts:
            return sequences, groups
        return add_prompts(sequences, groups, max_tokens=self.max_prompt_tokens)

    def token_costs(self, examples: list[dict[str, Any]]) -> list[int]:
        """The tokens each of `examples` adds to a forward pass in the collator's layout (`example_costs`): what
        `max_tokens_per_batch` and length-grouped batches count."""
        costs = []
        for example in examples:
            sequences, groups = self.laid_out_sequences([example])
            _, built = plan_passes(sequences, groups, self.layout, self.pad_token_id, None)
            costs += example_costs(sequences, groups, self.layout, built)
        return costs

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        sequences, groups = self.laid_out_sequences(examples)
        passes, built = plan_passes(sequences, groups, self.layout, self.pad_token_id, self.max_tokens_per_batch)
        if len(passes) == 1:
            return self.collate(examples, sequences, groups, built)
        return self.micro_batches(examples, passes, groups, built)

    def collate(
        self,
        examples: list[dict[str, Any]],
        sequences: list[list[int]],
        groups: Groups,
        prefix_groups: Sequence[SharedPrefixGroup] | None = None,
    ) -> dict[str, Any]:
        """One batch of `examples` (their `laid_out_sequences`) in the collator's layout, without a token budget
        (`prefix_groups`: their `SHARED_PREFIX` groups, when already built)."""
        batch = lay_out(
            sequences,
            self.layout,
            self.pad_token_id,
            groups=groups,
            prefix_groups=prefix_groups,
            overhead_tokens=self.overhead_tokens,
            pad_to_multiple_of=self.pad_to_multiple_of,
        )
        batch.update(self.fields(examples))
        # The responses' sequences: a prompt added for the gate owns no tokens past the prefix of its group.
        responses = len(sequences) - (len(examples) if self.with_prompts else 0)
        if self.with_prompts:
            batch[PROMPTS_KEY] = torch.tensor(len(examples))
        if self.with_response_lengths:
            batch["response_lengths"] = response_lengths(sequences, groups)[:responses]
        if self.layout is not Layout.PADDED or self.with_prompts:  # else counted by its attention mask
            batch["num_real_tokens"] = torch.tensor(sum(len(s) for s in sequences[:responses]))
        return batch

    def micro_batches(
        self,
        examples: list[dict[str, Any]],
        passes: list[list[int]],
        positions: Groups,
        prefix_groups: Sequence[SharedPrefixGroup] | None = None,
    ) -> dict[str, Any]:
        """A `MICRO_BATCHES` batch: each pass (positions of examples) collated on its own, plus `example_index`,
        `sequence_index` (its sequences' positions in the whole batch's sequence order, `positions` per example) and
        `loss_weight` (its share of the examples). The per-example fields (every pair's `margin`, every ranking's
        `scores`) are also kept whole for evaluation, which scores the micro-batches and puts their rewards back in
        order."""
        micro_batches = []
        for group in passes:
            micro_examples = [examples[i] for i in group]
            sequences, local = self.laid_out_sequences(micro_examples)
            built = None if prefix_groups is None else [prefix_groups[i] for i in group]
            micro = self.collate(micro_examples, sequences, local, built)
            sequence_index = torch.empty(len(sequences), dtype=torch.long)
            for example, own in zip(group, local, strict=True):
                sequence_index[own] = torch.tensor(positions[example])
            micro["example_index"] = torch.tensor(group)
            micro["sequence_index"] = sequence_index
            micro["loss_weight"] = torch.tensor(len(group) / len(examples))
            micro_batches.append(micro)
        batch = {"micro_batches": micro_batches, **self.fields(examples), LAYOUT_KEY: Layout.MICRO_BATCHES}
        if self.with_prompts:
            batch[PROMPTS_KEY] = torch.tensor(len(examples))
        return batch


@dataclass
class DataCollatorForPreference(LayoutCollator):
    """
    Batch preference pairs: each example needs `chosen_ids` and `rejected_ids`; an optional `margin` becomes a float
    tensor. The sequences are all chosen ones, then all rejected ones, in any `layout`: by default TRL's padded one,
    rows `0..B-1` chosen and `B..2B-1` rejected, right-padded so that a sequence-classification head that reads the
    rightmost non-pad token sees the token it would see for the unpadded sequence in plain `transformers`. The
    padding-free layouts lay out each pair as one group (`SHARED_PREFIX`: the prompt computed once) and count
    `num_real_tokens` (tokens of chosen and rejected as sequences, TRL's `num_tokens`).

    >>> collator = DataCollatorForPreference(pad_token_id=0)
    >>> examples = [{"chosen_ids": [1, 2, 3], "rejected_ids": [4, 5]}, {"chosen_ids": [6, 7], "rejected_ids": [8]}]
    >>> batch = collator(examples)
    >>> batch["input_ids"].tolist()
    [[1, 2, 3], [6, 7, 0], [4, 5, 0], [8, 0, 0]]
    """

    def sequences_of(self, examples: list[dict[str, Any]]) -> tuple[list[list[int]], Groups]:
        n = len(examples)
        sequences = [e["chosen_ids"] for e in examples] + [e["rejected_ids"] for e in examples]
        return sequences, [[i, n + i] for i in range(n)]

    def fields(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        out = objective_ids(examples)
        if "margin" in examples[0]:
            out["margin"] = torch.tensor([float(e["margin"]) for e in examples], dtype=torch.float)
        return out


@dataclass
class DataCollatorForRanking(LayoutCollator):
    """
    Batch rankings: each example has `response_ids` (K >= 2 token-id lists, prompt included) and `scores` (K floats,
    higher is better). The sequences are every response of every prompt, prompt after prompt, one group per prompt
    (`SHARED_PREFIX`: the prompt computed once, each response attending to it and to itself). Plus `scores` (flat,
    float) and `group_sizes` (K of each prompt), for the ranking losses of `rewardlab.losses`.
    """

    def sequences_of(self, examples: list[dict[str, Any]]) -> tuple[list[list[int]], Groups]:
        sequences, groups = [], []
        for e in examples:
            groups.append(list(range(len(sequences), len(sequences) + len(e["response_ids"]))))
            sequences += [list(r) for r in e["response_ids"]]
        return sequences, groups

    def fields(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {
            "scores": torch.tensor([float(s) for e in examples for s in e["scores"]], dtype=torch.float),
            "group_sizes": torch.tensor([len(e["response_ids"]) for e in examples]),
            **objective_ids(examples),
        }
