"""`rewardlab score`: rows in, the same rows plus rewards out; resumable; no half-written output."""

import json

import numpy as np
import pytest
from datasets import Dataset
from test_scoring import rows, train_and_save

from rewardlab import RewardModel
from rewardlab.cli import main
from rewardlab.score import rows as score_file


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_and_save("qwen3", tmp_path_factory.mktemp("qwen3"))[0]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_pairs_get_both_rewards_and_the_probability(model_dir, tmp_path, capsys):
    data = rows(7)
    out = tmp_path / "scored.jsonl"
    assert (
        main(
            [
                "score",
                "--model",
                model_dir,
                "--dataset",
                write_jsonl(tmp_path / "in.jsonl", data),
                "--output",
                str(out),
                "--chunk_rows",
                "3",
            ]
        )
        == 0
    )
    scored = read_jsonl(out)
    expected = RewardModel.from_pretrained(model_dir).score_pair_rows(data)
    assert [r["prompt"] for r in scored] == [r["prompt"] for r in data]  # rows kept, in order
    np.testing.assert_allclose([r["reward_chosen"] for r in scored], expected.rewards_chosen, atol=1e-6)
    np.testing.assert_allclose([r["prob_chosen"] for r in scored], expected.prob_chosen, atol=1e-6)
    assert "scored 7 rows (pairs)" in capsys.readouterr().out
    assert not (tmp_path / "scored.jsonl.partial.jsonl").exists()


def test_texts_and_completions_in_other_formats(model_dir, tmp_path):
    texts = [r["prompt"] + r["chosen"] for r in rows(5)]
    Dataset.from_dict({"body": texts}).to_csv(str(tmp_path / "t.csv"), index=False)
    out = tmp_path / "t.parquet"
    assert (
        main(
            [
                "score",
                "--model",
                model_dir,
                "--dataset",
                str(tmp_path / "t.csv"),
                "--output",
                str(out),
                "--text_column",
                "body",
            ]
        )
        == 0
    )
    scored = Dataset.from_parquet(str(out))
    np.testing.assert_allclose(scored["reward"], RewardModel.from_pretrained(model_dir).score_texts(texts), atol=1e-6)

    completions = [{"prompt": r["prompt"], "completion": r["chosen"], "id": i} for i, r in enumerate(rows(4))]
    out = tmp_path / "c.jsonl"
    assert (
        main(
            [
                "score",
                "--model",
                model_dir,
                "--dataset",
                write_jsonl(tmp_path / "c_in.jsonl", completions),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    scored = read_jsonl(out)
    assert [r["id"] for r in scored] == [0, 1, 2, 3]
    np.testing.assert_allclose(
        [r["reward"] for r in scored],
        RewardModel.from_pretrained(model_dir).score(
            [c["prompt"] for c in completions], [c["completion"] for c in completions]
        ),
        atol=1e-6,
    )


def test_an_interrupted_run_leaves_no_output_and_resumes_where_it_stopped(model_dir, tmp_path, monkeypatch, capsys):
    data = rows(9)
    source = write_jsonl(tmp_path / "in.jsonl", data)
    out = tmp_path / "out.jsonl"
    args = ["score", "--model", model_dir, "--dataset", source, "--output", str(out), "--chunk_rows", "4"]
    real = score_file.score_rows
    calls = []

    def fail_on_second_chunk(scorer, chunk, mode, a):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(scorer, chunk, mode, a)

    monkeypatch.setattr(score_file, "score_rows", fail_on_second_chunk)
    assert main(args) == 130
    assert not out.exists()
    progress = read_jsonl(tmp_path / "out.jsonl.partial.jsonl")
    assert len(progress) == 1 + 4 + 1  # the header, the first chunk's rows, and what their inputs needed
    assert progress[-1] == {"inputs": [{"ok": 4}]}

    calls.clear()
    monkeypatch.setattr(score_file, "score_rows", lambda *a: calls.append(len(a[1])) or real(*a))
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert calls == [4, 1]  # the first chunk was not scored again
    assert '"ok": 9' in capsys.readouterr().out  # the summary counts the rows scored before the interruption too
    scored = read_jsonl(out)
    expected = RewardModel.from_pretrained(model_dir).score_pair_rows(data)
    np.testing.assert_allclose([r["reward_rejected"] for r in scored], expected.rewards_rejected, atol=1e-6)


def test_user_errors_are_one_line(model_dir, tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", [{"question": "x"}])
    assert main(["score", "--model", model_dir, "--dataset", source, "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "cannot tell what to score: the columns are question" in capsys.readouterr().err
    assert main(["score", "--model", model_dir, "--dataset", source, "--output", str(tmp_path / "o.txt")]) == 2
    assert "--output must end in one of" in capsys.readouterr().err
    assert (
        main(
            [
                "score",
                "--model",
                model_dir,
                "--dataset",
                str(tmp_path / "nope.jsonl"),
                "--output",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows(2))
    assert (
        main(
            [
                "score",
                "--model",
                model_dir,
                "--dataset",
                pairs,
                "--output",
                str(tmp_path / "o.jsonl"),
                "--device",
                "gpu0",
            ]
        )
        == 2
    )
    assert "unknown device 'gpu0'" in capsys.readouterr().err
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"chosen": "a", "rejected": "b"}, {"chosen": "a", "rejected": 5}])
    assert main(["score", "--model", model_dir, "--dataset", bad, "--output", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "row 1" in err and "rejected" in err
    (tmp_path / "o.jsonl.partial.jsonl").write_text('{"input": "other"}\n')
    assert (
        main(
            [
                "score",
                "--model",
                model_dir,
                "--dataset",
                source,
                "--output",
                str(tmp_path / "o.jsonl"),
                "--text_column",
                "question",
                "--resume",
            ]
        )
        == 2
    )
    assert "belongs to another scoring job" in capsys.readouterr().err


def test_a_malformed_row_stops_scoring_naming_it_or_keeps_its_place_with_empty_rewards(model_dir, tmp_path, capsys):
    data = rows(7)
    data[5]["chosen"] = {"text": data[5]["chosen"]}  # a dict where a string belongs
    data[1]["prompt"] = ""  # an empty prompt, also invalid in training
    source = write_jsonl(tmp_path / "in.jsonl", data)
    out = tmp_path / "scored.jsonl"
    # Chunks of 3: row 5 sits in the second chunk, and the error still names it by its place in the file.
    args = ["score", "--model", model_dir, "--dataset", source, "--output", str(out), "--chunk_rows", "3"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "row 1, field 'prompt': is an empty string" in err and "--skip_invalid_rows" in err
    assert not out.exists()

    assert main([*args, "--skip_invalid_rows"]) == 0
    printed = capsys.readouterr().out
    assert "scored 5 rows (pairs)" in printed
    assert "skipped 2 invalid rows (empty value: 1, wrong type: 1)" in printed
    scored = read_jsonl(out)
    assert len(scored) == 7 and [r["chosen"] for r in scored][6] == data[6]["chosen"]  # every row, in order
    assert scored[1]["reward_chosen"] is None and scored[5]["prob_chosen"] is None
    valid = [data[i] for i in (0, 2, 3, 4, 6)]
    expected = RewardModel.from_pretrained(model_dir).score_pair_rows(valid)
    np.testing.assert_allclose(
        [scored[i]["reward_chosen"] for i in (0, 2, 3, 4, 6)], expected.rewards_chosen, atol=1e-6
    )
    skipped = read_jsonl(tmp_path / "scored.jsonl.skipped_rows.jsonl")
    assert [(s["row"], s["field"], s["code"]) for s in skipped] == [
        (1, "prompt", "empty value"),
        (5, "chosen", "wrong type"),
    ]
    assert skipped[1]["content"]["chosen"] == data[5]["chosen"]


def test_invalid_texts_and_completions_are_named_too(model_dir, tmp_path, capsys):
    texts = write_jsonl(tmp_path / "t.jsonl", [{"text": "fine"}, {"text": ""}, {"text": "also fine"}])
    out = tmp_path / "t_scored.jsonl"
    assert main(["score", "--model", model_dir, "--dataset", texts, "--output", str(out)]) == 2
    assert "row 1, field 'text': is an empty string" in capsys.readouterr().err
    assert main(["score", "--model", model_dir, "--dataset", texts, "--output", str(out), "--skip_invalid_rows"]) == 0
    assert [r["reward"] is None for r in read_jsonl(out)] == [False, True, False]
    completions = [{"prompt": "q", "completion": " a"}, {"prompt": "q", "completion": [{"role": "assistant"}]}]
    source = write_jsonl(tmp_path / "c.jsonl", completions)
    assert main(["score", "--model", model_dir, "--dataset", source, "--output", str(out)]) == 2
    assert "row 1, field 'prompt'" in capsys.readouterr().err
