"""The data sets of one training run: each prepared once (`rewardlab.data.prepare`), counted, and its skipped rows
kept for `skipped_rows.jsonl`. A run is of pairs or of rankings, as its training data is; in a ranking run, pair
evaluation sets become rankings of two. A streamed evaluation set is read whole once (see `read_stream`)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

from datasets import Dataset, IterableDataset, concatenate_datasets

from rewardlab.config import RewardConfig
from rewardlab.data.prepare import OBJECTIVE_ID, RANKINGS, PreparationStats, prepare_preference_dataset
from rewardlab.errors import RewardlabError
from rewardlab.files import atomic_path, json_line

logger = logging.getLogger(__name__)

SKIPPED_ROWS_FILE = "skipped_rows.jsonl"


def pairs_as_rankings(dataset: Dataset | IterableDataset) -> Dataset | IterableDataset:
    """Prepared pairs as rankings of two responses (chosen scored 1, rejected 0), for a ranking run's evaluation."""
    return dataset.map(
        lambda e: {"response_ids": [e["chosen_ids"], e["rejected_ids"]], "scores": [1.0, 0.0]},
        remove_columns=list(dataset.column_names),
    )


def read_stream(stream: IterableDataset, batch_size: int = 1024) -> Dataset:
    """A prepared stream read whole into a map-style (in-memory Arrow) `Dataset`.

    Evaluation needs it: exact metrics count every pair once in every process layout, and only a set whose end is
    known lets accelerate drop the examples it repeats to even out the last batch across processes (for a stream it
    cannot, and its batch dispatching fails on batches of different shapes). Evaluation sets are small next to
    training sets, so reading one whole is cheap; training streams stay streams.
    """
    parts = [Dataset.from_dict(batch, features=stream.features) for batch in stream.iter(batch_size=batch_size)]
    if not parts:
        return Dataset.from_dict({name: [] for name in stream.features or {}}, features=stream.features)
    return concatenate_datasets(parts)


def check_every_objective_trains(objective_ids: list[int], objectives: list[str]) -> None:
    """Each objective's head learns from its own pairs only: one without any would stay random."""
    counts = Counter(objective_ids)
    missing = [name for k, name in enumerate(objectives) if not counts[k]]
    if missing:
        raise RewardlabError(
            f"objective {missing[0]!r} has no training pairs (after preparation), so its head would not learn: "
            f"give it data, or leave it out of objectives ({', '.join(objectives)})"
        )
    logger.warning("training pairs per objective: %s", ", ".join(f"{n} {counts[k]}" for k, n in enumerate(objectives)))


class RunDatasets:
    """Prepares the data sets of a run with its tokenizer and config, and remembers what happened to each."""

    def __init__(self, tokenizer: Any, args: RewardConfig):
        self.tokenizer = tokenizer
        self.args = args
        self.stats: dict[str, PreparationStats] = {}
        self.raw: dict[str, Any] = {}

    @property
    def ranking(self) -> bool:
        """Whether the run's training data holds rankings (K responses per prompt) rather than pairs."""
        return "train" in self.stats and self.stats["train"].kind == RANKINGS

    def prepare(self, dataset: Dataset | IterableDataset, name: str) -> Dataset | IterableDataset:
        """`dataset` validated, tokenized and length-limited; its counts are kept (and logged, when known now)."""
        prepared, stats = prepare_preference_dataset(dataset, self.tokenizer, self.args, name)
        self.stats[name] = stats
        self.raw[name] = dataset
        if isinstance(dataset, Dataset):
            logger.warning("%s", stats.summary())
            if name == "train" and OBJECTIVE_ID in prepared.column_names:
                check_every_objective_trains(prepared[OBJECTIVE_ID], self.args.objectives)
        return prepared

    def prepare_eval(self, eval_dataset: Any) -> Any:
        """An evaluation set, or a dict of named ones, prepared as the run's kind."""
        if isinstance(eval_dataset, dict):
            return {key: self._prepare_eval_set(ds, f"eval_{key}") for key, ds in eval_dataset.items()}
        return self._prepare_eval_set(eval_dataset, "eval")

    def _prepare_eval_set(self, dataset: Any, name: str) -> Any:
        prepared = self.prepare(dataset, name)
        stats = self.stats[name]
        if isinstance(prepared, IterableDataset):
            prepared = read_stream(prepared)
            stats.streaming = False  # read whole: the counts are final
            if len(prepared) == 0:
                raise RewardlabError(f"no usable {stats.kind} left: {stats.summary()}")
            logger.warning("%s (streamed, read whole for exact evaluation)", stats.summary())
        ranked = stats.kind == RANKINGS
        if ranked and not self.ranking:
            raise RewardlabError(
                f"the {name} dataset holds rankings (K responses per prompt) but the training data holds pairs: "
                "train on rankings too, or evaluate it with `rewardlab eval`"
            )
        if self.ranking and not ranked:
            if "margin" in (prepared.column_names or []):
                logger.warning("%s: pair margins are not used in a ranking run (chosen scores 1, rejected 0)", name)
            prepared = pairs_as_rankings(prepared)
        return prepared

    def write_skipped_rows(self, output_dir: str) -> str | None:
        """Write every row skipped by `skip_invalid_rows` (its data set, index, field, reason and content) to
        `<output_dir>/skipped_rows.jsonl`; streamed data sets list the rows skipped so far. Returns the path, or None
        when no row was skipped."""
        if not any(s.skipped_rows for s in self.stats.values()):
            return None
        path = os.path.join(output_dir, SKIPPED_ROWS_FILE)
        os.makedirs(output_dir, exist_ok=True)
        with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
            for name, stats in self.stats.items():
                raw = self.raw.get(name)
                for skipped in stats.skipped_rows:
                    record = {"dataset": name, **skipped}
                    if isinstance(raw, Dataset) and skipped["row"] is not None:
                        record["content"] = raw[skipped["row"]]
                    f.write(json_line(record))
        return path
