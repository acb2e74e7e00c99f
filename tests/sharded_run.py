"""Run by test_distributed.py, alone or under torchrun: train 4 steps with a checkpoint after step 2, evaluate, save.

`sharded_run.py OUT DIR [fsdp|zero2|zero3|odin] [resume]`: with `fsdp`, under FSDP2 (parameters, gradients and
optimizer state sharded over the processes; gloo on CPU), with `zero2`/`zero3` under DeepSpeed ZeRO, with `odin`
under DDP with `length_debias='odin'`; with `resume`, from DIR's checkpoint-2. The global batch is 4 pairs on any
number of processes, each process's share split into micro-batches by a token budget (not under DeepSpeed, which
refuses one), so the losses must match the one-process run. With `odin`, whose correlation terms are over each
forward's responses, the batch is 2 pairs per process, accumulated twice on one process instead. The main
process writes the losses, metrics, evaluation rewards and how the model was wrapped to OUT; the model is saved to
DIR/model.
"""

import faulthandler
import json
import os
import sys

import torch.distributed as dist
from datasets import Dataset
from tiny import make_model, make_tokenizer
from transformers import TrainerCallback

from rewardlab import RewardConfig, RewardTrainer

FSDP2 = {
    "fsdp_version": 2,
    "reshard_after_forward": True,
    "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
    "state_dict_type": "SHARDED_STATE_DICT",  # see test_distributed.py: a full one fails on CPU
}


def engine_options(engine: str | None) -> dict:
    if engine == "fsdp":
        return {"fsdp": "full_shard", "fsdp_config": FSDP2}
    if engine in ("zero2", "zero3"):
        zero = {"stage": int(engine[-1]), "stage3_gather_16bit_weights_on_model_save": True}
        auto = dict.fromkeys(
            ["train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size"], "auto"
        )
        return {"deepspeed": {"zero_optimization": zero, "gradient_clipping": "auto", **auto}}
    return {}


def main(out_path: str, directory: str, engine: str | None, resume: bool) -> None:
    tok = make_tokenizer("qwen3")
    # Built before the config: under ZeRO-3 a model built after it is built under DeepSpeed's zero.Init, which on CPU
    # sees one process (its batch-size check then fails).
    model = make_model("qwen3", tok)
    rows = [
        {"prompt": f"q {i} " + "word " * (i % 5), "chosen": f" blue {i}", "rejected": f" green {i % 3} no"}
        for i in range(16)
    ]
    world = RewardConfig(output_dir=directory, use_cpu=True, report_to=[]).world_size
    odin = engine == "odin"
    args = RewardConfig(
        output_dir=directory,
        per_device_train_batch_size=2 if odin else 4 // world,
        gradient_accumulation_steps=2 // world if odin else 1,
        length_debias="odin" if odin else None,
        per_device_eval_batch_size=2,
        max_steps=4,
        learning_rate=1e-3,
        logging_steps=1,
        max_tokens_per_batch=None if engine in ("zero2", "zero3", "odin") else 12,
        save_strategy="steps",
        save_steps=2,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        gradient_checkpointing=False,
        seed=7,
        **engine_options(engine),
    )
    steps_run = []

    class CountSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps_run.append(state.global_step)

    trainer = RewardTrainer(
        model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(rows[:7]),
        processing_class=tok,
        callbacks=[CountSteps()],
    )
    trainer.train(resume_from_checkpoint=f"{directory}/checkpoint-2" if resume else None)
    metrics = trainer.evaluate()
    rewards = trainer.predict(trainer.eval_dataset).predictions
    trainer.save_model(f"{directory}/model")
    if trainer.accelerator.is_main_process:
        result = {
            "world": world,
            "fsdp": trainer.is_fsdp_enabled,
            "deepspeed": trainer.is_deepspeed_enabled,
            "wrapped": [type(m).__name__ for m in trainer.model_wrapped.modules() if "FSDP" in type(m).__name__][:1],
            "layout": str(trainer.data_collator.layout),
            "steps_run": steps_run,
            "losses": {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e},
            "length_logs": [
                [e["length_correlation"], e.get("length_head_correlation")]
                for e in trainer.state.log_history
                if "length_correlation" in e
            ],
            "metrics": metrics,
            "rewards": rewards.tolist(),
            "eval_ids": [[row["chosen_ids"], row["rejected_ids"]] for row in trainer.eval_dataset],
        }
        with open(out_path, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    # Once in many CI runs a ZeRO-3 worker aborted ("terminate called without an active exception"): with faulthandler
    # on, an abort prints each thread's Python stack on stderr, as a hung run does after 120 s (and is retried).
    faulthandler.enable()
    faulthandler.dump_traceback_later(120)
    engines = [mode for mode in sys.argv[3:] if mode != "resume"]
    main(sys.argv[1], sys.argv[2], engines[0] if engines else None, "resume" in sys.argv[3:])
    # Torn down here, while the interpreter is whole, rather than by the process group's destructors at exit, and by
    # every process together: one that tears down while another still holds the group can abort gloo.
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    # The abort's faulthandler dump had no Python frame on any thread, so it came after all of the above: in the C++
    # destructors that run when the interpreter finalizes (destroying a native thread that was never joined calls
    # std::terminate). Everything this worker had to do and write is done: leave without finalizing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
