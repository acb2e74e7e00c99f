#!/usr/bin/env bash
# The GPU check of the fast path, on one CUDA GPU, within 8 minutes (the steps' time limits add up to 460 s):
#   1. the CUDA kernel tests: FlashAttention varlen against the reference (forward and the bf16 gradients), bf16
#      models on the fast path exact within bf16 rounding against the padded computation, compiled layers and Liger
#      on CUDA;
#   2. the ablation on HH-RLHF pairs (Qwen3-0.6B's shape, built from its config with random weights, bf16 autocast,
#      batch 16, max_length 2048, 3 repeats): TRL 1.16 (padded; flash_attention_2 when flash-attn is installed,
#      else SDPA), rewardlab packed without prompt sharing, rewardlab with the prompt shared; pairs/s, MFU against
#      the GPU's data-sheet bf16 peak, GPU peak memory and the ratios;
#   3. a step that fills the GPU (batch 128 HH pairs, about 30k tokens per step): rewardlab eager, with compiled
#      layers, and with Liger's kernels when liger-kernel is installed; MFU;
#   4. the long-prompt case: prompts of 8k tokens with answers of at most 128 (benchmarks/long_prompts.py), TRL,
#      packed without sharing and shared, with gradient checkpointing for all three;
#   5. when vLLM is installed, its pooling runner's raw rewards against rewardlab's on the same token ids.
#
# Run from the repository root: bash benchmarks/gpu_check.sh
# It needs torch with CUDA, transformers>=5.18, datasets, accelerate, peft and trl==1.16.0 (liger-kernel and vllm
# optional). A machine without some of them can take them as wheels: put them in .whl/ and they are installed first.
set -uo pipefail  # every step runs, even after one fails; the summary at the end says which failed
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
    $python -m pip install -q --no-index --no-deps --no-compile --target /tmp/rewardlab-site .whl/*.whl || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/rewardlab-site"
fi
failed=()
step() {  # step NAME SECONDS COMMAND...: run COMMAND with a time limit, remember a failure
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    timeout "$limit" "$@" || failed+=("$name (exit $?)")
}
$python - <<'PY' || exit 1
import importlib, sys
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible"
missing = [m for m in ("transformers", "datasets", "accelerate", "peft", "trl") if importlib.util.find_spec(m) is None]
assert not missing, f"missing packages: {missing} (see the header of benchmarks/gpu_check.sh)"
import accelerate, datasets, peft, pyarrow, transformers, trl
print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}, transformers {transformers.__version__}, "
      f"trl {trl.__version__}, datasets {datasets.__version__}, accelerate {accelerate.__version__}, "
      f"peft {peft.__version__}, pyarrow {pyarrow.__version__}")
print("varlen_attn:", importlib.util.find_spec("torch.nn.attention.varlen") is not None,
      "| flash-attn:", importlib.util.find_spec("flash_attn") is not None,
      "| vllm:", importlib.util.find_spec("vllm") is not None,
      "| liger-kernel:", importlib.util.find_spec("liger_kernel") is not None)
PY
hh=src/rewardlab/demo_data/hh-rlhf-harmless-base-test.jsonl.gz
bench() {  # bench NAME SECONDS ARGS...: one train_throughput comparison on Qwen3-0.6B's shape in bf16
    local name=$1 limit=$2
    shift 2
    step "$name" "$limit" $python benchmarks/train_throughput.py --model qwen3-0.5b --device cuda --dtype bfloat16 \
        --data "$hh" "$@"
}
step "1. CUDA kernel tests" 70 $python -m pytest -q -p no:cacheprovider tests/test_varlen.py tests/test_fast_path.py \
    tests/test_compile.py -k "cuda or CUDA or equals_padded or compiled"
bench "2. ablation on HH pairs: TRL, packed without sharing, prompt shared (batch 16)" 160 \
    --variants trl,packed,rewardlab --batch_size 16 --max_length 2048 --steps "${STEPS:-12}" --repeats "${REPEATS:-3}"
filling=rewardlab,compiled
$python -c "import liger_kernel" 2>/dev/null && filling+=,liger
bench "3. a filling step (batch 128): eager, compiled layers, Liger when installed" 100 \
    --variants "$filling" --batch_size 128 --max_length 2048 --steps 6 --repeats 2
bench "4. 8k-token prompts, answers of at most 128 tokens: TRL, packed, shared (batch 2)" 90 \
    --variants trl,packed,rewardlab --long_prompts 8192 --max_length 8448 --batch_size 2 --steps 6 --repeats 1 \
    --gradient_checkpointing
step "5. rewardlab vs vLLM's pooling runner on the same token ids (skipped without vLLM)" 40 \
    $python benchmarks/vllm_check.py --texts 64
if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all steps passed"
