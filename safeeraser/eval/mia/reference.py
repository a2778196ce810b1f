"""Reference model (Carlini et al. 2022's calibration, MUSE's "Ref"): the answer's NLL under a reference
model that never saw it (the base model, or a retain-only model) minus its NLL under the model attacked:
a member is likelier to the model attacked than its general likelihood explains."""
from safeeraser.eval.mia.base import Attack

ATTACK = Attack("reference", lambda e, o: e.reference.nll - e.scores.nll, needs=frozenset({"reference"}))
