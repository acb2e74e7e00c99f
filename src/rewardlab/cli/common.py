"""What every `rewardlab` command shares besides its parser (`rewardlab.cli.parser`): the flags that load a saved
reward model, rewardlab's log lines on stderr while a command runs, and how a lead over the content-blind rules is
printed."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from typing import Any


def add_reward_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that say how `rewardlab eval`, `score` and `serve` load a saved reward model."""
    parser.add_argument(
        "--dtype", default=None, choices=["auto", "float32", "bfloat16", "float16"], help="Weights dtype (float32)."
    )
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1 (default: cuda when available).")
    parser.add_argument("--base_model", default=None, help="Base model of a LoRA adapter, if not the one it names.")
    parser.add_argument(
        "--max_length", type=int, default=None, help="Longest sequence in tokens (default: the training run's)."
    )
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--objective",
        default=None,
        help="A multi-objective model: score with this objective's head (default: its prompt gate's combined reward).",
    )
    choice.add_argument(
        "--weights",
        default=None,
        help="A multi-objective model: score with its heads weighed, e.g. helpful=0.7,harmless=0.3 (objectives not "
        "named weigh 0), instead of its prompt gate.",
    )


def load_reward_model(source: str | list[str], args: argparse.Namespace, **kwargs: Any) -> Any:
    """`RewardModel.from_pretrained(source)` with the flags of `add_reward_model_arguments`; for a list of several
    sources (a `--model` flag taking many), `RewardEnsemble.from_pretrained` (a deep ensemble)."""
    from rewardlab.score.ensemble import RewardEnsemble
    from rewardlab.score.reward_model import RewardModel

    if not isinstance(source, str) and len(source) == 1:
        source = source[0]
    if args.max_length is not None:
        kwargs["max_length"] = args.max_length
    for name in ("objective", "weights"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    load = RewardModel.from_pretrained if isinstance(source, str) else RewardEnsemble.from_pretrained
    return load(source, dtype=args.dtype, device=args.device, base_model=args.base_model, **kwargs)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (so a replaced stderr, e.g. under pytest, still works)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


@contextlib.contextmanager
def rewardlab_logging() -> Iterator[None]:
    """Show rewardlab's own INFO messages (data policy counts, ...) on stderr while a command runs; other libraries
    keep their levels. Undone afterwards, so calling `main` from Python leaves logging as it was."""
    root = logging.getLogger("rewardlab")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("rewardlab: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def one_line(error: BaseException) -> str:
    """An error message on one line, for `rewardlab: error: ...`."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def format_lead(lead: Mapping[str, Any] | None) -> str:
    """A lead over the best content-blind rule, signed, with its interval: "+0.0130 [-0.0200, +0.0500]"."""
    value = (lead or {}).get("value")
    if value is None:
        return "n/a"
    low, high = lead.get("ci95") or (None, None)
    return f"{value:+.4f}" + (f" [{low:+.4f}, {high:+.4f}]" if low is not None and high is not None else "")


def versus_content_blind(headline: Mapping[str, Any]) -> str:
    """ "best content-blind rule: longer wins 0.5480; lead +0.0130 [-0.0200, +0.0500]", from a result's headline
    (`rewardlab.eval.leaderboard.headline`)."""
    from rewardlab.eval.leaderboard import RULE_NAMES  # here: `rewardlab.eval` imports torch, --help must not

    if headline["best_rule"] is None:
        return "no content-blind rule scored"
    rule = f"{RULE_NAMES[headline['best_rule']]} {headline['best_rule_value']:.4f}"
    return f"best content-blind rule: {rule}; lead {format_lead(headline['lead'])}"
