"""`rewardlab serve`: endpoints return RewardModel's own rewards in request order, concurrent requests share model
calls, bad requests get a 4xx that says what is wrong (and fail alone), the API key and size limits hold, and
SIGTERM lets an in-flight request finish before the process exits 0."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from tiny import make_model, make_tokenizer, save_tiny  # noqa: E402

from rewardlab.cli import main as cli_main  # noqa: E402
from rewardlab.cli.serve import parse_serve_args  # noqa: E402
from rewardlab.errors import RewardlabError  # noqa: E402
from rewardlab.score.reward_model import RewardModel  # noqa: E402
from rewardlab.serve import ServerSettings, create_app  # noqa: E402

TEXTS = ["the sky is blue", "what color is the city today ?", "paris", "sorry I can not help with that . " * 3]
PROMPTS = ["what is the weather in paris ?", "what is the weather in paris ?", "hello"]
COMPLETIONS = [" it is sunny", " it is rainy and cold", " hi , how can I help ?"]
CONV_PROMPTS = [[{"role": "user", "content": p}] for p in PROMPTS]
CONV_COMPLETIONS = [[{"role": "assistant", "content": c.strip()}] for c in COMPLETIONS]


@pytest.fixture(scope="module")
def parts():
    tok = make_tokenizer("qwen3")
    return make_model("qwen3", tok), tok


@pytest.fixture(scope="module")
def reward_model(parts):
    return RewardModel(*parts)


@pytest.fixture
def client_for(reward_model):
    """client_for(settings=None, model=None) -> a TestClient whose app (and batching worker) is shut down after."""
    clients = []

    def make(settings=None, model=None):
        client = TestClient(create_app(model or reward_model, settings or ServerSettings()))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


async def _post_all(app, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    """Send the requests at once, as concurrent clients would."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in requests))


def post_concurrently(app, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    try:
        return asyncio.run(_post_all(app, requests))
    finally:
        app.state.batcher.close()


# ------------------------------------------------------------------------------------------------------- endpoints
def test_score_texts_returns_the_models_rewards_in_order(client_for, reward_model):
    expected = reward_model.score_texts(TEXTS)
    response = client_for().post("/score", json={"texts": TEXTS})
    assert response.status_code == 200, response.text
    assert response.json() == {"rewards": pytest.approx(expected, abs=1e-6), "stds": None}  # stds: ensembles only


@pytest.mark.parametrize("conversational", [False, True])
def test_score_prompts_and_completions(client_for, reward_model, conversational):
    prompts, completions = (CONV_PROMPTS, CONV_COMPLETIONS) if conversational else (PROMPTS, COMPLETIONS)
    expected = reward_model.score(prompts, completions)
    response = client_for().post("/score", json={"prompts": prompts, "completions": completions})
    assert response.status_code == 200, response.text
    assert response.json()["rewards"] == pytest.approx(expected, abs=1e-6)


def test_get_reward_speaks_openrlhf(client_for, reward_model, parts):
    expected = reward_model.score_texts(TEXTS)
    pad = parts[1].pad_token
    # OpenRLHF sends prompts and labels too (and newer versions metas); older versions leave pad tokens in queries.
    queries = [TEXTS[0] + pad * 3, pad + TEXTS[1], *TEXTS[2:]]
    body = {"query": queries, "prompts": ["p"] * 4, "labels": [None] * 4, "metas": [{}] * 4}
    response = client_for().post("/get_reward", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"rewards", "scores", "extra_logs"}
    assert data["rewards"] == pytest.approx(expected, abs=1e-6)
    assert data["scores"] == data["rewards"]
    assert data["extra_logs"] == {}


def test_health_and_openapi(client_for):
    client = client_for(ServerSettings(model_name="my-rm"))
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["model"] == "my-rm"
    spec = client.get("/openapi.json").json()
    assert {"/score", "/get_reward", "/health"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"ScoreRequest", "ScoreResponse", "GetRewardRequest", "GetRewardResponse", "HealthResponse"} <= set(schemas)
    assert set(schemas["GetRewardResponse"]["properties"]) == {"rewards", "scores", "extra_logs"}
    assert "413" in spec["paths"]["/score"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


def test_dropped_item_is_null(client_for, parts):
    # overlength_policy="drop" scores an over-long item NaN; JSON has no NaN, so it is null.
    model = RewardModel(*parts, max_length=8, overlength_policy="drop")
    response = client_for(model=model).post("/score", json={"texts": ["the sky", "the sky is blue " * 10]})
    assert response.status_code == 200, response.text
    rewards = response.json()["rewards"]
    assert isinstance(rewards[0], float) and rewards[1] is None


def test_normalize(client_for, parts, reward_model):
    model = RewardModel(*parts, normalization={"mean": 0.5, "std": 2.0})
    expected = [(r - 0.5) / 2.0 for r in reward_model.score_texts(TEXTS)]
    response = client_for(ServerSettings(normalize=True), model=model).post("/score", json={"texts": TEXTS})
    assert response.json()["rewards"] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(RewardlabError, match="normalize needs the reward statistics"):
        create_app(reward_model, ServerSettings(normalize=True))


class FlakyModel:
    """Stands in for a RewardModel whose forward pass fails unexpectedly on one text (a bug, out of memory...)."""

    def __init__(self, reward_model):
        self.inner = reward_model
        self.tokenizer, self.max_length, self.device = reward_model.tokenizer, None, reward_model.device
        self.normalization, self.has_uncertainty = None, False

    def score_texts(self, texts, return_std=False):
        if "boom" in texts:
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.inner.score_texts(texts)


def test_an_unexpected_model_error_is_a_500_and_the_server_keeps_serving(client_for, reward_model):
    client = client_for(model=FlakyModel(reward_model))
    response = client.post("/score", json={"texts": ["the sky", "boom"]})
    assert response.status_code == 500
    assert "RuntimeError: CUDA out of memory (simulated)" in response.json()["detail"]
    assert client.post("/score", json={"texts": ["the sky"]}).status_code == 200


# ------------------------------------------------------------------------------------------------------- batching
def test_concurrent_requests_share_model_calls(reward_model):
    # A long wait makes every request join the first batch; each still gets exactly its own rewards.
    requests = [("/score", {"texts": TEXTS[i % 4 : i % 4 + 1 + i % 3]}) for i in range(8)]
    requests += [("/get_reward", {"query": TEXTS[:2]}), ("/score", {"prompts": PROMPTS, "completions": COMPLETIONS})]
    expected = [reward_model.score_texts(body.get("texts", body.get("query"))) for _, body in requests[:-1]]
    expected.append(reward_model.score(PROMPTS, COMPLETIONS))
    app = create_app(reward_model, ServerSettings(max_wait_ms=500))
    responses = post_concurrently(app, requests)
    for response, want in zip(responses, expected, strict=True):
        assert response.status_code == 200, response.text
        assert response.json()["rewards"] == pytest.approx(want, abs=1e-5)
    stats = app.state.batcher.stats
    assert stats.requests == len(requests)
    assert stats.batches < len(requests) and stats.model_calls < len(requests)
    assert stats.items == sum(len(r.json()["rewards"]) for r in responses)


def test_token_budget_and_item_cap_bound_a_batch(reward_model):
    requests = [("/score", {"texts": [t]}) for t in TEXTS]
    for settings in (ServerSettings(max_wait_ms=300, max_tokens_per_batch=1), ServerSettings(max_batch_items=1)):
        app = create_app(reward_model, settings)
        responses = post_concurrently(app, requests)
        assert [r.status_code for r in responses] == [200] * len(TEXTS)
        assert app.state.batcher.stats.batches == len(TEXTS)  # a request over the budget is a batch of its own


def test_a_bad_item_fails_only_its_own_request(parts):
    # overlength_policy="error": the long text passes request validation but fails inside the model call, so the
    # batch is re-scored request by request and only the request with the long text gets the error.
    model = RewardModel(*parts, max_length=12, overlength_policy="error")
    good = ["the sky is blue", "paris"]
    expected = model.score_texts(good)
    app = create_app(model, ServerSettings(max_wait_ms=500))
    responses = post_concurrently(
        app,
        [
            ("/score", {"texts": good[:1]}),
            ("/score", {"texts": ["ok", "the sky is blue " * 10]}),
            ("/score", {"texts": good[1:]}),
        ],
    )
    assert [r.status_code for r in responses] == [200, 422, 200]
    assert responses[0].json()["rewards"] == pytest.approx(expected[:1], abs=1e-5)
    assert responses[2].json()["rewards"] == pytest.approx(expected[1:], abs=1e-5)
    detail = responses[1].json()["detail"]
    assert "row 1" in detail and "max_length=12" in detail
    stats = app.state.batcher.stats
    assert stats.fallbacks == 1 and stats.failed_requests == 1


# ------------------------------------------------------------------------------------------------------- bad requests
MSG = {"role": "assistant", "content": "x"}


@pytest.mark.parametrize(
    "path, body, status, fragment",
    [
        ("/score", b'{"texts": ["a",', 400, "not valid JSON"),
        ("/score", b"[1, 2]", 422, "must be a JSON object"),
        ("/score", {}, 422, "give texts, or prompts and completions"),
        ("/score", {"texts": []}, 422, "texts: List should have at least 1 item"),
        ("/score", {"texts": "the sky"}, 422, "texts: Input should be a valid list"),
        ("/score", {"texts": ["a", 3]}, 422, "texts[1]: Input should be a valid string"),
        ("/score", {"text": ["a"]}, 422, "text: Extra inputs are not permitted"),
        ("/score", {"texts": ["a"], "prompts": ["b"], "completions": ["c"]}, 422, "not both"),
        ("/score", {"prompts": ["a"]}, 422, "completions is missing"),
        ("/score", {"prompts": ["a", "b"], "completions": ["c"]}, 422, "2 prompts but 1 completions"),
        ("/score", {"prompts": ["a"], "completions": [[MSG]]}, 422, "prompts[0] and completions[0] must both"),
        ("/score", {"prompts": [7], "completions": ["c"]}, 422, "prompts[0]: should be a string or a list of messages"),
        (
            "/score",
            {"prompts": [[{"content": "a"}]], "completions": [[MSG]]},
            422,
            "prompts[0][0].role: Field required",
        ),
        ("/get_reward", {"prompts": ["a"]}, 422, "query: Field required"),
        ("/get_reward", {"query": "a"}, 422, "query: Input should be a valid list"),
        ("/get_reward", {"query": [None]}, 422, "query[0]: Input should be a valid string"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_is_wrong(client_for, path, body, status, fragment):
    client = client_for()
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]
    assert client.post("/score", json={"texts": ["still up"]}).status_code == 200


def test_body_without_json_content_type(client_for):
    response = client_for().post("/score", content=b'{"texts": ["a"]}')
    assert response.status_code == 422
    assert "Content-Type: application/json" in response.json()["detail"]


def test_size_limits(client_for):
    client = client_for(ServerSettings(max_items_per_request=3, max_text_chars=20, max_request_bytes=300))
    too_many = client.post("/score", json={"texts": ["a"] * 4})
    assert too_many.status_code == 413 and "4 items" in too_many.json()["detail"]
    assert "--max_items_per_request" in too_many.json()["detail"]
    long = client.post("/get_reward", json={"query": ["a", "b" * 21]})
    assert long.status_code == 413 and "query[1] has 21 characters" in long.json()["detail"]
    long_prompt = client.post(
        "/score", json={"prompts": [[{"role": "user", "content": "c" * 25}]], "completions": [[MSG]]}
    )
    assert long_prompt.status_code == 413 and "prompts[0] has 25 characters" in long_prompt.json()["detail"]
    big = client.post("/score", json={"texts": ["x" * 20] * 3, "pad": "y" * 300})
    assert big.status_code == 413 and "--max_request_bytes" in big.json()["detail"]
    # A chunked body (no Content-Length) is counted as it arrives.
    chunked = client.post(
        "/score", content=(b"x" * 100 for _ in range(5)), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413 and "at least" in chunked.json()["detail"]
    assert client.post("/score", json={"texts": ["a", "b" * 20]}).status_code == 200


# ------------------------------------------------------------------------------------------------------- auth
def test_api_key(client_for):
    client = client_for(ServerSettings(api_key="s3cret"))
    body = {"texts": ["the sky"]}
    missing = client.post("/score", json=body)
    assert missing.status_code == 401 and "missing API key" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = client.post("/score", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong API key" in wrong.json()["detail"]
    right = {"Authorization": "Bearer s3cret"}
    assert client.post("/score", json=body, headers=right).status_code == 200
    assert client.post("/get_reward", json={"query": ["a"]}, headers=right).status_code == 200
    assert client.post("/get_reward", json={"query": ["a"]}).status_code == 401
    assert client.get("/openapi.json").status_code == 401
    spec = client.get("/openapi.json", headers=right).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert client.get("/health").status_code == 200  # probes need no key


def test_flags_and_environment():
    settings, args = parse_serve_args(["--model", "m"], {"REWARDLAB_API_KEY": "from-env"})
    assert settings.api_key == "from-env" and settings.model_name == "m" and args.model == ["m"]
    assert parse_serve_args(["--model", "m"], {})[0].api_key is None
    argv = ["--model", "m", "--api_key", "flag", "--max_wait_ms", "0", "--max_batch_items", "1", "--normalize"]
    settings, _ = parse_serve_args(argv, {"REWARDLAB_API_KEY": "from-env"})
    assert (settings.api_key, settings.max_wait_ms, settings.max_batch_items) == ("flag", 0, 1)
    assert settings.normalize is True and "flag" not in repr(settings)


def test_user_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["serve", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewardlab: error:") and "missing" in err and "\n" not in err
    assert cli_main(["serve", "--model", "m", "--max_batch_items", "0"]) == 2
    assert "max_batch_items must be at least 1" in capsys.readouterr().err
    assert cli_main(["serve"]) == 2
    assert "--model" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------- shutdown
# Runs `rewardlab serve` with RewardModel.score_texts slowed down, so a request is still being scored when SIGTERM
# arrives; the marker file says scoring has started.
SLOW_SERVER = """
import pathlib, sys, time
from rewardlab.score.reward_model import RewardModel
marker, original = pathlib.Path(sys.argv[1]), RewardModel.score_texts
def slow(self, texts, return_std=False):
    marker.write_text("scoring")
    time.sleep(1.5)
    return original(self, texts, return_std)
RewardModel.score_texts = slow
from rewardlab.cli import main
sys.exit(main(sys.argv[2:]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_drains_in_flight_requests(tmp_path):
    model_dir = save_tiny("qwen3", str(tmp_path / "model"))
    marker, port = tmp_path / "scoring", free_port()
    command = [sys.executable, "-c", SLOW_SERVER, str(marker), "serve", "--model", model_dir, "--port", str(port)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        result = {}

        def request():
            result["response"] = httpx.post(f"{url}/score", json={"texts": TEXTS}, timeout=60)

        client = threading.Thread(target=request)
        client.start()
        while not marker.exists():
            assert client.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        client.join(timeout=60)
        assert server.wait(timeout=60) == 0, server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    response = result["response"]
    assert response.status_code == 200, response.text
    assert len(response.json()["rewards"]) == len(TEXTS)
    assert "stopped after scoring 1 requests" in server.stderr.read()
