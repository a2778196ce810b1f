"""Min-K% (Shi et al. 2024): the mean of the k% lowest answer-token log-probabilities (eval/likelihood.py)."""
from safeeraser.eval.likelihood import min_k_score
from safeeraser.eval.mia.base import Attack

ATTACK = Attack("min_k", lambda e, o: min_k_score(e.scores.logprobs, o["k"]))
