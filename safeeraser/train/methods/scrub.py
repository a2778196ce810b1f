"""SCRUB (Kurmanji et al. 2023): max steps move the model away from the vanilla (adapter-disabled)
teacher on the forget answers (−KL); min steps keep it with the teacher on the retain answers (+KL) and
keep their NLL. The paper alternates max and min epochs; here optimizer steps alternate, min first
(where the student still equals the teacher the KL has no gradient, so a max step first would do
nothing). The PD term, when added, is on every step."""
from safeeraser.train.methods.base import Method, Term

METHOD = Method("scrub", (Term("forget_kl", "forget", "kl", -1.0, period=2, offset=1),
                          Term("retain_kl", "retain", "kl", 1.0, period=2, offset=0),
                          Term("retain", "retain", "nll", 1.0, period=2, offset=0)), pd_weight=1.0)
