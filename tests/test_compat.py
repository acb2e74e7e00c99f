"""The private APIs that `rewardlab._compat` gathers still exist in the installed transformers, and behave as used."""

from tiny import make_model, make_tokenizer

from rewardlab import _compat
from rewardlab.layout.attention import ATTENTION_NAME, register_packed_attention


def test_every_private_api_rewardlab_uses_is_there():
    assert _compat.check_installed_versions() == []


def test_checkpoint_file_finds_a_file_or_says_none(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert _compat.checkpoint_file(str(tmp_path), "config.json") == str(tmp_path / "config.json")
    assert _compat.checkpoint_file(str(tmp_path), "missing.json") is None


def test_attention_implementation_follows_the_public_setter():
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok)
    model.set_attn_implementation(register_packed_attention(model))
    assert _compat.attention_implementation(model) == ATTENTION_NAME
    model.set_attn_implementation("eager")
    assert _compat.attention_implementation(model) == "eager"


def test_a_class_that_ignores_unexpected_keys_is_still_the_model_class():
    from transformers import Qwen3ForSequenceClassification

    patched = _compat.ignoring_load_keys(Qwen3ForSequenceClassification, [r"\.heads$"], [r"^score\."])
    assert issubclass(patched, Qwen3ForSequenceClassification) and patched.__name__ == "Qwen3ForSequenceClassification"
    assert patched._keys_to_ignore_on_load_unexpected[-1] == r"\.heads$"
    assert patched._keys_to_ignore_on_load_missing[-1] == r"^score\."


def test_rewardtrainer_overrides_only_the_trainer_hooks_it_declares():
    # A private method of RewardTrainer that happens to share a name with one of Trainer's (say a `_prepare_...`
    # helper) would silently replace Trainer's own; every override must be a public method or a declared hook.
    from transformers import Trainer

    from rewardlab.train.trainer import RewardTrainer

    own = {name for name in vars(RewardTrainer) if name.startswith("_") and not name.startswith("__")}
    shadowed = {name for name in own if hasattr(Trainer, name)} - set(_compat.TRAINER_HOOKS)
    assert not shadowed, shadowed


def test_name_or_path_is_where_a_model_was_loaded_from(tmp_path):
    from tiny import save_tiny
    from transformers import AutoModelForSequenceClassification

    assert _compat.name_or_path(make_model("qwen3", make_tokenizer("qwen3"))) in (None, "")  # built from a config
    directory = save_tiny("qwen3", tmp_path / "model")
    assert _compat.name_or_path(AutoModelForSequenceClassification.from_pretrained(directory)) == str(directory)


def test_signature_columns_set_are_the_ones_trainer_keeps():
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    tok = make_tokenizer("qwen3")
    trainer = Trainer(make_model("qwen3", tok), TrainingArguments("unused", report_to="none", use_cpu=True))
    _compat.set_signature_columns(trainer, ["chosen_ids", "rejected_ids"])
    data = Dataset.from_list([{"chosen_ids": [1, 2], "rejected_ids": [1, 3], "extra": "x"}])
    assert trainer._remove_unused_columns(data).column_names == ["chosen_ids", "rejected_ids"]


def test_names_ignored_in_ddp_are_those_ddp_reads():
    from torch.nn.parallel import DistributedDataParallel

    model = make_model("qwen3", make_tokenizer("qwen3"))
    _compat.ignore_in_ddp(model, ["score.weight"])
    assert model._ddp_params_and_buffers_to_ignore == ["score.weight"]
    # DDP's own (private) setter writes the same attribute.
    other = make_model("qwen3", make_tokenizer("qwen3"))
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(other, ["score.weight"])
    assert other._ddp_params_and_buffers_to_ignore == model._ddp_params_and_buffers_to_ignore
