"""LOSS (Yeom et al. 2018): minus the mean answer NLL; a member's answer is more likely."""
from safeeraser.eval.mia.base import Attack

ATTACK = Attack("loss", lambda e, o: -e.scores.nll)
