"""UNDIAL (Dong et al. 2024): self-distillation from the adapter-disabled model with the harmful answer
token's logit lowered by `strength` (default 3.0), on the forget answers. No retain term, as the paper and
open-unlearning (which aim to keep everything, not only a retain set); `loss_weights.retain=1` adds the
retain NLL, this toolkit's earlier default."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("undial", (Term("undial", "forget", "undial", 1.0), Term("retain", "retain", "nll", 0.0)),
                pd_weight=1.0, args={"strength": 3.0}, arg_bounds={"strength": "> 0"})
