#!/usr/bin/env bash
# One-shot GPU check (issue 17): random-weight 7B-shaped models in bf16, built on the GPU from their
# configs (nothing downloaded, no weights written to disk), measured with `safeeraser bench`:
#   - LLaVA-1.5-7B and Qwen2.5-VL-7B: LoRA unlearning step (gdpd, klpd; effective batch 16) tokens/s,
#     MFU and peak memory; inference new tokens/s, our engine against the reference way
#   - LLaVA only: vLLM new tokens/s when vLLM is importable (else recorded as not importable)
# then merged into ONE JSON by `python -m safeeraser.bench.gpu_check merge`, which judges the targets
# (step MFU >= 40%, inference >= 10x the reference way, klpd peak <= 1.1x gdpd), prints them and
# predicts the paper grid's wall time on one 8-GPU node from the figures (safeeraser.bench.grid_cost).
#
#   bash scripts/gpu_check.sh              # on an H100/H200: about 6-7 minutes, at most 8 (stage timeouts)
#   bash scripts/gpu_check.sh --dry        # the same stages, tiny shapes on the CPU (CI; numbers mean nothing)
#
# Environment: GPU_CHECK_OUT (default gpu_check.json), GPU_CHECK_WORKDIR (default gpu_check_work/: stage
# logs, the mini benchmark and the random models' configs; no weights),
# GPU_CHECK_DRY=1 (as --dry), GPU_CHECK_BATCH_SIZE (our micro-batch; default 4 on a GPU with >= 100 GiB,
# else 2: at 4 x 3 views of ~650 tokens, a 7B step's activations need ~75 GB besides 14 GB of weights),
# PYTHON (default: the repository's .venv, else python3).
#
# Time on one H100/H200 (estimated from FLOPs, not yet measured): a step is ~6.6e9 x 4 FLOPs per token x
# ~31k tokens (16 examples x 3 views x ~650 tokens) = ~8e14 FLOPs: ~2 s at 40% MFU; each configuration
# builds its model (~15 s) and runs 2 untimed + 3 timed steps. Inference: 96 answers x 128 tokens ours
# (~10 s), 6 answers the reference way (~25 ms a token: ~20 s). Each stage has a timeout; a stage that
# runs out is recorded as such in the JSON, and the rest still runs.
set -uo pipefail

DRY=${GPU_CHECK_DRY:-0}
for arg in "$@"; do
    case "$arg" in
        --dry) DRY=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$arg' (use --dry or nothing)" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
OUT=${GPU_CHECK_OUT:-gpu_check.json}
WORK=${GPU_CHECK_WORKDIR:-${OUT%.json}_work}  # small: the mini benchmark, configs, stage logs
mkdir -p "$WORK"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
STARTED=$(date +%s)

# Sizes: the only thing the dry run changes, with the device and the model shapes.
if [ "$DRY" = 1 ]; then
    DEVICE=(--device cpu --shapes tiny --threads 1)
    BATCH=${GPU_CHECK_BATCH_SIZE:-4}
    TRAIN=(--steps 1 --warmup_steps 0)
    INFER=(--prompts 2 --reference_prompts 1 --max_new_tokens 4 --infer_batch_size 2)
    VLLM=(--device cpu --shapes tiny --prompts 2 --max_new_tokens 4)
    T_LLAVA=240; T_QWEN=240; T_VLLM=60
else
    DEVICE=(--device cuda --shapes full)
    if [ -n "${GPU_CHECK_BATCH_SIZE:-}" ]; then
        BATCH=$GPU_CHECK_BATCH_SIZE
    else
        MEM_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -n1 | tr -dc 0-9)
        if [ -n "$MEM_MIB" ] && [ "$MEM_MIB" -ge 102400 ]; then BATCH=4; else BATCH=2; fi
    fi
    TRAIN=(--steps 3 --warmup_steps 2)
    INFER=(--prompts 32 --reference_prompts 2 --max_new_tokens 128 --infer_batch_size 32)
    VLLM=(--device cuda --shapes full --prompts 32 --max_new_tokens 128)
    T_LLAVA=210; T_QWEN=170; T_VLLM=80  # 460 s in all: the check ends within 8 minutes
fi
COMMON=(--methods gdpd,klpd --ways ours --effective_batch 16 --batch_size "$BATCH")

stage() {  # stage NAME TIMEOUT OUTFILE COMMAND...: run with a timeout (its whole process group), its
    local name=$1 limit=$2 out=$3; shift 3  # output to a log; exit code and seconds to a file for the merge
    local t0 rc tag
    tag=${name//[:\/]/_}
    t0=$(date +%s)
    echo "[gpu_check $(date +%H:%M:%S)] $name: started (timeout ${limit}s, log $WORK/$tag.log)" >&2
    timeout --kill-after=5 "$limit" "$@" > "$WORK/$tag.log" 2>&1
    rc=$?
    echo "$name $rc $(( $(date +%s) - t0 )) $out" > "$WORK/stage-$tag.txt"
    echo "[gpu_check $(date +%H:%M:%S)] $name: exit $rc after $(( $(date +%s) - t0 )) s" >&2
    if [ "$rc" -eq 0 ]; then grep -v "^Writing model shards" "$WORK/$tag.log"; else tail -n 25 "$WORK/$tag.log" >&2; fi
}
bench_stage() {  # bench_stage NAME TIMEOUT SHORT: one model's `safeeraser bench`, in its own work folder
    stage "$1" "$2" "$WORK/$3.json" "$PY" -m safeeraser.cli bench --model "$1" --sections train,infer \
        --workdir "$WORK/assets-$3" "${DEVICE[@]}" "${COMMON[@]}" "${TRAIN[@]}" "${INFER[@]}" --out "$WORK/$3.json"
}

if [ "$DRY" = 1 ]; then
    # On a CPU each stage uses one torch thread and nothing is shared: the two models run side by side.
    bench_stage llava-7b-random "$T_LLAVA" llava & bench_stage qwen2.5-vl-7b-random "$T_QWEN" qwen & wait
else
    # One GPU: one stage at a time, so that each measures the device alone.
    bench_stage llava-7b-random "$T_LLAVA" llava
    bench_stage qwen2.5-vl-7b-random "$T_QWEN" qwen
fi
stage vllm:llava-7b-random "$T_VLLM" "$WORK/vllm-llava.json" \
    "$PY" -m safeeraser.bench.gpu_check vllm --model llava-7b-random --workdir "$WORK/assets-llava" "${VLLM[@]}" \
    --out "$WORK/vllm-llava.json"

MERGE=(--out "$OUT" --started "$STARTED")
for f in "$WORK"/stage-*.txt; do
    read -r name rc secs out < "$f"
    MERGE+=(--stage "$name" "$rc" "$secs" "$out")
done
[ "$DRY" = 1 ] && MERGE+=(--dry)
"$PY" -m safeeraser.bench.gpu_check merge "${MERGE[@]}"
