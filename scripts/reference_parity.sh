#!/bin/bash
# Reference mode against the SafeEraser code itself (outside CI; ~5 minutes on 2 CPU cores).
#
#   scripts/reference_parity.sh REFERENCE_CHECKOUT [WORK]
#
# REFERENCE_CHECKOUT: a checkout of the SafeEraser repository, unmodified (nothing in it is edited).
# REFERENCE_PYTHON:   a Python with the reference's stack; made by `scripts/reference_parity.sh --make-venv DIR`
#                     (torch 2.13 CPU, transformers 4.46.3, peft 0.13.2, accelerate 0.34.2, deepspeed 0.14.2).
# It builds our tiny LLaVA, writes it in the transformers-4 layout (bit-identical weights), writes the
# parity case (one record whose every random draw gives the same example), runs the reference's forget.py
# for all eight losses at step 0 (with and without a shared perturbation of the trainable weights) and
# its eval_all.py against a scripted judge, runs ours in reference mode on the same, prints the table and,
# when everything agrees, rewrites tests/fixtures/reference_parity.json (what CI checks reference mode by).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
if [ "${1:-}" = "--make-venv" ]; then
  DIR=${2:?usage: reference_parity.sh --make-venv DIR}
  python3.11 -m venv "$DIR"
  "$DIR/bin/pip" install -q torch==2.13.0
  "$DIR/bin/pip" install -q transformers==4.46.3 peft==0.13.2 accelerate==0.34.2 deepspeed==0.14.2 hydra-core \
      omegaconf matplotlib datasets scipy rouge_score "numpy<2" pillow requests
  # datasets' newest pyarrow needs numpy 2; the reference's stack pins numpy 1
  "$DIR/bin/pip" install -q --no-deps --target "$DIR/extra_site" pyarrow==21.0.0
  echo "export REFERENCE_PYTHON=$DIR/bin/python"
  exit 0
fi
REF=$(cd "${1:?usage: reference_parity.sh REFERENCE_CHECKOUT [WORK]}" && pwd)
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)
RPY=${REFERENCE_PYTHON:?set REFERENCE_PYTHON (scripts/reference_parity.sh --make-venv DIR prints it)}
S=$ROOT/scripts/reference_parity
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
echo "work folder: $WORK"
"$PY" -c "from safeeraser.models.tiny import make_tiny; make_tiny('$WORK/ours-tiny-llava', 'llava', size='tiny', seed=0)" >/dev/null
"$PY" -c "import sys; sys.path.insert(0, '$S'); import perturb; perturb.seed_pad_embedding('$WORK/ours-tiny-llava')"
"$RPY" "$S/export_legacy.py" "$WORK/ours-tiny-llava" "$WORK/tiny-llava-legacy" --ours-python "$PY"
"$PY" "$S/case.py" "$WORK/case" >/dev/null
"$PY" -c "import sys; sys.path.insert(0, '$S'); import case; case.write_judge_case('$WORK/case')"
ln -sfn "$REF/config" "$WORK/case/config"   # the reference reads ./config/model_config.yaml from its cwd
"$RPY" "$S/run_reference.py" --ref "$REF" --work "$WORK/case" --model "$WORK/tiny-llava-legacy" --all
"$RPY" "$S/run_reference.py" --ref "$REF" --work "$WORK/case" --model "$WORK/tiny-llava-legacy" --loss gdpd \
    --data dataset/uneven.json --expect-error --epochs 2 --out "$WORK/case/reference/uneven_gdpd.json" || true
"$RPY" "$S/infer_prompt_reference.py" --ref "$REF" --model "$WORK/tiny-llava-legacy" \
    --out "$WORK/case/reference/infer_prompt.json" 2>/dev/null
"$RPY" "$S/run_judge_reference.py" --ref "$REF" --work "$WORK/case" --answers "$WORK/case/judge/answers.json" \
    --refer "$WORK/case/judge/refer.json" --replies "$WORK/case/judge/replies.json" \
    --out "$WORK/case/reference/judge.json"
"$PY" "$S/run_ours.py" --model "$WORK/ours-tiny-llava" --work "$WORK/case" --reference-dir "$REF" \
    --out "$WORK/ours.json" > "$WORK/ours.log" 2>&1
"$PY" "$S/record.py" --work "$WORK/case" --reference-dir "$REF" --ours "$WORK/ours.json" \
    --model "$WORK/ours-tiny-llava" --fixture "$ROOT/tests/fixtures/reference_parity.json"
