import logging

import pytest
import torch
from tiny import make_model, make_tokenizer

from rewardlab.errors import RewardlabError
from rewardlab.model.load import (
    disable_dropout,
    fix_peft_config,
    load_model,
    resolve_dtype,
    set_pad_token,
)


def test_load_by_path_is_float32_with_one_label(tiny_dirs):
    model = load_model(tiny_dirs["qwen3"])
    assert model.config.num_labels == 1
    assert next(model.parameters()).dtype == torch.float32


def test_load_forwards_model_init_kwargs_dtype(tiny_dirs):
    model = load_model(tiny_dirs["llama"], {"dtype": "bfloat16"})
    assert next(model.parameters()).dtype == torch.bfloat16


def test_load_bad_path_is_one_clear_error(tmp_path):
    with pytest.raises(RewardlabError, match="cannot load model"):
        load_model(str(tmp_path / "nope"))


def test_num_labels_other_than_one_is_refused(tiny_dirs):
    with pytest.raises(RewardlabError, match="num_labels=1"):
        load_model(tiny_dirs["bert"], {"num_labels": 2})


def test_unknown_dtype():
    with pytest.raises(RewardlabError, match="unknown dtype"):
        resolve_dtype("float13")
    assert resolve_dtype("torch.float16") is torch.float16


def test_missing_pad_token_falls_back_to_eos():
    tok = make_tokenizer("llama")
    model = make_model("llama", tok)
    assert tok.pad_token is None
    set_pad_token(tok, model)
    assert tok.pad_token == tok.eos_token
    assert model.config.pad_token_id == tok.eos_token_id


def test_pad_token_not_in_vocab_is_a_clear_error():
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok)
    with pytest.raises(RewardlabError, match="is not found in the vocabulary"):
        set_pad_token(tok, model, "<|not-a-token|>")


def test_disable_dropout_makes_training_mode_deterministic():
    tok = make_tokenizer("bert")
    model = make_model("bert", tok, hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5)
    ids = torch.tensor([tok("the sky is blue")["input_ids"]])
    model.train()
    assert not torch.equal(model(ids).logits, model(ids).logits)
    disable_dropout(model)
    assert torch.equal(model(ids).logits, model(ids).logits)


@pytest.mark.parametrize("arch,head", [("llama", "score"), ("bert", "classifier")])
def test_peft_config_is_fixed_to_train_and_save_the_head(arch, head, caplog):
    from peft import LoraConfig, TaskType

    tok = make_tokenizer(arch)
    model = make_model(arch, tok)
    user_config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4)
    with caplog.at_level("WARNING"):
        fixed = fix_peft_config(user_config, model)
    assert fixed.task_type == TaskType.SEQ_CLS
    assert head in fixed.modules_to_save
    assert user_config.task_type == TaskType.CAUSAL_LM  # the user's object is not mutated
    assert "SEQ_CLS" in caplog.text and head in caplog.text


def test_quantization_config_is_forwarded_to_from_pretrained(monkeypatch):
    from transformers import AutoModelForSequenceClassification

    seen = {}

    def fake_from_pretrained(name, **kwargs):
        seen.update(kwargs)
        return make_model("llama", make_tokenizer("llama"))

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", fake_from_pretrained)
    sentinel = object()
    load_model("some/model", {"revision": "main"}, quantization_config=sentinel)
    assert seen["quantization_config"] is sentinel and seen["num_labels"] == 1 and seen["revision"] == "main"
    with pytest.raises(RewardlabError, match="one place"):
        load_model("some/model", {"quantization_config": sentinel}, quantization_config=sentinel)


def _cuda_and_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda_and_bitsandbytes(), reason="QLoRA needs a CUDA GPU and bitsandbytes")
def test_qlora_trains_on_gpu(tiny_dirs, tmp_path):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig

    from rewardlab import RewardConfig, RewardTrainer

    data = Dataset.from_list([{"prompt": "sky ?", "chosen": " blue", "rejected": " green"}] * 8)
    args = RewardConfig(str(tmp_path), max_steps=2, report_to=[], per_device_train_batch_size=4)
    trainer = RewardTrainer(
        tiny_dirs["llama"],
        args=args,
        train_dataset=data,
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16),
        peft_config=LoraConfig(r=4),
    )
    trainer.train()
    assert trainer.state.global_step == 2


def test_a_base_model_gets_its_new_head_without_a_load_report(tmp_path):
    # A causal LM checkpoint loaded for reward training: its new score head and unused lm_head are the point (TRL
    # hides the same report); loading it as a finished reward model still reports the missing head.
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = make_tokenizer("llama")
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    reports = logging.Handler()
    reports.emit = lambda record: setattr(reports, "last", record.getMessage())
    logging.getLogger("transformers").addHandler(reports)  # transformers' own handler bypasses pytest's capture
    try:
        model = load_model(str(tmp_path), new_head=True)
        assert type(model).__name__ == "LlamaForSequenceClassification" and model.config.num_labels == 1
        assert not hasattr(reports, "last")
        load_model(str(tmp_path))
        assert "score.weight" in reports.last and "MISSING" in reports.last
    finally:
        logging.getLogger("transformers").removeHandler(reports)


def test_a_cached_snapshot_is_named_by_its_hub_id():
    from rewardlab.model.load import hub_id_of

    cached = "/home/u/.cache/huggingface/hub/models--Qwen--Qwen3-0.6B/snapshots/0123abc"
    assert hub_id_of(cached) == "Qwen/Qwen3-0.6B" and hub_id_of(cached + "/") == "Qwen/Qwen3-0.6B"
    assert hub_id_of("models--gpt2/snapshots/0123abc") == "gpt2"
    assert hub_id_of("Qwen/Qwen3-0.6B") == "Qwen/Qwen3-0.6B" and hub_id_of("runs/sft") == "runs/sft"
