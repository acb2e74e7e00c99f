"""`ServerSettings`: what the reward server needs besides the model, each field a `rewardlab serve` flag with its help.

The defaults, and why: a micro-batch of 8192 tokens fills a CPU's (or a small GPU's) forward pass without growing
latency much; 5 ms of waiting lets concurrent requests share it; the request limits stop one client from holding the
model (items, characters) or the memory (bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rewardlab.errors import RewardlabError

API_KEY_ENV = "REWARDLAB_API_KEY"


@dataclass
class ServerSettings:
    """What `create_app` needs besides the model; every field is a `rewardlab serve` flag of the same name."""

    model_name: str = field(
        default="reward-model",
        metadata={"help": "The model's name in GET /health (rewardlab serve: the --model paths)."},
    )
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={
            "help": f"Require 'Authorization: Bearer KEY' on every endpoint but /health (default: ${API_KEY_ENV}; "
            "the environment variable keeps the key out of the process list)."
        },
    )
    max_tokens_per_batch: int = field(
        default=8192,
        metadata={
            "help": "Token budget of one forward pass, and of one micro-batch (requests are batched up to it, their "
            "tokens estimated at 4 characters each)."
        },
    )
    max_batch_items: int = field(
        default=1024,
        metadata={
            "help": "Most items in one micro-batch (a request is never split; 1 with --max_wait_ms 0: no batching)."
        },
    )
    max_wait_ms: float = field(
        default=5.0, metadata={"help": "How long a micro-batch waits for more requests once it has one."}
    )
    max_items_per_request: int = field(
        default=8192,
        metadata={"help": "Most items (texts, queries or prompt/completion pairs) in one request; more: 413."},
    )
    max_text_chars: int = field(
        default=200_000, metadata={"help": "Longest text, prompt or completion in characters; longer: 413."}
    )
    max_request_bytes: int = field(
        default=64 * 1024 * 1024, metadata={"help": "Largest request body in bytes; larger: 413."}
    )
    normalize: bool = field(default=False, metadata={"help": "Return (reward - mean) / std from training."})
    uncertainty_penalty: float = field(
        default=0.0, metadata={"help": "For an ensemble: serve the conservative reward mean - k * std (k >= 0)."}
    )

    def __post_init__(self):
        for name in ("max_tokens_per_batch", "max_batch_items", "max_items_per_request", "max_text_chars"):
            if getattr(self, name) < 1:
                raise RewardlabError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.max_request_bytes < 1:
            raise RewardlabError("max_wait_ms must be >= 0 and max_request_bytes >= 1")
        if not math.isfinite(self.uncertainty_penalty) or self.uncertainty_penalty < 0:
            raise RewardlabError(f"uncertainty_penalty must be a finite number >= 0, got {self.uncertainty_penalty}")
        if self.api_key == "":
            self.api_key = None
