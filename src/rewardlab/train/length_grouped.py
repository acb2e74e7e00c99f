"""Length-grouped, token-budgeted training batches: each batch holds examples of similar length whose computed tokens
fill a budget, instead of a fixed number of examples.

A fixed number of pairs per batch makes a step of long pairs many times the work (and memory) of a step of short
ones, and in the padded layout every short pair pays for the longest one beside it. Here the examples are shuffled,
cut into mega-batches of about `MEGABATCH_BUDGETS` budgets' worth of tokens, sorted by cost within each, packed into
batches under the budget, and the batches shuffled: randomness across the epoch, similar lengths within a batch.
Every example is in exactly one batch per epoch, and the order is a function of (seed, epoch) only, so a resumed run
skips the batches it has done and continues the same order.

transformers' `LengthGroupedSampler` and `BatchRebalanceSampler` keep a fixed number of examples per batch or per
step and count the padded length; the budget here is in the tokens the run's layout computes (the shared prompt
once, no padding in the packed layouts), which is what a step costs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

# How many budgets' worth of examples are sorted together: larger groups lengths more tightly, smaller keeps the
# order more random (transformers' LengthGroupedSampler sorts 50 batches at a time).
MEGABATCH_BUDGETS = 50


def length_grouped_batches(
    costs: Sequence[int], max_tokens: int, seed: int, epoch: int = 0, padded: bool = False
) -> list[list[int]]:
    """Batches (lists of example indices) of one epoch: every index once, each batch's `costs` within `max_tokens`
    (an example over the budget alone is a batch), similar costs together, in an order fixed by `seed` and `epoch`.

    `costs[i]`: the tokens example i adds to a forward pass (`LayoutCollator.token_costs`); `padded`: a batch
    costs its size times its largest cost (the padded layout), else the sum.
    """
    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(len(costs), generator=generator).tolist()
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        end, total = start, 0
        while end < len(order) and total < MEGABATCH_BUDGETS * max_tokens:
            total += costs[order[end]]
            end += 1
        batches += _next_fit(sorted(order[start:end], key=lambda i: -costs[i]), costs, max_tokens, padded)
        start = end
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def _next_fit(order: list[int], costs: Sequence[int], max_tokens: int, padded: bool) -> list[list[int]]:
    """`order` (longest first) cut into consecutive batches within `max_tokens`: neighbours in length stay together,
    which first-fit packing (`rewardlab.layout.plan.split_by_token_budget`) would mix to fill every batch."""
    batches: list[list[int]] = []
    for i in order:
        if batches:
            batch = batches[-1]
            cost = (len(batch) + 1) * costs[batch[0]] if padded else sum(costs[j] for j in batch) + costs[i]
            if cost <= max_tokens:
                batch.append(i)
                continue
        batches.append([i])
    return batches


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """A batch sampler of `length_grouped_batches`, one epoch per iteration (`set_epoch` picks the epoch).

    With several processes each takes every `num_processes`-th batch from `process_index`; the epoch's batches are
    first extended by repeating its first ones to a multiple of `num_processes` (as `DistributedSampler` pads), so
    every process runs the same number of steps and no example is dropped.
    """

    def __init__(
        self,
        costs: Sequence[int],
        max_tokens: int,
        seed: int,
        padded: bool = False,
        num_processes: int = 1,
        process_index: int = 0,
    ):
        if max_tokens < 1:
            raise ValueError(f"the token budget must be positive, got {max_tokens}")
        self.costs, self.max_tokens, self.seed, self.padded = list(costs), max_tokens, seed, padded
        self.num_processes, self.process_index = num_processes, process_index
        self.epoch = 0
        self._planned: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """This process's batches of the current epoch (planned once per epoch)."""
        if self._planned is None or self._planned[0] != self.epoch:
            every = length_grouped_batches(self.costs, self.max_tokens, self.seed, self.epoch, self.padded)
            every += (every * self.num_processes)[: -len(every) % self.num_processes]
            self._planned = self.epoch, every[self.process_index :: self.num_processes]
        return self._planned[1]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
