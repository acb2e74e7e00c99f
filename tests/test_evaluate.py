"""`rewardlab eval`: exact metrics over whole sets, label mapping, two models side by side, and a real browser."""

import json
import shutil

import numpy as np
import pytest
from test_scoring import rows, train_and_save

from rewardlab import RewardModel
from rewardlab.cli import main


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    first = train_and_save("qwen3", tmp_path_factory.mktemp("a"))[0]
    second = train_and_save("llama", tmp_path_factory.mktemp("b"))[0]
    return first, second


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def datasets(tmp_path):
    """A pairs file with categories, and an A/B-judgement file with a tie, the same pairs in another layout."""
    pairs = rows(9, seed=4)
    for i, row in enumerate(pairs):
        row["topic"] = "colour" if i % 3 else "weather"
    judged = []
    for i, row in enumerate(rows(5, seed=5)):
        a, b = (row["chosen"], row["rejected"]) if i % 2 else (row["rejected"], row["chosen"])
        judged.append({"question": row["prompt"], "answer_1": a, "answer_2": b, "winner": "A" if i % 2 else "B"})
    judged.append({"question": "tie?", "answer_1": " x", "answer_2": " y", "winner": "tie"})
    return write_jsonl(tmp_path / "pairs.jsonl", pairs), write_jsonl(tmp_path / "judged.jsonl", judged)


def test_metrics_are_exact_per_set_and_together_with_the_mapping(two_models, tmp_path, capsys):
    model, _ = two_models
    pairs_file, judged_file = datasets(tmp_path)
    ab = "layout=ab,prompt=question,response_a=answer_1,response_b=answer_2,label=winner"
    out = tmp_path / "report"
    assert (
        main(
            [
                "eval",
                "--model",
                model,
                "--dataset",
                pairs_file,
                "--dataset",
                judged_file,
                "--mapping",
                "layout=pairs,prompt=prompt,category=topic",
                "--mapping",
                ab,
                "--output_dir",
                str(out),
                "--n_bootstrap",
                "200",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    results = report["results"][model]
    assert list(results) == [d["name"] for d in report["datasets"]] + ["all data sets"]
    scorer = RewardModel.from_pretrained(model)
    expected = scorer.score_pair_rows(rows(9, seed=4))
    first = results[report["datasets"][0]["name"]]
    rc, rr = np.array(expected.rewards_chosen), np.array(expected.rewards_rejected)
    assert first["n_evaluated"] == 9
    assert first["accuracy"]["value"] == pytest.approx(np.mean(rc > rr))
    assert first["mean_margin"]["value"] == pytest.approx(np.mean(rc - rr), abs=1e-6)
    low, high = first["accuracy"]["ci95"]
    assert low <= first["accuracy"]["value"] <= high
    assert set(first["categories"]) == {"colour", "weather"}
    assert first["categories"]["weather"]["count"] == 3
    judged = report["datasets"][1]
    assert judged["pairs"] == 5 and judged["mapping_stats"]["ties_skipped"] == 1
    together = results["all data sets"]
    assert together["n_evaluated"] == 14
    assert set(together["categories"]) == {d["name"] for d in report["datasets"]}
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 2 * 4 and "How to read the figures" in html
    assert "accuracy" in capsys.readouterr().out


def test_compare_puts_two_models_side_by_side_with_training_curves(two_models, tmp_path):
    first, second = two_models
    pairs_file, _ = datasets(tmp_path)
    out = tmp_path / "compare"
    assert (
        main(
            [
                "eval",
                "--compare",
                first,
                second,
                "--dataset",
                pairs_file,
                "--output_dir",
                str(out),
                "--n_bootstrap",
                "50",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert len(report["results"]) == 2
    html = (out / "report.html").read_text()
    assert html.count("training curves:") == 2  # both runs saved their log history


def test_user_errors(two_models, tmp_path, capsys):
    model, _ = two_models
    pairs_file, judged_file = datasets(tmp_path)
    assert (
        main(
            [
                "eval",
                "--model",
                model,
                "--dataset",
                pairs_file,
                "--dataset",
                judged_file,
                "--mapping",
                "a=b",
                "--mapping",
                "c=d",
                "--mapping",
                "e=f",
            ]
        )
        == 2
    )
    assert "3 --mapping for 2 --dataset" in capsys.readouterr().err
    assert main(["eval", "--model", model, "--dataset", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["eval", "--dataset", pairs_file]) == 2
    assert "--model" in capsys.readouterr().err


def test_train_writes_the_report_for_its_eval_split(tmp_path):
    from tiny import save_tiny

    base = save_tiny("qwen3", tmp_path / "base")
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", rows(8))
    write_jsonl(data / "test.jsonl", rows(5, seed=9))
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--model_name_or_path",
                str(base),
                "--dataset_name",
                str(data),
                "--output_dir",
                str(out),
                "--max_steps",
                "2",
                "--per_device_train_batch_size",
                "4",
                "--report_to",
                "none",
                "--use_cpu",
                "--save_strategy",
                "no",
                "--eval_strategy",
                "steps",
                "--eval_steps",
                "1",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    result = report["results"]["trained model"]["evaluation split"]
    assert result["n_evaluated"] == 5 and result["baselines"]["chance"] == 0.5
    assert result["baselines"]["lead"]["value"] == pytest.approx(
        result["accuracy"]["value"] - result["baselines"][result["baselines"]["best"]]
    )
    html = (out / "report.html").read_text()
    assert "training curves" in html and "best content-blind rule" in html


def test_report_renders_in_a_real_browser(two_models, tmp_path):
    """Every image loads and the page logs no console error, in headless Chromium (Debian's chromium)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    browser, driver_path = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not browser or not driver_path:
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    first, second = two_models
    pairs_file, judged_file = datasets(tmp_path)
    out = tmp_path / "browser"
    assert (
        main(
            [
                "eval",
                "--compare",
                first,
                second,
                "--dataset",
                pairs_file,
                "--dataset",
                judged_file,
                "--mapping",
                "layout=pairs,prompt=prompt,category=topic",
                "--mapping",
                "layout=ab,prompt=question,response_a=answer_1,response_b=answer_2,label=winner",
                "--output_dir",
                str(out),
                "--n_bootstrap",
                "50",
            ]
        )
        == 0
    )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.get((out / "report.html").resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
        )
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    finally:
        driver.quit()
    # 3 sections (two sets + together) x 2 models x at least 4 figures, plus 2 training-curve figures.
    assert len(images) >= 3 * 2 * 4 + 2
    broken = [alt for alt, complete, width, height in images if not (complete and width > 100 and height > 100)]
    assert not broken, broken
    assert not errors, errors


def conversations_with_a_malformed_row(tmp_path):
    """Third-party-style conversational pairs; row 3's chosen message has the JSON value `true` as its content."""
    records = [
        {
            "prompt": [{"role": "user", "content": f"what color is the sky {i} ?"}],
            "chosen": [{"role": "assistant", "content": f"it is blue {i}"}],
            "rejected": [{"role": "assistant", "content": "it is green sorry"}],
        }
        for i in range(6)
    ]
    records[3]["chosen"][0]["content"] = True
    return write_jsonl(tmp_path / "third_party.jsonl", records)


def test_a_malformed_row_stops_eval_naming_it_or_is_skipped_and_counted(two_models, tmp_path, capsys):
    model, _ = two_models
    source = conversations_with_a_malformed_row(tmp_path)
    out = tmp_path / "report"
    args = ["eval", "--model", model, "--dataset", source, "--output_dir", str(out), "--n_bootstrap", "20"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("rewardlab: error:") == 1, err
    assert "row 3, field 'chosen': message 0: 'content' is a bool, expected a string" in err
    assert "--skip_invalid_rows" in err
    assert not (out / "report.json").exists()

    assert main([*args, "--skip_invalid_rows"]) == 0
    printed = capsys.readouterr().out
    assert "pairs 5; best content-blind rule: " in printed
    assert "; not used: 1 invalid row (invalid message: 1)" in printed
    report = json.loads((out / "report.json").read_text())
    stats = report["datasets"][0]["mapping_stats"]
    assert (stats["rows_in"], stats["pairs_out"], stats["invalid_skipped"]) == (6, 5, 1)
    assert stats["invalid_by_reason"] == {"invalid message": 1} and stats["invalid_by_field"] == {"chosen": 1}
    assert "1 invalid row (invalid message: 1)" in (out / "report.html").read_text()
    (skipped,) = [json.loads(line) for line in (out / "skipped_rows.jsonl").read_text().splitlines()]
    assert (skipped["row"], skipped["field"], skipped["code"]) == (3, "chosen", "invalid message")
    assert skipped["content"]["chosen"][0]["content"] is True
    assert f"skipped rows and why: {out / 'skipped_rows.jsonl'}" in printed


def test_mapped_rows_name_the_field_as_the_file_spells_it(two_models, tmp_path, capsys):
    model, _ = two_models
    records = [{"q": f"sky {i} ?", "a": " blue", "b": " green", "winner": "A"} for i in range(4)]
    records[2]["b"] = 7
    source = write_jsonl(tmp_path / "judged.jsonl", records)
    mapping = "layout=ab,prompt=q,response_a=a,response_b=b,label=winner"
    args = ["eval", "--model", model, "--dataset", source, "--mapping", mapping, "--output_dir", str(tmp_path / "r")]
    assert main(args) == 2
    assert "row 2, field 'b': is a int; expected response B" in capsys.readouterr().err
    assert main([*args, "--skip_invalid_rows", "--n_bootstrap", "20"]) == 0
    printed = capsys.readouterr().out
    assert "pairs 3; best content-blind rule: " in printed and "; not used: 1 invalid row (wrong type: 1)" in printed
