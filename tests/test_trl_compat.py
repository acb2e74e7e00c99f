"""Switching from TRL 1.16 changes one import: same batches, same token ids (when nothing is over-length)."""

import pytest
from datasets import Dataset
from tiny import make_model, make_tokenizer

from rewardlab import DataCollatorForPreference, RewardConfig, RewardTrainer

trl = pytest.importorskip("trl", reason="TRL is a test-only dependency")

CONV_USER = [{"role": "user", "content": "what color is the sky?"}]
FORMATS = {
    "standard implicit": {"chosen": "the sky is blue.", "rejected": "the sky is green."},
    "standard explicit": {"prompt": "the sky is", "chosen": " blue.", "rejected": " green."},
    "conversational implicit": {
        "chosen": CONV_USER + [{"role": "assistant", "content": "it is blue."}],
        "rejected": CONV_USER + [{"role": "assistant", "content": "it is green."}],
    },
    "conversational explicit": {
        "prompt": CONV_USER,
        "chosen": [{"role": "assistant", "content": "it is blue."}],
        "rejected": [{"role": "assistant", "content": "it is green."}],
    },
}


def test_collator_output_equals_trl():
    examples = [
        {"chosen_ids": [1, 2, 3], "rejected_ids": [4, 5], "margin": 0.5},
        {"chosen_ids": [6, 7], "rejected_ids": [8], "margin": 0.0},
    ]
    ours = DataCollatorForPreference(pad_token_id=0, pad_to_multiple_of=4)(examples)
    theirs = trl.trainer.reward_trainer.DataCollatorForPreference(pad_token_id=0, pad_to_multiple_of=4)(examples)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].tolist() == theirs[key].tolist(), key


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_tokenized_pairs_equal_trl(arch, fmt, tmp_path):
    data = Dataset.from_list([FORMATS[fmt]] * 2)
    common = dict(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, max_length=None)
    tok = make_tokenizer(arch)
    ours = RewardTrainer(make_model(arch, tok), args=RewardConfig(**common), train_dataset=data, processing_class=tok)
    tok = make_tokenizer(arch)
    theirs = trl.RewardTrainer(
        make_model(arch, tok), args=trl.RewardConfig(**common), train_dataset=data, processing_class=tok
    )
    for key in ("chosen_ids", "rejected_ids"):
        assert ours.train_dataset[key] == theirs.train_dataset[key], key
