"""Gradient norm (MUSE's "GradNorm", after Wang et al. 2024): minus the L2 norm of the gradient of the
answer's mean NLL over the model's weights; a member sits nearer a minimum, where the gradient is small."""
from safeeraser.eval.mia.base import Attack

ATTACK = Attack("gradient_norm", lambda e, o: -e.grad_norm, needs=frozenset({"gradient"}))
