#!/usr/bin/env bash
# The GPU check of the fast path, on one CUDA GPU, in under 10 minutes:
#   1. the CUDA kernel tests (FlashAttention varlen against the reference; bf16 models on the fast path, exact
#      within bf16 rounding against the padded computation), then
#   2. bf16 training throughput and GPU peak memory of rewardlab vs TRL 1.16 on SmolLM2-135M's shape and on a
#      ~0.5B Qwen3 (Qwen3-0.6B's shape), both built from configs, on the bundled HH-RLHF pairs, batch 16,
#      max_length 2048, TRL with flash_attention_2 when flash-attn is installed (else SDPA); the ratios are printed;
#   3. when vLLM is installed, its pooling runner's raw rewards against rewardlab's on the same token ids.
#
# Run from the repository root: bash benchmarks/gpu_check.sh
# It needs torch with CUDA, transformers>=5.18, datasets, accelerate, peft and trl==1.16.0. A machine without some
# of them can take them as wheels: put them in .whl/ (see the device tool's notes) and they are installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
    $python -m pip install -q --no-index --no-deps --no-compile --target /tmp/rewardlab-site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/rewardlab-site"
fi
$python - <<'PY'
import importlib, sys
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible"
missing = [m for m in ("transformers", "datasets", "accelerate", "peft", "trl") if importlib.util.find_spec(m) is None]
assert not missing, f"missing packages: {missing} (see the header of benchmarks/gpu_check.sh)"
import transformers, trl
print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}, transformers {transformers.__version__}, trl {trl.__version__}")
print("varlen_attn:", importlib.util.find_spec("torch.nn.attention.varlen") is not None,
      "| flash-attn:", importlib.util.find_spec("flash_attn") is not None)
PY
echo "== 1. CUDA kernel tests"
$python -m pytest -q -p no:cacheprovider tests/test_varlen.py tests/test_fast_path.py -k "cuda or CUDA or equals_padded"
echo "== 2. bf16 training throughput vs TRL 1.16 (batch 16, max_length 2048)"
for model in smollm2-config qwen3-0.5b; do
    $python benchmarks/train_throughput.py --model "$model" --device cuda --dtype bfloat16 \
        --batch_size 16 --max_length 2048 --steps 8 --repeats 1 \
        --data src/rewardlab/demo_data/hh-rlhf-harmless-base-test.jsonl.gz
done
echo "== 3. rewardlab vs vLLM's pooling runner on the same token ids (skipped without vLLM)"
$python benchmarks/vllm_check.py --texts 64
