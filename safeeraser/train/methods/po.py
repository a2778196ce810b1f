"""Preference optimisation as refusal tuning: learn refusals on the forget questions, keep retain."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("po", (Term("idk", "idk", "nll", 1.0), Term("retain", "retain", "nll", 1.0)), pd_weight=1.0,
                pool_terms=("idk", "retain"))
