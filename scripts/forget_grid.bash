#!/usr/bin/env bash
# The whole method grid on one node. The visible GPUs are split into groups of GPUS_PER_RUN; each
# group runs its share of the grid one run after another (scripts/forget_lora.bash, its own
# main_process_port), the groups side by side.
#
#   bash scripts/forget_grid.bash                                  # the paper's 8 methods at lr 1e-4
#   METHODS="gdpd klpd popd" LRS="1e-4 2e-4" bash scripts/forget_grid.bash num_epochs=5
#   CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 GPUS_PER_RUN=2 bash scripts/forget_grid.bash   # 4 runs at a time
#
# Environment (all optional):
#   METHODS               forget_loss values (default: ga gd kl po gapd gdpd klpd popd)
#   LRS                   learning rates (default 1e-4)
#   SEEDS                 seeds (default: the training config's); with SEEDS each save_dir gets _seed<N>
#   CUDA_VISIBLE_DEVICES  GPUs to use (default: every GPU nvidia-smi lists)
#   GPUS_PER_RUN          GPUs (processes) per run (default 2, the reference's)
#   BASE_PORT             group g launches with main_process_port BASE_PORT+g (default 29600)
#   LOG_DIR               one log per run (default ckpt_results/grid_logs)
#   ACCELERATE_CONFIG, TRAIN_CONFIG, MIXED_PRECISION, ACCELERATE_BIN: as in scripts/forget_lora.bash
#   PYTHON                python that can import safeeraser (default .venv/bin/python if present, else python)
#   DRY_RUN=1             print each run's command instead of running it
# Any key=value argument goes to every run. The grid's own axes may be given that way too:
# `lr=2e-4` is LRS=2e-4 and `forget_loss=gdpd` is METHODS=gdpd (an axis set both ways is an error,
# never a silent choice).
# A run whose save_dir holds run_complete.json is skipped; a run with checkpoints in its save_dir
# resumes from the latest one (resume_from_checkpoint=latest). Exit status 1 if any run failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# key=value arguments that name one of the grid's axes become that axis; the rest go to every run.
user_args=()
for arg in "$@"; do
    case "$arg" in
        lr=*|forget_loss=*)
            key=${arg%%=*} value=${arg#*=}
            if [ "$key" = lr ]; then var=LRS; else var=METHODS; fi
            if [ -n "${!var:-}" ] && [ "${!var}" != "$value" ]; then
                echo "error: $arg and $var=${!var} both set the grid's $key: give one" >&2; exit 2
            fi
            printf -v "$var" '%s' "$value" ;;
        *) user_args+=("$arg") ;;
    esac
done
set -- "${user_args[@]+"${user_args[@]}"}"
METHODS="${METHODS:-ga gd kl po gapd gdpd klpd popd}"
LRS="${LRS:-1e-4}"
SEEDS="${SEEDS:-}"
GPUS_PER_RUN="${GPUS_PER_RUN:-2}"
BASE_PORT="${BASE_PORT:-29600}"
LOG_DIR="${LOG_DIR:-ckpt_results/grid_logs}"
TRAIN_CONFIG="${TRAIN_CONFIG:-forget_lora.yaml}"
export TRAIN_CONFIG
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
if [ -z "${CUDA_VISIBLE_DEVICES:-}" ]; then
    CUDA_VISIBLE_DEVICES="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | paste -sd, - || true)"
    if [ -z "$CUDA_VISIBLE_DEVICES" ]; then
        # A dry run only prints commands: let it plan for the GPUs it would be given.
        if [ "${DRY_RUN:-0}" = 1 ]; then
            CUDA_VISIBLE_DEVICES="$(seq -s, 0 $(( GPUS_PER_RUN - 1 )))"
            echo "note: no GPU found; the dry run plans for CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES" >&2
        else
            echo "no GPU found: set CUDA_VISIBLE_DEVICES" >&2; exit 2
        fi
    fi
fi
IFS=, read -r -a gpus <<< "$CUDA_VISIBLE_DEVICES"
ngroups=$(( ${#gpus[@]} / GPUS_PER_RUN ))
[ "$ngroups" -ge 1 ] || { echo "${#gpus[@]} GPU(s) visible, GPUS_PER_RUN=$GPUS_PER_RUN" >&2; exit 2; }
(( ${#gpus[@]} % GPUS_PER_RUN == 0 )) || echo "note: $(( ${#gpus[@]} % GPUS_PER_RUN )) GPU(s) left idle" >&2
groups=()
for (( g = 0; g < ngroups; g++ )); do
    groups+=("$(IFS=,; echo "${gpus[*]:g*GPUS_PER_RUN:GPUS_PER_RUN}")")
done

# Every run of the grid: its key=value overrides, one line each.
runs=()
for lr in $LRS; do
    for seed in ${SEEDS:-_}; do
        for method in $METHODS; do
            line="forget_loss=$method lr=$lr"
            [ "$seed" = _ ] || line+=" seed=$seed"
            runs+=("$line")
        done
    done
done

save_dir_of() {  # the save_dir the training config resolves to for these overrides
    "$PYTHON" - "$TRAIN_CONFIG" "$@" <<'EOF'
import sys
from safeeraser.train.config import load_config
print(load_config(sys.argv[1], sys.argv[2:], validate_paths=False).save_dir)
EOF
}

run_one() {  # run_one GROUP_INDEX "overrides..." USER_ARGS...
    local g=$1 line=$2; shift 2
    local -a own
    read -r -a own <<< "$line"
    local save_dir
    save_dir="$(save_dir_of "$@" "${own[@]}")"
    if [[ "$line" == *" seed="* ]]; then
        save_dir="${save_dir}_seed${line##* seed=}"
        own+=("save_dir=$save_dir")
    fi
    if [ -f "$save_dir/run_complete.json" ]; then
        echo "skip (finished): $save_dir"
        return 0
    fi
    if compgen -G "$save_dir/checkpoint-*" > /dev/null; then
        own+=("resume_from_checkpoint=latest")
    fi
    local log
    log="$LOG_DIR/$(basename "$save_dir").log"
    if [ "${DRY_RUN:-0}" = 1 ]; then
        CUDA_VISIBLE_DEVICES="${groups[g]}" MASTER_PORT=$(( BASE_PORT + g )) DRY_RUN=1 \
            bash scripts/forget_lora.bash "$@" "${own[@]}"
        return 0
    fi
    mkdir -p "$LOG_DIR"
    echo "[group $g: GPUs ${groups[g]}] $line -> $save_dir (log: $log)"
    if CUDA_VISIBLE_DEVICES="${groups[g]}" MASTER_PORT=$(( BASE_PORT + g )) \
            bash scripts/forget_lora.bash "$@" "${own[@]}" > "$log" 2>&1; then
        echo "[group $g] done: $line"
    else
        echo "[group $g] FAILED: $line (see $log)" >&2
        return 1
    fi
}

worker() {  # worker GROUP_INDEX USER_ARGS...: runs i with i % ngroups == GROUP_INDEX, in order
    local g=$1; shift
    local failed=0 i
    for (( i = g; i < ${#runs[@]}; i += ngroups )); do
        run_one "$g" "${runs[i]}" "$@" || failed=1
    done
    return $failed
}

if [ "${DRY_RUN:-0}" = 1 ]; then
    for (( g = 0; g < ngroups; g++ )); do worker "$g" "$@"; done
    exit 0
fi
echo "${#runs[@]} runs on $ngroups group(s) of $GPUS_PER_RUN GPU(s): ${groups[*]}"
pids=()
for (( g = 0; g < ngroups; g++ )); do
    worker "$g" "$@" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
