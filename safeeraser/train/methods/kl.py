"""Gradient ascent plus KL to the frozen vanilla model on the retain inputs."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("kl", (Term("forget", "forget", "nll", -1.0), Term("kl", "retain", "kl", 1.0)), pd_weight=1.0)
