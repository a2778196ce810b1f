"""Negative preference optimisation (Zhang et al. 2024) on the forget set, plus retain NLL."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("npo", (Term("npo", "forget", "npo", 1.0), Term("retain", "retain", "nll", 1.0)), pd_weight=1.0)
