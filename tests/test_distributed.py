"""Training and evaluation under two processes (gloo on CPU) match one process, on the fast path."""

import json
import os
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


def run(nproc: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}",
           str(HERE / "distributed_run.py"), str(out)]  # fmt: skip
    if nproc == 1:
        cmd = [sys.executable, str(HERE / "distributed_run.py"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and nproc > 1:
        # The rendezvous port is picked before torchrun binds it; on a busy machine it is rarely taken in between.
        cmd[4] = f"--master_port={free_port()}"
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        clues = [line for line in proc.stderr.splitlines() if any(k in line for k in ("rror", "terminate", "what"))]
        raise AssertionError("\n".join(clues[:20]) or proc.stderr[-3000:])
    result = json.loads(out.read_text())
    result["log"] = "\n".join(line for line in proc.stderr.splitlines() if "examples/s" not in line)[-4000:]
    return result


@pytest.mark.slow
def test_two_processes_train_like_one_and_count_every_pair_once(tmp_path):
    single = run(1, tmp_path / "one.json")
    double = run(2, tmp_path / "two.json")
    assert double["world"] == 2, double["log"]
    # The fast path (prompt shared, pairs packed) runs under DDP too, with micro-batches under a token budget.
    assert double["collator"] == "DataCollatorForFastPreference" and double["share_prompt"], double["log"]
    assert double["micro_batched"] and not single["micro_batched"]
    assert len(double["losses"]) == 3
    np.testing.assert_allclose(double["losses"], single["losses"], atol=1e-5)
    assert double["metrics"]["eval_num_pairs"] == single["metrics"]["eval_num_pairs"] == 7
    np.testing.assert_allclose(np.array(double["rewards"]), np.array(single["rewards"]), atol=1e-5)
    for key in ("eval_accuracy", "eval_margin", "eval_loss", "eval_ties", "eval_min_reward", "eval_max_reward"):
        assert double["metrics"][key] == pytest.approx(single["metrics"][key], abs=1e-5), key
