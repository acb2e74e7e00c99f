"""Score with a trained reward model: plain texts, prompt + completion, and preference pairs, on the fast path.

`RewardModel` prepares every item with training's own functions (`rewardlab.data.prepare_item`: tokenization, the
vocabulary check, the over-length policy), batches by a token budget (longest first), lays each batch out in the
layout training would choose for the model (`rewardlab.layout`: padding-free, shared prompts computed once), and
returns the scores in the caller's order. Pairs are scored in the training layout itself, so a pair's rewards are
the trainer's to float precision.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate.utils import send_to_device
from scipy.special import expit, softmax

from rewardlab.choices import OVERLENGTH_POLICIES, TRUNCATE_PROMPT
from rewardlab.cpu_threads import adapted_threads, adaptive_threads, measured_step
from rewardlab.data.prepare_item import (
    ItemRules,
    PreparedItem,
    prepare_completion,
    prepare_pair,
    prepare_ranking,
    prepare_text,
)
from rewardlab.data.tokenize import resolve_eos_token_id
from rewardlab.data.truncation import DROPPED, OK, STATUSES
from rewardlab.errors import RewardlabError, first_line
from rewardlab.files import read_run_record
from rewardlab.layout.choose import choose_layout
from rewardlab.layout.collate import add_prompts, forward_passes
from rewardlab.layout.forward import sequence_rewards
from rewardlab.layout.plan import group_by_shared_prefix
from rewardlab.model.gate import gate_prompt_tokens, has_gate
from rewardlab.model.heads import num_heads, objective_names
from rewardlab.model.length_head import has_length_head
from rewardlab.model.load import load_trained_model, resolve_dtype, set_pad_token
from rewardlab.score.objectives import objective_weights
from rewardlab.score.shaping import normalize_rewards

logger = logging.getLogger(__name__)


@dataclass
class PairScores:
    """Rewards of preference pairs and the model's P(chosen > rejected) = sigmoid(r_chosen - r_rejected).

    `chosen_tokens`/`rejected_tokens` count each response's own tokens as scored: those after the prefix the two
    sequences share (the prompt, explicit or implied), after truncation; `chosen_full_tokens`/`rejected_full_tokens`
    count them before truncation (the response's real length, which a content-blind "longer wins" rule compares).
    For an ensemble the rewards are the heads' mean, and `std_chosen`/`std_rejected`/`std_margin` are the standard
    deviations across heads of each reward and of `r_chosen - r_rejected` (None for a single-head model). For a model
    trained with `length_debias='odin'` the rewards are the quality head's, and `length_rewards_chosen`/
    `length_rewards_rejected` the length head's. For a multi-objective model, `objective_rewards_chosen`/
    `objective_rewards_rejected` hold every objective's head (in `RewardModel.objectives` order), and with a prompt
    gate `gate_weights` the weight the gate gives each head for the pair's prompt.
    """

    rewards_chosen: list[float]
    rewards_rejected: list[float]
    prob_chosen: list[float]
    chosen_tokens: list[int]
    rejected_tokens: list[int]
    std_chosen: list[float] | None = None
    std_rejected: list[float] | None = None
    std_margin: list[float] | None = None
    length_rewards_chosen: list[float] | None = None
    length_rewards_rejected: list[float] | None = None
    chosen_full_tokens: list[int] | None = None
    rejected_full_tokens: list[int] | None = None
    objective_rewards_chosen: list[list[float]] | None = None
    objective_rewards_rejected: list[list[float]] | None = None
    gate_weights: list[list[float]] | None = None


@dataclass
class RankingScores:
    """Rewards of the responses of ranked rows: one list per row, in the row's order of responses (for lists in
    `chosen` and `rejected`: the chosen ones, then the rejected ones). `response_tokens` counts each response's own
    tokens as scored: those after the prefix the row's sequences share, after truncation; `full_tokens` counts them
    before truncation (the response's real length). For an ensemble `std` holds
    each reward's standard deviation across members or heads (None for a single-head model). A row dropped for
    length scores NaN throughout."""

    rewards: list[list[float]]
    response_tokens: list[list[int]]
    full_tokens: list[list[int]]
    std: list[list[float]] | None = None


class RewardModel:
    """A reward model ready to score. Build it with `RewardModel.from_pretrained(path_or_id)`.

    Args:
        model, tokenizer: a `*ForSequenceClassification` model with one output (or a `PeftModel` around one) and its
            tokenizer.
        max_length / overlength_policy: as in training ('truncate_prompt' cuts the oldest prompt tokens, keeps the
            response; 'drop' scores the item NaN; 'error' raises). `from_pretrained` reads the training values from
            the saved run; None: no limit.
        max_tokens_per_batch: token budget of one forward pass (bounds memory).
        padding_free: use the fast layouts (packed rows, prompts shared; `rewardlab.layout.choose_layout`); False:
            padded batches.
        normalization: {"mean": m, "std": s} used by `normalize` (saved by training from its last evaluation).
        eos_token: the eos appended to plain text, as the `eos_token` training option (default: the tokenizer's).
        source: where the model comes from (`from_pretrained` sets its path or hub id), for reports.
        adapt_cpu_threads: on a CPU, compute with as many threads as the process gets cores while other processes
            compete (`rewardlab.cpu_threads`, as in training); the user's thread count is back after each call.
        objective / weights: for a model with a head per objective (`objectives`), the reward is that objective's
            head, or the heads weighed by `weights` (a dict, or "helpful=0.7,harmless=0.3"; objectives not named
            weigh 0). One of them is needed for such a model.

    `report` counts what every call so far did to its inputs: "ok", "prompt_truncated", "response_truncated",
    "dropped" (the statuses of `rewardlab.data.truncation`).

    An ensemble (trained with `ensemble_heads`, see `rewardlab.model.heads`) scores with the heads' mean, and
    `score_texts`/`score` with `return_std=True` also return each reward's standard deviation across heads.
    A model trained with `length_debias='odin'` scores with its quality head, the reward it was trained to give
    (the one plain `transformers` loads), and with `return_length=True` also returns its length head's rewards.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        max_length: int | None = None,
        overlength_policy: str = TRUNCATE_PROMPT,
        max_tokens_per_batch: int = 8192,
        padding_free: bool = True,
        normalization: Mapping[str, float] | None = None,
        eos_token: str | None = None,
        source: str | None = None,
        adapt_cpu_threads: bool = True,
        objective: str | None = None,
        weights: Mapping[str, float] | str | None = None,
    ):
        if overlength_policy not in OVERLENGTH_POLICIES:
            raise RewardlabError(
                f"overlength_policy must be one of {', '.join(OVERLENGTH_POLICIES)}, got {overlength_policy!r}"
            )
        if max_tokens_per_batch < 1:
            raise RewardlabError(f"max_tokens_per_batch must be positive, got {max_tokens_per_batch}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        set_pad_token(tokenizer, model)
        self.pad_token_id = tokenizer.pad_token_id
        self.eos_token_id = resolve_eos_token_id(tokenizer, eos_token)
        self.max_length = max_length
        self.overlength_policy = overlength_policy
        self.max_tokens_per_batch = max_tokens_per_batch
        self.normalization = dict(normalization) if normalization else None
        self.device = next(model.parameters()).device
        self.num_heads = num_heads(model)
        self.has_length_head = has_length_head(model)
        self.objectives = objective_names(model)
        self.gated = has_gate(model)
        self.objective_weights = objective_weights(self.objectives, objective, weights, gated=self.gated)
        # A gated model's default reward: the heads weighed by the prompt gate (`rewardlab.model.gate`).
        self.uses_gate = self.gated and self.objective_weights is None
        self.layout = choose_layout(model, self.pad_token_id, padding_free=padding_free)
        self.report: Counter[str] = Counter({status: 0 for status in STATUSES})
        self.source = source
        # On a CPU, torch's thread count follows the cores the process gets (`rewardlab.cpu_threads`).
        self.cpu_threads = adaptive_threads(self.device, adapt_cpu_threads)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        *,
        dtype: Any = None,
        device: str | torch.device | None = None,
        base_model: str | None = None,
        **kwargs: Any,
    ) -> RewardModel:
        """Load a saved reward model: a full checkpoint or a LoRA adapter directory (with its trained score head).

        `dtype`: float32 (default), bfloat16, float16 or 'auto'. `device`: default CUDA when available, else CPU.
        Other keyword arguments go to `RewardModel(...)`; `max_length`, `overlength_policy` and `normalization`
        default to what the training run saved (`rewardlab_run.json`), when there is one.
        """
        device = _resolve_device(device)
        model, tokenizer = load_trained_model(path_or_id, dtype=resolve_dtype(dtype), base_model=base_model)
        model.to(device)
        record = read_run_record(path_or_id) or {}
        args = record.get("args", {})
        kwargs.setdefault("max_length", args.get("max_length"))
        kwargs.setdefault("overlength_policy", args.get("overlength_policy") or TRUNCATE_PROMPT)
        kwargs.setdefault("normalization", record.get("reward_normalization"))
        kwargs.setdefault("source", path_or_id)
        return cls(model, tokenizer, **kwargs)

    @classmethod
    def from_trainer(cls, trainer: Any, **kwargs: Any) -> RewardModel:
        """A `RewardTrainer`'s model as it stands, scoring as its run trained (its max_length, policy and eos)."""
        args = trainer.args
        kwargs.setdefault("max_length", args.max_length)
        kwargs.setdefault("overlength_policy", args.overlength_policy)
        kwargs.setdefault("eos_token", args.eos_token)
        return cls(trainer.model, trainer.processing_class, **kwargs)

    # ------------------------------------------------------------------------------------------------ scoring
    @property
    def item_rules(self) -> ItemRules:
        """How this model's inputs become token ids: the training run's tokenization and over-length policy
        (`rewardlab.data.prepare_item`), taking identical pairs, which are fine to score."""
        return ItemRules(
            self.tokenizer, self.eos_token_id, self.max_length, self.overlength_policy, allow_identical=True
        )

    def score_texts(
        self, texts: Sequence[str], return_std: bool = False, return_length: bool = False
    ) -> list[float] | tuple[list[float], list[float]]:
        """Rewards of whole texts (tokenized as training tokenizes a plain-text sequence, eos appended).

        A text over `max_length` loses its oldest tokens (after BOS/CLS), so its end, the response, is kept.
        `return_std=True` (ensembles): (mean rewards, their standard deviations across heads).
        `return_length=True` (a length head): (quality rewards, the length head's rewards).
        """
        self._check_extra_output(return_std, return_length)
        rules = self.item_rules
        items = [prepare_text(text, rules, index=i) for i, text in enumerate(_check_list(texts, "texts"))]
        return self._score_single(items, return_std, return_length)

    def score(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        return_std: bool = False,
        return_length: bool = False,
        **chat_template_kwargs: Any,
    ) -> list[float] | tuple[list[float], list[float]]:
        """Rewards of completions to prompts: strings (concatenated, as training does) or message lists (the
        conversation prompt + completion through the chat template). Over-length inputs lose prompt tokens first.
        `return_std=True` (ensembles): (mean rewards, their standard deviations across heads).
        `return_length=True` (a length head): (quality rewards, the length head's rewards).
        """
        self._check_extra_output(return_std, return_length)
        prompts, completions = _check_list(prompts, "prompts"), _check_list(completions, "completions")
        if len(prompts) != len(completions):
            raise RewardlabError(f"{len(prompts)} prompts but {len(completions)} completions: give one prompt each")
        rules, cache = self.item_rules, {}  # a GRPO group repeats its prompt: tokenize it once
        items = [
            prepare_completion(p, c, rules, index=i, template_kwargs=chat_template_kwargs, prompt_cache=cache)
            for i, (p, c) in enumerate(zip(prompts, completions, strict=True))
        ]
        return self._score_single(items, return_std, return_length)

    def score_pairs(
        self, chosen: Sequence[Any], rejected: Sequence[Any], prompts: Sequence[Any] | None = None
    ) -> PairScores:
        """Rewards of preference pairs in any of the training formats (strings or message lists, with or without
        explicit prompts), tokenized, truncated and laid out exactly as in training."""
        return self.score_pair_rows(pair_rows(chosen, rejected, prompts))

    def score_pair_rows(self, rows: Sequence[Mapping[str, Any]]) -> PairScores:
        """`score_pairs` for rows as the trainer takes them (`chosen`, `rejected`, optional `prompt`, `tools`,
        `chat_template_kwargs`, or pre-tokenized `chosen_ids`/`rejected_ids`)."""
        rules = self.item_rules
        items = [prepare_pair(row, rules, index=i) for i, row in enumerate(rows)]
        heads, parts = self._item_rewards(items)
        if self.has_length_head:
            length = {
                "length_rewards_chosen": heads[0::2, 1].tolist(),
                "length_rewards_rejected": heads[1::2, 1].tolist(),
            }
            heads = heads[:, :1]
        chosen_heads, rejected_heads = heads[0::2], heads[1::2]
        chosen_r, rejected_r = chosen_heads.mean(1).tolist(), rejected_heads.mean(1).tolist()
        extras = length if self.has_length_head else {}
        if self.num_heads > 1:
            extras = {
                "std_chosen": chosen_heads.std(1, ddof=1).tolist(),
                "std_rejected": rejected_heads.std(1, ddof=1).tolist(),
                "std_margin": (chosen_heads - rejected_heads).std(1, ddof=1).tolist(),
            }
        if parts.objectives is not None:
            extras["objective_rewards_chosen"] = parts.objectives[0::2].tolist()
            extras["objective_rewards_rejected"] = parts.objectives[1::2].tolist()
        if parts.gate is not None:
            extras["gate_weights"] = parts.gate[0::2].tolist()
        prob = expit(np.array(chosen_r) - np.array(rejected_r)).tolist()
        scored = [item.tokens for item in items]
        return PairScores(
            chosen_r,
            rejected_r,
            prob,
            [c for c, _ in scored],
            [r for _, r in scored],
            **extras,
            chosen_full_tokens=[item.full_tokens[0] for item in items],
            rejected_full_tokens=[item.full_tokens[1] for item in items],
        )

    def score_rankings(self, rows: Sequence[Mapping[str, Any]]) -> RankingScores:
        """Rewards of every response of ranked rows, as the trainer takes them: `responses` (optional `scores`) or
        lists in `chosen` and `rejected`, strings or message lists, optional `prompt`, `tools` and
        `chat_template_kwargs`.

        Each row is prepared as training prepares a ranking. Each distinct response of a row is scored once, so
        identical responses get bit-identical rewards (a best-of-N tie rule must see them tied), and the row's shared
        prompt is computed once in the layouts that share prefixes.
        """
        rules = self.item_rules
        items = [prepare_ranking(row, rules, index=i) for i, row in enumerate(rows)]
        positions = []  # per row: each response's position among the row's distinct responses
        for item in items:
            distinct: dict[tuple[int, ...], int] = {}
            positions.append([distinct.setdefault(tuple(ids), len(distinct)) for ids in item.sequences])
            item.sequences = [list(ids) for ids in distinct]
        heads, _ = self._item_rewards(items)
        quality = heads[:, :1] if self.has_length_head else heads
        std = quality.std(1, ddof=1) if self.num_heads > 1 else None
        mean = quality.mean(1)
        starts = np.cumsum([0] + [len(item.sequences) for item in items])
        rows_at = [start + np.array(p, dtype=np.int64) for start, p in zip(starts[:-1], positions, strict=True)]
        return RankingScores(
            rewards=[mean[p].tolist() for p in rows_at],
            response_tokens=[np.array(item.tokens)[p].tolist() for item, p in zip(items, positions, strict=True)],
            full_tokens=[item.full_tokens for item in items],
            std=None if std is None else [std[p].tolist() for p in rows_at],
        )

    def normalize(self, rewards: Sequence[float]) -> list[float]:
        """(reward - mean) / std with the statistics saved by training (see `normalization`)."""
        return normalize_rewards(
            rewards,
            self.normalization,
            "they come from an evaluation during training: pass normalization={'mean': ..., 'std': ...}",
        )

    @property
    def has_uncertainty(self) -> bool:
        """Whether the model gives a standard deviation with its rewards (`return_std`): an ensemble of heads."""
        return self.num_heads > 1

    # ------------------------------------------------------------------------------------------------ internals
    def _check_extra_output(self, return_std: bool, return_length: bool) -> None:
        if return_std and self.num_heads == 1:
            raise RewardlabError(
                "return_std=True needs an ensemble (a model trained with ensemble_heads >= 2); this model has one head"
            )
        if return_length and not self.has_length_head:
            raise RewardlabError(
                "return_length=True needs a length head (a model trained with length_debias='odin'); this model has "
                "none"
            )

    def _score_single(
        self, items: list[PreparedItem], return_std: bool, return_length: bool
    ) -> list[float] | tuple[list[float], list[float]]:
        """Rewards of one-sequence items; responses that share a prompt are scored together (`group_by_shared_prefix`,
        or, for the gate, by their prompts' tokens) in the layouts that share prefixes."""
        self._count(items)
        sequences = [item.sequences[0] for item in items]
        if self.uses_gate:
            groups, prompts = self._prompt_groups(items)
            heads, _ = self._rewards(sequences, groups, prompts)
        else:
            heads, _ = self._rewards(
                sequences, group_by_shared_prefix(sequences) if self.layout.shares_prefixes else None
            )
        heads[np.array([item.status == DROPPED for item in items], dtype=bool)] = np.nan
        if self.has_length_head:
            quality = heads[:, 0].tolist()
            return (quality, heads[:, 1].tolist()) if return_length else quality
        mean = heads.mean(1).tolist()
        return (mean, heads.std(1, ddof=1).tolist()) if return_std else mean

    def _prompt_groups(self, items: list[PreparedItem]) -> tuple[list[list[int]], list[int]]:
        """One-sequence items grouped by their prompt's tokens (a GRPO group's completions), and each group's prompt
        length: the gate reads each prompt once."""
        if any(item.prompt_tokens is None for item in items):
            raise RewardlabError(
                "the model's prompt gate weighs its heads by the prompt, and a plain text has none: score prompt and "
                "completion (score(prompts, completions)), or choose objective= or weights= "
                f"({', '.join(self.objectives)})"
            )
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(tuple(item.sequences[0][: item.prompt_tokens]), []).append(i)
        return list(groups.values()), [len(prompt) for prompt in groups]

    def _item_rewards(self, items: list[PreparedItem]) -> tuple[np.ndarray, HeadOutputs]:
        """Rewards (sequences, heads) of every sequence of `items`, item after item, each item's sequences laid out
        together (its prompt computed once where the layout shares prefixes), and what the heads gave apart; a
        dropped item's are NaN."""
        self._count(items)
        sequences, groups = [], []
        for item in items:
            groups.append(list(range(len(sequences), len(sequences) + len(item.sequences))))
            sequences += item.sequences
        heads, parts = self._rewards(sequences, groups)
        for item, group in zip(items, groups, strict=True):
            if item.status == DROPPED:
                heads[group] = np.nan
                for values in (parts.objectives, parts.gate):
                    if values is not None:
                        values[group] = np.nan
        return heads, parts

    def _count(self, items: list[PreparedItem]) -> None:
        """Add what the over-length policy did to `items` to `report`, and log the items it changed."""
        statuses = [item.status for item in items]
        self.report.update(statuses)
        counts = Counter(s for s in statuses if s != OK)
        if counts:
            logger.warning(
                "scored %d items over max_length: %s",
                sum(counts.values()),
                ", ".join(f"{n} {k}" for k, n in counts.items()),
            )

    def _rewards(
        self, sequences: list[list[int]], groups: list[list[int]] | None, prompt_lengths: list[int] | None = None
    ) -> tuple[np.ndarray, HeadOutputs]:
        """Rewards (sequences, heads) of `sequences` (with a length head: [quality, length]; several objectives: the
        one reward they are weighed into), in forward passes under the token budget, and what the objective heads and
        the gate gave apart. `groups` are sequences answering one prompt, which a layout that shares prefixes computes
        once; otherwise, or without `groups`, each sequence is scored on its own. With the gate each group's prompt
        (`prompt_lengths`, default the prefix the group shares) is scored too."""
        if self.uses_gate:
            groups = groups or [[i] for i in range(len(sequences))]
            laid_out, with_prompts = add_prompts(sequences, groups, prompt_lengths, gate_prompt_tokens(self.model))
            outputs = self._forward(laid_out, with_prompts, 2 * len(self.objectives))
            k, n = len(self.objectives), len(sequences)
            heads, gate_logits = outputs[:n, :k], outputs[n:, k:]  # the responses' heads, the prompts' gate
            gate = np.empty_like(heads)
            for group, logits in zip(groups, gate_logits, strict=True):
                gate[group] = softmax(logits)
            return (heads * gate).sum(1, keepdims=True), HeadOutputs(heads, gate)
        if groups is None or not self.layout.shares_prefixes:
            groups = [[i] for i in range(len(sequences))]
        # [quality, length], every head of an ensemble, or every objective's head (weighed into one reward below)
        width = 2 if self.has_length_head else len(self.objectives) if self.objectives else self.num_heads
        # A gated model also gives its gate's logits, unused when fixed weights choose the reward.
        out = self._forward(sequences, groups, 2 * width if self.gated else width)[:, :width]
        if self.objective_weights is not None:
            return out @ self.objective_weights[:, None], HeadOutputs(out, None)
        return out, HeadOutputs(None, None)

    def _forward(self, sequences: list[list[int]], groups: list[list[int]], width: int) -> np.ndarray:
        """The model's outputs (sequences, width) for `sequences`, laid out by `groups`, in forward passes under
        the token budget."""
        out = np.full((len(sequences), width), np.nan)
        passes = forward_passes(sequences, groups, self.layout, self.pad_token_id, self.max_tokens_per_batch)
        with adapted_threads(self.cpu_threads):
            for index, batch in passes:
                with torch.inference_mode(), measured_step(self.cpu_threads):
                    rewards = sequence_rewards(self.model, send_to_device(batch, self.device)).float().cpu().numpy()
                out[index] = rewards.reshape(len(index), width)
        return out


@dataclass
class HeadOutputs:
    """What a multi-objective model's heads gave apart, per sequence: every objective's reward (sequences, K), and
    the gate's weights for the sequence's prompt (sequences, K); None where the model has no such heads or gate."""

    objectives: np.ndarray | None
    gate: np.ndarray | None


def pair_rows(chosen: Sequence[Any], rejected: Sequence[Any], prompts: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Rows `{"chosen", "rejected", "prompt"?}` (as the trainer takes them) from parallel lists."""
    chosen, rejected = _check_list(chosen, "chosen"), _check_list(rejected, "rejected")
    if len(chosen) != len(rejected) or (prompts is not None and len(prompts) != len(chosen)):
        raise RewardlabError("chosen, rejected (and prompts, if given) must have the same length")
    rows = [{"chosen": c, "rejected": r} for c, r in zip(chosen, rejected, strict=True)]
    if prompts is not None:
        for row, prompt in zip(rows, _check_list(prompts, "prompts"), strict=True):
            row["prompt"] = prompt
    return rows


def _resolve_device(device: str | torch.device | None) -> torch.device:
    """`device`, or CUDA when there is one, else the CPU; a clear error for a device that cannot be used."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise RewardlabError(f"unknown device {device!r} ({first_line(e)}): use e.g. cpu, cuda or cuda:1") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RewardlabError(f"device {device!r} was asked for, but CUDA is not available here")
    return resolved


def _check_list(values: Any, name: str) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise RewardlabError(f"{name} must be a list, got {type(values).__name__}")
    return list(values)
