"""The demo's model and a tiny random model on the local real preference sets, each against the content-blind rules
("longer wins", "shorter wins", chance) and with its lead over the best of them.

Sets (local copies of the public data sets, see `public_data.py`; HH-RLHF also ships with the package):
- HH-RLHF: the demo's own 400 held-out pairs (the demo trains on the rest of both test files), and each half;
- the UltraFeedback-binarized subset: both files, 1,200 pairs;
- RM-Bench: the four domain files as one set, 798 prompts x 9 comparisons, scored by RM-Bench's rules;
- RMB pairwise: the first `--rmb_pairs` pairs of each file in `ensemble_uncertainty.py`'s fixed shuffle (the files
  are sorted by category), the conversation written out as `role: content` lines (MiniLM has no chat template).

Models: the demo's trained MiniLM (`rewardlab demo --output_dir DIR` first; `--model DIR`), and a randomly initialised
2-layer BERT (hidden size 32) with MiniLM's tokenizer: what "no learning at all" scores under each rule.

    rewardlab demo --output_dir runs/demo
    python benchmarks/field_baselines.py --model runs/demo --output field_baselines.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from demo_halves import one_half
from ensemble_uncertainty import rmb_rows
from public_data import DATA_ROOT
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from rewardlab import RewardModel
from rewardlab.cli.demo import demo_splits, load_demo_files, minilm_path
from rewardlab.eval.report import evaluate
from rewardlab.eval.sets import eval_set_from_rows, load_eval_set


def tiny_random_bert(max_length: int) -> RewardModel:
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    return RewardModel(BertForSequenceClassification(config), tokenizer, max_length=max_length)


def eval_sets(rmb_pairs: int) -> list[Any]:
    parts = load_demo_files()
    pool, held_out = demo_splits(parts, 400)
    helpful, harmless = (one_half(pool, held_out, parts, 400, half)[1] for half in ("helpful", "harmless"))
    out = [
        eval_set_from_rows(held_out.to_list(), "HH-RLHF demo held-out (400)", "demo split", "hh-rlhf"),
        eval_set_from_rows(helpful.to_list(), "HH-RLHF helpful half (200)", "demo split", "hh-rlhf"),
        eval_set_from_rows(harmless.to_list(), "HH-RLHF harmless half (200)", "demo split", "hh-rlhf"),
        load_eval_set(
            str(DATA_ROOT / "ultrafeedback-binarized-subset" / "*_clean.jsonl.gz"),
            "ultrafeedback",
            name="UltraFeedback",
            skip_invalid_rows=True,  # a few rows have an empty response: counted, not scored
        ),
        load_eval_set(str(DATA_ROOT / "rm-bench" / "*_filtered.jsonl.gz"), "rm-bench", name="RM-Bench"),
    ]
    for goal in ("helpfulness", "harmlessness"):
        rows = rmb_rows(goal)[:rmb_pairs]
        out.append(eval_set_from_rows(rows, f"RMB {goal} ({rmb_pairs})", goal, skip_invalid_rows=True))
    return out


def table(report: dict[str, Any]) -> str:
    lines = [
        "| data set | metric | model | score | longer wins | shorter wins | chance | lead [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in [d["name"] for d in report["datasets"]]:
        for model, results in report["results"].items():
            result = results[name]
            top = result["headline"]
            key = next((k for k in ("rm_bench", "rewardbench2") if k in result), None)
            baselines = result[key]["baselines"] if key else result["baselines"]
            low, high = top["lead"]["ci95"]
            lines.append(
                f"| {name} | {top['metric']} | {model} | {top['value']:.3f} | {baselines['longer_wins']:.3f} | "
                f"{baselines['shorter_wins']:.3f} | {baselines['chance']:.3f} | "
                f"{top['lead']['value']:+.3f} [{low:+.3f}, {high:+.3f}] |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo", help="the demo's output directory")
    parser.add_argument("--rmb_pairs", type=int, default=1000)
    parser.add_argument("--n_bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="write the whole report (JSON) here")
    args = parser.parse_args()
    started = time.perf_counter()
    demo = RewardModel.from_pretrained(args.model)
    models = {"demo MiniLM (trained)": demo, "tiny random BERT": tiny_random_bert(demo.max_length)}
    report, _ = evaluate(models, eval_sets(args.rmb_pairs), n_bootstrap=args.n_bootstrap, seed=args.seed)
    print(table(report))
    for model, results in report["results"].items():
        rm = results["RM-Bench"]["rm_bench"]
        print(f"{model} on RM-Bench: easy {rm['easy']:.3f}, normal {rm['normal']:.3f}, hard {rm['hard']:.3f}")
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
