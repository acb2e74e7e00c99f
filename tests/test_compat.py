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
