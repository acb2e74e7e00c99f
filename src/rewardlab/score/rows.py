"""Score every row of a dataset into reward columns, resumably, never leaving a half-written output file.

Rows are scored in chunks. Each finished chunk's rewards are appended to `<output>.partial.jsonl`, so an interrupted
run continues where it stopped; the output file itself is written once at the end to a temporary name and renamed
into place, so it is either absent (or the previous version) or complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from tqdm.auto import tqdm

from rewardlab.errors import RewardlabError
from rewardlab.files import atomic_path
from rewardlab.score.ensemble import RewardEnsemble
from rewardlab.score.reward_model import RewardModel

OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".csv": "csv"}
PAIRS, COMPLETIONS, TEXTS = "pairs", "completions", "texts"


@dataclass(frozen=True)
class RowColumns:
    """The columns that hold what to score, when the rows are not pairs."""

    text_column: str = "text"
    prompt_column: str = "prompt"
    completion_column: str = "completion"


def detect_mode(columns: Sequence[str], names: RowColumns) -> str:
    """'pairs', 'completions' or 'texts', from the columns; a clear error when none fits."""
    if "chosen" in columns and "rejected" in columns or "chosen_ids" in columns and "rejected_ids" in columns:
        return PAIRS
    if names.prompt_column in columns and names.completion_column in columns:
        return COMPLETIONS
    if names.text_column in columns:
        return TEXTS
    raise RewardlabError(
        f"cannot tell what to score: the columns are {', '.join(columns)}; expected chosen+rejected (pairs), "
        f"{names.prompt_column}+{names.completion_column} (--prompt_column/--completion_column), or "
        f"{names.text_column} (--text_column)"
    )


def score_rows(
    scorer: RewardModel | RewardEnsemble, rows: list[dict[str, Any]], mode: str, names: RowColumns
) -> list[dict]:
    """The reward columns of `rows`, one dict per row (with the standard deviations of an ensemble)."""
    with_std = scorer.has_uncertainty
    if mode == PAIRS:
        scores = scorer.score_pair_rows(rows)
        columns = {
            "reward_chosen": scores.rewards_chosen,
            "reward_rejected": scores.rewards_rejected,
            "prob_chosen": scores.prob_chosen,
        }
        if with_std:
            columns.update(std_chosen=scores.std_chosen, std_rejected=scores.std_rejected, std_margin=scores.std_margin)
    else:
        if mode == COMPLETIONS:
            inputs = [r[names.prompt_column] for r in rows], [r[names.completion_column] for r in rows]
            rewards = scorer.score(*inputs, return_std=with_std)
        else:
            rewards = scorer.score_texts([r[names.text_column] for r in rows], return_std=with_std)
        columns = {"reward": rewards[0], "reward_std": rewards[1]} if with_std else {"reward": rewards}
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def partial_path(output: Path) -> Path:
    return output.with_name(output.name + ".partial.jsonl")


def read_partial(path: Path, header: dict[str, Any]) -> dict[int, dict]:
    """Rewards of the rows an interrupted run finished; a last line cut by the interruption is ignored.

    The file starts with the run's `header` (input, split, rows, model, mode): resuming a different job is refused.
    """
    done: dict[int, dict] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as f:
        first = f.readline()
        try:
            saved = json.loads(first)
        except json.JSONDecodeError:
            saved = None
        if saved != header:
            raise RewardlabError(
                f"{path} belongs to another scoring job ({first.strip()[:200]}); delete it or run without --resume"
            )
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            done[record["index"]] = record["scores"]
    return done


def write_atomically(dataset: Dataset, output: Path) -> None:
    """Write to a temporary file next to `output`, then rename: readers never see a half-written file."""
    fmt = OUTPUT_FORMATS[output.suffix]
    with atomic_path(output) as temporary:
        if fmt == "jsonl":
            dataset.to_json(str(temporary), lines=True, force_ascii=False)
        elif fmt == "parquet":
            dataset.to_parquet(str(temporary))
        else:
            dataset.to_csv(str(temporary), index=False)


def score_dataset(
    scorer: RewardModel | RewardEnsemble,
    data: Dataset,
    output: Path,
    *,
    mode: str,
    names: RowColumns,
    header: dict[str, Any],
    chunk_rows: int = 512,
    resume: bool = False,
) -> Dataset:
    """`data` with its reward columns, written to `output` (its extension picks the format), `chunk_rows` rows per
    progress save; `resume` continues from `<output>.partial.jsonl` when its `header` is this job's."""
    progress = partial_path(output)
    done = read_partial(progress, header) if resume else {}
    if not done:
        progress.write_text(json.dumps(header) + "\n", encoding="utf-8")
    with open(progress, "a", encoding="utf-8") as log, tqdm(total=len(data), desc="scoring", unit="row") as bar:
        for start in range(0, len(data), chunk_rows):
            stop = min(start + chunk_rows, len(data))
            if all(i in done for i in range(start, stop)):
                bar.update(stop - start)
                continue
            rows = data.select(range(start, stop)).to_list()
            for offset, scores in enumerate(score_rows(scorer, rows, mode, names)):
                done[start + offset] = scores
                log.write(json.dumps({"index": start + offset, "scores": scores}) + "\n")
            log.flush()
            bar.update(stop - start)
    columns = {name: [done[i][name] for i in range(len(data))] for name in done[0]} if len(data) else {}
    for name, values in columns.items():
        if name in data.column_names:  # re-scoring a scored file: the new rewards replace the old
            data = data.remove_columns(name)
        data = data.add_column(name, values)
    write_atomically(data, output)
    progress.unlink(missing_ok=True)
    return data
