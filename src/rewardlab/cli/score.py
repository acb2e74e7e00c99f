"""`rewardlab score`: a data file in, the same rows plus reward columns out (`rewardlab.score.rows`)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from accelerate import PartialState
from datasets import Dataset

from rewardlab.choices import OVERLENGTH_POLICIES
from rewardlab.cli.common import add_reward_model_arguments, load_reward_model
from rewardlab.cli.parser import ArgumentParser
from rewardlab.data.loading import load_preference_data
from rewardlab.errors import RewardlabError
from rewardlab.score.rows import OUTPUT_FORMATS, RowColumns, detect_mode, score_dataset, skipped_rows_path


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="rewardlab score",
        description="Score every row of a data set with a reward model and write the rows back with rewards. "
        "Pairs (chosen/rejected, any training format) get reward_chosen, reward_rejected and prob_chosen; "
        "prompt/completion rows and plain texts get reward. An ensemble also gives the standard deviations: "
        "std_chosen, std_rejected and std_margin, or reward_std. Under torchrun or accelerate launch, the processes "
        "share the rows (each on its own device) and the first writes the one output file.",
        deprecated={"--input": "--dataset"},
    )
    p.add_argument(
        "--model",
        required=True,
        nargs="+",
        help="reward model directory (full or LoRA adapter) or hub id; several: one deep ensemble (RewardEnsemble)",
    )
    p.add_argument(
        "--dataset", required=True, help="data file (.jsonl, .json, .parquet, .csv, ...), directory or hub id"
    )
    p.add_argument(
        "--output", required=True, help="output file; its extension picks the format (.jsonl, .parquet, .csv)"
    )
    p.add_argument("--split", default="train", help="split to score (a single file is the split 'train')")
    p.add_argument("--text_column", default="text", help="column of plain texts (when the rows are not pairs)")
    p.add_argument("--prompt_column", default="prompt", help="prompt column of prompt/completion rows")
    p.add_argument("--completion_column", default="completion", help="completion column of prompt/completion rows")
    p.add_argument("--chunk_rows", type=int, default=512, help="rows scored between two progress saves")
    p.add_argument("--max_tokens_per_batch", type=int, default=8192, help="token budget of one forward pass")
    p.add_argument(
        "--overlength_policy",
        choices=OVERLENGTH_POLICIES,
        default=None,
        help="default: the training run's policy; 'drop' gives NaN rewards",
    )
    p.add_argument(
        "--skip_invalid_rows",
        action="store_true",
        help="give rows with a missing, empty or wrongly typed field or a malformed message empty rewards and list "
        "them, with why, in <output>.skipped_rows.jsonl (default: stop at the first, naming row and field)",
    )
    add_reward_model_arguments(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its progress files (<output>.partial.jsonl, or one per process)",
    )
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    output = Path(args.output)
    if output.suffix not in OUTPUT_FORMATS:
        raise RewardlabError(f"--output must end in one of {', '.join(OUTPUT_FORMATS)}, got {output.name!r}")
    if args.chunk_rows < 1:
        raise RewardlabError(f"--chunk_rows must be positive, got {args.chunk_rows}")
    if not output.parent.is_dir():
        raise RewardlabError(f"the output directory {output.parent} does not exist")
    data = load_preference_data(args.dataset, split=args.split)
    if not isinstance(data, Dataset):
        raise RewardlabError("streamed data cannot be scored into one file; give a file, directory or hub dataset")
    names = RowColumns(args.text_column, args.prompt_column, args.completion_column)
    mode = detect_mode(data.column_names, names)
    options = {"overlength_policy": args.overlength_policy} if args.overlength_policy else {}
    # The processes launched together (torchrun / accelerate launch; one otherwise), each on its own device. Without
    # an accelerator they must be told they run on CPUs, or accelerate leaves each one alone, scoring every row.
    on_cpu = args.device == "cpu" or (args.device is None and not torch.accelerator.is_available())
    processes = PartialState(cpu=on_cpu)
    if processes.num_processes > 1 and args.device is None:
        args.device = str(processes.device)
    scorer = load_reward_model(args.model, args, max_tokens_per_batch=args.max_tokens_per_batch, **options)
    header = {"input": str(args.dataset), "split": args.split, "rows": len(data), "model": args.model, "mode": mode}
    scored, skipped, inputs = score_dataset(
        scorer,
        data,
        output,
        mode=mode,
        names=names,
        header=header,
        chunk_rows=args.chunk_rows,
        resume=args.resume,
        skip_invalid_rows=args.skip_invalid_rows,
        process=processes.process_index,
        processes=processes.num_processes,
        wait_for_everyone=processes.wait_for_everyone,
    )
    if not processes.is_main_process:
        return 0
    counts = "; ".join(json.dumps({k: v for k, v in member.items() if v}) for member in inputs)
    print(f"scored {len(scored) - len(skipped)} rows ({mode}) into {output}; inputs: {counts}")
    if skipped:
        reasons = Counter(s["code"] for s in skipped)
        why = ", ".join(f"{code}: {n}" for code, n in reasons.most_common())
        print(f"skipped {len(skipped)} invalid rows ({why}), kept with empty rewards: {skipped_rows_path(output)}")
    return 0
