"""RMU (Li et al. 2024, the WMDP paper): steer a language-model layer's activations on the forget inputs
towards a scaled fixed random direction, and keep them at the frozen model's on the retain inputs.
Arguments: `layer` (default a quarter of the depth: the paper's 7 of 32), `steering` (the scale c of the
random direction; the paper's 6.5 for a 7B model whose activations have norms of that order) and
`alpha` (the retain weight; the paper's 1200)."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("rmu", (Term("forget", "forget", "rmu_forget", 1.0), Term("retain", "retain", "rmu_retain", 1.0)),
                pd_weight=1.0, args={"layer": None, "steering": 6.5, "alpha": 1200.0},
                arg_bounds={"layer": "int >= 1", "steering": "> 0", "alpha": ">= 0"})
