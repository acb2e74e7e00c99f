"""How a batch is laid out and computed: the padding-free fast path, producer and consumer side by side.

- `batch`: the `Layout` names and what each layout's batch holds;
- `choose`: `choose_layout`, the one rule that picks a model's layout (training, evaluation and scoring);
- `plan`: pure planning on token-id lists (shared prefixes, read-out positions, sub-batches, token budgets);
- `collate`: `lay_out` builds any layout from sequences, `forward_passes` under a token budget; the collators for
  pairs and rankings;
- `varlen`: variable-length attention of packed rows: the plan of segments, the reference and the kernels;
- `attention`: the attention function registered with transformers, which runs packed rows on a varlen kernel;
- `forward`: `sequence_rewards` / `pair_rewards`, the rewards of any batch;
- `probe`: the start-up check that a model computes the packed layouts exactly.

A new layout or attention kernel touches this package and its tests only.
"""

from rewardlab.layout.batch import Layout, layout_of
from rewardlab.layout.choose import choose_layout
from rewardlab.layout.collate import DataCollatorForPreference, DataCollatorForRanking, forward_passes, lay_out
from rewardlab.layout.forward import pair_rewards, sequence_rewards

__all__ = [
    "DataCollatorForPreference",
    "DataCollatorForRanking",
    "Layout",
    "choose_layout",
    "forward_passes",
    "lay_out",
    "layout_of",
    "pair_rewards",
    "sequence_rewards",
]
