"""`rewardlab eval` on the field's benchmarks: RewardBench 2, RewardBench, RM-Bench and JudgeBench files in their
published schemas, scored by their own rules, with content-blind baselines in every report and a leaderboard."""

import json
import math
import re

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from tiny import make_model, make_tokenizer, save_tiny

from rewardlab import RewardEnsemble, RewardModel
from rewardlab.cli import main
from rewardlab.data.conversation import as_conversation
from rewardlab.errors import InvalidRowError, RewardlabError
from rewardlab.eval import judgebench, rewardbench, sets
from rewardlab.eval.report import evaluate
from rewardlab.eval.sets import eval_set_from_rows, load_eval_set

WORDS = ["blue", "green sky", "red", "the weather is cold today", "paris", "rome is warm and sunny", "no", "yes"]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def rb2_rows():
    """RewardBench 2 rows: 1 correct + 1 to 5 incorrect per prompt in three subsets, a duplicate of the correct
    completion among the incorrect ones, and two Ties prompts (ref/tied rows)."""
    rows = []
    for i in range(9):
        rejected = [WORDS[(i + k) % len(WORDS)] for k in range(1, 2 + i % 5)]
        rows.append(
            {
                "id": str(i),
                "prompt": f"question {i} about the sky ?",
                "chosen": [WORDS[i % len(WORDS)]],
                "rejected": rejected,
                "num_correct": 1,
                "num_rejected": len(rejected),
                "total_completions": 1 + len(rejected),
                "subset": ["Focus", "Math", "Factuality"][i % 3],
                "models": ["m"] * (1 + len(rejected)),
            }
        )
    rows[4]["rejected"][0] = rows[4]["chosen"][0]  # identical completions must tie exactly
    for k in range(2):
        for kind, chosen in (("ref", ["paris"]), ("tied", ["paris", "rome is warm and sunny", "london"])):
            rows.append(
                {
                    "id": f"{kind}:{k}",
                    "prompt": f"name a city {k}",
                    "chosen": chosen,
                    "rejected": ["blue", "green sky"],
                    "num_correct": len(chosen),
                    "subset": "Ties",
                }
            )
    return rows


@pytest.fixture(scope="module")
def qwen():
    tok = make_tokenizer("qwen3")
    return RewardModel(make_model("qwen3", tok), tok)


@pytest.fixture(scope="module")
def saved_qwen(tmp_path_factory):
    return save_tiny("qwen3", str(tmp_path_factory.mktemp("qwen3")))


def best_of_n(rewards):
    top = max(rewards)
    return (1 / rewards.count(top)) if rewards[0] == top else 0.0


def test_rewardbench2_file_is_recognised_and_scored_by_its_rules(saved_qwen, tmp_path, capsys):
    source = write_jsonl(tmp_path / "rb2.jsonl", rb2_rows())
    out = tmp_path / "report"
    args = ["eval", "--model", saved_qwen, "--dataset", source, "--output_dir", str(out), "--n_bootstrap", "50"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    result = report["results"][saved_qwen][report["datasets"][0]["name"]]
    section = result["rewardbench2"]
    # Recompute each prompt's score from the model's rewards of the chats [user: prompt, assistant: completion].
    scorer = RewardModel.from_pretrained(saved_qwen)
    rows = rb2_rows()
    chats = [as_conversation({"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}) for r in rows]
    rewards = scorer.score_rankings(chats).rewards
    assert rewards[4][0] == rewards[4][1]  # the duplicate: bit-identical
    for subset in ("Focus", "Math", "Factuality"):
        expected = np.mean([best_of_n(rewards[i]) for i, r in enumerate(rows) if r["subset"] == subset])
        assert section["subsets"][subset] == pytest.approx(expected)
    assert best_of_n(rewards[4]) in (0.0, 0.5)
    assert section["prompts"] == {"Factuality": 3, "Math": 3, "Focus": 3, "Ties": 2}
    assert section["score"] == pytest.approx(np.mean(list(section["subsets"].values())))
    assert section["official_subsets_absent"] == ["Precise IF", "Safety"]
    baselines = section["baselines"]
    assert set(baselines) >= {"longer_wins", "shorter_wins", "chance", "lead"}
    assert baselines["lead"]["value"] == pytest.approx(section["score"] - baselines[baselines["best"]])
    assert baselines["lead"]["ci95"][0] <= baselines["lead"]["value"] <= baselines["lead"]["ci95"][1]
    assert result["rendering"] == "chat template"
    assert "RewardBench 2 score" in printed and "best content-blind rule:" in printed and "Ties" in printed
    html = (out / "report.html").read_text()
    assert "RewardBench 2: best-of-N per prompt" in html and "Leaderboard" in html


def test_rewardbench2_baselines_follow_its_rules_on_lengths(qwen):
    rows = [
        {"id": "0", "prompt": "p", "chosen": ["a much longer answer here"], "rejected": ["b", "c"], "num_correct": 1},
        {"id": "1", "prompt": "q", "chosen": ["x"], "rejected": ["longer one", "y"], "num_correct": 1},
    ]
    rows = [row | {"subset": "Focus"} for row in rows]
    eval_set = eval_set_from_rows(rows, "rb2", "rb2", "rewardbench2")
    report, _ = evaluate({"m": qwen}, [eval_set], n_bootstrap=0)
    subset = report["results"]["m"]["rb2"]["rewardbench2"]["subset_baselines"]["Focus"]
    # Longer wins picks the correct answer in row 0 only; shorter wins ties "b"/"c" in row 0 and "x"/"y" in row 1.
    assert subset["longer_wins"] == pytest.approx(0.5)
    assert subset["shorter_wins"] == pytest.approx(0.25)
    assert subset["chance"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (lambda r: r.pop("num_correct"), "num_correct", "is missing"),
        (lambda r: r.update(rejected=[]), "rejected", "is an empty list"),
        (lambda r: r.update(num_correct=2), "num_correct", "is 2 but 'chosen' holds 1 completion"),
        (lambda r: r.update(chosen=["a", ""], num_correct=2), "chosen[1]", "is an empty string"),
    ],
)
def test_a_bad_rewardbench2_row_is_named_or_skipped_and_counted(change, field, reason):
    rows = rb2_rows()
    change(rows[3])
    with pytest.raises(InvalidRowError, match=rf"row 3, field '{re.escape(field)}': {reason}"):
        eval_set_from_rows(rows, "rb2", "rb2", "rewardbench2")
    kept = eval_set_from_rows(rows, "rb2", "rb2", "rewardbench2", skip_invalid_rows=True)
    assert len(kept.prompts) == len(rows) - 1 and kept.mapping_stats["invalid_skipped"] == 1


def test_a_ties_row_without_its_partner_and_a_subset_left_without_rows(qwen, capsys):
    rows = rb2_rows()
    orphan = next(k for k, r in enumerate(rows) if r["id"] == "tied:1")
    rows[orphan]["num_correct"] = 7  # invalid: its partner ref:1 is left alone
    with pytest.raises(InvalidRowError, match="num_correct"):
        eval_set_from_rows(rows, "rb2", "rb2", "rewardbench2")
    rows[orphan]["num_correct"] = 3
    del rows[orphan]
    with pytest.raises(InvalidRowError, match="field 'id': is 'ref:1' but no valid row has 'tied:1'"):
        eval_set_from_rows(rows, "rb2", "rb2", "rewardbench2")
    kept = eval_set_from_rows(rows, "rb2", "rb2", "rewardbench2", skip_invalid_rows=True)
    assert kept.mapping_stats["invalid_by_reason"] == {"missing Ties partner": 1}
    # Every Math row invalid: Math is reported without data, not averaged in as 0 nor left out.
    for row in rows:
        if row["subset"] == "Math":
            row["chosen"] = []
    eval_set = eval_set_from_rows(rows, "rb2", "rb2", "rewardbench2", skip_invalid_rows=True)
    section = evaluate({"m": qwen}, [eval_set], n_bootstrap=0)[0]["results"]["m"]["rb2"]["rewardbench2"]
    assert section["subsets"]["Math"] is None and section["subsets_without_data"] == ["Math"]
    assert "Math" not in section["score_over"]
    scored = [v for v in section["subsets"].values() if v is not None]
    assert section["score"] == pytest.approx(np.mean(scored))
    # A cut between the two rows of a Ties prompt leaves out the one whose partner falls beyond it.
    cut = eval_set_from_rows(rb2_rows(), "rb2", "rb2", "rewardbench2", max_pairs=len(rb2_rows()) - 1)
    assert [p.id for p in cut.prompts][-2:] == ["ref:0", "tied:0"]


def rewardbench_rows():
    subsets = ["alpacaeval-easy", "alpacaeval-easy", "mt-bench-hard", "math-prm", "hep-cpp", "donotanswer", "other"]
    return [
        {
            "id": k,
            "prompt": f"question {k} ?",
            "chosen": WORDS[k % len(WORDS)],
            "rejected": WORDS[(k + 3) % len(WORDS)],
            "subset": subset,
        }
        for k, subset in enumerate(subsets)
    ]


def test_rewardbench_sections_weight_subsets_by_its_example_counts(qwen):
    rows = rewardbench_rows()
    eval_set = eval_set_from_rows(rows, "rb", "rb", "rewardbench")
    assert eval_set.chat and eval_set.benchmark == "rewardbench"
    result = evaluate({"m": qwen}, [eval_set], n_bootstrap=100)[0]["results"]["m"]["rb"]
    scores = qwen.score_pair_rows([as_conversation({k: r[k] for k in ("prompt", "chosen", "rejected")}) for r in rows])
    right = {}
    for row, c, r in zip(rows, scores.rewards_chosen, scores.rewards_rejected, strict=True):
        right.setdefault(row["subset"], []).append(float(c > r))
    accuracy = {s: np.mean(v) for s, v in right.items()}
    section = result["rewardbench"]
    counts = rewardbench.EXAMPLE_COUNTS
    reasoning = (984 * accuracy["math-prm"] + 164 * accuracy["hep-cpp"]) / (984 + 164)
    assert section["sections"]["Reasoning"] == pytest.approx(reasoning)
    assert section["sections"]["Chat"] == pytest.approx(accuracy["alpacaeval-easy"])
    expected = np.mean([accuracy["alpacaeval-easy"], accuracy["mt-bench-hard"], reasoning, accuracy["donotanswer"]])
    assert section["score"] == pytest.approx(expected)
    assert counts["math-prm"] == 984 and section["unassigned_subsets"] == ["other"]
    assert section["sections_without_data"] == []
    assert result["headline"]["metric"] == "RewardBench score"


def rm_bench_rows():
    rows = []
    for k in range(5):
        concise, detailed = f"answer {k} is blue", f"answer {k} is blue because the sky scatters light"
        wrong = [s.replace("blue", "green") for s in (concise, detailed)]
        rows.append(
            {
                "id": k,
                "prompt": f"why is the sky blue {k} ?",
                "chosen": [concise, detailed, "## " + detailed],
                "rejected": [wrong[0], wrong[1], "## " + wrong[1]],
                "subset": "alpacaeval",
                "domain": "chat" if k < 3 else "safety-refuse",
            }
        )
    return rows


def test_rm_bench_difficulty_matrix_per_domain(qwen):
    rows = rm_bench_rows()
    eval_set = eval_set_from_rows(rows, "rmb", "rmb", "rm-bench")
    result = evaluate({"m": qwen}, [eval_set], n_bootstrap=50)[0]["results"]["m"]["rmb"]
    section = result["rm_bench"]
    pairs = [
        as_conversation({"prompt": r["prompt"], "chosen": r["chosen"][i], "rejected": r["rejected"][j]})
        for r in rows
        for i in range(3)
        for j in range(3)
    ]
    scores = qwen.score_pair_rows(pairs)
    right = (np.array(scores.rewards_chosen) > np.array(scores.rewards_rejected)).reshape(5, 3, 3)
    for name, members in (("chat", slice(0, 3)), ("safety", slice(3, 5))):
        matrix = right[members].mean(0)
        assert section["domains"][name]["hard"] == pytest.approx(matrix[np.triu_indices(3, 1)].mean())
        assert section["domains"][name]["easy"] == pytest.approx(matrix[np.tril_indices(3, -1)].mean())
        assert section["domains"][name]["normal"] == pytest.approx(np.diag(matrix).mean())
    for key in ("easy", "normal", "hard", "accuracy"):
        assert section[key] == pytest.approx(np.mean([section["domains"][d][key] for d in ("chat", "safety")]))
    assert set(section["difficulty_baselines"]) == {"easy", "normal", "hard"}
    # The pairwise report is still there, as with the rm-bench mapping before.
    assert result["n_evaluated"] == 45 and "accuracy" in result
    rows[1]["rejected"] = rows[1]["rejected"][:2]
    with pytest.raises(InvalidRowError, match="row 1, field 'rejected': has 2 responses; RM-Bench compares 3"):
        eval_set_from_rows(rows, "rmb", "rmb", "rm-bench")
    kept = eval_set_from_rows(rows, "rmb", "rmb", "rm-bench", skip_invalid_rows=True)
    assert len(kept.rows) == 36 and kept.mapping_stats["invalid_by_reason"] == {"not 3 styles": 1}


def test_rm_bench_files_by_glob_take_their_domain_from_the_file_name(qwen, tmp_path):
    rows = rm_bench_rows()
    for row in rows:
        del row["domain"]
    write_jsonl(tmp_path / "chat_filtered.jsonl", rows[:2])
    write_jsonl(tmp_path / "code_filtered.jsonl", rows[2:])
    eval_set = load_eval_set(str(tmp_path / "*_filtered.jsonl"), "rm-bench")
    assert {row["domain"] for row in eval_set.rows} == {"chat_filtered", "code_filtered"}
    section = evaluate({"m": qwen}, [eval_set], n_bootstrap=0)[0]["results"]["m"][eval_set.name]["rm_bench"]
    assert set(section["domains"]) == {"chat", "code"} and section["domains"]["code"]["prompts"] == 3
    with pytest.raises(RewardlabError, match="no file matches"):
        load_eval_set(str(tmp_path / "*.parquet"), "rm-bench")


def judgebench_rows():
    rows = []
    sources = ["mmlu-pro-law", "livebench-reasoning", "livebench-math", "livecodebench", "mmlu-pro-x"]
    for k, source in enumerate(sources):
        better, worse = f"the answer is {k} blue", f"the answer is {k + 1} green"
        a_first = k % 2 == 0
        rows.append(
            {
                "pair_id": f"p{k}",
                "original_id": k,
                "source": source,
                "question": f"question {k} ?",
                "response_model": "gpt-4o-2024-05-13",
                "response_A": better if a_first else worse,
                "response_B": worse if a_first else better,
                "label": "A>B" if a_first else "B>A",
            }
        )
    return rows


def test_judgebench_is_recognised_and_scored_as_one_game(qwen):
    eval_set = eval_set_from_rows(judgebench_rows(), "jb", "jb")
    assert eval_set.benchmark == "judgebench" and eval_set.chat
    result = evaluate({"m": qwen}, [eval_set], n_bootstrap=50)[0]["results"]["m"]["jb"]
    section = result["judgebench"]
    assert section["pairs"] == {"coding": 1, "knowledge": 2, "math": 1, "reasoning": 1}
    assert section["accuracy"] == pytest.approx(result["accuracy"]["value"])  # no tie among real rewards
    assert result["headline"]["metric"] == "JudgeBench accuracy"
    # The one-game decision: "A>B" only when A scores strictly higher, so a tie is right exactly when B is better.
    right = judgebench.decisions_correct([1.0, 1.0, 2.0, math.nan], [1.0, 1.0, 1.0, 0.0], ["a", "b", "b", "a"])
    np.testing.assert_array_equal(right[:3], [0.0, 1.0, 1.0])
    assert math.isnan(right[3])


def test_models_without_a_chat_template_read_benchmarks_as_plain_text(qwen):
    tok = make_tokenizer("bert")
    tok.chat_template = None
    plain = RewardModel(make_model("bert", tok), tok)
    eval_set = eval_set_from_rows(judgebench_rows(), "jb", "jb")
    report, _ = evaluate({"chat": qwen, "plain": plain}, [eval_set], n_bootstrap=0)
    assert report["results"]["chat"]["jb"]["rendering"] == "chat template"
    assert report["results"]["plain"]["jb"]["rendering"] == "plain text"
    first = eval_set.rows[0]
    expected = plain.score([first["prompt"]], [first["chosen"]])[0]
    scores = plain.score_pair_rows([{k: first[k] for k in ("prompt", "chosen", "rejected")}])
    assert scores.rewards_chosen[0] == pytest.approx(expected, abs=1e-5)
    assert report["leaderboard"]["rows"]["plain"]["jb"]["value"] is not None


def test_ranked_rows_get_best_of_k_with_the_tie_rule(qwen):
    rows = [
        {"prompt": "sky ?", "responses": [" blue", " green", " red"], "scores": [2, 1, 0]},
        {"prompt": "city ?", "responses": [" paris", " rome", " paris"], "scores": [1, 0, 1]},
    ]
    eval_set = eval_set_from_rows(rows, "ranked", "ranked")
    result = evaluate({"m": qwen}, [eval_set], n_bootstrap=0)[0]["results"]["m"]["ranked"]
    rewards = qwen.score_rankings(rows).rewards
    expected = np.mean([best_of_n(rewards[0]), (2 / 2 if max(rewards[1]) == rewards[1][0] else 0.0)])
    assert result["best_of_k"]["accuracy"] == pytest.approx(expected)
    assert result["best_of_k"]["baselines"]["chance"] == pytest.approx(np.mean([1 / 3, 2 / 3]))
    assert result["n_evaluated"] == 5  # the comparisons, as before: 3 in the first row, 2 in the second


def test_pairwise_reports_carry_baselines_per_category_and_the_summary_line(saved_qwen, tmp_path, capsys):
    pairs = [
        {"prompt": f"q {k} ?", "chosen": WORDS[k % 8] + " and more words" * (k % 2), "rejected": WORDS[(k + 1) % 8]}
        for k in range(12)
    ]
    for k, row in enumerate(pairs):
        row["topic"] = "a" if k % 2 else "b"
    source = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    rb2 = write_jsonl(tmp_path / "rb2.jsonl", rb2_rows())
    out = tmp_path / "report"
    args = ["eval", "--compare", saved_qwen, saved_qwen, "--dataset", source, "--dataset", rb2]
    args += ["--mapping", "layout=pairs,prompt=prompt,category=topic", "--mapping", "rewardbench2"]
    assert main([*args, "--output_dir", str(out), "--n_bootstrap", "50"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    names = [d["name"] for d in report["datasets"]]
    result = report["results"][f"A: {saved_qwen}"][names[0]]
    baselines = result["baselines"]
    lc, lr = result["length_bias"]["chosen_longer"], result["length_bias"]["chosen_shorter"]
    assert baselines["longer_wins"] == pytest.approx(lc["count"] / 12)  # equal lengths: a tie, not correct
    assert baselines["shorter_wins"] == pytest.approx(lr["count"] / 12) and baselines["chance"] == 0.5
    assert result["categories"]["a"]["baselines"]["chance"] == 0.5
    line = next(line for line in printed.splitlines() if f"| {names[0]}: accuracy" in line)
    assert f"best content-blind rule: {baselines['best'].replace('_', ' ')} " in line and "; lead " in line
    assert "leaderboard" in printed and printed.count(saved_qwen) >= 4
    board = report["leaderboard"]
    assert [c["metric"] for c in board["columns"]] == ["accuracy", "RewardBench 2 score"]
    assert set(board["rows"]) == {f"A: {saved_qwen}", f"B: {saved_qwen}"}
    assert "all data sets" not in report["results"][f"A: {saved_qwen}"]  # one pairwise set only


def test_content_blind_rules_compare_real_lengths_not_truncated_ones():
    tok = make_tokenizer("qwen3")
    cut = RewardModel(make_model("qwen3", tok), tok, max_length=8)
    rows = [{"prompt": "q ?", "chosen": " blue" * 30, "rejected": " green" * 20}]
    result = evaluate({"m": cut}, [eval_set_from_rows(rows, "p", "p")], n_bootstrap=0)[0]["results"]["m"]["p"]
    assert result["length_bias"]["equal_length"]["count"] == 1  # as scored, both were cut to max_length
    assert result["baselines"]["longer_wins"] == 1.0 and result["baselines"]["shorter_wins"] == 0.0


def test_hub_ids_read_the_benchmark_split(monkeypatch, qwen):
    seen = []

    def fake_load(source):
        seen.append(source)
        rows = rb2_rows()
        return DatasetDict({"train": Dataset.from_list(rows[:3]), "test": Dataset.from_list(rows)})

    monkeypatch.setattr(sets, "load_preference_data", fake_load)
    eval_set = load_eval_set("allenai/reward-bench-2", "rewardbench2")
    assert seen == ["allenai/reward-bench-2"] and len(eval_set.prompts) == len(rb2_rows())
    eval_set = load_eval_set("allenai/reward-bench-2", "rewardbench2", split="train")
    assert len(eval_set.prompts) == 3


def test_an_ensemble_scores_each_prompt_with_its_members_mean(qwen):
    tok = make_tokenizer("llama")
    other = RewardModel(make_model("llama", tok), tok)
    ensemble = RewardEnsemble([qwen, other], center=False)
    ranked = [{"prompt": "sky ?", "responses": [" blue", " green", " blue"]}]
    scores = ensemble.score_rankings(ranked)
    members = [np.array(member.score_rankings(ranked).rewards[0]) for member in (qwen, other)]
    np.testing.assert_allclose(scores.rewards[0], (members[0] + members[1]) / 2, atol=1e-5)  # threads may differ
    assert scores.rewards[0][0] == scores.rewards[0][2] and len(scores.std[0]) == 3
    eval_set = eval_set_from_rows(rb2_rows(), "rb2", "rb2")
    section = evaluate({"e": ensemble}, [eval_set], n_bootstrap=0)[0]["results"]["e"]["rb2"]["rewardbench2"]
    assert section["score"] is not None
    plain_tok = make_tokenizer("bert")
    plain_tok.chat_template = None
    mixed = RewardEnsemble([qwen, RewardModel(make_model("bert", plain_tok), plain_tok)], center=False)
    with pytest.raises(RewardlabError, match="some ensemble members have a chat template and some do not"):
        evaluate({"e": mixed}, [eval_set], n_bootstrap=0)
