"""SMFA (2025, arXiv 2511.20196; no public code): a LoRA forgetting adapter trained to refuse the forget
questions (the refusal NLL on the idk view) while still answering the retain questions, and a second
LoRA adapter, the retain anchor, trained first on the retain answers alone. Their updates are merged
with a mask: where the forgetting update opposes the anchor's in sign and dominates it (|dW_f| > k * rho
* |dW_a|, rho the ratio of their norms; `k` default 1), it is dropped, so that forgetting does not undo
what the anchor says the model must keep (train/anchor_merge.py). The run saves the merged model as a
full model folder, the forgetting adapter beside it. Where it departs from the paper: the anchor trains on
every retain example of the data, not a few."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("smfa", (Term("refusal", "idk", "nll", 1.0), Term("retain", "retain", "nll", 1.0)),
                pd_weight=1.0, restriction="anchor_mask", anchor_terms=(Term("anchor", "retain", "nll", 1.0),),
                args={"k": 1.0}, arg_bounds={"k": "> 0"})
