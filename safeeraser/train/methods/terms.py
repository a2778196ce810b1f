"""Loss term kinds. Each takes one view's logits (and the reference's) and returns a scalar."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from safeeraser.data.encode import IGNORE_INDEX


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each next label token and the mask of answer tokens, both (B, T-1)."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    mask = shift_labels != IGNORE_INDEX
    lp = -F.cross_entropy(shift_logits.transpose(1, 2), shift_labels.clamp(min=0), reduction="none")
    return lp * mask, mask


def per_example_nll(logits, labels) -> torch.Tensor:
    """Mean token NLL of each example's answer, shape (B,). Per-example means keep the loss the same
    whatever the micro-batch size, as the reference's batch-size-1 loss is."""
    lp, mask = token_logprobs(logits, labels)
    return -lp.sum(1) / mask.sum(1).clamp(min=1)


def nll(view, cfg) -> torch.Tensor:
    return per_example_nll(view.logits, view.labels).mean()


def kl(view, cfg) -> torch.Tensor:
    """KL(reference || current) per next-token distribution: what the reference computes with
    F.kl_div(log p_current, log p_reference, log_target=True). On answer tokens by default; with
    kl_all_positions, averaged over every position, prompt and padding included, as the reference."""
    cur = F.log_softmax(view.logits[:, :-1].float(), -1)
    ref = F.log_softmax(view.ref_logits[:, :-1].float(), -1)
    per_token = (ref.exp() * (ref - cur)).sum(-1)  # (B, T-1)
    if cfg.kl_all_positions:
        return per_token.mean()
    mask = view.labels[:, 1:] != IGNORE_INDEX
    return ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


def npo(view, cfg) -> torch.Tensor:
    beta = cfg.npo_beta
    cur, _ = token_logprobs(view.logits, view.labels)
    ref, _ = token_logprobs(view.ref_logits, view.labels)
    log_ratio = cur.sum(1) - ref.sum(1)
    return (-2.0 / beta * F.logsigmoid(-beta * log_ratio)).mean()


def simnpo(view, cfg) -> torch.Tensor:
    beta, gamma = cfg.simnpo_beta, cfg.simnpo_gamma
    lp, mask = token_logprobs(view.logits, view.labels)
    avg = lp.sum(1) / mask.sum(1).clamp(min=1)
    return (-2.0 / beta * F.logsigmoid(-beta * avg - gamma)).mean()


KINDS = {"nll": nll, "kl": kl, "npo": npo, "simnpo": simnpo}
