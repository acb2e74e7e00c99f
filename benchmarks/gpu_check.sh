#!/usr/bin/env bash
# The GPU check of the fast path, on one CUDA GPU, in under 10 minutes:
#   1. the CUDA kernel tests (FlashAttention varlen against the reference; bf16 models on the fast path, exact
#      within bf16 rounding against the padded computation), then
#   2. bf16 training throughput, MFU (against the GPU's data-sheet bf16 peak) and GPU peak memory of rewardlab vs
#      TRL 1.16 on SmolLM2-135M's shape and on a ~0.5B Qwen3 (Qwen3-0.6B's shape), both built from configs, on the
#      bundled HH-RLHF pairs, batch 16, max_length 2048, TRL with flash_attention_2 when flash-attn is installed
#      (else SDPA); the ratios are printed;
#   3. when vLLM is installed, its pooling runner's raw rewards against rewardlab's on the same token ids.
#
# Run from the repository root: bash benchmarks/gpu_check.sh
# It needs torch with CUDA, transformers>=5.18, datasets, accelerate, peft and trl==1.16.0. A machine without some
# of them can take them as wheels: put them in .whl/ and they are installed first.
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
      "| vllm:", importlib.util.find_spec("vllm") is not None)
PY
step "1. CUDA kernel tests" 240 $python -m pytest -q -p no:cacheprovider tests/test_varlen.py tests/test_fast_path.py \
    -k "cuda or CUDA or equals_padded"
for model in smollm2-config qwen3-0.5b; do
    step "2. bf16 training throughput vs TRL 1.16, $model (batch 16, max_length 2048)" 240 \
        $python benchmarks/train_throughput.py --model "$model" --device cuda --dtype bfloat16 \
        --batch_size 16 --max_length 2048 --steps "${STEPS:-20}" --repeats "${REPEATS:-1}" \
        --data src/rewardlab/demo_data/hh-rlhf-harmless-base-test.jsonl.gz
done
step "3. rewardlab vs vLLM's pooling runner on the same token ids (skipped without vLLM)" 240 \
    $python benchmarks/vllm_check.py --texts 64
if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all steps passed"
