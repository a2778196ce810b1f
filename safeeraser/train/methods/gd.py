"""Gradient difference: gradient ascent on the forget set, descent on the retain set."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method(
    "gd",
    (Term("forget", "forget", "nll", -1.0), Term("retain", "retain", "nll", 1.0)),
    pd_weight=0.5,
    pd_overrides={"retain": 0.5},  # the reference's gdpd: -L_forget + 0.5 L_retain + 0.5 L_pd
)
