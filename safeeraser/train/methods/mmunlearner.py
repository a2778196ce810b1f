"""MMUnlearner (Huo et al. 2025): gradient ascent on the forget answers and descent on the retain answers,
restricted to the weights that matter more to the forget set than to the retain set: a weight may change
when its Fisher information on forget over that on retain is at least `threshold` (default 1; see
train/importance/fisher.py); every other trainable weight stays bit-identical. It restricts the model's
own weights, so it trains with LoRA.r=0 and the parts to tune (tune_language_model, tune_vision_tower).
Where it departs from MMUnlearner's code: both terms are summed in each step (its code steps on retain
every batch and on forget every R/F batches) and the mask restricts the whole update, retain's too (one
backward per step, which DDP needs); both sides are scored against the same retain view (its code scores
the language side against text-only knowledge as well, which SafeEraser does not have)."""
from safeeraser.train.importance import names_for
from safeeraser.train.methods.base import Method, Term

METHOD = Method("mmunlearner", (Term("forget", "forget", "nll", -1.0), Term("retain", "retain", "nll", 1.0)),
                pd_weight=1.0, importance="fisher", importance_views=("forget", "retain"), restriction="mask",
                args={"threshold": 1.0, "importance": "fisher"},
                arg_bounds={"threshold": "> 0",
                            "importance": names_for("weights")})
