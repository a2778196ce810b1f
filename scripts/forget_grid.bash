#!/usr/bin/env bash
# The paper's method grid on this node (or a SLURM cluster): a thin wrapper over `safeeraser run`, which
# unlearns, answers, judges and writes the report, its steps side by side on the visible GPUs (Ray tasks:
# each unlearning run on GPUS_PER_RUN GPUs under `accelerate launch`, each inference on one).
#
#   bash scripts/forget_grid.bash                                   # llava7b.yaml's grid on every GPU here
#   METHODS="gdpd klpd popd" LRS="1e-4 2e-4" bash scripts/forget_grid.bash num_epochs=5
#   CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 GPUS_PER_RUN=2 bash scripts/forget_grid.bash   # 4 unlearning runs at a time
#   LAUNCHER=slurm bash scripts/forget_grid.bash -- launcher.partition=gpu
#   DRY_RUN=1 bash scripts/forget_grid.bash                         # the plan; no GPU needed
#
# Environment (all optional):
#   EXPERIMENT         experiment config (default llava7b.yaml)
#   METHODS            methods (default: the experiment's)
#   LRS                learning rates: one `safeeraser run` each, named <name>-lr<LR> (default: the experiment's)
#   SEEDS              unlearning seeds (default: the experiment's)
#   GPUS_PER_RUN       GPUs of one unlearning run (default 2, the reference's); more than 1: accelerate launch
#   ACCELERATE_CONFIG  the accelerate config of those runs (default config/accelerate/multi_gpu.yaml)
#   TRAIN_CONFIG       training config (default: the experiment's forget_config)
#   LAUNCHER           ray (default: Ray on this node, whose GPUs are CUDA_VISIBLE_DEVICES), slurm or local
#   PYTHON             python that can import safeeraser (default .venv/bin/python if present, else python)
#   DRY_RUN=1          print each step (its GPUs, its output, done or to do) instead of running anything
# key=value arguments are training-config overrides of every run; the grid's own axes may be given that
# way too (`lr=2e-4` is LRS=2e-4, `forget_loss=gdpd` is METHODS=gdpd; an axis set both ways is an error).
# Arguments after `--` go to `safeeraser run` as they are (experiment overrides, e.g. launcher.address=auto).
# Finished steps are reused and interrupted unlearning runs resume (the steps' hash-named folders under
# the experiment's workdir); a failed step is named with its log and the exit status is 1.
# No longer used: BASE_PORT (each GPU group takes a free port), LOG_DIR (each step logs in
# <workdir>/logs), MIXED_PRECISION (the accelerate config's), ACCELERATE_BIN (this python's accelerate).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

train_args=() run_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; run_args=("$@"); break ;;
        lr=*|forget_loss=*)
            key=${1%%=*} value=${1#*=}
            if [ "$key" = lr ]; then var=LRS; else var=METHODS; fi
            if [ -n "${!var:-}" ] && [ "${!var}" != "$value" ]; then
                echo "error: $1 and $var=${!var} both set the grid's $key: give one" >&2; exit 2
            fi
            printf -v "$var" '%s' "$value" ;;
        save_dir=*) echo "error: $1: each run's folder is named by the pipeline, under the experiment's workdir" >&2
                    exit 2 ;;
        *=*) train_args+=("$1") ;;
        *) echo "error: '$1' is not key=value (experiment options go after --)" >&2; exit 2 ;;
    esac
    shift
done
for var in BASE_PORT LOG_DIR MIXED_PRECISION ACCELERATE_BIN; do
    [ -z "${!var:-}" ] || echo "note: $var is no longer used (see the header of $0)" >&2
done
EXPERIMENT="${EXPERIMENT:-llava7b.yaml}"
LAUNCHER="${LAUNCHER:-ray}"
GPUS_PER_RUN="${GPUS_PER_RUN:-2}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi

overrides=("launcher.gpus_per_run=$GPUS_PER_RUN")
[ -z "${METHODS:-}" ] || overrides+=("methods=[$(echo $METHODS | tr ' ' ',')]")
[ -z "${SEEDS:-}" ] || overrides+=("seeds=[$(echo $SEEDS | tr ' ' ',')]")
[ -z "${TRAIN_CONFIG:-}" ] || overrides+=("forget_config=$TRAIN_CONFIG")
[ -z "${ACCELERATE_CONFIG:-}" ] || overrides+=("launcher.accelerate_config=$ACCELERATE_CONFIG")

# The experiment's own training overrides, then the arguments', then the lr: one list override; and the
# name of a run at one lr of several, so that each writes its own report.
grid_overrides() {  # grid_overrides LR(or "") -> one override per line
    "$PYTHON" - "$EXPERIMENT" "$1" "${#train_args[@]}" "${train_args[@]+"${train_args[@]}"}" \
        "${run_args[@]+"${run_args[@]}"}" <<'EOF'
import sys
from safeeraser.pipeline.experiment import load_experiment
experiment, lr, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
train, run = sys.argv[4:4 + n], sys.argv[4 + n:]
cfg = load_experiment(experiment, [a for a in run if "=" in a])
quote = lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${") + "'"
items = [*cfg.forget_overrides, *train, *([f"lr={lr}"] if lr else [])]
print("forget_overrides=[" + ",".join(quote(x) for x in items) + "]")
if lr:
    print(f"name={cfg.name}-lr{lr}")
EOF
}

status=0
for lr in ${LRS:-_}; do  # _: the experiment's own lr
    [ "$lr" != _ ] || lr=""
    mapfile -t grid < <(grid_overrides "$lr")
    [ "${#grid[@]}" -gt 0 ] || exit 2  # the experiment could not be read: its error is above
    cmd=("$PYTHON" -m safeeraser.cli run --config "$EXPERIMENT" --launcher "$LAUNCHER")
    [ "${DRY_RUN:-0}" != 1 ] || cmd+=(--dry-run)
    cmd+=("${overrides[@]}" "${grid[@]}" "${run_args[@]+"${run_args[@]}"}")
    echo "+ ${cmd[*]}" >&2
    "${cmd[@]}" || status=1
done
exit $status
