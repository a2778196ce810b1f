"""Negative preference optimisation (Zhang et al. 2024) on the forget set, plus retain NLL. Argument:
`beta` (default 0.1; the older top-level key npo_beta is still read)."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("npo", (Term("npo", "forget", "npo", 1.0), Term("retain", "retain", "nll", 1.0)), pd_weight=1.0,
                args={"beta": 0.1}, arg_bounds={"beta": "> 0"})
