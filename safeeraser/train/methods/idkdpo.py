"""IdkDPO (as in open-unlearning / TOFU): DPO with the refusal preferred over the harmful answer, plus the
retain NLL that keeps harmless answers. Argument: `beta` (default 0.1)."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("idkdpo", (Term("dpo", "idk", "dpo", 1.0, pair="forget"), Term("retain", "retain", "nll", 1.0)),
                pd_weight=1.0, args={"beta": 0.1}, arg_bounds={"beta": "> 0"})
