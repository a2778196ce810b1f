"""RMU (Li et al. 2024, the WMDP paper): steer a language-model layer's activations on the forget inputs
towards a scaled fixed random direction, and keep them at the frozen model's on the retain inputs.
Arguments: `layer` (the decoder layer whose output is read, counted from 0 as WMDP's layer_id; default
the last of the first quarter: 7 of 32), `steering` (the scale c of the random direction; the paper's
6.5 for a 7B model whose activations have norms of that order), `alpha` (the retain weight; the paper's
1200) and `positions` (which forget tokens are steered: question_answer, answer or all; see
terms.rmu_positions). WMDP trains only the MLP down-projections of layers layer-2..layer:
`LoRA.target_modules=[down_proj] LoRA.target_layers=[5,6,7]` restricts LoRA to them."""
from safeeraser.train.methods.base import Method, Term

RMU_POSITIONS = ("question_answer", "answer", "all")  # terms.rmu_positions reads them

METHOD = Method("rmu", (Term("forget", "forget", "rmu_forget", 1.0), Term("retain", "retain", "rmu_retain", 1.0)),
                pd_weight=1.0, args={"layer": None, "steering": 6.5, "alpha": 1200.0, "positions": "question_answer"},
                arg_bounds={"layer": "int >= 0", "steering": "> 0", "alpha": ">= 0",
                            "positions": RMU_POSITIONS})
