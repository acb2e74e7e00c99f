"""What a TRL user's code relies on beyond the batches: the exception classes, the legacy-column warning, the model
tags, and every kind of dataset TRL accepts. Where TRL is installed, each error situation runs through both."""

import importlib.util
import json
import warnings

import pytest
from datasets import Dataset, DatasetDict, IterableDatasetDict
from tiny import make_model, make_tokenizer

import rewardlab
from rewardlab.errors import InvalidRowError, MissingExtraError, RewardlabError, RewardlabTypeError, UsageError
from rewardlab.train.run_record import MODEL_TAGS

trl = pytest.importorskip("trl", reason="TRL is a test-only dependency")
peft = pytest.importorskip("peft")

ROWS = [{"prompt": f"sky {i} ?", "chosen": " blue", "rejected": " green" + " no" * (i % 3)} for i in range(6)]


def config(library, tmp_path, **kw):
    defaults = dict(output_dir=str(tmp_path), report_to=[], use_cpu=True, max_steps=1, save_strategy="no")
    return library.RewardConfig(**{**defaults, **kw})


def build(library, tmp_path, model=None, args=None, train_dataset=Dataset.from_list(ROWS), **kw):
    tok = make_tokenizer("qwen3")
    model = make_model("qwen3", tok) if model is None else model
    return library.RewardTrainer(
        model,
        args=args or config(library, tmp_path),
        train_dataset=train_dataset,
        processing_class=tok,
        **kw,
    )


def peft_model_with_config(library, tmp_path):
    tok = make_tokenizer("qwen3")
    model = peft.get_peft_model(make_model("qwen3", tok), peft.LoraConfig(task_type="SEQ_CLS", r=2))
    return build(library, tmp_path, model=model, peft_config=peft.LoraConfig(r=2))


# A user mistake, and the phrase of TRL's message that rewardlab's must contain too.
SITUATIONS = {
    "num_labels 2": (
        lambda lib, tmp: build(lib, tmp, model=make_model("qwen3", make_tokenizer("qwen3"), num_labels=2)),
        r"reward models require `num_labels=1`",
    ),
    "no train_dataset": (lambda lib, tmp: build(lib, tmp, train_dataset=None), r"`train_dataset` is required"),
    "train_dataset a list": (
        lambda lib, tmp: build(lib, tmp, train_dataset=ROWS),
        r"`train_dataset` must be a `Dataset` or `IterableDataset`, got `list`",
    ),
    "train_dataset a DatasetDict": (
        lambda lib, tmp: build(lib, tmp, train_dataset=DatasetDict({"train": Dataset.from_list(ROWS)})),
        r"`train_dataset` must be a `Dataset` or `IterableDataset`, got `DatasetDict`",
    ),
    "peft_config a dict": (
        lambda lib, tmp: build(lib, tmp, peft_config={"r": 8}),
        r"`peft_config` must be a `peft.PeftConfig` instance",
    ),
    "PeftModel and peft_config": (peft_model_with_config, r"You passed a `PeftModel` instance together with a"),
    "eos_token not in vocab": (
        lambda lib, tmp: build(lib, tmp, args=config(lib, tmp, eos_token="<|nope|>")),
        r"The specified `eos_token` \('<\|nope\|>'\) is not found in the vocabulary",
    ),
    "pad_token not in vocab": (
        lambda lib, tmp: build(lib, tmp, args=config(lib, tmp, pad_token="<|nope|>")),
        r"The specified `pad_token` \('<\|nope\|>'\) is not found in the vocabulary",
    ),
}


@pytest.mark.parametrize("situation", list(SITUATIONS))
def test_user_mistakes_raise_the_class_trl_raises_with_its_phrase(situation, tmp_path):
    make, phrase = SITUATIONS[situation]
    with pytest.raises(Exception, match=phrase) as theirs:
        make(trl, tmp_path)
    with pytest.raises(type(theirs.value), match=phrase) as ours:
        make(rewardlab, tmp_path)
    assert type(theirs.value) in (ValueError, TypeError)
    assert isinstance(ours.value, RewardlabError)  # and so still one line from the CLI


def test_quantization_config_given_twice_is_a_value_error(tiny_dirs, tmp_path):
    args = config(rewardlab, tmp_path, model_init_kwargs={"quantization_config": {"load_in_4bit": True}})
    with pytest.raises(ValueError, match="You set `quantization_config` both as a trainer argument"):
        rewardlab.RewardTrainer(
            tiny_dirs["qwen3"], args=args, train_dataset=Dataset.from_list(ROWS), quantization_config=object()
        )


def test_every_user_error_is_a_value_error_and_type_mistakes_are_type_errors():
    for error in (RewardlabError("x"), UsageError("x"), InvalidRowError(3, "chosen", "is empty")):
        assert isinstance(error, ValueError)
    assert isinstance(RewardlabTypeError("x"), TypeError) and isinstance(RewardlabTypeError("x"), RewardlabError)
    assert isinstance(MissingExtraError("x"), ImportError) and isinstance(MissingExtraError("x"), RewardlabError)


def test_peft_config_without_peft_installed_is_an_import_error(monkeypatch, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else find_spec(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'rewardlab\[peft\]'"):
        build(rewardlab, tmp_path, peft_config=peft.LoraConfig(r=2))


@pytest.mark.parametrize("legacy", [False, True])
def test_legacy_id_columns_train_with_a_future_warning_naming_the_new_ones(legacy, tmp_path):
    tok = make_tokenizer("qwen3")
    chosen, rejected = ("chosen_input_ids", "rejected_input_ids") if legacy else ("chosen_ids", "rejected_ids")
    data = Dataset.from_list(
        [
            {chosen: tok(r["prompt"] + r["chosen"]).input_ids, rejected: tok(r["prompt"] + r["rejected"]).input_ids}
            for r in ROWS
        ]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = build(rewardlab, tmp_path, train_dataset=data)
    future = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    if legacy:
        assert len(future) == 1, future
        assert "will not be supported in v1" in future[0]  # TRL's phrase
        assert "rewardlab 1.0.0" in future[0] and "`chosen_ids`/`rejected_ids`" in future[0]
    else:
        assert not future
    assert {"chosen_ids", "rejected_ids"} <= set(trainer.train_dataset.column_names)
    assert not {"chosen_input_ids", "rejected_input_ids"} & set(trainer.train_dataset.column_names)
    trainer.train()
    assert trainer.state.global_step == 1


def test_saved_models_carry_trl_tags_and_rewardlab_tags(tmp_path):
    trainer = build(rewardlab, tmp_path, peft_config=None)
    assert {"trl", "reward-trainer", "rewardlab", "reward-model"} == set(MODEL_TAGS)
    assert set(MODEL_TAGS) <= set(trainer.model.model_tags)
    trainer.save_model(str(tmp_path / "saved"))
    card = (tmp_path / "saved" / "README.md").read_text()
    for tag in MODEL_TAGS:
        assert f"- {tag}\n" in card, tag


def test_peft_models_carry_the_tags_too(tmp_path):
    trainer = build(rewardlab, tmp_path, peft_config=peft.LoraConfig(r=2))
    assert set(MODEL_TAGS) <= set(trainer.model.model_tags)


@pytest.mark.parametrize("kind", ["stream", "stream_dict", "mixed_dict"])
def test_streamed_eval_sets_evaluate_every_pair_once(kind, tmp_path):
    first, second = Dataset.from_list(ROWS[:5]), Dataset.from_list(ROWS[2:])
    eval_dataset = {
        "stream": first.to_iterable_dataset(),
        "stream_dict": IterableDatasetDict({"a": first.to_iterable_dataset(), "b": second.to_iterable_dataset()}),
        "mixed_dict": {"a": first.to_iterable_dataset(), "b": second},
    }[kind]
    args = config(rewardlab, tmp_path, per_device_eval_batch_size=2, eval_strategy="steps", eval_steps=1)
    trainer = build(rewardlab, tmp_path, args=args, eval_dataset=eval_dataset)
    trainer.train()
    logged = {k: v for entry in trainer.state.log_history for k, v in entry.items() if k.endswith("num_pairs")}
    expected = {"eval_num_pairs": 5} if kind == "stream" else {"eval_a_num_pairs": 5, "eval_b_num_pairs": 4}
    assert logged == expected
    again = trainer.evaluate(first.to_iterable_dataset())
    assert again["eval_num_pairs"] == 5
    assert json.dumps(again)  # plain numbers


def test_create_model_card_takes_trls_arguments_and_keeps_rewardlabs_card(tmp_path):
    # TRL's reward script ends with `trainer.push_to_hub(dataset_name=...)`, which passes them to create_model_card.
    trainer = build(rewardlab, tmp_path)
    trainer.train()
    trainer.create_model_card(model_name="my-rm", dataset_name="org/preferences", tags="safety")
    card = (tmp_path / "README.md").read_text()
    assert "- org/preferences\n" in card and "- safety\n" in card and "- trl\n" in card
    assert "trained with rewardlab" in card and "## Data" in card


def test_checkpoints_carry_the_run_record_and_card(tmp_path):
    trainer = build(rewardlab, tmp_path, args=config(rewardlab, tmp_path, save_strategy="steps", save_steps=1))
    trainer.train()
    checkpoint = tmp_path / "checkpoint-1"
    assert (checkpoint / "rewardlab_run.json").is_file() and (checkpoint / "README.md").is_file()
    assert json.loads((checkpoint / "rewardlab_run.json").read_text())["global_step"] == 1


def test_every_metric_trl_logs_is_logged_under_the_same_name(tmp_path):
    logged = {}
    for library in (trl, rewardlab):
        args = config(
            library, tmp_path / library.__name__, max_steps=2, logging_steps=1, eval_strategy="steps", eval_steps=2
        )
        trainer = build(library, tmp_path, args=args, eval_dataset=Dataset.from_list(ROWS[:3]))
        trainer.train()
        trainer.evaluate()
        logged[library.__name__] = {key for entry in trainer.state.log_history for key in entry}
        if library is rewardlab:
            train_tokens = [e["num_tokens"] for e in trainer.state.log_history if "loss" in e][-1]
            assert [e["eval_num_tokens"] for e in trainer.state.log_history if "eval_loss" in e] == [train_tokens] * 2
    assert not logged["trl"] - logged["rewardlab"], logged["trl"] - logged["rewardlab"]


def test_the_deprecated_pad_token_warns_as_in_trl(tmp_path):
    for library in (trl, rewardlab):
        with pytest.warns(FutureWarning, match="`pad_token` is deprecated"):
            config(library, tmp_path, pad_token="<|endoftext|>")
