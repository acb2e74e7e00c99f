"""Compiled layers (`compile_layers`): the eager rewards and gradients within float tolerance, one compilation for
every packed length, and a model torch cannot compile trained eagerly after one warning."""

import pytest
import torch
from test_fast_path import loss_and_grads, random_pairs, setup
from test_trainer import config, pairs
from tiny import make_model, make_tokenizer

from rewardlab import RewardTrainer
from rewardlab.layout import DataCollatorForPreference, Layout
from rewardlab.layout.compile import compile_layers, transformer_layers, uncompile_layers


@pytest.fixture(autouse=True)
def fresh_compiler():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("arch,block", [("llama", "LlamaDecoderLayer"), ("bert", "BertLayer")])
def test_the_layer_stack_is_found(arch, block):
    tok = make_tokenizer(arch)
    model = make_model(arch, tok)
    layers = transformer_layers(model)
    assert len(layers) == model.config.num_hidden_layers and {type(m).__name__ for m in layers} == {block}


@pytest.mark.parametrize("arch,layout", [("qwen3", Layout.SHARED_PREFIX), ("bert", Layout.PACKED)])
def test_compiled_layers_match_eager_without_recompiling_per_length(arch, layout):
    tok, model = setup(arch)
    model.train()
    batches = [
        DataCollatorForPreference(tok.pad_token_id, layout=layout)(random_pairs(tok, n, seed=n)) for n in (3, 5, 7)
    ]
    assert len({b["input_ids"].shape[1] for b in batches}) == 3  # three packed lengths
    eager = [loss_and_grads(model, b) for b in batches]
    assert compile_layers(model, lambda: loss_and_grads(model, batches[0]))
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled = [loss_and_grads(model, b) for b in batches]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs  # no new graph for new lengths
    for (c, r, loss, grads), (ref_c, ref_r, ref_loss, ref_grads) in zip(compiled, eager, strict=True):
        torch.testing.assert_close(torch.cat([c, r]), torch.cat([ref_c, ref_r]), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(loss, ref_loss, atol=1e-5, rtol=1e-5)
        for name in ref_grads:
            torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)
    uncompile_layers(transformer_layers(model))


def test_a_failed_compilation_trains_eagerly_with_one_warning(caplog):
    tok, model = setup("llama")

    def warm_up():
        raise RuntimeError("backend said no\nand a long trace")

    with caplog.at_level("WARNING", logger="rewardlab.layout.compile"):
        assert not compile_layers(model, warm_up)
    assert all(layer._compiled_call_impl is None for layer in transformer_layers(model))
    [record] = caplog.records
    assert "training runs eagerly" in record.message and "RuntimeError: backend said no" in record.message
    assert "long trace" not in record.message


def test_the_trainer_compiles_its_layers(tmp_path, caplog):
    tok = make_tokenizer("qwen3")
    with caplog.at_level("INFO", logger="rewardlab.layout.compile"):
        trainer = RewardTrainer(
            make_model("qwen3", tok),
            args=config(tmp_path, compile_layers=True),
            train_dataset=pairs(12),
            processing_class=tok,
        )
    assert "2 Qwen3DecoderLayer layers of Qwen3ForSequenceClassification compiled" in caplog.text
    assert all(layer._compiled_call_impl is not None for layer in transformer_layers(trainer.model))
    assert all(p.grad is None for p in trainer.model.parameters())  # the warm-up leaves no gradient behind
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 3 and all(loss == loss for loss in losses)


def test_liger_kernels_are_refused_where_they_cannot_run(tmp_path):
    from rewardlab.errors import RewardlabError

    tok = make_tokenizer("qwen3")
    with pytest.raises(RewardlabError, match="use_liger_kernel needs a CUDA GPU .* this run is on cpu"):
        RewardTrainer(
            make_model("qwen3", tok),
            args=config(tmp_path, use_liger_kernel=True),
            train_dataset=pairs(4),
            processing_class=tok,
        )


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@CUDA
@pytest.mark.parametrize("option", ["compile_layers", "use_liger_kernel"])
def test_on_cuda_compiled_layers_and_liger_train_as_the_eager_model(option, tmp_path):
    """bf16 autocast on a CUDA GPU: the first steps' losses with the option are the eager run's within bf16 rounding."""
    if option == "use_liger_kernel":
        pytest.importorskip("liger_kernel")
    tok = make_tokenizer("qwen3")
    losses = {}
    for on in (False, True):
        torch.manual_seed(0)
        args = config(tmp_path, use_cpu=False, bf16=True, learning_rate=1e-4, **{option: on})
        trainer = RewardTrainer(make_model("qwen3", tok), args=args, train_dataset=pairs(12), processing_class=tok)
        trainer.train()
        losses[on] = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses[True] == pytest.approx(losses[False], abs=2e-2)
