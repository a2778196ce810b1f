"""UNDIAL (Dong et al. 2024): self-distillation from the adapter-disabled model with the harmful answer
token's logit lowered by `strength` (default 3.0), on the forget answers, plus the retain NLL."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("undial", (Term("undial", "forget", "undial", 1.0), Term("retain", "retain", "nll", 1.0)),
                pd_weight=1.0, args={"strength": 3.0}, arg_bounds={"strength": "> 0"})
