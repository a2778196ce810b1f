"""Weighted gradient ascent (Wang et al. 2025, "Rethinking LLM unlearning objectives"): gradient ascent
whose answer tokens are weighted by their probability to the power `beta` (default 1.0), plus the
retain NLL."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("wga", (Term("forget", "forget", "wga", 1.0), Term("retain", "retain", "nll", 1.0)),
                pd_weight=1.0, args={"beta": 1.0}, arg_bounds={"beta": ">= 0"})
