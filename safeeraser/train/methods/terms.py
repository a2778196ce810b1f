"""Loss term kinds. Each reads the views' outputs (`outs[term.view]`, and `outs[term.pair]` for a pair)
with the run's config and the method's arguments, and returns a scalar."""
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


def _per_example_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((values * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


def _token_nll_sum(view) -> tuple[torch.Tensor, torch.Tensor]:
    lp, mask = token_logprobs(view.logits, view.labels)
    return -lp.sum(), mask.sum()


def nll(outs, term, cfg, args) -> torch.Tensor:
    """Mean answer-token NLL: of each example, then over the rows (token_mean=per_example), or one mean
    over all the rows' answer tokens (batch: a Hugging Face model's own loss, the reference's)."""
    view = outs[term.view]
    if cfg.method.token_mean == "batch":
        total, count = _token_nll_sum(view)
        return total / count.clamp(min=1)
    return per_example_nll(view.logits, view.labels).mean()


def pooled_nll(outs, term, cfg, args) -> torch.Tensor:
    """One token mean of the NLL over the answer tokens of two views (`view` and `pair`), as one forward
    pass over both views' rows makes it (the reference's PO): a view with longer answers weighs more."""
    (a, n), (b, m) = _token_nll_sum(outs[term.view]), _token_nll_sum(outs[term.pair])
    return (a + b) / (n + m).clamp(min=1)


def kl_positions(cfg) -> str:
    """answer | all | reference (kl_all_positions=true, the older key, is `all`)."""
    return "all" if cfg.method.kl_all_positions and cfg.method.kl_positions == "answer" else cfg.method.kl_positions


def kl(outs, term, cfg, args) -> torch.Tensor:
    """KL(reference || current) per next-token distribution: what the reference computes with
    F.kl_div(log p_current, log p_reference, log_target=True). kl_positions: `answer` (per-example mean
    over answer tokens), `all` (every position of the view but the last, padding included) or `reference`
    (F.kl_div's batchmean over every row and position of the micro-batch's common width, the last one and
    padding included, as the reference's `view(-1, V)` makes it; compute_loss keeps those logits whole).
    A method argument `temperature` T (SCRUB's) compares the distributions of logits / T and scales the
    KL by T^2, as Hinton et al.'s distillation does, so that its gradient keeps its size whatever T."""
    view = outs[term.view]
    where = kl_positions(cfg)
    temperature = float(args.get("temperature", 1.0))
    drop_last = slice(None) if where == "reference" else slice(None, -1)
    cur, ref = view.logits[:, drop_last].float(), view.ref_logits[:, drop_last].float()
    if temperature != 1.0:  # no extra copy of the logits for the plain KL (the KL method's, every step)
        cur, ref = cur / temperature, ref / temperature
    cur, ref = F.log_softmax(cur, -1), F.log_softmax(ref, -1)
    per_token = (ref.exp() * (ref - cur)).sum(-1)  # (B, T) or (B, T-1)
    if temperature != 1.0:
        per_token = per_token * temperature ** 2
    if where in ("all", "reference"):
        return per_token.mean()
    return _per_example_mean(per_token, view.labels[:, 1:] != IGNORE_INDEX)


def _log_ratio(view) -> torch.Tensor:
    """log pi(answer) - log pi_ref(answer) per example."""
    cur, _ = token_logprobs(view.logits, view.labels)
    ref, _ = token_logprobs(view.ref_logits, view.labels)
    return cur.sum(1) - ref.sum(1)


def npo(outs, term, cfg, args) -> torch.Tensor:
    beta = args["beta"]
    return (-2.0 / beta * F.logsigmoid(-beta * _log_ratio(outs[term.view]))).mean()


def simnpo(outs, term, cfg, args) -> torch.Tensor:
    beta, gamma = args["beta"], args["gamma"]
    view = outs[term.view]
    lp, mask = token_logprobs(view.logits, view.labels)
    avg = lp.sum(1) / mask.sum(1).clamp(min=1)
    return (-2.0 / beta * F.logsigmoid(-beta * avg - gamma)).mean()


def dpo(outs, term, cfg, args) -> torch.Tensor:
    """DPO (Rafailov et al. 2023) with the term's view preferred over its pair (the refusal over the
    harmful answer), against the adapter-disabled reference; the rows of both views are the same items.
    Scaled by 2/beta as open-unlearning and the SimNPO authors write it for unlearning: -(2/beta) log
    sigmoid(beta * margin), which starts at (2/beta) log 2 like NPO; unscaled, the term is beta/2 as strong
    (20x weaker than a retain NLL at beta 0.1)."""
    beta = args["beta"]
    margin = _log_ratio(outs[term.view]) - _log_ratio(outs[term.pair])
    return (-2.0 / beta * F.logsigmoid(beta * margin)).mean()


def undial(outs, term, cfg, args) -> torch.Tensor:
    """UNDIAL (Dong et al. 2024): distil the reference's next-token distribution with the answer token's
    logit lowered by `strength`, on answer positions: the model unlearns the token without collapsing."""
    view = outs[term.view]
    labels = view.labels[:, 1:]
    mask = labels != IGNORE_INDEX
    teacher = view.ref_logits[:, :-1].float()
    teacher = teacher - args["strength"] * F.one_hot(labels.clamp(min=0), teacher.shape[-1]) * mask[..., None]
    target = F.softmax(teacher, -1)
    per_token = -(target * F.log_softmax(view.logits[:, :-1].float(), -1)).sum(-1)
    return _per_example_mean(per_token, mask)


def wga(outs, term, cfg, args) -> torch.Tensor:
    """Weighted gradient ascent (Wang et al. 2025): each answer token's log-likelihood weighted by its own
    probability to the power `beta` (detached), so tokens already unlikely stop pulling; minimising this
    lowers the weighted likelihood."""
    view = outs[term.view]
    lp, mask = token_logprobs(view.logits, view.labels)
    weights = lp.detach().exp() ** args["beta"]
    return _per_example_mean(weights * lp, mask)


def _real_tokens_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of per-position values (B, T) over each example's real tokens, then over the batch."""
    return _per_example_mean(values, mask.to(values.dtype))


_DIRECTIONS: dict[tuple[int, int, str], torch.Tensor] = {}


def steering_direction(seed: int, dim: int, device) -> torch.Tensor:
    """RMU's fixed random unit vector: a function of the run's seed and the hidden size alone."""
    key = (seed, dim, str(device))
    if key not in _DIRECTIONS:
        u = torch.rand(dim, generator=torch.Generator().manual_seed(seed))
        _DIRECTIONS[key] = (u / u.norm()).to(device)
    return _DIRECTIONS[key]


def rmu_positions(view, args) -> torch.Tensor:
    """The positions RMU's forget side steers (`method_args.positions`): `question_answer` (default: the
    real tokens after the image, the harmful text, as WMDP's hook sees every token of its harmful text),
    `answer` (the answer tokens only) or `all` (every real token, the image's and the system prompt's
    included: positions the forget and retain views of a record share, which the retain term pins)."""
    where = args.get("positions", "question_answer")
    if where == "answer":
        return view.labels != IGNORE_INDEX
    return view.text_mask if where == "question_answer" else view.mask


def rmu_forget(outs, term, cfg, args) -> torch.Tensor:
    """RMU (Li et al. 2024), forget side: a layer's activations on the forget inputs, at rmu_positions,
    pushed towards `steering` times a fixed random unit vector."""
    view = outs[term.view]
    h = view.hidden.float()
    target = args["steering"] * steering_direction(cfg.optim.seed, h.shape[-1], h.device)
    return _real_tokens_mean(((h - target) ** 2).mean(-1), rmu_positions(view, args))


def rmu_retain(outs, term, cfg, args) -> torch.Tensor:
    """RMU, retain side: the layer's activations on every real token of the retain inputs kept at the
    reference's, times `alpha` (the paper's retain loss covers its whole retain text)."""
    view = outs[term.view]
    return args["alpha"] * _real_tokens_mean(((view.hidden.float() - view.ref_hidden.float()) ** 2).mean(-1),
                                             view.mask)


KINDS = {"nll": nll, "pooled_nll": pooled_nll, "kl": kl, "npo": npo, "simnpo": simnpo, "dpo": dpo, "undial": undial, "wga": wga,
         "rmu_forget": rmu_forget, "rmu_retain": rmu_retain}
