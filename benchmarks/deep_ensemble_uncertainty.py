"""A deep ensemble through the command line: does its disagreement flag the pairs it gets wrong, on real data?

Every step is a `rewardlab` command, as a user would run it:

1. write RMB-pairwise helpfulness as a data directory (`train.jsonl`: `--train_pairs` pairs; `test.jsonl`: the
   first `--eval_pairs` of the 1,000 held out by `ensemble_uncertainty.py`) and two more evaluation files, RMB
   harmlessness (another goal, so a distribution shift) and UltraFeedback eval;
2. `rewardlab train` all-MiniLM-L6-v2 `--members` times, each with `--ensemble_bootstrap true` (one bootstrap
   resample of the training pairs) and its own `--seed`, with the demo's settings (max_length 256, batch 16,
   lr 1e-4, one epoch); the test split gives each member its reward statistics;
3. `rewardlab eval --ensemble <members>` on the three sets, then print each set's accuracy, the mean std across
   members of `r_chosen - r_rejected` on pairs ranked right and wrong, their difference with its 95% bootstrap
   interval, the AUROC of the std as a detector of wrong pairs (0.5: no relation) and, as the baseline, the AUROC of
   a small |mean margin|, from `report.json`;
4. with each member's own margins (`RewardEnsemble.members`), the same for other measures of disagreement: the std
   of the members' P(chosen > rejected), and whether the members disagree on which response is better.

    python benchmarks/deep_ensemble_uncertainty.py --members 3 --train_pairs 2000

Members already trained in `--output_dir` are reused, so an interrupted run goes on where it stopped, and
`--members 8` after `--members 3` trains only 5 more. On 2 CPU cores a member takes ~10 min to train, and steps 3
and 4 each take ~2.5 min per member.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from ensemble_uncertainty import rmb_rows, ultrafeedback_rows

REWARDLAB = [sys.executable, "-m", "rewardlab"]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def train_member(data_dir: str, output_dir: Path, seed: int) -> None:
    from rewardlab.cli.demo import minilm_path

    if (output_dir / "rewardlab_run.json").exists():
        print(f"reusing {output_dir}", flush=True)
        return
    subprocess.run(
        [
            *REWARDLAB,
            "train",
            "--model_name_or_path",
            minilm_path(),
            "--dataset_name",
            data_dir,
            "--output_dir",
            str(output_dir),
            "--seed",
            str(seed),
            "--ensemble_bootstrap",
            "true",
            "--per_device_train_batch_size",
            "16",
            "--per_device_eval_batch_size",
            "64",
            "--num_train_epochs",
            "1",
            "--learning_rate",
            "1e-4",
            "--lr_scheduler_type",
            "linear",
            "--warmup_steps",
            "0.05",
            "--max_length",
            "256",
            "--eos_token",
            "[SEP]",
            "--skip_invalid_rows",
            "true",
            "--activation_checkpointing",
            "false",
            "--logging_steps",
            "20",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
        ],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--train_pairs", type=int, default=2000)
    parser.add_argument("--eval_pairs", type=int, default=800)
    parser.add_argument("--output_dir", default="/tmp/rewardlab-deep-ensemble")
    parser.add_argument("--skip_eval", action="store_true", help="only train the members")
    args = parser.parse_args()

    out = Path(args.output_dir)
    help_rows = rmb_rows("helpfulness")
    data_dir = out / "rmb-helpfulness"
    write_jsonl(data_dir / "train.jsonl", help_rows[1000 : 1000 + args.train_pairs])
    eval_files = [
        write_jsonl(data_dir / "test.jsonl", help_rows[: args.eval_pairs]),
        write_jsonl(out / "rmb-harmlessness.jsonl", rmb_rows("harmlessness")[: args.eval_pairs]),
        write_jsonl(out / "ultrafeedback-eval.jsonl", ultrafeedback_rows("eval")[: args.eval_pairs]),
    ]
    members = [out / f"member{k}" for k in range(args.members)]
    for k, member in enumerate(members):
        train_member(str(data_dir), member, seed=42 + k)
    if args.skip_eval:
        return

    report_dir = out / "report"
    datasets = [flag for path in eval_files for flag in ("--dataset", path)]
    subprocess.run(
        [*REWARDLAB, "eval", "--ensemble", *map(str, members), *datasets, "--output_dir", str(report_dir)], check=True
    )
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    for results in report["results"].values():
        for set_name, metrics in results.items():
            print(
                json.dumps(
                    {
                        "set": set_name,
                        "pairs": metrics["n_evaluated"],
                        "accuracy": round(metrics["accuracy"]["value"], 3),
                        **metrics["ensemble"],
                    }
                )
            )
    other_measures(members, eval_files)


def other_measures(members: list[Path], eval_files: list[str]) -> None:
    """AUROC and wrong - right gap of other disagreement measures, from each member's margins."""
    from rewardlab import RewardEnsemble
    from rewardlab.metrics.intervals import uncertainty_gap
    from rewardlab.metrics.uncertainty import auroc

    ensemble = RewardEnsemble.from_pretrained([str(m) for m in members], device="cpu")
    for path in eval_files:
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        rows = [r for r in rows if r["chosen"] != r["rejected"]]  # as rewardlab eval skips them
        scores = [member.score_pair_rows(rows) for member in ensemble.members]
        margins = np.array([np.subtract(s.rewards_chosen, s.rewards_rejected) for s in scores]).T  # (pairs, K)
        mean = margins.mean(1)
        wrong = mean <= 0
        measures = {
            "std of the margin": margins.std(1, ddof=1),
            "std of P(chosen > rejected)": (1 / (1 + np.exp(-margins))).std(1, ddof=1),
            "members disagree on the preference": (np.sign(margins) != np.sign(mean)[:, None]).any(1) * 1.0,
            "small |mean margin| (no ensemble)": -np.abs(mean),
        }
        for name, value in measures.items():
            gap = uncertainty_gap(value, wrong, n_bootstrap=1000)
            print(
                json.dumps(
                    {
                        "set": Path(path).name,
                        "measure": name,
                        "accuracy": round(float(1 - wrong.mean()), 3),
                        "auroc": round(auroc(value, wrong), 3),
                        "wrong_minus_right": gap,
                    }
                )
            )


if __name__ == "__main__":
    main()
