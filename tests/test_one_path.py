"""One path from a row to a reward: the token ids and the read-out position that `RewardModel.score_pairs`,
`rewardlab score` and the server give a pair are those the trainer trains on, for rows drawn in every format
(standard and conversational, implicit and explicit prompt, tool calls, pre-tokenized with or without a leading
BOS/CLS on each side), for tokenizers that add BOS, CLS or nothing, and over max_length under every policy."""

from __future__ import annotations

import functools

import pytest
from datasets import Dataset
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tiny import make_model, make_tokenizer

import rewardlab.score.reward_model as reward_model_module
from rewardlab.config import RewardConfig
from rewardlab.data.positions import readout_index
from rewardlab.data.prepare import prepare_preference_dataset
from rewardlab.data.prepare_item import OUT_OF_VOCAB, OVERLENGTH
from rewardlab.data.truncation import OK
from rewardlab.errors import InvalidRowError, RewardlabError
from rewardlab.score.reward_model import RewardModel
from rewardlab.score.rows import PAIRS, RowColumns, score_rows
from rewardlab.serve.app import create_app
from rewardlab.serve.settings import ServerSettings

WORDS = "the sky is blue green red what color a city paris rome today sunny cold warm how can help yes no".split()
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]
POLICIES = ("truncate_prompt", "drop", "error")

text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
long_text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=30).map(" ".join)


LEADING = -1  # stands for the tokenizer's BOS or CLS id in a drawn pre-tokenized row
ids = st.lists(st.integers(5, 300), min_size=1, max_size=30)


@st.composite
def rows(draw):
    """A pair row in one of the formats, its two answers different."""
    if draw(st.integers(0, 4)) == 0:  # pre-tokenized, a shared prompt, each side with or without a leading BOS/CLS
        prompt, chosen = draw(ids), draw(ids)
        rejected = draw(ids.filter(lambda r: r[0] != chosen[0]))
        lead = [LEADING] * draw(st.integers(0, 1)), [LEADING] * draw(st.integers(0, 1))
        return {"chosen_ids": lead[0] + prompt + chosen, "rejected_ids": lead[1] + prompt + rejected}
    prompt, chosen = draw(long_text), draw(text)
    rejected = draw(text.filter(lambda r: r != chosen))
    conversational, explicit = draw(st.booleans()), draw(st.booleans())
    if not conversational:
        if explicit:
            return {"prompt": prompt, "chosen": " " + chosen, "rejected": " " + rejected}
        return {"chosen": f"{prompt} {chosen}", "rejected": f"{prompt} {rejected}"}
    user = [{"role": "user", "content": prompt}]
    answers = [[{"role": "assistant", "content": answer}] for answer in (chosen, rejected)]
    row = (
        {"prompt": user, "chosen": answers[0], "rejected": answers[1]}
        if explicit
        else {
            "chosen": user + answers[0],
            "rejected": user + answers[1],
        }
    )
    if draw(st.booleans()):
        row["tools"] = TOOLS
    return row


@functools.cache
def parts(arch: str):
    """A tiny model of `arch` (llama: BOS, qwen3: nothing added, bert: CLS), its scorer and a server on it."""
    from fastapi.testclient import TestClient

    tokenizer = make_tokenizer(arch)
    scorer = RewardModel(make_model(arch, tokenizer), tokenizer)
    client = TestClient(create_app(scorer, ServerSettings()))
    client.__enter__()  # starts the batching worker; the process's end stops it
    return scorer, client


def with_leading_special(row, tokenizer):
    """A drawn pre-tokenized row with `LEADING` replaced by the tokenizer's BOS (else CLS) id, or removed."""
    special = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    lead = [] if special is None else [special]
    return {
        name: [t for token in sequence for t in (lead if token == LEADING else [token])]
        for name, sequence in row.items()
    }


def trained_on(row, scorer, max_length, policy):
    """(chosen ids, rejected ids, status) that training makes of `row`, or the error it raises."""
    args = RewardConfig("unused", max_length=max_length, overlength_policy=policy, report_to="none")
    try:
        prepared, stats = prepare_preference_dataset(Dataset.from_list([row]), scorer.tokenizer, args, "train")
    except RewardlabError as e:
        if isinstance(e, InvalidRowError) or "1 dropped" not in str(e):
            raise
        return None  # dropped for length
    status = OK if not (stats.prompt_truncated or stats.response_truncated) else "truncated"
    return prepared[0]["chosen_ids"], prepared[0]["rejected_ids"], status


def scored_sequences(monkeypatch, call):
    """The token-id sequences the scorer computed rewards for while running `call()`."""
    seen = []
    original = reward_model_module.forward_passes

    def spy(sequences, groups, *args, **kwargs):
        seen.extend(list(s) for s in sequences)
        return original(sequences, groups, *args, **kwargs)

    monkeypatch.setattr(reward_model_module, "forward_passes", spy)
    call()
    monkeypatch.setattr(reward_model_module, "forward_passes", original)
    return seen


@pytest.mark.parametrize("arch", ["llama", "qwen3", "bert"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=rows(), max_length=st.one_of(st.none(), st.integers(4, 40)), policy=st.sampled_from(POLICIES))
# BOS/CLS on one side only, over max_length: the kept leading tokens are those both sides start with (none here).
@example(
    row={"chosen_ids": [LEADING, *range(10, 17)], "rejected_ids": [*range(20, 27)]}, max_length=5, policy=POLICIES[0]
)
def test_scoring_sees_the_tokens_and_read_out_the_trainer_trains_on(arch, row, max_length, policy, monkeypatch):
    scorer, client = parts(arch)
    scorer.max_length, scorer.overlength_policy = max_length, policy
    if "chosen_ids" in row:
        row = with_leading_special(row, scorer.tokenizer)
    try:
        trained = trained_on(row, scorer, max_length, policy)
    except InvalidRowError as e:  # over max_length under 'error', ids outside the vocabulary: scoring refuses it too
        assert e.code in (OVERLENGTH, OUT_OF_VOCAB)
        with pytest.raises(InvalidRowError) as refused:
            scorer.score_pair_rows([row])
        assert (refused.value.code, refused.value.field) == (e.code, e.field)
        return

    pair_scores = []
    by_api = scored_sequences(monkeypatch, lambda: pair_scores.append(scorer.score_pair_rows([row])))
    by_cli = scored_sequences(monkeypatch, lambda: score_rows(scorer, [row], PAIRS, RowColumns()))
    assert by_api == by_cli
    if trained is None:  # dropped for length: scored NaN, from the ids as they are
        assert pair_scores[0].rewards_chosen[0] != pair_scores[0].rewards_chosen[0]
        return
    chosen, rejected, status = trained
    assert by_api == [chosen, rejected]
    pad = scorer.pad_token_id
    assert [readout_index(s, pad) for s in by_api] == [readout_index(chosen, pad), readout_index(rejected, pad)]

    # The server scores a prompt and a completion: the trainer's ids whenever the pair fits (truncated, a pair keeps
    # the prompt both answers can share, a lone completion as much of it as fits).
    if "prompt" in row and "tools" not in row and status == OK:
        body = {"prompts": [row["prompt"]] * 2, "completions": [row["chosen"], row["rejected"]]}
        by_server = scored_sequences(monkeypatch, lambda: client.post("/score", json=body).raise_for_status())
        assert sorted(by_server) == sorted([chosen, rejected])
