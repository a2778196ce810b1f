"""DPO as unlearning: the refusal (idk view) preferred over the harmful answer (forget view) of the same
question, against the adapter-disabled model as the reference. Argument: `beta` (default 0.1)."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("dpo", (Term("dpo", "idk", "dpo", 1.0, pair="forget"),), pd_weight=1.0, args={"beta": 0.1},
                arg_bounds={"beta": "> 0"})
