"""Training and evaluation under two processes (gloo on CPU) match one process, on the fast path."""

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(*path: Path, **extra: str) -> dict[str, str]:
    """The environment of a launched run: `path` first on PYTHONPATH (HERE when empty), one thread, no GPU."""
    pythonpath = ":".join(str(p) for p in path or (HERE,))
    return {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", **extra}


def python(nproc: int) -> list[str]:
    """The command that starts a Python program in `nproc` processes: plain Python for one, torchrun otherwise."""
    if nproc == 1:
        return [sys.executable]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}"]


def hooks_with(tmp_path: Path, code: str) -> Path:
    """A directory whose sitecustomize.py (`code`) every Python started with it on PYTHONPATH runs first."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(code)
    return hooks


def failure(stderr: str) -> str:
    """The lines of a failed run's stderr that say why and where (its Python stack frames, and torchrun's summary of
    which rank died and by which exit code or signal)."""
    keys = ("rror", "terminate", "what", "File ", "exitcode", "Signal", "rank")
    clues = [line for line in stderr.splitlines() if any(k in line for k in keys)]
    return "\n".join(clues[:40]) or stderr[-3000:]


def run(nproc: int, out: Path, script: str = "distributed_run.py", *extra: str) -> dict:
    def launch() -> subprocess.CompletedProcess:
        command = [*python(nproc), str(HERE / script), str(out), *extra]
        return subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300)

    proc = launch()
    if proc.returncode != 0 and nproc > 1:
        # The rendezvous port is picked before torchrun binds it; on a busy machine it is rarely taken in between.
        proc = launch()
    if proc.returncode != 0:
        raise AssertionError(failure(proc.stderr))
    result = json.loads(out.read_text())
    if script != "distributed_run.py":
        return result
    result["log"] = "\n".join(line for line in proc.stderr.splitlines() if "examples/s" not in line)[-4000:]
    return result


@pytest.mark.slow
def test_two_processes_train_like_one_and_count_every_pair_once(tmp_path):
    single = run(1, tmp_path / "one.json")
    double = run(2, tmp_path / "two.json")
    assert double["world"] == 2, double["log"]
    # The fast path (prompt shared, pairs packed) runs under DDP too, with micro-batches under a token budget.
    assert double["collator"] == "DataCollatorForPreference" and double["layout"] == "shared_prefix", double["log"]
    assert double["micro_batched"] and not single["micro_batched"]
    assert len(double["losses"]) == 3
    np.testing.assert_allclose(double["losses"], single["losses"], atol=1e-5)
    assert double["metrics"]["eval_num_pairs"] == single["metrics"]["eval_num_pairs"] == 7
    np.testing.assert_allclose(np.array(double["rewards"]), np.array(single["rewards"]), atol=1e-5)
    for key in ("eval_accuracy", "eval_margin", "eval_loss", "eval_ties", "eval_min_reward", "eval_max_reward"):
        assert double["metrics"][key] == pytest.approx(single["metrics"][key], abs=1e-5), key


@pytest.mark.slow
def test_two_processes_train_several_objectives_like_one(tmp_path):
    single = run(1, tmp_path / "one.json", "distributed_run.py", "objectives")
    double = run(2, tmp_path / "two.json", "distributed_run.py", "objectives")
    assert double["world"] == 2 and double["micro_batched"], double["log"]
    np.testing.assert_allclose(double["losses"], single["losses"], atol=1e-5)
    np.testing.assert_allclose(np.array(double["rewards"]), np.array(single["rewards"]), atol=1e-5)
    for name, pairs in (("harmless", 3), ("helpful", 4)):  # of the 7 evaluation pairs, rows 0, 3 and 6 are harmless
        assert double["metrics"][f"eval_num_pairs_{name}"] == single["metrics"][f"eval_num_pairs_{name}"] == pairs
        key = f"eval_accuracy_{name}"
        assert double["metrics"][key] == pytest.approx(single["metrics"][key], abs=1e-5)


@pytest.mark.slow
def test_streamed_and_map_style_train_and_eval_sets_in_two_processes_count_every_pair_once(tmp_path):
    """Each of TRL's training and evaluation set types (Dataset, IterableDataset, DatasetDict, IterableDatasetDict,
    a dict mixing both) trains and evaluates, during training and after, exactly as in one process."""
    single = run(1, tmp_path / "one.json", "distributed_datasets_run.py")
    double = run(2, tmp_path / "two.json", "distributed_datasets_run.py")
    assert len(double) == len(single) == 10
    for combination, one in single.items():
        two = double[combination]
        assert two["world"] == 2 and one["world"] == 1
        np.testing.assert_allclose(two["losses"], one["losses"], atol=1e-5, err_msg=combination)
        for when in ("during", "after"):
            assert set(two[when]) == set(one[when]), (combination, when)
            for key, value in one[when].items():
                assert two[when][key] == pytest.approx(value, abs=1e-5), (combination, when, key)
        pair_counts = {k: v for k, v in one["after"].items() if k.endswith("num_pairs")}
        expected = (
            {"eval_num_pairs": 7} if "dict" not in combination else {"eval_a_num_pairs": 7, "eval_b_num_pairs": 5}
        )
        assert pair_counts == expected, combination
        assert {k: v for k, v in one["during"].items() if k.endswith("num_pairs")} == expected, combination


WRITE_LOGGER = """
import builtins, os
_open, _replace = builtins.open, os.replace
_watched, _log = os.environ["WATCH_DIR"], os.environ["WRITE_LOG"] + "." + os.environ.get("RANK", "0")

def _note(path):
    path = os.path.abspath(os.fspath(path))
    if path.startswith(_watched):
        with _open(_log, "a") as f:
            f.write(path + "\\n")

def open(file, mode="r", *args, **kwargs):
    if isinstance(file, (str, bytes, os.PathLike)) and any(m in mode for m in "wax+"):
        _note(file)
    return _open(file, mode, *args, **kwargs)

def replace(src, dst, *args, **kwargs):
    _note(dst)
    return _replace(src, dst, *args, **kwargs)

builtins.open, os.replace = open, replace
"""


def cli_train(nproc: int, base: Path, data: Path, out: Path, hooks: Path) -> dict:
    env = child_env(hooks, WATCH_DIR=str(out), WRITE_LOG=str(hooks / f"writes-{nproc}"))
    args = [
        "-m",
        "rewardlab",
        "train",
        "--model_name_or_path",
        str(base),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--per_device_train_batch_size",
        str(4 // nproc),
        "--max_steps",
        "3",
        "--learning_rate",
        "1e-3",
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--use_cpu",
        "--seed",
        "7",
        "--save_strategy",
        "no",
        "--skip_invalid_rows",
        "--center_rewards_coefficient",
        "0.01",
    ]
    proc = subprocess.run(python(nproc) + args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "rewardlab_run.json").read_text())


@pytest.mark.slow
def test_rewardlab_train_under_torchrun_matches_one_process_and_only_rank_0_writes(tmp_path):
    from tiny import save_tiny

    base = save_tiny("qwen3", tmp_path / "base")
    data = tmp_path / "data"
    data.mkdir()
    rows = [
        {"prompt": f"q {i} " + "word " * (i % 4), "chosen": f" blue {i}", "rejected": f" green {i % 3} no"}
        for i in range(14)
    ]
    rows[5]["rejected"] = rows[5]["chosen"]  # one invalid row, skipped and recorded
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[7:]))  # 7 pairs: ragged over 2
    hooks = hooks_with(tmp_path, WRITE_LOGGER)

    single = cli_train(1, base, data, tmp_path / "one", hooks)
    double = cli_train(2, base, data, tmp_path / "two", hooks)
    losses = [[e["loss"] for e in run["log_history"] if "loss" in e] for run in (single, double)]
    assert len(losses[0]) == 3
    np.testing.assert_allclose(losses[1], losses[0], atol=1e-5)
    for key in ("eval_accuracy", "eval_loss", "eval_margin", "eval_num_pairs"):
        assert double["final_eval_metrics"][key] == pytest.approx(single["final_eval_metrics"][key], abs=1e-5), key
    assert double["final_eval_metrics"]["eval_num_pairs"] == 7
    report = json.loads((tmp_path / "two" / "report.json").read_text())
    assert report["results"]["trained model"]["evaluation split"]["n_evaluated"] == 7
    assert len((tmp_path / "two" / "skipped_rows.jsonl").read_text().splitlines()) == 1
    # Rank 0 wrote the model, run record, report and skipped rows; rank 1 wrote nothing in the output directory.
    assert (hooks / "writes-2.0").exists()
    assert not (hooks / "writes-2.1").exists(), (hooks / "writes-2.1").read_text()


# accelerate turns FSDP on only for accelerator devices (in `AcceleratorState.__init__`, the FSDP branch sits under
# MULTI_GPU, MULTI_XPU, ...), never for MULTI_CPU. This hook lifts that one gate, so that everything after it (the
# FSDP2 wrapping, sharded training, checkpoints, resuming) runs the real accelerate and Trainer code on CPU.
FSDP_ON_CPU = """
import accelerate.state as _state
from accelerate.utils import DistributedType
_init = _state.AcceleratorState.__init__

def __init__(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin

_state.AcceleratorState.__init__ = __init__
"""


def sharded(
    nproc: int, directory: Path, *modes: str, nnodes: int = 1, hooks: Path | None = None, **extra_env: str
) -> dict:
    """Run sharded_run.py in `nproc` processes (on `nnodes` loopback "nodes" of nproc / nnodes processes each),
    with `hooks` (a directory holding a sitecustomize.py) on the path and `extra_env` in the environment."""
    env = child_env(*([hooks] if hooks else []), HERE, **extra_env)
    out = directory / f"result-{'-'.join(modes) or 'plain'}.json"
    script = [str(HERE / "sharded_run.py"), str(out), str(directory), *modes]
    if nproc == 1:
        commands = [python(1) + script]
    else:
        # One rendezvous for all nodes, as on a cluster: each node's torchrun finds the others through it.
        port = free_port()
        per_node = nproc // nnodes
        commands = [
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                f"--nnodes={nnodes}",
                f"--nproc_per_node={per_node}",
                "--rdzv_backend=c10d",
                f"--rdzv_endpoint=127.0.0.1:{port}",
                f"--node_rank={node}",
                *script,
            ]
            for node in range(nnodes)
        ]
    results = launch_together(commands, env)
    if results is None:
        # A run takes under a minute. Once in many CI runs a two-node launch has hung after training (each worker's
        # stack is then on its stderr, see sharded_run.py): the launch is retried once, on a new rendezvous port.
        commands = [
            [f"--rdzv_endpoint=127.0.0.1:{free_port()}" if "rdzv_endpoint" in a else a for a in c] for c in commands
        ]
        results = launch_together(commands, env)
        if results is None:
            raise AssertionError("the launch hung twice")
    for returncode, stderr in results:
        if returncode != 0:
            raise AssertionError(failure(stderr))
    return json.loads(out.read_text())


def launch_together(
    commands: list[list[str]], env: dict[str, str], timeout: float = 180
) -> list[tuple[int, str]] | None:
    """Start `commands` together and wait for all: each one's (return code, stderr); None when one was still
    running after `timeout` seconds (all are then killed, with their children)."""
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        for c in commands
    ]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            stderr = p.communicate()[1]
            print(f"hung launch {p.args}:\n{stderr[-6000:]}", file=sys.stderr)
        return None
    return [(p.returncode, stderr) for p, (_, stderr) in zip(procs, outputs, strict=True)]


def rewards_of(model, eval_ids: list) -> np.ndarray:
    """Each evaluation pair scored alone by a plain transformers model."""
    import torch

    with torch.no_grad():
        return np.array([[model(input_ids=torch.tensor([ids])).logits.item() for ids in pair] for pair in eval_ids])


def plain_rewards(model_dir: Path, eval_ids: list) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification

    return rewards_of(AutoModelForSequenceClassification.from_pretrained(model_dir).eval(), eval_ids)


@pytest.mark.slow
def test_fsdp2_on_two_processes_trains_checkpoints_and_resumes_like_one_process(tmp_path):
    hooks = hooks_with(tmp_path, FSDP_ON_CPU)
    single = sharded(1, tmp_path / "one")
    fsdp = sharded(2, tmp_path / "fsdp", "fsdp", hooks=hooks)
    assert (single["world"], fsdp["world"]) == (1, 2)
    assert fsdp["fsdp"] and fsdp["wrapped"] == ["FSDPQwen3ForSequenceClassification"], fsdp["wrapped"]
    assert fsdp["layout"] == single["layout"] == "shared_prefix"  # the fast path, under FSDP too
    assert fsdp["steps_run"] == [1, 2, 3, 4] and list(fsdp["losses"]) == ["1", "2", "3", "4"]
    np.testing.assert_allclose(list(fsdp["losses"].values()), list(single["losses"].values()), atol=1e-5)
    for key in ("eval_accuracy", "eval_loss", "eval_margin", "eval_num_pairs"):
        assert fsdp["metrics"][key] == pytest.approx(single["metrics"][key], abs=1e-5), key
    np.testing.assert_allclose(fsdp["rewards"], single["rewards"], atol=1e-5)

    # The sharded checkpoint, merged by accelerate into one file, is the plain model that scored those rewards.
    from accelerate.utils import merge_fsdp_weights
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    merge_fsdp_weights(str(tmp_path / "fsdp/checkpoint-4/pytorch_model_fsdp_0"), str(tmp_path / "merged"))
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "one" / "model").eval()
    model.load_state_dict(load_file(tmp_path / "merged" / "model.safetensors"), strict=True)
    np.testing.assert_allclose(rewards_of(model, fsdp["eval_ids"]), np.array(single["rewards"]), atol=1e-5)

    # Interrupted after the checkpoint of step 2: resuming from it gives the uninterrupted run's steps 3 and 4.
    resumed = sharded(2, tmp_path / "fsdp", "fsdp", "resume", hooks=hooks)
    assert resumed["steps_run"] == [3, 4] and list(resumed["losses"]) == ["1", "2", "3", "4"]
    np.testing.assert_allclose([resumed["losses"][s] for s in "34"], [fsdp["losses"][s] for s in "34"], atol=1e-5)
    np.testing.assert_allclose(resumed["rewards"], fsdp["rewards"], atol=1e-5)


@pytest.mark.slow
def test_two_loopback_nodes_train_like_one_process_and_only_global_rank_0_writes(tmp_path):
    """`torchrun --nnodes 2 --nproc_per_node 1 --rdzv_backend c10d`, one process per "node" on loopback."""
    hooks = hooks_with(tmp_path, WRITE_LOGGER)
    single = sharded(1, tmp_path / "one")
    watched = {"WATCH_DIR": str(tmp_path / "nodes"), "WRITE_LOG": str(hooks / "writes")}
    nodes = sharded(2, tmp_path / "nodes", nnodes=2, hooks=hooks, **watched)
    assert nodes["world"] == 2
    np.testing.assert_allclose(list(nodes["losses"].values()), list(single["losses"].values()), atol=1e-5)
    np.testing.assert_allclose(nodes["rewards"], single["rewards"], atol=1e-5)
    saved = plain_rewards(tmp_path / "nodes" / "model", nodes["eval_ids"])
    np.testing.assert_allclose(saved, np.array(single["rewards"]), atol=1e-5)
    # The second node's process (global rank 1) wrote only its own RNG state into the checkpoints, nothing else.
    written = (hooks / "writes.1").read_text().splitlines() if (hooks / "writes.1").exists() else []
    assert all(Path(p).name == "rng_state_1.pth" for p in written), written
    assert any(Path(p).name == "rewardlab_run.json" for p in (hooks / "writes.0").read_text().splitlines())


@pytest.mark.slow
def test_length_debiased_training_on_two_processes_matches_one_accumulating_as_many_batches(tmp_path):
    """`length_debias='odin'` under DDP: each process's forward has its own correlation terms, so 2 processes of 2
    pairs equal one process accumulating 2 batches of 2, in losses, logged correlations, metrics and saved model."""
    single = sharded(1, tmp_path / "one", "odin")
    double = sharded(2, tmp_path / "two", "odin")
    assert double["world"] == 2 and double["layout"] == single["layout"] == "shared_prefix"
    np.testing.assert_allclose(list(double["losses"].values()), list(single["losses"].values()), atol=1e-5)
    assert len(double["length_logs"]) == 4 and all(head is not None for _, head in double["length_logs"])
    np.testing.assert_allclose(double["length_logs"], single["length_logs"], atol=1e-5)
    for key in ("eval_accuracy", "eval_loss", "eval_margin", "eval_num_pairs"):
        assert double["metrics"][key] == pytest.approx(single["metrics"][key], abs=1e-5), key
    np.testing.assert_allclose(double["rewards"], single["rewards"], atol=1e-5)
    saved = plain_rewards(tmp_path / "two" / "model", double["eval_ids"])  # the quality head, in plain transformers
    np.testing.assert_allclose(saved, np.array(single["rewards"]), atol=1e-5)


# Stops rank 1 after its first chunk, as a killed process would (its progress file keeps what it finished).
INTERRUPT_RANK_1 = """
import os
import rewardlab.score.rows as _rows
_score_chunk, _calls = _rows._score_chunk, []

def _interrupted(*args, **kwargs):
    _calls.append(1)
    with open(os.environ["CHUNK_LOG"] + "." + os.environ.get("RANK", "0"), "a") as f:
        f.write(f"{args[2]}\\n")  # the chunk's first row
    if os.environ.get("INTERRUPT") and os.environ.get("RANK") == "1" and len(_calls) == 2:
        os._exit(3)
    return _score_chunk(*args, **kwargs)

_rows._score_chunk = _interrupted
"""


def cli_score(nproc: int, model: Path, data: Path, out: Path, hooks: Path, *extra: str, **env_extra: str):
    env = child_env(hooks, **{"CHUNK_LOG": str(hooks / f"chunks-{nproc}"), **env_extra})
    args = ["-m", "rewardlab", "score", "--model", str(model), "--dataset", str(data), "--output", str(out)]
    args += ["--chunk_rows", "4", *extra]  # no --device: the README's command
    return subprocess.run(python(nproc) + args, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_scoring_under_torchrun_shares_the_rows_and_writes_the_one_process_output(tmp_path):
    from tiny import save_tiny

    model = save_tiny("qwen3", tmp_path / "model")
    data = tmp_path / "rows.jsonl"
    rows = [
        {"prompt": f"q {i} " + "w " * (i % 5), "chosen": f" blue {i}", "rejected": f" green {i % 3}"} for i in range(23)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    hooks = hooks_with(tmp_path, INTERRUPT_RANK_1)

    one = cli_score(1, model, data, tmp_path / "one.jsonl", hooks)
    assert one.returncode == 0, one.stderr[-3000:]
    two = cli_score(2, model, data, tmp_path / "two.jsonl", hooks)
    assert two.returncode == 0, two.stderr[-3000:]
    expected = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    scored = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in scored] == [r["prompt"] for r in expected] == [r["prompt"] for r in rows]
    for key in ("reward_chosen", "reward_rejected", "prob_chosen"):
        np.testing.assert_allclose([r[key] for r in scored], [r[key] for r in expected], atol=1e-5)
    # Each rank scored half of the 23 rows, in chunks of 4: rank 0 rows 0-10, rank 1 rows 11-22.
    assert (hooks / "chunks-2.0").read_text().split() == ["0", "4", "8"]
    assert (hooks / "chunks-2.1").read_text().split() == ["11", "15", "19"]
    assert "scored 23 rows (pairs)" in two.stdout and '"ok": 23' in two.stdout  # every process's rows counted
    assert not list(tmp_path.glob("two.jsonl.partial*"))

    # Rank 1 dies after its first chunk: no output file; --resume scores only what is missing.
    out = tmp_path / "resumed.jsonl"
    interrupted = cli_score(2, model, data, out, hooks, INTERRUPT="1", CHUNK_LOG=str(hooks / "first"))
    assert interrupted.returncode != 0 and not out.exists()
    assert (tmp_path / "resumed.jsonl.partial.1-of-2.jsonl").exists()
    resumed = cli_score(2, model, data, out, hooks, "--resume", CHUNK_LOG=str(hooks / "second"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (hooks / "second.1").read_text().split() == ["15", "19"]  # rows 11-14 were done before the interruption
    again = [json.loads(line) for line in out.read_text().splitlines()]
    np.testing.assert_allclose([r["reward_chosen"] for r in again], [r["reward_chosen"] for r in expected], atol=1e-5)

    # Resuming with another number of processes is refused, naming the leftover file.
    (tmp_path / "resumed.jsonl.partial.0-of-3.jsonl").write_text("{}\n")
    refused = cli_score(2, model, data, out, hooks, "--resume")
    assert refused.returncode != 0 and "another number of processes" in refused.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None,
    reason="DeepSpeed is not installed (scripts/test.sh installs it, built against the CPU torch)",
)
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_zero_on_two_processes_trains_saves_and_resumes_like_one_process(stage, tmp_path):
    """ZeRO-2/3 on DeepSpeed's CPU accelerator (gloo), with the fast path; ZeRO-3 gathers the weights to save."""
    single = sharded(1, tmp_path / "one")
    ds = {"DS_ACCELERATOR": "cpu"}
    double = sharded(2, tmp_path / stage, stage, **ds)
    assert (single["world"], double["world"]) == (1, 2) and double["deepspeed"]
    assert double["layout"] == "shared_prefix"
    np.testing.assert_allclose(list(double["losses"].values()), list(single["losses"].values()), atol=1e-5)
    for key in ("eval_accuracy", "eval_loss", "eval_margin", "eval_num_pairs"):
        assert double["metrics"][key] == pytest.approx(single["metrics"][key], abs=1e-5), key
    np.testing.assert_allclose(double["rewards"], single["rewards"], atol=1e-5)
    saved = plain_rewards(tmp_path / stage / "model", double["eval_ids"])
    np.testing.assert_allclose(saved, np.array(single["rewards"]), atol=1e-5)
    resumed = sharded(2, tmp_path / stage, stage, "resume", **ds)
    assert resumed["steps_run"] == [3, 4]
    np.testing.assert_allclose([resumed["losses"][s] for s in "34"], [double["losses"][s] for s in "34"], atol=1e-5)
