"""Gradient ascent: raise the NLL of the harmful answers."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("ga", (Term("forget", "forget", "nll", -1.0),), pd_weight=0.5)
