"""The batch layouts: how the sequences of one batch are laid out for the model, and what each layout's batch holds.

A collated batch is a dict whose `"layout"` entry says which layout it is; a batch without one is `PADDED`, which is
exactly TRL's batch (so TRL's collators and custom ones work unchanged). Whatever the layout,
`rewardlab.layout.forward.sequence_rewards` returns one reward per sequence, (S,) or (S, N) for an ensemble of N
heads, in the order the collator was given the sequences; pair batches give all chosen sequences, then all rejected
ones. The keys of each layout (n: tokens in a packed row):

- `PADDED` (any architecture): `input_ids`, `attention_mask` (S, T), right-padded, and no `layout` entry.
- `SUB_BATCHES` (any architecture): `sub_batches`, a list of `PADDED` batches of sequences of similar length, each
  with `sequence_index` (its sequences' positions in the batch).
- `PACKED` (BERT-style encoders): every sequence in one row, each attending to itself only: `input_ids`,
  `position_ids` (1, n), `varlen` (one non-causal segment per sequence, `rewardlab.layout.varlen`), `first_index`
  (S,) where each sequence starts (the [CLS] the pooler reads).
- `PACKED_CAUSAL` (causal models, `share_prompt=False`): every sequence in one row, each attending causally to
  itself only, nothing shared (what padding-free packing with FlashAttention varlen computes elsewhere, e.g.
  OpenRLHF's `--packing_samples`): the keys of `SHARED_PREFIX`, every group a single sequence.
- `SHARED_PREFIX` (causal models): the sequences that answer one prompt laid out as `prefix + tail_1 + ... +
  tail_K`, the prefix computed once, groups packed into one row: `input_ids`, `position_ids` (1, n), `varlen`
  (causal segments: each sequence over the prefix and itself), `readout_index` (S,) where each sequence's reward
  is read.
- `MICRO_BATCHES`: a batch over the token budget, split into `micro_batches` of whole examples, each a batch of one
  of the layouts above plus `example_index` (its examples' positions), `sequence_index` (its sequences' positions)
  and `loss_weight` (its share of the examples).

The padding-free layouts also count `num_real_tokens`, the tokens of the sequences themselves. Every layout computes
the rewards, loss and gradients of the `PADDED` batch (tested to 1e-5 in float32); they differ
in what they spend on padding, and a model uses the fastest one it supports (`rewardlab.layout.choose`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

LAYOUT_KEY = "layout"


class Layout(str, Enum):
    """The name of a batch layout (see the module docstring for the keys of each)."""

    PADDED = "padded"
    SUB_BATCHES = "sub_batches"
    PACKED = "packed"
    PACKED_CAUSAL = "packed_causal"
    SHARED_PREFIX = "shared_prefix"
    MICRO_BATCHES = "micro_batches"

    def __str__(self) -> str:
        return self.value

    @property
    def shares_prefixes(self) -> bool:
        """Whether the layout computes the prefix that the sequences of one group share once (so a scorer should
        group the sequences that answer one prompt)."""
        return self is Layout.SHARED_PREFIX


def layout_of(batch: Mapping[str, Any]) -> Layout:
    """The layout a collated batch says it has; `PADDED` for a batch that does not say (TRL's collators)."""
    return Layout(batch.get(LAYOUT_KEY, Layout.PADDED))
