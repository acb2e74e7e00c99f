"""The reward server's request and response models: they validate requests and make `/openapi.json` and `/docs`
describe the API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Message(BaseModel):
    """One chat message, as the model's chat template takes it (other keys, e.g. `tool_calls`, are passed on)."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: Any = None


Item = str | list[Message]


class ScoreRequest(BaseModel):
    """Either `texts`, or `prompts` with one `completion` each (both strings, or both message lists)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"texts": ["Human: What color is the sky?\n\nAssistant: Blue."]},
                {"prompts": ["What color is the sky?"], "completions": [" Blue."]},
                {
                    "prompts": [[{"role": "user", "content": "What color is the sky?"}]],
                    "completions": [[{"role": "assistant", "content": "Blue."}]],
                },
            ]
        },
    )
    texts: list[str] | None = Field(None, min_length=1, description="Whole texts, each scored on its own.")
    prompts: list[Item] | None = Field(None, min_length=1, description="Prompts: strings or message lists.")
    completions: list[Item] | None = Field(None, min_length=1, description="One completion per prompt.")

    @model_validator(mode="after")
    def _one_form(self) -> ScoreRequest:
        if self.texts is not None:
            if self.prompts is not None or self.completions is not None:
                raise ValueError("give either texts, or prompts and completions, not both")
            return self
        if self.prompts is None and self.completions is None:
            raise ValueError("give texts, or prompts and completions")
        if self.prompts is None or self.completions is None:
            missing = "prompts" if self.prompts is None else "completions"
            raise ValueError(f"{missing} is missing: prompts and completions go together")
        if len(self.prompts) != len(self.completions):
            raise ValueError(
                f"{len(self.prompts)} prompts but {len(self.completions)} completions: give one prompt per completion"
            )
        for i, (prompt, completion) in enumerate(zip(self.prompts, self.completions, strict=True)):
            if isinstance(prompt, str) != isinstance(completion, str):
                raise ValueError(f"prompts[{i}] and completions[{i}] must both be strings or both be message lists")
        return self


class ScoreResponse(BaseModel):
    rewards: list[float | None] = Field(description="One reward per item, in request order (null: dropped).")
    stds: list[float | None] | None = Field(
        None, description="An ensemble's standard deviation of each reward, in the units of `rewards` (else null)."
    )


class GetRewardRequest(BaseModel):
    """OpenRLHF's remote reward model request. Only `query` is used."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"query": ["Hello world"]}]})
    query: list[str] = Field(min_length=1, description="Whole texts (prompt + response) to score.")
    prompts: list[Any] | None = Field(None, description="Accepted and ignored (the prompts are inside `query`).")
    labels: list[Any] | None = Field(None, description="Accepted and ignored.")


class GetRewardResponse(BaseModel):
    rewards: list[float | None] = Field(description="One reward per query, in request order.")
    scores: list[float | None] = Field(description="The same as `rewards` (OpenRLHF's dynamic filtering reads it).")
    # OpenRLHF concatenates every extra_logs value across requests, so a value must be one number per query.
    extra_logs: dict[str, list[float | None]] = Field(
        default_factory=dict, description="`reward_std`: an ensemble's standard deviation of each reward."
    )


class BatchStats(BaseModel):
    requests: int = Field(0, description="Requests scored (or failed) by the batching worker.")
    items: int = Field(0, description="Items (texts or prompt/completion pairs) in those requests.")
    batches: int = Field(0, description="Micro-batches formed; requests / batches is the mean requests per batch.")
    model_calls: int = Field(0, description="RewardModel.score_texts / score calls.")
    fallbacks: int = Field(0, description="Batches that failed and were re-scored one request at a time.")
    failed_requests: int = Field(0, description="Requests answered with an error by the model.")


class HealthResponse(BaseModel):
    status: Literal["ok"]
    model: str
    device: str
    max_length: int | None
    normalize: bool
    uncertainty_penalty: float
    version: str
    stats: BatchStats


class ErrorResponse(BaseModel):
    detail: str = Field(description="What is wrong, in one line.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key (when the server has one)."},
    413: {"model": ErrorResponse, "description": "Over a size limit (body bytes, items, characters)."},
    422: {"model": ErrorResponse, "description": "Wrong shape or types, or an item the model cannot score."},
    503: {"model": ErrorResponse, "description": "The server is shutting down."},
}
