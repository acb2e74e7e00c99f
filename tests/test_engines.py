"""The model set-up each distributed engine needs (TRL's workarounds), checked on stand-ins for its settings."""

from types import SimpleNamespace

import pytest

from rewardlab.errors import RewardlabError
from rewardlab.train.engines import (
    check_parallelism,
    force_reentrant_checkpointing,
    init_kwargs_for_processes,
    peft_model_kwargs,
)


def zero(stage, checkpointing=True, checkpointing_kwargs=None):
    plugin = None if stage is None else SimpleNamespace(zero_stage=stage)
    return SimpleNamespace(
        deepspeed_plugin=plugin,
        gradient_checkpointing=checkpointing,
        gradient_checkpointing_kwargs=checkpointing_kwargs,
    )


def test_a_device_map_is_dropped_under_several_processes():
    kwargs = {"device_map": "auto", "dtype": "bfloat16"}
    assert init_kwargs_for_processes(kwargs, 1) == kwargs
    assert init_kwargs_for_processes(kwargs, 2) == {"device_map": None, "dtype": "bfloat16"}
    assert kwargs["device_map"] == "auto"  # the caller's dict is not changed


def test_zero3_keeps_adapters_in_the_base_dtype_unless_quantized():
    assert peft_model_kwargs(zero(3), quantized=False) == {"autocast_adapter_dtype": False}
    assert peft_model_kwargs(zero(3), quantized=True) == {}
    assert peft_model_kwargs(zero(2), quantized=False) == {}
    assert peft_model_kwargs(zero(None), quantized=False) == {}


def test_zero3_with_checkpointing_gets_reentrant_checkpointing():
    args = zero(3, checkpointing_kwargs={"use_reentrant": False})
    force_reentrant_checkpointing(args)
    assert args.gradient_checkpointing_kwargs == {"use_reentrant": True}
    for args in (zero(2), zero(3, checkpointing=False), zero(None)):
        force_reentrant_checkpointing(args)
        assert args.gradient_checkpointing_kwargs is None


def test_tensor_and_context_parallelism_are_refused():
    check_parallelism(None)
    check_parallelism(SimpleNamespace(tp_size=1, cp_size=None, sp_size=1, dp_shard_size=4))
    with pytest.raises(RewardlabError, match="tp_size=2"):
        check_parallelism(SimpleNamespace(tp_size=2, cp_size=1, sp_size=1))
    with pytest.raises(RewardlabError, match="cp_size=4"):
        check_parallelism(SimpleNamespace(tp_size=None, cp_size=4, sp_size=None))
