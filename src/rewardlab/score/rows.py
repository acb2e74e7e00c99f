"""Score every row of a dataset into reward columns, resumably, never leaving a half-written output file.

Rows are scored in chunks. Each finished chunk's rewards are appended to `<output>.partial.jsonl`, so an interrupted
run continues where it stopped; the output file itself is written once at the end to a temporary name and renamed
into place, so it is either absent (or the previous version) or complete. An invalid row stops the run naming the
row and field, or (`skip_invalid_rows`) keeps its place with empty rewards and is listed, with why, in
`<output>.skipped_rows.jsonl`.

Several processes (`torchrun` / `accelerate launch`) share the rows: each takes one contiguous share (the shares' sizes
differ by one row at most) and scores it in chunks, logging to its own progress file
(`<output>.partial.<rank>-of-<processes>.jsonl`, so each resumes its own share), and the first process then assembles
all of them in the rows' order and writes the one output file.
"""

from __future__ import annotations

import glob
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from tqdm.auto import tqdm

from rewardlab.data.validate import validate_scored_pair, validate_text
from rewardlab.errors import InvalidRowError, RewardlabError
from rewardlab.files import atomic_path, json_line
from rewardlab.score.ensemble import RewardEnsemble, members_of
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


def check_row(row: dict[str, Any], index: int, mode: str, names: RowColumns) -> None:
    """Raise `InvalidRowError` (row, field, reason code) for a row the scorer cannot take, as training would."""
    if mode == PAIRS:
        validate_scored_pair(row, index)
    elif mode == COMPLETIONS:
        completion = row.get(names.completion_column)
        conversational = isinstance(completion, list)
        prompt = row.get(names.prompt_column)
        if not (prompt == "" and not conversational):  # an empty text prompt is no prompt
            validate_text(prompt, index, names.prompt_column, conversational)
        validate_text(completion, index, names.completion_column, conversational)
    else:
        validate_text(row.get(names.text_column), index, names.text_column, conversational=False)


def reward_columns(mode: str, with_std: bool) -> list[str]:
    """The columns scoring adds in `mode` (with the standard deviations of an ensemble)."""
    if mode == PAIRS:
        return ["reward_chosen", "reward_rejected", "prob_chosen"] + (
            ["std_chosen", "std_rejected", "std_margin"] if with_std else []
        )
    return ["reward", "reward_std"] if with_std else ["reward"]


def score_rows(
    scorer: RewardModel | RewardEnsemble, rows: list[dict[str, Any]], mode: str, names: RowColumns
) -> list[dict]:
    """The reward columns of `rows`, one dict per row (with the standard deviations of an ensemble)."""
    with_std = scorer.has_uncertainty
    if mode == PAIRS:
        scores = scorer.score_pair_rows(rows)
        values = [scores.rewards_chosen, scores.rewards_rejected, scores.prob_chosen]
        if with_std:
            values += [scores.std_chosen, scores.std_rejected, scores.std_margin]
    else:
        if mode == COMPLETIONS:
            inputs = [r[names.prompt_column] for r in rows], [r[names.completion_column] for r in rows]
            rewards = scorer.score(*inputs, return_std=with_std)
        else:
            rewards = scorer.score_texts([r[names.text_column] for r in rows], return_std=with_std)
        values = list(rewards) if with_std else [rewards]
    columns = reward_columns(mode, with_std)
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def share(rows: int, process: int, processes: int) -> range:
    """The rows `process` of `processes` scores: one contiguous range, the ranges' sizes within one row of each other
    (whole chunks dealt round robin would leave one process a chunk more than another)."""
    return range(rows * process // processes, rows * (process + 1) // processes)


def partial_path(output: Path, process: int = 0, processes: int = 1) -> Path:
    """The progress file of `process` of `processes`: `<output>.partial.jsonl` for a single process."""
    shard = f".{process}-of-{processes}" if processes > 1 else ""
    return output.with_name(f"{output.name}.partial{shard}.jsonl")


def _other_progress_files(output: Path, processes: int) -> list[Path]:
    """Progress files an interrupted run with another number of processes left behind."""
    own = {partial_path(output, p, processes).name for p in range(processes)}
    found = output.parent.glob(f"{glob.escape(output.name)}.partial*.jsonl")
    return sorted(p for p in found if p.name not in own)


def skipped_rows_path(output: Path) -> Path:
    return output.with_name(output.name + ".skipped_rows.jsonl")


def read_partial(path: Path, header: dict[str, Any]) -> tuple[dict[int, dict], list[Counter[str]]]:
    """The records (`scores`, and `skipped` for a skipped row) of the rows an interrupted run finished, and what the
    over-length policy did to its chunks' inputs (one count per member of an ensemble); a last line cut by the
    interruption is ignored.

    The file starts with the run's `header` (input, split, rows, model, mode): resuming a different job is refused.
    """
    done: dict[int, dict] = {}
    inputs: list[Counter[str]] = []
    if not path.exists():
        return done, inputs
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
            if "inputs" in record:  # a finished chunk's counts
                inputs = _add_counts(inputs, record["inputs"])
            else:
                done[record.pop("index")] = record
    return done, inputs


def _add_counts(total: list[Counter[str]], more: list[dict[str, int]]) -> list[Counter[str]]:
    """Per ensemble member, the sum of two lists of counts."""
    if not total:
        return [Counter(counts) for counts in more]
    return [a + Counter(b) for a, b in zip(total, more, strict=True)]


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
    skip_invalid_rows: bool = False,
    process: int = 0,
    processes: int = 1,
    wait_for_everyone: Callable[[], None] = lambda: None,
) -> tuple[Dataset | None, list[dict[str, Any]], list[Counter[str]]]:
    """`data` with its reward columns, written to `output` (its extension picks the format), `chunk_rows` rows per
    progress save; `resume` continues from the progress files when their `header` is this job's.

    An invalid row raises `InvalidRowError` naming it, or with `skip_invalid_rows` gets empty (null) rewards and is
    listed (row, field, reason, code, content) in `<output>.skipped_rows.jsonl`. Under several processes, this is
    `process` of `processes` (every one calls it, with a barrier as `wait_for_everyone`): it scores its `share` of the
    rows, and the first process writes the output. Returns the scored data, the skipped rows and what the over-length
    policy did to the inputs of every process's chunks, resumed ones included, per ensemble member (on the other
    processes: None, [] and []).
    """
    if resume and (stale := _other_progress_files(output, processes)):
        raise RewardlabError(
            f"{stale[0]} was left by a run with another number of processes: resume with that number, or delete "
            "the progress files and run without --resume"
        )
    progress = partial_path(output, process, processes)
    done, inputs = read_partial(progress, header) if resume else ({}, [])
    if not done:
        progress.write_text(json.dumps(header) + "\n", encoding="utf-8")
    own = share(len(data), process, processes)
    with open(progress, "a", encoding="utf-8") as log, tqdm(total=len(own), desc="scoring", unit="row") as bar:
        for start in range(own.start, own.stop, chunk_rows):
            stop = min(start + chunk_rows, own.stop)
            if all(i in done for i in range(start, stop)):
                bar.update(stop - start)
                continue
            rows = data.select(range(start, stop)).to_list()
            before = [Counter(member.report) for member in members_of(scorer)]
            for index, record in _score_chunk(scorer, rows, start, mode, names, skip_invalid_rows).items():
                done[index] = record
                log.write(json.dumps({"index": index, **record}) + "\n")
            counted = [dict(Counter(m.report) - b) for m, b in zip(members_of(scorer), before, strict=True)]
            log.write(json.dumps({"inputs": counted}) + "\n")
            inputs = _add_counts(inputs, counted)
            log.flush()
            bar.update(stop - start)
    wait_for_everyone()  # every share is scored and its progress file closed
    if process != 0:
        return None, [], []
    for other in range(1, processes):
        others, counted = read_partial(partial_path(output, other, processes), header)
        done.update(others)
        if counted:
            inputs = _add_counts(inputs, [dict(c) for c in counted])
    skipped = [{"row": i, **done[i]["skipped"], "content": data[i]} for i in range(len(data)) if "skipped" in done[i]]
    empty = dict.fromkeys(reward_columns(mode, scorer.has_uncertainty))
    for name in empty:
        values = [(done[i]["scores"] or empty)[name] for i in range(len(data))]
        if name in data.column_names:  # re-scoring a scored file: the new rewards replace the old
            data = data.remove_columns(name)
        data = data.add_column(name, values)
    _write_skipped_rows(skipped, skipped_rows_path(output))
    write_atomically(data, output)
    finished = [partial_path(output, p, processes) for p in range(processes)]
    for path in finished + _other_progress_files(output, processes):
        path.unlink(missing_ok=True)
    return data, skipped, inputs


def _score_chunk(
    scorer: RewardModel | RewardEnsemble,
    rows: list[dict[str, Any]],
    start: int,
    mode: str,
    names: RowColumns,
    skip_invalid_rows: bool,
) -> dict[int, dict[str, Any]]:
    """The progress records of rows `start, start + 1, ...`: `scores`, and `skipped` (why) for a skipped row."""
    records: dict[int, dict[str, Any]] = {}
    valid = []
    for offset, row in enumerate(rows):
        try:
            check_row(row, start + offset, mode, names)
        except InvalidRowError as e:
            if not skip_invalid_rows:
                raise
            records[start + offset] = {
                "scores": None,
                "skipped": {"field": e.field, "reason": e.reason, "code": e.code},
            }
            continue
        valid.append(offset)
    try:
        scores = score_rows(scorer, [rows[offset] for offset in valid], mode, names) if valid else []
    except InvalidRowError as e:  # e.g. over-length under overlength_policy "error": name the row in the file
        raise e.at(start + valid[e.index]) if e.index is not None else e from None
    for offset, row_scores in zip(valid, scores, strict=True):
        records[start + offset] = {"scores": row_scores}
    return records


def _write_skipped_rows(skipped: list[dict[str, Any]], path: Path) -> None:
    if not skipped:
        path.unlink(missing_ok=True)  # from an earlier run of the same output
        return
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        for record in skipped:
            f.write(json_line(record))
