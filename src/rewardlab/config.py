"""RewardConfig: every field of TRL 1.16's RewardConfig, plus rewardlab's own data-policy, layout, ranking and
ensemble and length-debiasing options."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments

from rewardlab._compat import dict_fields_of
from rewardlab.choices import (
    BATCH,
    GATE_LABELS,
    GATE_LOSSES,
    LENGTH_DEBIAS_METHODS,
    LENGTH_DECORRELATION_SCOPES,
    ODIN,
    OVERLENGTH_POLICIES,
    PAIRWISE,
    RANKING_LOSSES,
    TRUNCATE_PROMPT,
    check_choice,
)

# TRL 1.16's RewardConfig fields beyond TrainingArguments (`rewardlab train --help` groups them; a test compares
# this list with TRL's).
TRL_REWARD_CONFIG_FIELDS = (
    "model_init_kwargs",
    "trust_remote_code",
    "chat_template_path",
    "disable_dropout",
    "dataset_num_proc",
    "eos_token",
    "max_length",
    "pad_to_multiple_of",
    "center_rewards_coefficient",
    "activation_offloading",
    "pad_token",
)

# One extra forward call costs about this many padded tokens on a CPU; the scorer uses it too.
DEFAULT_SUB_BATCH_OVERHEAD_TOKENS = 32


def objective_names(value: str | Sequence[str]) -> list[str]:
    """The objectives' names from a list or a comma-separated string (the command line gives either), checked: at
    least two, each named once."""
    parts = value.split(",") if isinstance(value, str) else [p for v in value for p in str(v).split(",")]
    names = [name.strip() for name in parts if name.strip()]
    if len(names) < 2:
        raise ValueError(
            f"objectives={value!r}: a multi-objective model needs two objectives or more (one objective is an "
            "ordinary reward model: drop the option and the column)"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"objectives={value!r} names {repeated[0]!r} twice")
    return names


@dataclass
class RewardConfig(TrainingArguments):
    r"""
    Configuration for [`RewardTrainer`]: `transformers.TrainingArguments` plus the reward-model options below.

    It accepts every field of TRL 1.16's `RewardConfig`, so switching from TRL means changing one import. The defaults
    that differ from `TrainingArguments` are TRL's (`learning_rate=1e-4`, `logging_steps=10`, activation/gradient
    checkpointing on), except `bf16`: it defaults to `True` only on a CUDA device that supports it, since bf16
    autocast on a CPU without bf16 units is slower than fp32 and changes the results.

    > Parameters that control the model

    model_init_kwargs, trust_remote_code, chat_template_path, disable_dropout.

    > Parameters that control the data preprocessing (`rewardlab.data`)

    dataset_num_proc, eos_token, max_length, overlength_policy, skip_invalid_rows, pad_to_multiple_of.

    > Parameters that control the batch layout (`rewardlab.layout`)

    padding_free, share_prompt, sub_batch_overhead_tokens, max_tokens_per_batch, length_grouped_tokens,
    compile_layers.

    > Parameters that control the training

    center_rewards_coefficient, head_learning_rate, activation_offloading, adapt_cpu_threads; for ranked data
    ranking_loss, ranking_margin_scale; for several objectives objectives, gate, gate_coefficient,
    gate_prompt_tokens, gate_learning_rate; for ensembles ensemble_heads, ensemble_bootstrap; against length bias
    length_debias,
    length_decorrelation_coefficient, length_decorrelation_scope, length_head_coefficient,
    head_orthogonality_coefficient.

    > Deprecated parameters

    pad_token (as in TRL).

    Every field's `help` says what it does; `rewardlab train --help` prints them all.
    """

    # Lets `--model_init_kwargs '{"dtype": "bfloat16"}'` arrive as a dict, as TrainingArguments does for its own.
    _VALID_DICT_FIELDS = dict_fields_of(TrainingArguments) + ["model_init_kwargs"]

    # Defaults that differ from TrainingArguments (TRL's choices).
    learning_rate: float = field(default=1e-4, metadata={"help": "The initial learning rate for AdamW."})
    logging_steps: float = field(
        default=10,
        metadata={
            "help": "Log every X update steps. An integer, or a float in [0, 1) read as a ratio of the total steps."
        },
    )
    activation_checkpointing: bool | None = field(
        default=None,
        metadata={
            "help": "Recompute activations in the backward pass: less memory, about 20%% slower. Unset: on (TRL's "
            "default), unless the deprecated alias gradient_checkpointing is given."
        },
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "Use bf16 mixed precision. Unset: on when a CUDA device supports bf16 and fp16 is off, else off."
        },
    )
    lr_scheduler_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "Extra arguments for the learning-rate scheduler, e.g. {'num_cycles': 1}."},
    )
    use_liger_kernel: bool = field(
        default=False, metadata={"help": "Patch the model's layers with Liger kernels (GPU only)."}
    )
    torch_empty_cache_steps: int | None = field(
        default=None,
        metadata={"help": "Call torch.<device>.empty_cache() every N steps (less peak memory, about 10%% slower)."},
    )

    # Model.
    model_init_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "Keyword arguments for AutoModelForSequenceClassification.from_pretrained when the model is given "
            'as a hub id or path (e.g. \'{"dtype": "bfloat16"}\'). num_labels is always 1; dtype defaults to '
            "float32. The 'revision' is also used for the tokenizer."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Allow models and tokenizers that ship custom Python code from the Hub."},
    )
    chat_template_path: str | None = field(
        default=None,
        metadata={
            "help": "Set the chat template: a Jinja file (.jinja/.j2) or a tokenizer directory / hub id whose template "
            "(and special tokens) are copied. Added special tokens grow the embedding matrix."
        },
    )
    disable_dropout: bool = field(
        default=True, metadata={"help": "Set every dropout probability in the model to 0 (stable rewards)."}
    )

    # Data preprocessing.
    dataset_num_proc: int | None = field(
        default=None, metadata={"help": "Number of processes for tokenizing a (non-streaming) dataset."}
    )
    eos_token: str | None = field(
        default=None,
        metadata={
            "help": "Token that ends a turn or sequence; appended to plain-text (non-conversational) examples that do "
            "not already end with it. Defaults to the tokenizer's eos token."
        },
    )
    max_length: int | None = field(
        default=1024,
        metadata={
            "help": "Maximum tokens of each of chosen and rejected (prompt included). Longer pairs are handled by "
            "`overlength_policy` and always counted in the log and the saved run. None: no limit."
        },
    )
    overlength_policy: str = field(
        default=TRUNCATE_PROMPT,
        metadata={
            "help": "What to do with a pair longer than max_length. 'truncate_prompt' (default): drop tokens from the "
            "left of the prompt shared by chosen and rejected (the oldest turns), keeping the responses whole; a "
            "response that alone exceeds max_length is cut at its end (counted separately). 'drop': leave the pair "
            "out. 'error': stop with the row index.",
            "choices": list(OVERLENGTH_POLICIES),
        },
    )
    skip_invalid_rows: bool = field(
        default=False,
        metadata={
            "help": "Skip rows that fail validation (missing/empty field, wrong type, chosen == rejected, ...) and "
            "log a count per reason, instead of stopping at the first one with its row index. Each skipped row, with "
            "its index, field, reason and content, is written to <output_dir>/skipped_rows.jsonl."
        },
    )
    padding_free: bool = field(
        default=True,
        metadata={
            "help": "Spend no compute on padding: causal models pack each batch's pairs into one row with the prompt "
            "shared (see share_prompt), BERT-style encoders pack whole sequences, any other architecture runs "
            "length-grouped sub-batches; the rewards, loss and gradients are those of the padded batch. Off: TRL's "
            "padded batches (also used when a custom data_collator is given)."
        },
    )
    share_prompt: bool | None = field(
        default=None,
        metadata={
            "help": "With padding_free, compute the tokens that chosen and rejected share (the prompt) once per "
            "pair: the rejected response attends to the prompt and to itself only. Causal models only. Unset: on "
            "when the model passes a start-up check that this layout reproduces the padded rewards; a model that "
            "fails it falls back with one log line saying why. False: a causal model's sequences are packed one "
            "after another without sharing (the packed layout of other libraries; slower on long prompts)."
        },
    )
    sub_batch_overhead_tokens: int = field(
        default=DEFAULT_SUB_BATCH_OVERHEAD_TOKENS,
        metadata={
            "help": "Cost of one extra forward call, in padded tokens, used to choose the sub-batches: larger values "
            "give fewer, more padded sub-batches (raise it on GPUs, where small kernels are inefficient)."
        },
    )
    max_tokens_per_batch: int | None = field(
        default=None,
        metadata={
            "help": "Token budget of one forward/backward pass, to keep peak memory flat on data with long-tail "
            "lengths. A batch that would compute more tokens (with padding_free: its packed tokens; else 2 x pairs x "
            "longest sequence) is split into micro-batches of whole pairs under the budget, and their gradients are "
            "accumulated before the optimizer step: the loss, gradients and metrics are the whole batch's. A pair "
            "over the budget on its own runs alone. Also bounds evaluation. None: no budget."
        },
    )
    length_grouped_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Length-grouped, token-budgeted batches: each training batch (per device) holds pairs of similar "
            "length whose computed tokens (as max_tokens_per_batch counts them) add up to at most this many, "
            "instead of per_device_train_batch_size pairs. Pairs are shuffled, sorted by length in groups of about "
            "50 batches, packed under the budget, and the batches shuffled; every pair is seen once per epoch, in an "
            "order fixed by seed and epoch (a resumed run continues it). Steps of even cost suit GPUs; a step is "
            "the mean loss of its pairs. None: per_device_train_batch_size pairs per batch."
        },
    )
    compile_layers: bool = field(
        default=False,
        metadata={
            "help": "torch.compile each transformer layer (regional compilation, dynamic shapes: packed rows change "
            "length every step without recompiling), attention left eager. Checked by a warm-up step at start; if "
            "compilation fails the run trains eagerly with one warning. Prefer it to torch_compile, which compiles "
            "the whole model and recompiles for every new batch layout. See BENCHMARKS.md for when it pays."
        },
    )
    pad_to_multiple_of: int | str | None = field(
        default="auto",
        metadata={
            "help": "Pad batches to a multiple of this value. 'auto': 128 on Neuron (compiles per shape), else none."
        },
    )

    # Training.
    center_rewards_coefficient: float | None = field(
        default=None,
        metadata={
            "help": "Add coefficient * mean((r_chosen + r_rejected)^2) to the loss to keep rewards centred on 0 "
            "(Eisenstein et al. 2023). Recommended: 0.01."
        },
    )
    head_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the score head (and of a length head or an ensemble's heads): the part of a "
            "reward model that starts random, which may learn faster than the pretrained trunk. It follows the same "
            "schedule as learning_rate. None: learning_rate."
        },
    )
    activation_offloading: bool = field(
        default=False, metadata={"help": "Offload activations to the CPU during training (GPU only)."}
    )
    adapt_cpu_threads: bool = field(
        default=True,
        metadata={
            "help": "On a CPU: while other processes compete for the cores, compute with as many threads as the "
            "process gets cores (measured every step: its CPU time over wall time, confirmed by a 50 ms probe), and "
            "with torch's full thread count again once the cores are free. Contended threads wait for each other at "
            "every operation, which can make training many times slower (rewardlab.cpu_threads). False: torch's "
            "thread count is left alone."
        },
    )

    # Rankings (K responses per prompt, see rewardlab.data.formats) and ensembles of heads (rewardlab.model.heads).
    ranking_loss: str = field(
        default=PAIRWISE,
        metadata={
            "help": "Loss for ranked data (rows with K >= 2 responses). 'pairwise' (InstructGPT): for each prompt, "
            "the mean over its ordered pairs (i, j) with s_i > s_j of -log sigmoid(r_i - r_j - m_ij), then the mean "
            "over prompts. 'plackett_luce': the negative log-likelihood of the whole ranking, "
            "sum over ranks of -(r_best - logsumexp(r_remaining)), tied responses sharing a step (Breslow), divided "
            "by the steps, then the mean over prompts. Both equal the Bradley-Terry loss when K = 2.",
            "choices": list(RANKING_LOSSES),
        },
    )
    ranking_margin_scale: float = field(
        default=0.0,
        metadata={
            "help": "Pairwise ranking loss only: the margin of pair (i, j) is ranking_margin_scale * (s_i - s_j), so "
            "pairs whose scores differ more must be separated more. 0: no margin."
        },
    )
    objectives: list[str] | None = field(
        default=None,
        metadata={
            "help": "Names of the objectives of a multi-objective reward model, in head order, e.g. "
            "helpful,harmless. Each row names its own in an `objective` column (or a `datasets:` entry through "
            "`objective:`); each objective gets a head, trained on its rows only. None: taken from the training "
            "data (sorted), when it has an `objective` column.",
        },
    )
    gate: str = field(
        default=GATE_LABELS,
        metadata={
            "help": "With objectives: how the prompt gate, which weighs the objective heads by prompt into the "
            "combined reward (Σ_k gate_k · head_k, what the saved model gives by default), learns. 'labels': "
            "cross-entropy of the gate on each pair's objective. 'preference': the Bradley-Terry loss of the combined "
            "reward, the heads held fixed in it. 'both': their sum. 'none': no gate (the heads are weighed by fixed "
            "weights when scoring). The gate reads the prompt's representation: in the shared-prefix layout it costs "
            "a token or two per pair, elsewhere (encoders, packed or padded batches) a forward of the prompt.",
            "choices": list(GATE_LOSSES),
        },
    )
    gate_coefficient: float = field(
        default=1.0,
        metadata={"help": "With a gate: the weight of its loss next to the heads' Bradley-Terry loss."},
    )
    gate_prompt_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Encoders only: the most prompt tokens the gate reads, its first ([CLS]) and its last ones. An "
            "encoder reads the prompt in a forward of its own, whose cost this bounds. None: the whole prompt (a "
            "causal model's gate always reads it, where the responses share it)."
        },
    )
    gate_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the gate, which starts at zero (equal weights) and is a small linear map: it "
            "may learn faster than the rest. Same schedule as learning_rate. None: head_learning_rate, else "
            "learning_rate."
        },
    )
    ensemble_heads: int = field(
        default=1,
        metadata={
            "help": "Train N linear score heads on the shared model (different random initialisations). Saved as an "
            "ordinary num_labels=1 checkpoint whose head is the heads' mean (so plain transformers gives the "
            "ensemble's mean reward exactly) plus the N heads, from which RewardModel also gives each reward's "
            "standard deviation across heads. 1: an ordinary reward model."
        },
    )
    ensemble_bootstrap: bool = field(
        default=False,
        metadata={
            "help": "Each head weighs each training example by its own Poisson(1) draw (an online bootstrap "
            "resample, fixed per example and drawn from --seed), so the heads also differ by the data they fit. "
            "With one head, the model trains on one bootstrap resample: train several with different seeds for a "
            "deep ensemble (rewardlab.RewardEnsemble)."
        },
    )

    # Training length bias out of the reward (rewardlab.losses.length_decorrelation_loss, rewardlab.model.length_head).
    length_debias: str | None = field(
        default=None,
        metadata={
            "help": "Train the reward to not follow response length (its tokens after the prompt the responses to it "
            "share). 'odin' (Chen et al. 2024): a second, length head on the same hidden state; the Bradley-Terry "
            "loss fits the sum of both heads, plus length_decorrelation_coefficient * |corr(quality, length)| - "
            "length_head_coefficient * corr(length head, length) over the batch's responses, plus "
            "head_orthogonality_coefficient * |w_quality . w_length|. The saved num_labels=1 head is the quality "
            "head; the length head is saved next to it (RewardModel returns it, plain transformers ignores it). "
            "'correlation': one head, plus length_decorrelation_coefficient * |corr(reward, length)|. "
            "None: plain Bradley-Terry.",
            "choices": list(LENGTH_DEBIAS_METHODS),
        },
    )
    length_decorrelation_coefficient: float = field(
        default=1.0,
        metadata={
            "help": "length_debias: weight of |Pearson correlation| between the saved (quality) reward and response "
            "length, over each forward's responses."
        },
    )
    length_decorrelation_scope: str = field(
        default=BATCH,
        metadata={
            "help": "length_debias: which responses the correlations with length compare. 'batch' (ODIN's): all "
            "responses of a forward, across prompts. 'prompt': each response's reward and length relative to the "
            "mean of the responses to its prompt, so only how the reward follows length between answers to one "
            "prompt (the pair, the ranking, an RL group) is taken out.",
            "choices": list(LENGTH_DECORRELATION_SCOPES),
        },
    )
    length_head_coefficient: float = field(
        default=1.0,
        metadata={
            "help": "length_debias='odin': weight of the length head's Pearson correlation with response length "
            "(subtracted: the length head is pushed to carry length)."
        },
    )
    head_orthogonality_coefficient: float = field(
        default=1.0,
        metadata={"help": "length_debias='odin': weight of |w_quality . w_length| (the heads kept orthogonal)."},
    )

    # Deprecated in TRL, kept so TRL configs still load.
    pad_token: str | None = field(
        default=None,
        metadata={"help": "Deprecated (as in TRL): set tokenizer.pad_token and pass the tokenizer instead."},
    )

    def __post_init__(self):
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = True
        if self.bf16 is None:
            self.bf16 = (
                not self.fp16 and not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            )
        if self.pad_token is not None:
            warnings.warn(
                "`pad_token` is deprecated (as in TRL, which removes it in v2.0.0): set `tokenizer.pad_token` and "
                "pass the tokenizer as `processing_class` instead",
                FutureWarning,
                stacklevel=3,
            )
        check_choice("overlength_policy", self.overlength_policy, OVERLENGTH_POLICIES)
        for name in ("max_tokens_per_batch", "length_grouped_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive number of tokens, got {getattr(self, name)}")
        check_choice("ranking_loss", self.ranking_loss, RANKING_LOSSES)
        if self.objectives is not None:
            self.objectives = objective_names(self.objectives)
            if self.ensemble_heads > 1 or self.length_debias == ODIN:
                raise ValueError(
                    "objectives train one head per objective; an ensemble of heads (ensemble_heads > 1) or a length "
                    "head (length_debias='odin') on top of them is not supported: drop one of the two"
                )
        check_choice("gate", self.gate, GATE_LOSSES)
        if self.gate_coefficient < 0:
            raise ValueError(f"gate_coefficient must be >= 0, got {self.gate_coefficient}")
        if self.gate_prompt_tokens is not None and self.gate_prompt_tokens < 2:
            raise ValueError(
                f"gate_prompt_tokens must be at least 2 ([CLS] and one more), got {self.gate_prompt_tokens}"
            )
        if self.gate_learning_rate is not None and self.gate_learning_rate < 0:
            raise ValueError(f"gate_learning_rate must be >= 0, got {self.gate_learning_rate}")
        if self.ensemble_heads < 1:
            raise ValueError(f"ensemble_heads must be at least 1, got {self.ensemble_heads}")
        if self.length_debias is not None:
            check_choice("length_debias", self.length_debias, LENGTH_DEBIAS_METHODS)
            if self.length_debias == ODIN and self.ensemble_heads > 1:
                raise ValueError("length_debias='odin' trains one quality and one length head: set ensemble_heads=1")
        if self.head_learning_rate is not None and self.head_learning_rate < 0:
            raise ValueError(f"head_learning_rate must be >= 0, got {self.head_learning_rate}")
        check_choice("length_decorrelation_scope", self.length_decorrelation_scope, LENGTH_DECORRELATION_SCOPES)
        for name in ("length_decorrelation_coefficient", "length_head_coefficient", "head_orthogonality_coefficient"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be at least 2 (or None), got {self.max_length}")
        if isinstance(self.pad_to_multiple_of, str) and self.pad_to_multiple_of != "auto":
            value = self.pad_to_multiple_of.strip().lower()
            self.pad_to_multiple_of = None if value in ("none", "null", "") else int(value)
        super().__post_init__()
        if self.pad_to_multiple_of == "auto":
            self.pad_to_multiple_of = 128 if self.device.type == "neuron" else None
        if self.device.type == "cpu":
            # Pinned memory only speeds up host-to-GPU copies; on a CPU run it just makes PyTorch warn every epoch.
            self.dataloader_pin_memory = False
