"""Run by test_trl_dropin.py, alone or under `torchrun --nproc_per_node 2`: every combination of a map-style or
streamed training set with each kind of evaluation set TRL accepts trains 3 steps, evaluating during training and
after. The global batch is 4 pairs either way, so the losses must match; the evaluation sets (7 and 5 pairs, ragged
over two processes and batches of two) must count every pair once. The main process writes the results to the JSON
file given as argv[1].
"""

import json
import sys

from datasets import Dataset, DatasetDict, IterableDatasetDict
from tiny import make_model, make_tokenizer

from rewardlab import RewardConfig, RewardTrainer

ROWS = [
    {"prompt": f"q {i} " + "word " * (i % 5), "chosen": f" blue {i}", "rejected": f" green {i % 3} no"}
    for i in range(12)
]


def eval_sets(kind: str):
    first, second = Dataset.from_list(ROWS[:7]), Dataset.from_list(ROWS[5:10])
    return {
        "dataset": first,
        "stream": first.to_iterable_dataset(),
        "dataset_dict": DatasetDict({"a": first, "b": second}),
        "stream_dict": IterableDatasetDict({"a": first.to_iterable_dataset(), "b": second.to_iterable_dataset()}),
        "mixed_dict": {"a": first.to_iterable_dataset(), "b": second},
    }[kind]


def run(train_kind: str, eval_kind: str) -> dict:
    tok = make_tokenizer("qwen3")
    probe = RewardConfig(output_dir="/tmp/rewardlab-dist-ds", use_cpu=True, report_to=[])
    args = RewardConfig(
        output_dir="/tmp/rewardlab-dist-ds",
        per_device_train_batch_size=4 // probe.world_size,
        per_device_eval_batch_size=2,
        max_steps=3,
        eval_strategy="steps",
        eval_steps=3,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=7,
    )
    train = Dataset.from_list(ROWS)
    trainer = RewardTrainer(
        make_model("qwen3", tok),
        args=args,
        train_dataset=train.to_iterable_dataset() if train_kind == "stream" else train,
        eval_dataset=eval_sets(eval_kind),
        processing_class=tok,
    )
    trainer.train()
    during = {k: v for entry in trainer.state.log_history for k, v in entry.items() if k.startswith("eval_")}
    after = trainer.evaluate(eval_dataset=eval_sets(eval_kind)) if "dict" not in eval_kind else {}
    if "dict" in eval_kind:
        for name, dataset in eval_sets(eval_kind).items():
            after.update(trainer.evaluate(eval_dataset=dataset, metric_key_prefix=f"eval_{name}"))
    return {
        "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
        "during": {k: v for k, v in during.items() if "runtime" not in k and "per_second" not in k},
        "after": {k: v for k, v in after.items() if "runtime" not in k and "per_second" not in k},
        "world": trainer.accelerator.num_processes,
        "main": trainer.accelerator.is_main_process,
    }


def main(out_path: str) -> None:
    results = {}
    for train_kind in ("dataset", "stream"):
        for eval_kind in ("dataset", "stream", "dataset_dict", "stream_dict", "mixed_dict"):
            results[f"{train_kind}/{eval_kind}"] = result = run(train_kind, eval_kind)
    if result["main"]:
        with open(out_path, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
