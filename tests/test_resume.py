"""Never lose work: exact resume, saves that a kill cannot leave half-done and usable, a full disk said plainly."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_trainer import config, pairs
from tiny import make_model, make_tokenizer
from transformers import PreTrainedModel, TrainerCallback

from rewardlab import RewardModel, RewardTrainer
from rewardlab.errors import RewardlabError
from rewardlab.files import SAVING_MARKER, json_line, last_complete_checkpoint

HERE = Path(__file__).parent


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def run(output_dir, resume=False, stop_at=None, objectives=False, **overrides):
    tok = make_tokenizer("llama")  # fresh: the trainer sets a pad token on it
    kw = dict(
        max_steps=6,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        save_strategy="steps",
        save_steps=3,
        logging_steps=1,
        seed=1,
        center_rewards_coefficient=0.01,
    )
    kw.update(overrides)
    args = config(output_dir.parent, **kw)
    args.output_dir = str(output_dir)
    data = pairs(40, margin=True)
    if objectives:  # two objectives, each pair trained on its own head
        data = data.add_column("objective", [("helpful", "harmless")[i % 3 == 0] for i in range(len(data))])
    trainer = RewardTrainer(
        make_model("llama", tok, num_labels=2 if objectives else 1),
        args=args,
        train_dataset=data,
        processing_class=tok,
        callbacks=[StopAt(stop_at)] if stop_at else None,
    )
    trainer.train(resume_from_checkpoint=True if resume else None)
    logs = {e["step"]: e for e in trainer.state.log_history if "loss" in e and "step" in e}
    return trainer, logs


@pytest.mark.parametrize("objectives", [False, True], ids=["one head", "two objectives"])
def test_a_resumed_run_continues_exactly_like_an_uninterrupted_one(objectives, tmp_path, caplog):
    _, whole = run(tmp_path / "whole", objectives=objectives)
    first, _ = run(tmp_path / "split", stop_at=3, objectives=objectives)
    assert first.state.global_step == 3
    with caplog.at_level("WARNING", logger="rewardlab.train.trainer"):
        trainer, resumed = run(tmp_path / "split", resume=True, objectives=objectives)
    assert "resuming from " + str(tmp_path / "split" / "checkpoint-3") in caplog.text
    assert sorted(resumed) == [1, 2, 3, 4, 5, 6]  # steps 1-3 come from the checkpoint's log history
    for step in (4, 5, 6):
        assert resumed[step]["loss"] == pytest.approx(whole[step]["loss"], abs=1e-5), step
        assert resumed[step]["accuracy"] == whole[step]["accuracy"]
    # The pairs and tokens seen before the interruption are still counted.
    assert resumed[6]["num_pairs_seen"] == whole[6]["num_pairs_seen"] == 6 * 4
    assert resumed[6]["num_tokens"] == whole[6]["num_tokens"]


def test_counts_between_logs_survive_a_checkpoint(tmp_path):
    """With logging every 2 steps and saving every 3, step 3's pairs are counted in checkpoint-3."""
    _, whole = run(tmp_path / "whole", logging_steps=2)
    run(tmp_path / "split", stop_at=3, logging_steps=2)
    _, resumed = run(tmp_path / "split", resume=True, logging_steps=2)
    assert resumed[6]["num_pairs_seen"] == whole[6]["num_pairs_seen"] == 24
    assert resumed[6]["num_tokens"] == whole[6]["num_tokens"]


KILLED_SAVE = """
import sys, time
from test_resume import run
from transformers import Trainer

original = Trainer._save_optimizer_and_scheduler

def slow(self, output_dir):
    if self.state.global_step == 4:
        print("SAVING", flush=True)
        time.sleep(60)  # the parent kills this process here, with the weights written and the optimizer not
    return original(self, output_dir)

Trainer._save_optimizer_and_scheduler = slow
from pathlib import Path
run(Path(sys.argv[1]), save_steps=2)
"""


def test_a_save_killed_midway_is_never_used(tmp_path, caplog):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(out)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while "SAVING" not in proc.stdout.readline():
            assert proc.poll() is None and time.monotonic() < deadline, "the training process ended early"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    broken = out / "checkpoint-4"
    assert (broken / "model.safetensors").exists() and (broken / SAVING_MARKER).exists()
    assert not (broken / "optimizer.pt").exists()

    # Resuming skips it for the last complete checkpoint; naming it or loading it is refused.
    assert last_complete_checkpoint(out) == str(out / "checkpoint-2")
    with pytest.raises(RewardlabError, match="incomplete"):
        RewardModel.from_pretrained(str(broken))
    tok = make_tokenizer("llama")
    with pytest.raises(RewardlabError, match="incomplete"):
        RewardTrainer(str(broken), args=config(tmp_path), train_dataset=pairs(4), processing_class=tok)
    with caplog.at_level("WARNING"):
        trainer, logs = run(out, resume=True, save_steps=2)
    assert "checkpoint-4 was not completely written" in caplog.text
    assert "resuming from " + str(out / "checkpoint-2") in caplog.text
    assert trainer.state.global_step == 6
    assert not (broken / SAVING_MARKER).exists()  # rewritten completely this time


def test_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    tok = make_tokenizer("qwen3")
    trainer = RewardTrainer(
        make_model("qwen3", tok), args=config(tmp_path), train_dataset=pairs(4), processing_class=tok
    )

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    with pytest.raises(RewardlabError, match="no space left on the device while writing"):
        trainer.save_model(str(tmp_path / "model"))
    assert (tmp_path / "model" / SAVING_MARKER).exists()  # and the half-written directory is marked as such


def test_a_json_line_is_one_line_for_every_line_splitter():
    record = {"content": "a\x85b\u2028c\u2029d\re\nf é", "n": 1}
    line = json_line(record)
    assert line.endswith("\n") and len(line.splitlines()) == 1 and json.loads(line) == record
    assert "é" in line  # readable text, not ASCII escapes
