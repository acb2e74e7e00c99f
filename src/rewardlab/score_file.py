"""`rewardlab score`: a data file in, the same rows plus reward columns out; resumable, never half-written.

Rows are scored in chunks. Each finished chunk's rewards are appended to `<output>.partial.jsonl`, so an interrupted
run continues with `--resume` where it stopped; the output file itself is written once at the end to a temporary
name and renamed into place, so it is either absent (or the previous version) or complete.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset

from rewardlab.checkpoints import atomic_path
from rewardlab.data.loading import load_preference_data
from rewardlab.deep_ensemble import RewardEnsemble, members_of
from rewardlab.errors import RewardlabError
from rewardlab.scoring import RewardModel

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".csv": "csv"}


def build_parser() -> argparse.ArgumentParser:
    from rewardlab.cli import ArgumentParser, add_reward_model_arguments  # one-line usage errors, exit code 2

    p = ArgumentParser(
        prog="rewardlab score",
        description="Score every row of a data set with a reward model and write the rows back with rewards. "
        "Pairs (chosen/rejected, any training format) get reward_chosen, reward_rejected and prob_chosen; "
        "prompt/completion rows and plain texts get reward. An ensemble also gives the standard deviations: "
        "std_chosen, std_rejected and std_margin, or reward_std.",
    )
    p.add_argument(
        "--model",
        required=True,
        nargs="+",
        help="reward model directory (full or LoRA adapter) or hub id; several: one deep ensemble (RewardEnsemble)",
    )
    p.add_argument("--input", required=True, help="data file (.jsonl, .json, .parquet, .csv, ...), directory or hub id")
    p.add_argument(
        "--output", required=True, help="output file; its extension picks the format (.jsonl, .parquet, .csv)"
    )
    p.add_argument("--split", default="train", help="split to score (a single file is the split 'train')")
    p.add_argument("--text_column", default="text", help="column of plain texts (when the rows are not pairs)")
    p.add_argument("--prompt_column", default="prompt", help="prompt column of prompt/completion rows")
    p.add_argument("--completion_column", default="completion", help="completion column of prompt/completion rows")
    p.add_argument("--chunk_rows", type=int, default=512, help="rows scored between two progress saves")
    p.add_argument("--max_tokens_per_batch", type=int, default=8192, help="token budget of one forward pass")
    p.add_argument("--overlength_policy", choices=["truncate_prompt", "drop", "error"], default=None,
                   help="default: the training run's policy; 'drop' gives NaN rewards")  # fmt: skip
    add_reward_model_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from <output>.partial.jsonl")
    return p


def detect_mode(columns: Sequence[str], args: argparse.Namespace) -> str:
    """'pairs', 'completions' or 'texts', from the columns; a clear error when none fits."""
    if "chosen" in columns and "rejected" in columns or "chosen_ids" in columns and "rejected_ids" in columns:
        return "pairs"
    if args.prompt_column in columns and args.completion_column in columns:
        return "completions"
    if args.text_column in columns:
        return "texts"
    raise RewardlabError(
        f"cannot tell what to score: the columns are {', '.join(columns)}; expected chosen+rejected (pairs), "
        f"{args.prompt_column}+{args.completion_column} (--prompt_column/--completion_column), or "
        f"{args.text_column} (--text_column)"
    )


def score_rows(
    scorer: RewardModel | RewardEnsemble, rows: list[dict[str, Any]], mode: str, args: argparse.Namespace
) -> list[dict]:
    """The reward columns of `rows`, one dict per row (with the standard deviations of an ensemble)."""
    if mode == "pairs":
        scores = scorer.score_pair_rows(rows)
        columns = {"reward_chosen": scores.rewards_chosen, "reward_rejected": scores.rewards_rejected,
                   "prob_chosen": scores.prob_chosen}  # fmt: skip
        if scorer.has_uncertainty:
            columns.update(std_chosen=scores.std_chosen, std_rejected=scores.std_rejected, std_margin=scores.std_margin)
    else:
        if mode == "completions":
            inputs = [r[args.prompt_column] for r in rows], [r[args.completion_column] for r in rows]
            rewards = scorer.score(*inputs, return_std=scorer.has_uncertainty)
        else:
            rewards = scorer.score_texts([r[args.text_column] for r in rows], return_std=scorer.has_uncertainty)
        columns = {"reward": rewards[0], "reward_std": rewards[1]} if scorer.has_uncertainty else {"reward": rewards}
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


def score_command(argv: Sequence[str]) -> int:
    from tqdm.auto import tqdm

    args = build_parser().parse_args(list(argv))
    output = Path(args.output)
    if output.suffix not in OUTPUT_FORMATS:
        raise RewardlabError(f"--output must end in one of {', '.join(OUTPUT_FORMATS)}, got {output.name!r}")
    if args.chunk_rows < 1:
        raise RewardlabError(f"--chunk_rows must be positive, got {args.chunk_rows}")
    if not output.parent.is_dir():
        raise RewardlabError(f"the output directory {output.parent} does not exist")
    data = load_preference_data(args.input, split=args.split)
    if not isinstance(data, Dataset):
        raise RewardlabError("streamed data cannot be scored into one file; give a file, directory or hub dataset")
    mode = detect_mode(data.column_names, args)
    from rewardlab.cli import load_reward_model

    options = {"overlength_policy": args.overlength_policy} if args.overlength_policy else {}
    scorer = load_reward_model(args.model, args, max_tokens_per_batch=args.max_tokens_per_batch, **options)

    progress = partial_path(output)
    header = {"input": str(args.input), "split": args.split, "rows": len(data), "model": args.model, "mode": mode}
    done = read_partial(progress, header) if args.resume else {}
    if not done:
        progress.write_text(json.dumps(header) + "\n", encoding="utf-8")
    starts = range(0, len(data), args.chunk_rows)
    with open(progress, "a", encoding="utf-8") as log, tqdm(total=len(data), desc="scoring", unit="row") as bar:
        for start in starts:
            stop = min(start + args.chunk_rows, len(data))
            if all(i in done for i in range(start, stop)):
                bar.update(stop - start)
                continue
            rows = data.select(range(start, stop)).to_list()
            for offset, scores in enumerate(score_rows(scorer, rows, mode, args)):
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
    inputs = "; ".join(json.dumps({k: v for k, v in m.report.items() if v}) for m in members_of(scorer))
    print(f"scored {len(data)} rows ({mode}) into {output}; inputs: {inputs}")
    return 0
