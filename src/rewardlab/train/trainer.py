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
from collections.abc import Callable, Sequence
from typing import Any

import torch
from datasets import Dataset, IterableDataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback, set_seed
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, EvalPrediction

from rewardlab.choices import ODIN, PLACKETT_LUCE, PROMPT
from rewardlab.config import RewardConfig
from rewardlab.cpu_threads import adapted_threads, adaptive_threads, measured_step
from rewardlab.errors import RewardlabError, RewardlabTypeError
from rewardlab.files import check_complete, last_complete_checkpoint, saving
from rewardlab.layout.batch import Layout, layout_of
from rewardlab.layout.choose import choose_layout
from rewardlab.layout.collate import DataCollatorForPreference, DataCollatorForRanking, LayoutCollator
from rewardlab.layout.forward import sequence_rewards
from rewardlab.losses import (
    bradley_terry_loss,
    length_decorrelation_loss,
    pairwise_ranking_loss,
    pearson_correlation,
    plackett_luce_loss,
    within_group_deviations,
)
from rewardlab.metrics.running import (
    RANKING_SUM_KEYS,
    batch_statistics,
    empty_statistics,
    merge_statistics,
    ranking_statistics,
    summarize_ranking_statistics,
    summarize_statistics,
)
from rewardlab.model.heads import head_mean, install_ensemble_head, num_heads, trained_head
from rewardlab.model.length_head import has_length_head, install_length_head, length_head_of
from rewardlab.model.load import (
    check_num_labels,
    disable_dropout,
    fix_peft_config,
    hub_id_of,
    is_peft_model,
    load_model,
    load_tokenizer,
    require_peft,
    set_chat_template,
    set_eos_token,
    set_pad_token,
)
from rewardlab.train.bootstrap import BootstrapCollator
from rewardlab.train.datasets import RunDatasets
from rewardlab.train.engines import (
    check_parallelism,
    force_reentrant_checkpointing,
    init_kwargs_for_processes,
    peft_model_kwargs,
)
from rewardlab.train.predictions import evaluation_metrics, pair_predictions, ranking_predictions
from rewardlab.train.run_record import MODEL_TAGS, write_run_record

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
            the data has none); its results are added to rewardlab's exact metrics.
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
        args = self._check_arguments(model, args, train_dataset)
        # The score head of a freshly loaded model is random: seed first so runs are reproducible.
        set_seed(args.seed)
        model, model_id, revision = self._setup_model(model, args, quantization_config)
        processing_class, added_tokens = self._setup_tokenizer(processing_class, model, model_id, revision, args)
        model = self._setup_peft(model, peft_config, added_tokens, args)
        if is_peft_model(model):
            force_reentrant_checkpointing(args)
        self._finish_model(model, processing_class, args)
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

    # ----------------------------------------------------------------------------------------------- set-up
    @staticmethod
    def _check_arguments(model: Any, args: RewardConfig | None, train_dataset: Any) -> RewardConfig:
        """The run's config (TRL's default when None), after the checks that need no model."""
        if args is None:
            name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "") or "model"
            args = RewardConfig(f"{name.rstrip('/').split('/')[-1]}-Reward")
        elif not isinstance(args, RewardConfig):
            raise RewardlabTypeError(f"`args` must be a `rewardlab.RewardConfig`, got `{type(args).__name__}`")
        if train_dataset is None:
            raise RewardlabError("`train_dataset` is required")
        if isinstance(train_dataset, IterableDataset):
            if args.max_steps is None or args.max_steps <= 0:
                raise RewardlabError(
                    "a streaming (IterableDataset) train_dataset has no length: set max_steps to bound training"
                )
            # Accelerate's dispatch mode concatenates batches across processes, which fails for iterable datasets.
            if args.accelerator_config.dispatch_batches is True:
                logger.warning("dispatch_batches=True does not work with a streamed train_dataset: set to False")
            args.accelerator_config.dispatch_batches = False
        elif not isinstance(train_dataset, Dataset):
            raise RewardlabTypeError(
                f"`train_dataset` must be a `Dataset` or `IterableDataset`, got `{type(train_dataset).__name__}`"
            )
        if args.batch_eval_metrics:
            raise RewardlabError(
                "batch_eval_metrics is not supported: rewardlab's evaluation metrics are already exact"
            )
        return args

    def _setup_model(self, model: Any, args: RewardConfig, quantization_config: Any) -> tuple[Any, str, str | None]:
        """The model (loaded when given by name), its id or name for the run record, and the hub revision."""
        if isinstance(model, str):
            model_id = model
            init_kwargs = init_kwargs_for_processes(dict(args.model_init_kwargs or {}), args.world_size)
            model = load_model(model, init_kwargs, quantization_config, args.trust_remote_code, new_head=True)
            revision = init_kwargs.get("revision")
        else:
            model_id = getattr(model.config, "_name_or_path", None) or type(model).__name__
            revision = None
            if args.model_init_kwargs:
                logger.warning("model_init_kwargs is ignored: the model is already instantiated")
            if quantization_config is not None:
                logger.warning("quantization_config is ignored: the model is already instantiated")
        check_num_labels(model)
        self.base_model_id = hub_id_of(model_id)
        self._setup_ensemble(model, args)
        self._setup_length_head(model, args)
        return model, model_id, revision

    @staticmethod
    def _setup_ensemble(model: Any, args: RewardConfig) -> None:
        """Give the model `args.ensemble_heads` heads, or keep the ensemble a loaded checkpoint already has."""
        existing = num_heads(model)
        if args.ensemble_heads > 1 and existing == 1:
            install_ensemble_head(model, args.ensemble_heads, seed=args.seed)
        elif args.ensemble_heads > 1 and existing != args.ensemble_heads:
            raise RewardlabError(
                f"the model already is an ensemble of {existing} heads, but ensemble_heads={args.ensemble_heads}"
            )
        elif existing > 1:
            logger.warning("the model is an ensemble of %d heads: training all of them", existing)
            args.ensemble_heads = existing

    @staticmethod
    def _setup_length_head(model: Any, args: RewardConfig) -> None:
        """Give the model a length head for `length_debias='odin'`, or keep training the one a checkpoint has."""
        if args.length_debias == ODIN:
            install_length_head(model, seed=args.seed)
        elif has_length_head(model):
            if args.length_debias is not None:
                raise RewardlabError(
                    f"the model has a length head (trained with length_debias='odin'), but length_debias="
                    f"{args.length_debias!r}: use 'odin', or start from a model without one"
                )
            logger.warning("the model has a length head: training it with length_debias='odin'")
            args.length_debias = ODIN

    @staticmethod
    def _setup_tokenizer(
        tokenizer: PreTrainedTokenizerBase | None, model: Any, model_id: str, revision: str | None, args: RewardConfig
    ) -> tuple[PreTrainedTokenizerBase, list[int]]:
        """The tokenizer (loaded from the model when None) with the run's eos token and chat template, and the ids
        of special tokens the chat template added."""
        if tokenizer is None:
            tokenizer = load_tokenizer(model_id, revision=revision, trust_remote_code=args.trust_remote_code)
        if args.eos_token is not None:
            set_eos_token(tokenizer, model, args.eos_token)
        added_tokens = []
        if args.chat_template_path is not None:
            added_tokens = set_chat_template(tokenizer, model, args.chat_template_path)
        return tokenizer, added_tokens

    @staticmethod
    def _setup_peft(model: Any, peft_config: Any, added_tokens: list[int], args: RewardConfig) -> Any:
        """LoRA (or another PEFT method) around the model, training and saving its score head."""
        if peft_config is None:
            return model
        require_peft("peft_config")
        if is_peft_model(model):
            raise RewardlabError(
                "You passed a `PeftModel` instance together with a `peft_config`: merge the adapter first, or pass "
                "the PeftModel without peft_config to keep training it"
            )
        from peft import get_peft_model, prepare_model_for_kbit_training

        quantized = getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)
        if quantized:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
        config = fix_peft_config(peft_config, model, added_tokens)
        model = get_peft_model(model, config, **peft_model_kwargs(args, quantized))
        model.print_trainable_parameters()
        return model

    @staticmethod
    def _finish_model(model: Any, tokenizer: PreTrainedTokenizerBase, args: RewardConfig) -> None:
        """Dropout off (stable rewards), the pad token the reward is read before, and no KV cache."""
        if args.disable_dropout:
            disable_dropout(model)
        set_pad_token(tokenizer, model, args.pad_token)
        # The KV cache is useless for scoring and conflicts with gradient checkpointing.
        if hasattr(model.config, "use_cache"):
            model.config.use_cache = False

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
        )

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

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "response_ids", "scores"]

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
        if self.ranking:
            return self._ranking_loss(model, inputs, return_outputs)
        margin = inputs.get("margin")
        rewards = sequence_rewards(model, inputs)  # all chosen, then all rejected
        fitted, length_loss = self._length_debiased(model, rewards, inputs)
        rewards_chosen, rewards_rejected = fitted.chunk(2)
        loss = bradley_terry_loss(
            rewards_chosen,
            rewards_rejected,
            margin,
            self.args.center_rewards_coefficient,
            weights=inputs.get("bootstrap_weights"),
        )
        loss = loss + length_loss
        if "loss_weight" in inputs:  # a micro-batch: its share of the whole batch's mean loss
            loss = loss * inputs["loss_weight"]
        if model.training:
            # Metrics are those of the reward a saved model gives: the ensemble's mean, or the quality head.
            saved_chosen, saved_rejected = self._saved_reward(rewards).chunk(2)
            stats = batch_statistics(saved_chosen, saved_rejected, margin, self.args.center_rewards_coefficient)
            self._count_batch(inputs, stats, rewards_chosen.shape[0])
        outputs = {"rewards_chosen": rewards_chosen, "rewards_rejected": rewards_rejected}
        return (loss, outputs) if return_outputs else loss

    def _ranking_loss(self, model, inputs, return_outputs=False):
        rewards = sequence_rewards(model, inputs)
        fitted, length_loss = self._length_debiased(model, rewards, inputs)
        scores, sizes = inputs["scores"], inputs["group_sizes"].tolist()
        loss = self._ranking_objective(fitted, scores, sizes, inputs.get("bootstrap_weights")) + length_loss
        if model.training:
            mean = self._saved_reward(rewards)
            with torch.no_grad():
                # The logged loss is the mean reward's, unweighted: for one head without bootstrap, the loss itself.
                plain = rewards.dim() == 1 and "bootstrap_weights" not in inputs and not self.args.length_debias
                logged = loss if plain else self._ranking_objective(mean, scores, sizes)
                stats = ranking_statistics(mean, scores, sizes, logged)
            self._count_batch(inputs, stats.to(self._train_stats.device), len(sizes))
        if "loss_weight" in inputs:
            loss = loss * inputs["loss_weight"]
        outputs = {"rewards": rewards}
        return (loss, outputs) if return_outputs else loss

    def _saved_reward(self, rewards: torch.Tensor) -> torch.Tensor:
        """The reward a saved model gives, (S,), of the rewards the model computes in training: the quality head's
        ((S, 2): [quality, length]) or an ensemble's mean ((S, N))."""
        return rewards[:, 0] if self.args.length_debias == ODIN else head_mean(rewards)

    def _length_debiased(
        self, model: Any, rewards: torch.Tensor, inputs: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor | float]:
        """The rewards the preference loss fits, and the loss term that takes length out of the saved reward
        (`length_debias`, `rewardlab.losses`): for 'odin', quality + length and the heads' decorrelation and
        orthogonality terms; for 'correlation', the rewards themselves and their decorrelation term."""
        args = self.args
        lengths = inputs.get("response_lengths")
        if lengths is None:
            if args.length_debias:
                raise RewardlabError(
                    "length_debias needs each response's length, which rewardlab's collators give "
                    "(`response_lengths`): leave data_collator unset, or use DataCollatorForPreference("
                    "with_response_lengths=True)"
                )
            return rewards, 0.0
        odin = args.length_debias == ODIN
        quality, length = (rewards[:, 0], rewards[:, 1]) if odin else (head_mean(rewards), None)
        fitted = quality + length if odin else rewards
        if args.length_decorrelation_scope == PROMPT:  # each response against the others to its prompt
            group, num_groups = self._prompt_of_each_response(inputs, len(lengths))
            quality, lengths = (within_group_deviations(x, group, num_groups) for x in (quality, lengths))
            length = None if length is None else within_group_deviations(length, group, num_groups)
        self._count_length_correlations(model, lengths, quality, length)
        if not args.length_debias:
            return fitted, 0.0
        loss = length_decorrelation_loss(
            quality, lengths, args.length_decorrelation_coefficient, length, args.length_head_coefficient
        )
        if odin:
            loss = loss + args.head_orthogonality_coefficient * length_head_of(model).orthogonality
        return fitted, loss

    def _prompt_of_each_response(self, inputs: dict[str, Any], num_responses: int) -> tuple[torch.Tensor, int]:
        """Each response's prompt index in the batch (pairs: all chosen, then all rejected), and the prompts."""
        device = inputs["response_lengths"].device
        if self.ranking:
            sizes = inputs["group_sizes"].to(device)
            return torch.repeat_interleave(torch.arange(len(sizes), device=device), sizes), len(sizes)
        pairs = num_responses // 2
        return torch.arange(pairs, device=device).repeat(2), pairs

    def _count_length_correlations(
        self, model: Any, lengths: torch.Tensor, quality: torch.Tensor, length: torch.Tensor | None = None
    ) -> None:
        """Add a training forward's correlations of the saved reward and of the length head with length to the
        sums `log` reports."""
        if not model.training:
            return
        with torch.no_grad():
            lengths = lengths.double()
            correlations = [pearson_correlation(quality.double(), lengths)]
            correlations.append(
                lengths.new_zeros(()) if length is None else pearson_correlation(length.double(), lengths)
            )
            self._length_stats += torch.stack([*correlations, lengths.new_ones(())])

    def _ranking_objective(
        self, rewards: torch.Tensor, scores: torch.Tensor, sizes: Sequence[int], weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        args = self.args
        if args.ranking_loss == PLACKETT_LUCE:
            return plackett_luce_loss(rewards, scores, sizes, args.center_rewards_coefficient, weights)
        return pairwise_ranking_loss(
            rewards, scores, sizes, args.ranking_margin_scale, args.center_rewards_coefficient, weights
        )

    def _count_batch(self, inputs, stats: torch.Tensor, examples: int) -> None:
        # Kept as device tensors: reading them (a host sync) waits for log().
        self._train_stats = merge_statistics(torch.stack([self._train_stats, stats]))
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
        if self.args.length_debias == ODIN:  # evaluated is the reward a saved model gives
            rewards = rewards[:, 0]
        if self.ranking:
            logits, labels = ranking_predictions(rewards, inputs["scores"], inputs["group_sizes"].tolist())
        else:
            logits, labels = pair_predictions(*rewards.chunk(2), inputs.get("margin"))
        return None, logits, labels

    def _compute_eval_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        metrics, rewards = evaluation_metrics(
            prediction.predictions,
            prediction.label_ids,
            ranking_objective=self._ranking_objective if self.ranking else None,
            center_rewards_coefficient=self.args.center_rewards_coefficient,
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
        (the scheduler scales every group's rate alike)."""
        if self.args.head_learning_rate is None or self.optimizer is not None:  # none asked, or already built
            return super().create_optimizer(model)
        optimizer = super().create_optimizer(model)
        head = {id(p) for p in trained_head(self.model).parameters()}
        for group in list(optimizer.param_groups):
            in_head = [p for p in group["params"] if id(p) in head]
            if in_head:
                group["params"] = [p for p in group["params"] if id(p) not in head]
                optimizer.add_param_group({**group, "params": in_head, "lr": self.args.head_learning_rate})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        return optimizer

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
