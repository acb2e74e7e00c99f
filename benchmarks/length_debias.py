"""Does `length_debias` take length out of a real reward model without costing accuracy? Real model, real data.

Trains all-MiniLM-L6-v2 on RMB-pairwise helpfulness (the chosen answer is the longer one in 65% of its pairs) once per
`--methods` entry (`none` is plain Bradley-Terry; `odin:prompt` is `--length_debias odin
--length_decorrelation_scope prompt`), with the same data, seed and budget, then evaluates every model
with `rewardlab eval` on held-out RMB helpfulness, HH-RLHF helpful-base and the UltraFeedback eval file. It prints,
per model and set, the accuracy, the reward-length Pearson correlation over all responses and that of each pair's
margin with its length difference (within the pair), and the accuracy on pairs whose chosen answer is the shorter /
the longer, each with its 95% bootstrap interval where the eval report gives one, and for ODIN the length head's
correlation. Length is each response's tokens after the prompt, after truncation to `--max_length`.

    python benchmarks/length_debias.py --train_pairs 2000 --methods none odin correlation
    python benchmarks/length_debias.py --train_pairs 2000 --methods odin:prompt correlation:prompt

The reports stay in `--output_dir/<method>/eval/report.json` (and report.html).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ensemble_uncertainty import SHARED, read_jsonl, rmb_rows, ultrafeedback_rows


def hh_helpful_rows() -> list[dict]:
    """HH-RLHF helpful-base test pairs, as the whole conversations (the prompt is what chosen and rejected share)."""
    rows = read_jsonl(SHARED / "hh-rlhf-helpful-base-test/test.jsonl.gz")
    return [{"chosen": r["chosen"], "rejected": r["rejected"]} for r in rows if r["chosen"] != r["rejected"]]


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train(method: str, rows: list[dict], args: argparse.Namespace, directory: Path) -> list[dict]:
    """Train one model (the demo's recipe) and return its training log."""
    from datasets import Dataset

    from rewardlab.cli.demo import build_parser, demo_config, minilm_path
    from rewardlab.train.trainer import RewardTrainer

    demo_args = build_parser().parse_args(
        ["--output_dir", str(directory), "--max_train_pairs", "0", "--max_length", str(args.max_length)]
    )
    config = demo_config(demo_args, len(rows))
    config.seed = args.seed
    config.logging_steps = 10
    debias, _, scope = method.partition(":")
    config.length_debias = None if debias == "none" else debias
    config.length_decorrelation_scope = scope or "batch"
    trainer = RewardTrainer(model=minilm_path(), args=config, train_dataset=Dataset.from_list(rows))
    trainer.train()
    trainer.save_model(str(directory))
    return trainer.state.log_history


def cell(entry: dict | None, digits: int = 3) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    low, high = entry.get("ci95") or (None, None)
    interval = f" [{low:.{digits}f}, {high:.{digits}f}]" if low is not None else ""
    return f"{entry['value']:.{digits}f}{interval}"


def group(entry: dict | None) -> str:
    if not entry or entry.get("accuracy") is None:
        return "–"
    low, high = entry.get("ci95") or (None, None)
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None else ""
    return f"{entry['accuracy']:.3f}{interval} (n={entry['count']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["none", "odin", "correlation"])
    parser.add_argument("--train_pairs", type=int, default=2000)
    parser.add_argument("--eval_pairs", type=int, default=800, help="pairs of each evaluation set (at most)")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n_bootstrap", type=int, default=1000)
    parser.add_argument("--output_dir", default="/tmp/rewardlab-length-debias")
    args = parser.parse_args()

    from rewardlab.cli.eval import main as rewardlab_eval

    out = Path(args.output_dir)
    rmb = rmb_rows("helpfulness")  # a fixed shuffle: the first 1,000 are held out, as in ensemble_uncertainty.py
    train_rows = rmb[1000 : 1000 + args.train_pairs]
    sets = {
        "rmb-helpfulness-held-out": rmb[:1000],
        "hh-rlhf-helpful": hh_helpful_rows(),
        "ultrafeedback-eval": ultrafeedback_rows("eval"),
    }
    files = {name: write_jsonl(rows[: args.eval_pairs], out / "data" / f"{name}.jsonl") for name, rows in sets.items()}
    longer = sum(len(r["chosen"]) > len(r["rejected"]) for r in train_rows) / len(train_rows)
    print(f"training pairs: {len(train_rows)}; chosen longer (characters): {longer:.3f}", flush=True)

    table = []
    for method in args.methods:
        directory = out / method
        if not (directory / "rewardlab_run.json").exists():
            log = train(method, train_rows, args, directory)
            last = [e for e in log if "length_correlation" in e][-3:]
            print(method, "last logged steps:", json.dumps(last), flush=True)
        argv = ["--model", str(directory), "--output_dir", str(directory / "eval"), "--device", "cpu"]
        for path in files.values():
            argv += ["--dataset", str(path)]
        rewardlab_eval([*argv, "--n_bootstrap", str(args.n_bootstrap), "--seed", "0", "--worst_k", "5"])
        report = json.loads((directory / "eval" / "report.json").read_text())
        for set_name, metrics in next(iter(report["results"].values())).items():
            length = metrics.get("length_bias") or {}
            head = metrics.get("length_head") or {}
            row = {
                "method": method,
                "set": set_name,
                "pairs": metrics["n_evaluated"],
                "accuracy": cell(metrics["accuracy"]),
                "length_pearson": cell(length.get("pearson")),
                "margin_length_pearson": f"{length.get('margin_length_pearson', float('nan')):.3f}",
                "chosen_shorter": group(length.get("chosen_shorter")),
                "chosen_longer": group(length.get("chosen_longer")),
                "length_head_pearson": "–" if head.get("pearson") is None else f"{head['pearson']:.3f}",
            }
            table.append(row)
            print(json.dumps(row), flush=True)

    print(
        "\n| method | evaluated on | pairs | accuracy | reward-length Pearson | margin-length difference Pearson | "
        "acc., chosen shorter | acc., chosen longer | length head Pearson |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['method']} | {r['set']} | {r['pairs']} | {r['accuracy']} | {r['length_pearson']} | "
            f"{r['margin_length_pearson']} | {r['chosen_shorter']} | {r['chosen_longer']} | "
            f"{r['length_head_pearson']} |"
        )


if __name__ == "__main__":
    main()
