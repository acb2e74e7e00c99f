"""A long-prompt preference set built from real text: HH-RLHF harmless pairs, each with a document of earlier
HH-RLHF helpful conversations prepended to its dialogue, so that every prompt is about `prompt_tokens` tokens long
while the answers stay short (at most `max_answer_tokens`). This is the case where computing the prompt once per
pair matters most: retrieval-augmented or long-context chat judged by its last reply.

    from long_prompts import long_prompt_pairs
    rows = long_prompt_pairs(tokenizer, n=64, prompt_tokens=2048)

Both files are the copies bundled with rewardlab, so the set is the same on every machine for one tokenizer.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parents[1] / "src/rewardlab/demo_data"
ANSWERS = DEMO_DATA / "hh-rlhf-harmless-base-test.jsonl.gz"
DOCUMENTS = DEMO_DATA / "hh-rlhf-helpful-base-test.jsonl.gz"
LAST_TURN = "\n\nAssistant:"
HEADER = "Earlier conversations, for reference:\n"


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def long_prompt_pairs(tokenizer, n: int, prompt_tokens: int, max_answer_tokens: int = 128) -> list[dict]:
    """`n` implicit-prompt pairs (`chosen`/`rejected` full texts) whose shared prompt is about `prompt_tokens` tokens
    of `tokenizer` and whose answers are at most `max_answer_tokens`; the same rows for the same arguments."""
    documents = tokenizer(" ".join(r["chosen"] for r in _rows(DOCUMENTS)), add_special_tokens=False)["input_ids"]
    out = []
    for row in _rows(ANSWERS):
        if len(out) == n:
            break
        cut = row["chosen"].rfind(LAST_TURN)
        if cut < 0 or row["chosen"] == row["rejected"] or row["rejected"][:cut] != row["chosen"][:cut]:
            continue
        dialogue = row["chosen"][:cut]
        answers = [r[cut:] for r in (row["chosen"], row["rejected"])]
        if max(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers) > max_answer_tokens:
            continue
        need = prompt_tokens - len(tokenizer(HEADER + dialogue, add_special_tokens=False)["input_ids"])
        if need <= 0:
            continue
        start = (len(out) * 7919) % (len(documents) - need)  # a different stretch of the documents per pair
        prefix = HEADER + tokenizer.decode(documents[start : start + need]) + "\n\n"
        out.append({"chosen": prefix + row["chosen"], "rejected": prefix + row["rejected"]})
    if len(out) < n:
        raise SystemExit(f"only {len(out)} pairs have answers of at most {max_answer_tokens} tokens; asked for {n}")
    return out
