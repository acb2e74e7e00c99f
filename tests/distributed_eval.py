"""Run by test_distributed.py under `torchrun --nproc_per_node 2`: evaluate 7 pairs with batch 2 per process.

Seven pairs over two processes and batches of two leave a ragged, uneven tail: the exact metrics must still count
every pair once. The main process writes the metrics and the per-pair rewards to the JSON file given as argv[1].
"""

import json
import sys

from datasets import Dataset
from tiny import make_model, make_tokenizer

from rewardlab import RewardConfig, RewardTrainer


def main(out_path: str) -> None:
    tok = make_tokenizer("qwen3")
    rows = [
        {"prompt": f"q {i}", "chosen": f" blue {i}", "rejected": f" green {i % 3}", "margin": i % 2} for i in range(7)
    ]
    args = RewardConfig(output_dir="/tmp/rewardlab-dist", per_device_eval_batch_size=2, report_to=[], use_cpu=True,
                        disable_tqdm=True)  # fmt: skip
    data = Dataset.from_list(rows)
    trainer = RewardTrainer(make_model("qwen3", tok), args=args, train_dataset=data, eval_dataset=data,
                            processing_class=tok)  # fmt: skip
    metrics = trainer.evaluate()
    predictions = trainer.predict(trainer.eval_dataset).predictions
    if trainer.accelerator.is_main_process:
        result = {"metrics": metrics, "rewards": predictions.tolist(), "world": trainer.accelerator.num_processes}
        with open(out_path, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
