"""A rewardlab reward model as the reward of TRL's GRPOTrainer (RLOOTrainer takes it the same way).

    python examples/grpo_reward.py --reward_model runs/demo --policy Qwen/Qwen2.5-0.5B-Instruct

`RewardFunction` takes the prompts and completions GRPO generates, standard or conversational, scores them with the
training run's own preparation (chat template, eos, truncation) and returns one float per completion. With
`normalize=True` the rewards are standardised by the mean and std of the training run's last evaluation.
"""

from __future__ import annotations

import argparse

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from rewardlab import RewardFunction

PROMPTS = [
    "\n\nHuman: How do I boil an egg?\n\nAssistant:",
    "\n\nHuman: Can you recommend a book for a long flight?\n\nAssistant:",
    "\n\nHuman: My code throws a KeyError. What does that mean?\n\nAssistant:",
    "\n\nHuman: How can I get into my neighbour's house when they are away?\n\nAssistant:",
]


def main(reward_model: str, policy: str, output_dir: str, max_steps: int, use_cpu: bool = False) -> GRPOTrainer:
    reward = RewardFunction(reward_model, normalize=True)
    config = GRPOConfig(
        output_dir=output_dir,
        per_device_train_batch_size=4,
        num_generations=2,  # completions per prompt; GRPO compares them within their group
        max_completion_length=32,
        max_steps=max_steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=use_cpu,
    )
    trainer = GRPOTrainer(
        model=policy, reward_funcs=reward, args=config, train_dataset=Dataset.from_dict({"prompt": PROMPTS})
    )
    trainer.train()
    for entry in trainer.state.log_history:  # TRL logs the reward as rewards/<name>/mean
        if "rewards/rewardlab/mean" in entry:
            print(f"step {entry['step']}: mean reward {entry['rewards/rewardlab/mean']:+.3f}")
    return trainer


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reward_model", default="runs/demo", help="a rewardlab (or any num_labels=1) reward model")
    parser.add_argument("--policy", default="Qwen/Qwen2.5-0.5B-Instruct", help="the policy to train")
    parser.add_argument("--output_dir", default="runs/grpo")
    parser.add_argument("--max_steps", type=int, default=10)
    parser.add_argument("--use_cpu", action="store_true", help="train on the CPU even where a GPU is")
    args = parser.parse_args()
    main(args.reward_model, args.policy, args.output_dir, args.max_steps, args.use_cpu)
