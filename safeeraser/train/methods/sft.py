"""Plain NLL on every target: the vanilla fine-tuning step, run by the same loop."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("sft", (Term("nll", "target", "nll", 1.0),),
                no_pd="sft is the vanilla fine-tune (it learns the benchmark), not an unlearning method")
