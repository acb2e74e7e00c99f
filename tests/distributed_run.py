"""Run by test_distributed.py, alone or under `torchrun --nproc_per_node 2`: train 3 steps, then evaluate 7 pairs.

The global training batch is 4 pairs either way (4 on one process, 2 on each of two, the latter also split into
micro-batches by a token budget), so the loss curve must match. Seven evaluation pairs over two processes and
batches of two leave a ragged, uneven tail: the exact metrics must still count every pair once. The main process
writes the results to the JSON file given as argv[1]. With "objectives" as argv[2], the pairs belong to two
objectives, each trained on its own head.
"""

import json
import sys

from datasets import Dataset
from tiny import make_model, make_tokenizer

from rewardlab import RewardConfig, RewardTrainer


def main(out_path: str, objectives: bool = False) -> None:
    tok = make_tokenizer("qwen3")
    rows = [
        {
            "prompt": f"q {i} " + "word " * (i % 5),
            "chosen": f" blue {i}",
            "rejected": f" green {i % 3} no",
            "margin": i % 2,
        }
        for i in range(12)
    ]
    if objectives:
        for i, row in enumerate(rows):
            row["objective"] = ("helpful", "harmless")[i % 3 == 0]
    probe = RewardConfig(output_dir="/tmp/rewardlab-dist", use_cpu=True, report_to=[])
    world = probe.world_size
    args = RewardConfig(
        output_dir="/tmp/rewardlab-dist",
        per_device_train_batch_size=4 // world,
        per_device_eval_batch_size=2,
        max_steps=3,
        learning_rate=1e-3,
        logging_steps=1,
        center_rewards_coefficient=0.01,
        max_tokens_per_batch=10 if world > 1 else None,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=7,
    )
    trainer = RewardTrainer(
        make_model("qwen3", tok, num_labels=2 if objectives else 1),
        args=args,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(rows[:7]),
        processing_class=tok,
    )
    first = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    micro_batched = first["layout"] == "micro_batches"
    trainer.train()
    metrics = trainer.evaluate()
    predictions = trainer.predict(trainer.eval_dataset).predictions
    if trainer.accelerator.is_main_process:
        result = {
            "metrics": metrics,
            "rewards": predictions.tolist(),
            "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
            "world": trainer.accelerator.num_processes,
            "collator": type(trainer.data_collator).__name__,
            "layout": str(getattr(trainer.data_collator, "layout", "")),
            "micro_batched": micro_batched,
        }
        with open(out_path, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], objectives=sys.argv[2:] == ["objectives"])
