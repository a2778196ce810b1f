"""MIP-Editor (Li et al. 2025, multimodal influential neuron paths): find, per MLP layer of the language
model and of the vision tower, the `per_layer` units (default 5) that carry the forget answers
(train/importance/integrated_gradients.py: integrated gradients over `ig_steps` points for the language
layers, squared z-scores of the gradient for the vision layers), then edit only those units' input rows
(gate/up or fc1, weight and bias) with RMU's representation misdirection at a language layer: the forget
inputs' activations pushed towards `steering` times a random direction (MIP-Editor's c = 10), the retain
inputs' kept at the frozen model's (`alpha`), both terms weighted 0.5 as its alpha = beta = 0.5. Every
other weight stays bit-identical. It edits the model's own weights: LoRA.r=0 with the parts whose units
train tuned (tune_language_model, tune_vision_tower); RMU's retain side reads a frozen copy of the model.
Where it departs from MIP-Editor: the units are not zeroed (zeroing a unit leaves its rows nothing to
edit), and a layer's path is scored with the other layers as they are."""
from safeeraser.train.importance import names_for
from safeeraser.train.methods.base import Method, Term
from safeeraser.train.methods.rmu import RMU_POSITIONS

METHOD = Method("mip_editor", (Term("forget", "forget", "rmu_forget", 0.5), Term("retain", "retain", "rmu_retain", 0.5)),
                pd_weight=1.0, importance="integrated_gradients", importance_views=("forget",), restriction="units",
                args={"per_layer": 5, "ig_steps": 20, "layer": None, "steering": 10.0, "alpha": 1.0,
                      "positions": "question_answer", "importance": "integrated_gradients"},
                arg_bounds={"per_layer": "int >= 1", "ig_steps": "int >= 1", "layer": "int >= 0", "steering": "> 0",
                            "alpha": ">= 0", "positions": RMU_POSITIONS, "importance": names_for("units")})
