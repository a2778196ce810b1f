"""Min-K%++ (Zhang et al. 2024): Min-K% of each token's log-probability standardised by its position's
distribution (eval/likelihood.py)."""
from safeeraser.eval.likelihood import min_k_plus_plus_score
from safeeraser.eval.mia.base import Attack

ATTACK = Attack("min_k_plus_plus", lambda e, o: min_k_plus_plus_score(e.scores, o["k"]))
