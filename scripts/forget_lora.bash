#!/usr/bin/env bash
# LoRA unlearning of LLaVA-1.5 on one node, as the reference's scripts/forget_lora.bash: one process
# per visible GPU, launched by accelerate with config/accelerate_config.yaml (DeepSpeed ZeRO-2, CPU
# optimizer offload, bf16).
#
#   bash scripts/forget_lora.bash                            # the defaults of config/forget_lora.yaml
#   bash scripts/forget_lora.bash forget_loss=gdpd lr=2e-4   # any key=value of the training config
#   CUDA_VISIBLE_DEVICES=2,3 MASTER_PORT=29512 bash scripts/forget_lora.bash forget_loss=klpd
#   ACCELERATE_CONFIG=config/accelerate/deepspeed_zero3.yaml bash scripts/forget_lora.bash forget_loss=klpd
#
# Environment (all optional):
#   CUDA_VISIBLE_DEVICES  GPUs to use, one process each (default 0,1, the reference's two)
#   NUM_PROCESSES         processes (default: the number of GPUs in CUDA_VISIBLE_DEVICES)
#   MASTER_PORT           accelerate's --main_process_port (default 29505); concurrent runs on one
#                         node need different ports (scripts/forget_grid.bash gives each its own)
#   ACCELERATE_CONFIG     accelerate config (default config/accelerate_config.yaml); see config/accelerate/
#   TRAIN_CONFIG          training config (default forget_lora.yaml)
#   MIXED_PRECISION       passed as --mixed_precision (default bf16); empty: the accelerate config's own
#   ACCELERATE_BIN        the accelerate command (default: accelerate on PATH, else .venv/bin/accelerate)
#   PYTHON                python that checks the accelerate config first (default .venv/bin/python, else python)
#   DRY_RUN=1             print the command instead of running it
#
# batch_size and gradient_accumulation_steps come from the training config only (per process:
# the global batch is batch_size x gradient_accumulation_steps x processes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0,1}"
IFS=, read -r -a _gpus <<< "$CUDA_VISIBLE_DEVICES"
NUM_PROCESSES="${NUM_PROCESSES:-${#_gpus[@]}}"
[ "$NUM_PROCESSES" -ge 1 ] || NUM_PROCESSES=1
MASTER_PORT="${MASTER_PORT:-29505}"
ACCELERATE_CONFIG="${ACCELERATE_CONFIG:-config/accelerate_config.yaml}"
TRAIN_CONFIG="${TRAIN_CONFIG:-forget_lora.yaml}"
MIXED_PRECISION="${MIXED_PRECISION-bf16}"
if [ -z "${ACCELERATE_BIN:-}" ]; then
    ACCELERATE_BIN="$(command -v accelerate || true)"
    [ -n "$ACCELERATE_BIN" ] || ACCELERATE_BIN=.venv/bin/accelerate
fi

cmd=("$ACCELERATE_BIN" launch --config_file "$ACCELERATE_CONFIG" --num_processes "$NUM_PROCESSES"
     --main_process_port "$MASTER_PORT")
[ -n "$MIXED_PRECISION" ] && cmd+=(--mixed_precision "$MIXED_PRECISION")
cmd+=(forget.py --config-name "$TRAIN_CONFIG" "$@")

if [ "${DRY_RUN:-0}" = 1 ]; then
    echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES ${cmd[*]}"
    exit 0
fi
# accelerate fails with a traceback on a DeepSpeed config when DeepSpeed (the train extra) is missing: one line instead
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
"$PYTHON" -m safeeraser.train.deepspeed_check "$ACCELERATE_CONFIG" || exit 2
exec "${cmd[@]}"
