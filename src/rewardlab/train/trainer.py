"""RewardTrainer: `transformers.Trainer` wired to rewardlab's data pipeline, batch layouts, losses and exact metrics.

It accepts TRL 1.16's `RewardTrainer` constructor arguments. What differs from TRL is what users cannot see in TRL:
over-length pairs are truncated or dropped by a stated policy and counted, every row is validated, batches are laid
out without padding (`rewardlab.layout`), evaluation metrics are exact over the whole set (not a mean of batch
means), and the run's data counts are saved next to the model. `__init__` reads top to bottom: the model, the
tokenizer, the data, the collator, then `Trainer`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from accelerate.utils import send_to_device
from datasets import Dataset, IterableDataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback, set_seed
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, EvalPrediction

from rewardlab._compat import set_signature_columns
from rewardlab.choices import ODIN
from rewardlab.config import RewardConfig
from rewardlab.cpu_threads import adapted_threads, adaptive_threads, measured_step
from rewardlab.errors import RewardlabError
from rewardlab.files import check_complete, last_complete_checkpoint, saving
from rewardlab.layout.batch import Layout, layout_of
from rewardlab.layout.choose import choose_layout
from rewardlab.layout.collate import DataCollatorForPreference, DataCollatorForRanking, LayoutCollator, lay_out
from rewardlab.layout.compile import compile_layers
from rewardlab.layout.forward import sequence_rewards
from rewardlab.layout.probe import probe_pairs
from rewardlab.losses import Objective, ObjectiveOptions, evaluated_rewards, ranking_loss, reward_objective
from rewardlab.metrics.running import (
    RANKING_SUM_KEYS,
    batch_statistics,
    empty_statistics,
    merge_statistics,
    ranking_statistics,
    summarize_ranking_statistics,
    summarize_statistics,
)
from rewardlab.model.gate import gate_of, gate_prompt_tokens, has_gate
from rewardlab.model.heads import trained_head
from rewardlab.model.length_head import length_head_of
from rewardlab.model.load import (
    hub_id_of,
    is_peft_model,
)
from rewardlab.model.parts import unwrap_reward_model
from rewardlab.train.bagging import BootstrapCollator
from rewardlab.train.datasets import RunDatasets
from rewardlab.train.engines import (
    check_parallelism,
    force_reentrant_checkpointing,
)
from rewardlab.train.length_grouped import LengthGroupedBatchSampler
from rewardlab.train.predictions import batch_predictions, evaluation_metrics
from rewardlab.train.run_record import MODEL_TAGS, write_run_record
from rewardlab.train.setup import check_arguments, finish_model, setup_model, setup_peft, setup_tokenizer

logger = logging.getLogger(__name__)


class SeenCounts(TrainerCallback, ExportableState):
    """Pairs and real tokens trained on so far (all processes), saved in checkpoints and restored on resume."""

    def __init__(self, pairs: int = 0, tokens: int = 0):
        self.pairs = pairs
        self.tokens = tokens

    def state(self) -> dict:
        return {"args": {}, "attributes": {"pairs": self.pairs, "tokens": self.tokens}}


def _autocast_dtype(args: RewardConfig) -> torch.dtype | None:
    """The dtype mixed precision runs the model's matrix products (and so attention) in, or None without it."""
    return torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None


class RewardTrainer(Trainer):
    """Train a Bradley-Terry reward model. Same arguments as TRL 1.16's `RewardTrainer`.

    Args:
        model: a hub id or local path (loaded as `AutoModelForSequenceClassification` with `num_labels=1` and
            `args.model_init_kwargs`, float32 unless a dtype is given), a sequence-classification `PreTrainedModel`,
            or a `PeftModel`.
        args: a `RewardConfig`; default `RewardConfig("<model-name>-Reward")`.
        data_collator: default `DataCollatorForPreference` (or `DataCollatorForRanking`) in the fastest exact layout
            the model supports (`rewardlab.layout.choose_layout`).
        train_dataset / eval_dataset: preference data in any of the four formats, rankings, or pre-tokenized
            `chosen_ids`/`rejected_ids`; `eval_dataset` may be a dict (e.g. a `DatasetDict`) of named sets.
        processing_class: the tokenizer; default loaded from the model. Missing pad token: eos is used.
        compute_metrics: extra evaluation metrics. It receives an `EvalPrediction` whose `predictions` is an (N, 2)
            array of [reward_chosen, reward_rejected] for every evaluation pair and `label_ids` the N margins (0 when
            the data has none; with objectives, (N, 2) [objective, margin]); its results are added to the metrics.
        callbacks, optimizers, optimizer_cls_and_kwargs, preprocess_logits_for_metrics: as in `transformers.Trainer`.
        quantization_config: a `BitsAndBytesConfig` used when `model` is a string (QLoRA with `peft_config`).
        peft_config: a `peft.PeftConfig`; its task type is set to SEQ_CLS and the score head is trained and saved.
    """

    # The loss is a mean over the micro-batch's pairs, so Trainer must divide it by the accumulation steps.
    loss_is_scaled_for_ga = False
    _tag_names = list(MODEL_TAGS)

    def __init__(
        self,
        model: str | PreTrainedModel | Any,
        args: RewardConfig | None = None,
        data_collator: Callable | None = None,
        train_dataset: Dataset | IterableDataset | None = None,
        eval_dataset: Dataset | IterableDataset | dict[str, Dataset | IterableDataset] | None = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        compute_metrics: Callable[[EvalPrediction], dict] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple[torch.optim.Optimizer | None, torch.optim.lr_scheduler.LambdaLR | None] = (None, None),
        optimizer_cls_and_kwargs: tuple[type[torch.optim.Optimizer], dict[str, Any]] | None = None,
        preprocess_logits_for_metrics: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        quantization_config: Any = None,
        peft_config: Any = None,
    ):
        args = check_arguments(model, args, train_dataset)
        # The score head of a freshly loaded model is random: seed first so runs are reproducible.
        set_seed(args.seed)
        model, model_id, revision = setup_model(model, args, quantization_config)
        self.base_model_id = hub_id_of(model_id)
        processing_class, added_tokens = setup_tokenizer(processing_class, model, model_id, revision, args)
        model = setup_peft(model, peft_config, added_tokens, args)
        if is_peft_model(model):
            force_reentrant_checkpointing(args)
        finish_model(model, processing_class, args)
        self.run_data = RunDatasets(processing_class, args)
        train_dataset = self.run_data.prepare(train_dataset, "train")
        if eval_dataset is not None:
            eval_dataset = self.run_data.prepare_eval(eval_dataset)
        if data_collator is None:
            data_collator = self._default_collator(model, processing_class.pad_token_id, args)
        if args.ensemble_bootstrap:
            data_collator = BootstrapCollator(data_collator, args.ensemble_heads, args.seed)

        self._user_compute_metrics = compute_metrics
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            compute_metrics=self._compute_eval_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        self._check_distributed_setup(args)
        self._setup_state(args)
        if args.compile_layers:
            compile_layers(self.model, self._warm_up_step)

    # ----------------------------------------------------------------------------------------------- set-up
    def _default_collator(self, model: Any, pad_token_id: int, args: RewardConfig) -> LayoutCollator:
        """The collator of the run's kind (pairs or rankings) in the fastest exact layout the model supports."""
        layout = choose_layout(
            model,
            pad_token_id,
            padding_free=args.padding_free,
            share_prompt=args.share_prompt,
            processes=args.world_size,
            compute=(args.device, _autocast_dtype(args) or next(model.parameters()).dtype),
        )
        collator = DataCollatorForRanking if self.ranking else DataCollatorForPreference
        return collator(
            pad_token_id=pad_token_id,
            pad_to_multiple_of=args.pad_to_multiple_of,
            max_tokens_per_batch=args.max_tokens_per_batch,
            layout=layout,
            overhead_tokens=args.sub_batch_overhead_tokens,
            with_response_lengths=True,  # logged correlations with length, and what length_debias trains out
            with_prompts=has_gate(model),  # what the prompt gate of a multi-objective model reads
            max_prompt_tokens=gate_prompt_tokens(model),
        )

    def _warm_up_step(self) -> None:
        """Forward and backward passes of two small pairs in the run's layout, on its device and in its precision,
        then of the same pairs 64 times longer, then an evaluation forward: what the run's first training and
        evaluation steps would otherwise compile (one graph per grad mode, covering short and long rows)."""
        collator = getattr(self.data_collator, "collator", self.data_collator)  # under a BootstrapCollator
        layout = collator.layout if isinstance(collator, LayoutCollator) else Layout.PADDED
        pad_token_id = self.processing_class.pad_token_id
        sequences, groups = probe_pairs(unwrap_reward_model(self.model), pad_token_id)
        batches = [
            send_to_device(lay_out(ids, layout, pad_token_id, groups=groups), self.args.device)
            for ids in (sequences, [s * 64 for s in sequences])
        ]
        self.model.train()
        for batch in batches:
            with self.compute_loss_context_manager():
                sequence_rewards(self.model, batch).float().sum().backward()
        self.model.eval()
        with torch.no_grad(), self.compute_loss_context_manager():
            sequence_rewards(self.model, batches[1])
        self.model.train()

    def _check_distributed_setup(self, args: RewardConfig) -> None:
        check_parallelism(getattr(self.accelerator, "parallelism_config", None))
        if args.max_tokens_per_batch is not None and self.is_deepspeed_enabled:
            raise RewardlabError(
                "max_tokens_per_batch cannot be used with DeepSpeed, which counts every backward as an accumulation "
                "step: lower per_device_train_batch_size and raise gradient_accumulation_steps instead"
            )
        if args.n_gpu > 1:
            raise RewardlabError(
                "RewardTrainer does not support `nn.DataParallel`, which Trainer uses when several GPUs are visible "
                "to one process: launch with "
                "`accelerate launch` or `torchrun`, or set CUDA_VISIBLE_DEVICES to one GPU"
            )

    def _setup_state(self, args: RewardConfig) -> None:
        # Evaluation goes through prediction_step; these make Trainer call it without labels.
        self.can_return_loss = True
        self.label_names = []
        if args.activation_offloading and torch.cuda.is_available():
            self._offload_context = lambda: torch.autograd.graph.save_on_cpu(pin_memory=True)
        else:
            if args.activation_offloading:
                logger.warning("activation_offloading needs a CUDA device; ignored")
            self._offload_context = contextlib.nullcontext
        self.objective_options = ObjectiveOptions.from_args(args)
        # Mean/std of the rewards at the last evaluation, saved with the model for reward normalisation.
        self.reward_statistics: dict[str, float] | None = None
        # Training statistics since the last log, as sums (`rewardlab.metrics.running`); pairs and real tokens not
        # yet counted in `seen`, the running totals that checkpoints save and a resumed run restores.
        self._train_stats = self._empty_statistics().to(args.device)
        self._pending_tokens = 0
        self._pending_pairs = 0
        # Sums since the last log of each forward's correlation of the saved reward and of the length head with
        # response length, and the number of forwards.
        self._length_stats = torch.zeros(3, dtype=torch.float64, device=args.device)
        self.seen = SeenCounts()
        self.add_callback(self.seen)
        # On a CPU, torch's thread count follows the cores the process gets (`rewardlab.cpu_threads`).
        self.cpu_threads = adaptive_threads(args.device, args.adapt_cpu_threads)
        if (path := self.write_skipped_rows()) is not None:
            logger.warning("skipped rows and why: %s", path)
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)

    # ----------------------------------------------------------------------------------------------- data
    @property
    def ranking(self) -> bool:
        """Whether the run trains on rankings (K responses per prompt); every data set of the run then is one."""
        return self.run_data.ranking

    @property
    def data_stats(self) -> dict[str, Any]:
        """What preparation did to each data set of the run (`PreparationStats` by name)."""
        return self.run_data.stats

    def write_skipped_rows(self) -> str | None:
        """Write every row skipped by `skip_invalid_rows` to `<output_dir>/skipped_rows.jsonl`; returns the path."""
        if not self.args.should_save:
            return None
        return self.run_data.write_skipped_rows(self.args.output_dir)

    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        """Trainer's loader; with `length_grouped_tokens`, a loader of `LengthGroupedBatchSampler`'s batches."""
        if self.args.length_grouped_tokens is None:
            return super().get_train_dataloader()
        collator = getattr(self.data_collator, "collator", self.data_collator)  # under a BootstrapCollator
        if not isinstance(collator, LayoutCollator) or isinstance(self.train_dataset, IterableDataset):
            raise RewardlabError(
                "length_grouped_tokens measures every pair with rewardlab's collator before training: it needs a "
                "map-style train_dataset and no custom data_collator"
            )
        dataset = self._remove_unused_columns(self.train_dataset, description="training")
        chunks = (dataset.select(range(i, min(i + 1024, len(dataset)))) for i in range(0, len(dataset), 1024))
        sampler = LengthGroupedBatchSampler(
            [cost for chunk in chunks for cost in collator.token_costs(chunk.to_list())],
            self.args.length_grouped_tokens,
            seed=self.args.seed,
            padded=collator.layout is Layout.PADDED,
            num_processes=self.args.world_size,
            process_index=self.args.process_index,
        )
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
            persistent_workers=self.args.dataloader_persistent_workers,
            prefetch_factor=self.args.dataloader_prefetch_factor,
        )
        loader = self.accelerator.prepare(loader)
        wrapper = getattr(loader, "batch_sampler", None)
        if wrapper is not sampler and getattr(wrapper, "batch_sampler", None) is sampler:
            # The sampler deals its batches to the processes itself: accelerate's shard wrapper must pass them
            # through, and forward the epoch, which its loader gives only to a sampler it holds directly.
            wrapper.num_processes, wrapper.process_index = 1, 0
            wrapper.set_epoch = sampler.set_epoch
        return loader

    def _set_signature_columns_if_needed(self):
        set_signature_columns(self, ["chosen_ids", "rejected_ids", "margin", "response_ids", "scores", "objective_id"])

    def _empty_statistics(self) -> torch.Tensor:
        return empty_statistics(len(RANKING_SUM_KEYS)) if self.ranking else empty_statistics()

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        # A raw dataset passed here gets the same preparation as at construction (it is idempotent on tokenized data).
        if eval_dataset is not None and not isinstance(eval_dataset, str):
            eval_dataset = self.run_data.prepare_eval(eval_dataset)
        self._count_seen()  # for `eval_num_tokens`, the training tokens so far (TRL's metric); every process calls it
        with adapted_threads(self.cpu_threads):
            return super().evaluate(
                eval_dataset=eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix
            )

    # ----------------------------------------------------------------------------------------------- loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = sequence_rewards(model, inputs)  # pairs: all chosen, then all rejected
        odin = self.args.length_debias == ODIN
        objective = reward_objective(
            rewards,
            inputs,
            self.objective_options,
            head_orthogonality=length_head_of(model).orthogonality if odin else None,
            training=model.training,
        )
        if model.training:
            self._count_batch(inputs, objective)
        if self.ranking:
            outputs = {"rewards": rewards}
        else:
            rewards_chosen, rewards_rejected = objective.fitted.chunk(2)
            outputs = {"rewards_chosen": rewards_chosen, "rewards_rejected": rewards_rejected}
        return (objective.loss, outputs) if return_outputs else objective.loss

    def _count_batch(self, inputs: dict[str, Any], objective: Objective) -> None:
        """Add a training forward to the running sums `log` reports: the saved reward's metrics, its length
        correlations, the real tokens and the examples. Kept as device tensors: reading them (a host sync) waits for
        log()."""
        with torch.no_grad():
            if self.ranking:
                sizes = inputs["group_sizes"].tolist()
                stats = ranking_statistics(objective.saved, inputs["scores"], sizes, objective.logged_loss)
                examples = len(sizes)
            else:
                chosen, rejected = objective.saved.chunk(2)
                margin = inputs.get("margin")
                stats = batch_statistics(chosen, rejected, margin, self.args.center_rewards_coefficient)
                examples = chosen.shape[0]
        self._train_stats = merge_statistics(torch.stack([self._train_stats, stats.to(self._train_stats.device)]))
        if objective.length_correlations is not None:
            self._length_stats += objective.length_correlations
        real = inputs["num_real_tokens"] if "num_real_tokens" in inputs else inputs["attention_mask"].sum()
        self._pending_tokens = self._pending_tokens + real
        self._pending_pairs = self._pending_pairs + examples

    # ----------------------------------------------------------------------------------------------- steps
    def training_step(self, model, inputs, num_items_in_batch=None):
        with self._offload_context(), measured_step(self.cpu_threads):
            if layout_of(inputs) is not Layout.MICRO_BATCHES:
                return super().training_step(model, inputs, num_items_in_batch)
            # Over the token budget: forward and backward per micro-batch, gradients accumulated. Only the last
            # backward synchronises gradients across processes (each process runs its own number of micro-batches).
            micro_batches = inputs["micro_batches"]
            loss = 0.0
            for k, micro in enumerate(micro_batches):
                last = k == len(micro_batches) - 1
                with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
                    loss = loss + super().training_step(model, micro, num_items_in_batch)
            return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Every pair's [r_chosen, r_rejected] (or every ranking's rewards) as logits and its margin (or scores) as
        label, for `Trainer` to gather; see `rewardlab.train.predictions`."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager(), measured_step(self.cpu_threads):
            rewards = sequence_rewards(model, inputs)
        logits, labels = batch_predictions(evaluated_rewards(rewards, self.objective_options, inputs), inputs)
        return None, logits, labels

    def _compute_eval_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        metrics, rewards = evaluation_metrics(
            prediction.predictions,
            prediction.label_ids,
            ranking_objective=partial(ranking_loss, options=self.objective_options) if self.ranking else None,
            center_rewards_coefficient=self.args.center_rewards_coefficient,
            objectives=self.args.objectives,
            gated=has_gate(self.model),
        )
        metrics["num_tokens"] = self.seen.tokens
        self.reward_statistics = {
            "mean": float(rewards.mean()),
            "std": float(rewards.std()),
            "num_rewards": int(rewards.size),
            "global_step": self.state.global_step,
        }
        if self._user_compute_metrics is not None:
            metrics.update(self._user_compute_metrics(prediction))
        return metrics

    # ----------------------------------------------------------------------------------------------- optimizer
    def create_optimizer(self, model=None):
        """`Trainer`'s optimizer, with the score head's parameters in groups of their own at `head_learning_rate`
        and a prompt gate's at `gate_learning_rate` (the scheduler scales every group's rate alike)."""
        rates = self._own_learning_rates()
        if not rates or self.optimizer is not None:  # none asked, or already built
            return super().create_optimizer(model)
        optimizer = super().create_optimizer(model)
        for group in list(optimizer.param_groups):
            for lr in sorted(set(rates.values())):
                moved = [p for p in group["params"] if rates.get(id(p)) == lr]
                if moved:
                    group["params"] = [p for p in group["params"] if rates.get(id(p)) != lr]
                    optimizer.add_param_group({**group, "params": moved, "lr": lr})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        return optimizer

    def _own_learning_rates(self) -> dict[int, float]:
        """The learning rate of each parameter (by id) that does not train at `learning_rate`."""
        rates = {}
        if self.args.head_learning_rate is not None:
            rates |= {id(p): self.args.head_learning_rate for p in trained_head(self.model).parameters()}
        gate = gate_of(self.model)
        if gate is not None and self.args.gate_learning_rate is not None:
            rates |= {id(p): self.args.gate_learning_rate for p in (gate.gate_weight, gate.gate_bias)}
        return rates

    # ----------------------------------------------------------------------------------------------- logging
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Trainer calls log() on every process at the same steps, so the gathers below are matched.
        if "loss" in logs and not any(k.startswith("eval_") for k in logs):
            gathered = self.accelerator.gather(self._train_stats[None])
            summarize = summarize_ranking_statistics if self.ranking else summarize_statistics
            summary = summarize(merge_statistics(gathered.cpu()))
            summary.pop("loss", None)  # Trainer's own `loss` (the interval mean it optimised) stays.
            self._count_seen()
            logs.update(summary)
            logs["num_tokens"] = self.seen.tokens
            logs["num_pairs_seen"] = self.seen.pairs
            logs.update(self._length_correlations())
            self._train_stats = self._empty_statistics().to(self.args.device)
        super().log(logs, start_time)

    def _length_correlations(self) -> dict[str, float]:
        """The mean over the forwards since the last log (all processes) of the saved reward's correlation with
        response length (`length_correlation`) and, with a length head, of the length head's; a collective."""
        correlation_q, correlation_l, forwards = self.accelerator.gather(self._length_stats[None]).sum(0).tolist()
        self._length_stats.zero_()
        if not forwards:
            return {}
        out = {"length_correlation": correlation_q / forwards}
        if self.args.length_debias == ODIN:
            out["length_head_correlation"] = correlation_l / forwards
        return out

    def _count_seen(self) -> None:
        """Add the pairs and tokens of every process since the last count to `seen` (a collective: all call it)."""
        pending = torch.as_tensor([self._pending_pairs, self._pending_tokens], device=self.args.device).reshape(1, 2)
        pairs, tokens = self.accelerator.gather(pending).sum(0).tolist()
        self.seen.pairs += int(pairs)
        self.seen.tokens += int(tokens)
        self._pending_pairs, self._pending_tokens = 0, 0

    # ----------------------------------------------------------------------------------------------- saving
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        output_dir = output_dir or self.args.output_dir
        with saving(output_dir, is_writer=self.args.should_save):
            super().save_model(output_dir, _internal_call)
            if self.args.should_save:
                write_run_record(self, output_dir)
        if any(stats.streaming for stats in self.data_stats.values()):
            self.write_skipped_rows()  # a stream's skipped rows are known only as it is read

    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write rewardlab's model card (from the run record) to `output_dir/README.md`, with `dataset_name` and
        extra `tags` in its metadata. TRL's signature: `push_to_hub(dataset_name=...)` passes them here, and
        transformers' own card would otherwise replace rewardlab's when pushing."""
        if not self.is_world_process_zero():
            return
        extra_tags = [tags] if isinstance(tags, str) else list(tags or [])
        write_run_record(self, self.args.output_dir, dataset_name, extra_tags)

    def _save_checkpoint(self, model, trial) -> None:
        # Checkpoints save `seen`: count the steps since the last log first, so a resumed run misses none.
        self._count_seen()
        directory = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        with saving(directory, is_writer=self.args.should_save):
            super()._save_checkpoint(model, trial)
            if self.args.should_save:  # a checkpoint is a model `rewardlab eval` and `RewardModel` can load as it is
                write_run_record(self, directory)
            # Every process writes its own files (RNG state, optimizer shards) before the marker goes.
            self.accelerator.wait_for_everyone()

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        """`Trainer.train`; `resume_from_checkpoint=True` resumes from the newest completely written checkpoint,
        and an incompletely written one (an interrupted save) is refused."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise RewardlabError(f"no complete checkpoint to resume from in {self.args.output_dir}")
            logger.warning("resuming from %s", resume_from_checkpoint)
        elif resume_from_checkpoint:
            check_complete(resume_from_checkpoint)
        with adapted_threads(self.cpu_threads):
            return super().train(resume_from_checkpoint, *args, **kwargs)

    def _load_callback_state(self) -> None:
        # Trainer restores callback states only with restore_callback_states_from_checkpoint; the counts of pairs and
        # tokens already seen are part of the run, so they are always restored.
        saved = self.state.stateful_callbacks.get(SeenCounts.__name__)
        if isinstance(saved, dict):
            for name, value in saved.get("attributes", {}).items():
                setattr(self.seen, name, value)
        super()._load_callback_state()
