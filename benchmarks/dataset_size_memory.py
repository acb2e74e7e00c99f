"""Peak memory of training against the size of the data set: it should follow the batch, not the data.

Each run, in its own process, loads RMB pairwise (a local copy of its helpfulness file, `--data`; 14.5k conversational
pairs) or its first 200 rows, prepares it (validation, chat template, tokenization) and trains `--steps` steps of
`--batch_size` pairs on the small Qwen3; also once streamed (`--streaming`). It prints the process's peak RSS, the
RSS after loading the model (the baseline), and the preparation time.

    python benchmarks/dataset_size_memory.py --steps 10
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from public_data import DATA_ROOT  # noqa: E402
from train_throughput import load_model_and_tokenizer, run_child  # noqa: E402

RMB = DATA_ROOT / "rmb-pairwise/helpfulness.jsonl.gz"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one_run(args) -> dict:
    import gzip

    import torch

    from rewardlab import RewardConfig, RewardTrainer
    from rewardlab.data.apply_mapping import apply_mapping
    from rewardlab.data.loading import load_preference_data
    from rewardlab.data.mapping import get_preset

    torch.set_num_threads(2)
    # RMB nests its answers; map it to the trainer's conversational layout once, into a JSON-lines file.
    source = Path(tempfile.mkdtemp()) / "rmb.jsonl"
    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        raw = [json.loads(line) for _, line in zip(range(args.rows or 10**9), f, strict=False)]
    pairs, _ = apply_mapping(raw, get_preset("rmb"), skip_invalid=True)
    with open(source, "w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(json.dumps({k: pair[k] for k in ("prompt", "chosen", "rejected")}) + "\n")
    del raw, pairs
    model, tok = load_model_and_tokenizer("qwen3-small")
    baseline = rss_mb()
    data = load_preference_data(str(source), split="train", streaming=args.streaming)
    config = RewardConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        max_length=512,
        learning_rate=1e-5,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=5,
        disable_tqdm=True,
        seed=0,
        skip_invalid_rows=True,
    )
    start = time.perf_counter()
    trainer = RewardTrainer(model, args=config, train_dataset=data, processing_class=tok)
    prepared = time.perf_counter() - start
    trainer.train()
    return {
        "rows": "streamed" if args.streaming else len(trainer.train_dataset),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "prepare_seconds": prepared,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(RMB))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--streaming", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(one_run(args)), flush=True)
        return
    print(f"data={args.data} steps={args.steps} batch={args.batch_size} model=qwen3-small max_length=512")
    print(f"{'data set':28}{'pairs':>8}{'baseline MB':>13}{'peak MB':>10}{'prepare s':>11}")
    for label, extra in (
        ("first 200 rows", ["--rows", "200"]),
        ("all rows", []),
        ("all rows, streamed", ["--streaming"]),
    ):
        r = run_child(
            [
                __file__,
                "--child",
                "--data",
                args.data,
                "--steps",
                str(args.steps),
                "--batch_size",
                str(args.batch_size),
                *extra,
            ],
            label,
        )
        print(
            f"{label:28}{r['rows']!s:>8}{r['baseline_rss_mb']:13.0f}{r['peak_rss_mb']:10.0f}"
            f"{r['prepare_seconds']:11.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
