"""Bootstrap resampling for ensembles: each head (or each separately trained model) weighs each training example by
its own Poisson(1) draw, the online bootstrap of Oza & Russell, fixed per example by hashing its token ids, so an
example keeps its weights in every epoch and on every process."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch


def example_key(sequences: Sequence[Sequence[int]]) -> bytes:
    """Bytes identifying a tokenized example (its sequences, in order), for per-example bootstrap weights."""
    parts = [np.asarray(list(s) + [-1], dtype=np.int64) for s in sequences]
    return np.concatenate(parts).tobytes()


def bootstrap_weights(keys: Sequence[bytes], n: int, seed: int) -> torch.Tensor:
    """Poisson(1) weights, shape (len(keys), n): how many times each head sees each example in its resample.

    Each example's draws depend only on its key, `n` and `seed`, not on batch order, epoch or process.
    """
    rows = []
    for key in keys:
        digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
        rows.append(np.random.default_rng([seed, digest]).poisson(1.0, n))
    return torch.tensor(np.array(rows), dtype=torch.float32).reshape(len(keys), n)


class BootstrapCollator:
    """Wrap a collator so that each batch (and each of its micro-batches) carries `bootstrap_weights` (B, N): the
    Poisson(1) weight of every example for every head (`bootstrap_weights`), keyed on its token ids; (B,) for a
    single head, shaped like its rewards."""

    def __init__(self, collator, num_heads: int, seed: int):
        self.collator, self.num_heads, self.seed = collator, num_heads, seed

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.collator(examples)
        keys = [
            example_key(e["response_ids"] if "response_ids" in e else [e["chosen_ids"], e["rejected_ids"]])
            for e in examples
        ]
        weights = bootstrap_weights(keys, self.num_heads, self.seed)
        if self.num_heads == 1:
            weights = weights[:, 0]
        batch["bootstrap_weights"] = weights
        for micro in batch.get("micro_batches", ()):
            micro["bootstrap_weights"] = weights[micro["example_index"]]
        return batch
