"""The Hugging Face reward model itself: a `*ForSequenceClassification` with one output (or one per objective),
nothing rewardlab-only.

- `load`: load a model and tokenizer (hub id, path or object; pad/eos token, chat template, dropout, PEFT) and load
  a trained one back (full checkpoint or LoRA adapter);
- `heads`: ensembles of score heads on one trunk, saved as a plain mean head plus the heads; the names of a
  multi-objective model's heads;
- `gate`: the prompt gate next to a multi-objective model's heads, saved next to them, weighing them by prompt;
- `export`: a multi-objective model's heads folded into one plain head;
- `length_head`: a length head next to the reward head (ODIN), saved as the plain quality head plus the length head;
- `parts`: find the `*ForSequenceClassification`, its score head and its backbone (or encoder) inside any wrapper.
"""

from rewardlab.model.heads import EnsembleHead, install_ensemble_head, num_heads
from rewardlab.model.length_head import QualityAndLengthHead, has_length_head, install_length_head
from rewardlab.model.load import load_model, load_tokenizer, load_trained_model
from rewardlab.model.parts import score_head_name, unwrap_reward_model

__all__ = [
    "EnsembleHead",
    "QualityAndLengthHead",
    "has_length_head",
    "install_ensemble_head",
    "install_length_head",
    "load_model",
    "load_tokenizer",
    "load_trained_model",
    "num_heads",
    "score_head_name",
    "unwrap_reward_model",
]
