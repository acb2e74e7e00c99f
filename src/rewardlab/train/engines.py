"""What the distributed engines (DDP, DeepSpeed, FSDP) need from the model set-up: TRL's workarounds, each with the
reason it exists, so that a TRL run and a rewardlab run set up the same model on the same engine."""

from __future__ import annotations

import logging
from typing import Any

from rewardlab.errors import RewardlabError

logger = logging.getLogger(__name__)


def init_kwargs_for_processes(init_kwargs: dict[str, Any], world_size: int) -> dict[str, Any]:
    """`from_pretrained` arguments for `world_size` processes: each process holds (or shards) its own copy, so a
    `device_map` such as "auto", which would spread every process's copy over all the machine's GPUs, is dropped."""
    if world_size > 1 and init_kwargs.get("device_map") is not None:
        logger.warning("device_map=%r is ignored under %d processes", init_kwargs["device_map"], world_size)
        return {**init_kwargs, "device_map": None}
    return init_kwargs


def _zero_stage(args: Any) -> int | None:
    plugin = getattr(args, "deepspeed_plugin", None)
    return None if plugin is None else plugin.zero_stage


def peft_model_kwargs(args: Any, quantized: bool) -> dict[str, Any]:
    """Arguments for `peft.get_peft_model`. Under ZeRO-3 the adapters keep the base model's dtype: PEFT would upcast
    them to float32, and ZeRO-3 gathers parameters into buffers of the first parameter's dtype, which fails on the
    first step when dtypes are mixed (TRL#6089, DeepSpeed#8072). A quantized model keeps PEFT's default."""
    if _zero_stage(args) == 3 and not quantized:
        return {"autocast_adapter_dtype": False}
    return {}


def force_reentrant_checkpointing(args: Any) -> None:
    """PEFT under ZeRO-3 with gradient checkpointing trains correctly only with reentrant checkpointing (TRL issue
    2514; DeepSpeed PR 8130), so it is set, with a warning when the user had asked for the other kind."""
    if _zero_stage(args) != 3 or not args.gradient_checkpointing:
        return
    kwargs = dict(args.gradient_checkpointing_kwargs or {})
    if kwargs.get("use_reentrant") is False:
        logger.warning("PEFT with DeepSpeed ZeRO-3 needs use_reentrant=True gradient checkpointing: set")
    kwargs["use_reentrant"] = True
    args.gradient_checkpointing_kwargs = kwargs


def check_parallelism(parallelism_config: Any) -> None:
    """Refuse tensor and context parallelism: rewardlab's layouts keep whole pairs in one process (the loss and its
    exact metrics need both rewards of a pair there), which sharding a sequence or a layer's heads does not."""
    if parallelism_config is None:
        return
    sizes = {name: getattr(parallelism_config, f"{name}_size", 1) or 1 for name in ("tp", "cp", "sp")}
    used = [f"{name}_size={size}" for name, size in sizes.items() if size > 1]
    if used:
        raise RewardlabError(
            f"tensor, context and sequence parallelism are not supported ({', '.join(used)}): use data parallelism "
            "(DDP), FSDP or DeepSpeed, which keep whole pairs in each process"
        )
