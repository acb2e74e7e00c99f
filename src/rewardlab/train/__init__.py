"""Training: `RewardTrainer`, a `transformers.Trainer` that wires the other packages together.

- `trainer`: `RewardTrainer` itself (set-up, loss, steps, logging, crash-safe saving);
- `setup`: the run's model and tokenizer (ensemble or length head, eos, chat template, PEFT), as plain functions;
- `arguments`, `run`: a whole training run from the data and model flags (TRL's reward script), top to bottom;
- `datasets`: the run's data sets, prepared and counted (a streamed evaluation set read whole);
- `engines`: what DDP, DeepSpeed and FSDP need from the model set-up (TRL's workarounds, with their reasons);
- `predictions`: evaluation outputs and the exact metrics computed from them;
- `bagging`: per-example Poisson weights, so that each head of an ensemble trains on its own bootstrap resample;
- `run_record`: `rewardlab_run.json` and the model card saved next to the model.
"""

from rewardlab.train.trainer import RewardTrainer

__all__ = ["RewardTrainer"]
