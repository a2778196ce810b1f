"""SimNPO (Fan et al. 2024): reference-free, length-normalised NPO, plus retain NLL."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("simnpo", (Term("simnpo", "forget", "simnpo", 1.0), Term("retain", "retain", "nll", 1.0)),
                pd_weight=1.0)
