#!/usr/bin/env bash
# The GPU check, on one CUDA GPU in under 5 minutes (docs/performance.md, "On a GPU"):
#   1. correctness: tests/test_gpu.py (the official parity references on the GPU, bf16 against fp32 logits,
#      the flash / memory-efficient attention kernels, the fused and compiled training step, GPU decoding);
#   2. throughput: tools/benchmark_training.py --device cuda for timesformer_b (torch.compile), regionvit_s and
#      volo_d1 at 8x224 with the K400 configs (bf16 autocast, fused AdamW): training and inference clips/s,
#      peak memory and training MFU against the GPU's dense bf16 peak.
# Usage, after `make venv`:  bash tools/gpu_check.sh [REPORT_FILE (default gpu_check.txt)]
# Batches (meant to fill an 80 GB GPU; lower them on a smaller one): TIMESFORMER_BATCH, REGIONVIT_BATCH, VOLO_BATCH.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
REPORT=${1:-gpu_check.txt}
status=0
exec > >(tee "$REPORT") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || status=1
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_gpu.py || status=1
for spec in "timesformer_b ${TIMESFORMER_BATCH:-24} True" "regionvit_s ${REGIONVIT_BATCH:-32} False" \
            "volo_d1 ${VOLO_BATCH:-32} False"; do
  read -r model batch compile <<< "$spec"
  "$PYTHON" tools/benchmark_training.py --cfg "configs/K400/$model.yaml" --device cuda --batch-size "$batch" \
    --warmup 3 --iters 10 MODEL.COMPILE "$compile" || status=1
done
exit $status
