"""SimNPO (Fan et al. 2024): reference-free, length-normalised NPO, plus retain NLL. The forget term is
weighted 0.125, open-unlearning's default and within the authors' TOFU settings (0.125-0.1375): at weight 1
its gradient swamps the retain term's from the first step. Arguments: `beta` (2.5) and the margin `gamma`
(0.0); the older top-level keys simnpo_beta and simnpo_gamma are still read."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("simnpo", (Term("simnpo", "forget", "simnpo", 0.125), Term("retain", "retain", "nll", 1.0)),
                pd_weight=1.0, args={"beta": 2.5, "gamma": 0.0}, arg_bounds={"beta": "> 0", "gamma": ">= 0"})
