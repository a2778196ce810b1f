"""MANU (Liu et al. 2025, modality-aware neuron unlearning): score the MLP neurons of the vision tower and
of the language model by how much more active they are on the forget inputs than on the retain inputs
(train/importance/activation.py: mean |a|, frequency, deviation and RMS, weighted `w_abs`, `w_freq`,
`w_var`, `w_rms`: 2, 0, 2, 2), then zero the top `ratio` (default 2%) of each modality's neurons: their
output rows and biases. No training: the run saves the pruned model (LoRA.r=0), which ckpt_infer.py loads
as a full model folder. It has no +PD variant: PD is a loss term, and MANU trains no loss."""
from safeeraser.train.importance import names_for
from safeeraser.train.methods.base import Method

METHOD = Method("manu", (), importance="activation", importance_views=("forget", "retain"), restriction="prune",
                no_pd="MANU trains no loss (it zeroes the selected neurons) and PD is a loss term",
                args={"ratio": 0.02, "w_abs": 2.0, "w_freq": 0.0, "w_var": 2.0, "w_rms": 2.0, "active": 0.1,
                      "importance": "activation"},
                arg_bounds={"ratio": "in (0, 1)", "w_abs": ">= 0", "w_freq": ">= 0", "w_var": ">= 0",
                            "w_rms": ">= 0", "active": "> 0",
                            "importance": names_for("neurons")})
