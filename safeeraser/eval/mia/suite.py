"""The membership-inference suite: every registered attack's AUC between members (the forget set) and
non-members (items never trained on), and MUSE's privacy leak against a retain-only ("oracle") model.

The evidence an attack needs is gathered once per example: the attacked model's answer scores
(eval/likelihood.answer_nll), a reference model's when an attack needs one, and the gradient norm when
one needs it (one backward per example over every weight: the memory of one set of gradients)."""
from __future__ import annotations

from collections.abc import Sequence

from safeeraser.eval.likelihood import answer_nll, mia_auc
from safeeraser.eval.mia import DEFAULT_ATTACKS, REGISTRY, attack_for
from safeeraser.eval.mia.base import Evidence
from safeeraser.models.families import family_of_model



def gradient_norms(model, processor, examples: Sequence) -> list[float]:
    """Per example, the L2 norm of the gradient of its mean answer NLL over all the model's weights."""
    import torch
    import torch.nn.functional as F

    from safeeraser.data.encode import IGNORE_INDEX, PromptEncoder, batch_to, model_inputs, pad_batch, pad_token_id
    from safeeraser.models.scoring import answer_window

    family = family_of_model(model)
    encoder = PromptEncoder(processor, family)
    params = list(model.parameters())
    was = [p.requires_grad for p in params]
    was_training = model.training
    model.eval()
    out = []
    try:
        for p in params:
            p.requires_grad_(True)
        device, pad = next(model.parameters()).device, pad_token_id(processor.tokenizer)
        for e in examples:  # one at a time: each example's own gradient
            batch = batch_to(pad_batch([encoder.encode(e.image, e.question, e.answer)], pad, family), device)
            keep = answer_window(batch["labels"])
            logits = model(**model_inputs(batch), use_cache=False, logits_to_keep=keep).logits
            labels = batch["labels"][:, -keep:] if keep else batch["labels"]
            model.zero_grad(set_to_none=True)
            # the answer's mean token NLL
            F.cross_entropy(logits[0, :-1].float(), labels[0, 1:], ignore_index=IGNORE_INDEX).backward()
            out.append(float(torch.sqrt(sum(p.grad.float().square().sum() for p in params if p.grad is not None))))
    finally:
        model.zero_grad(set_to_none=True)
        for p, r in zip(params, was):
            p.requires_grad_(r)
        model.train(was_training)
    return out


def evidence(model, processor, examples: Sequence, needs: set[str], reference_model=None,
             batch_size: int = 8) -> list[Evidence]:
    scores = answer_nll(model, processor, examples, batch_size=batch_size)
    ref = answer_nll(reference_model, processor, examples, batch_size=batch_size) if "reference" in needs else None
    grads = gradient_norms(model, processor, examples) if "gradient" in needs else None
    return [Evidence(s, e.answer, None if ref is None else ref[i], None if grads is None else grads[i])
            for i, (s, e) in enumerate(zip(scores, examples))]


def check_attacks(names: Sequence[str], reference_model=None) -> list[str]:
    """The attacks asked for, checked: a name not registered, or the reference attack without a reference
    model, is a ValueError naming it."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown membership attack '{unknown[0]}'; choose from {', '.join(REGISTRY)}")
    if reference_model is None and any("reference" in attack_for(n).needs for n in names):
        raise ValueError("the reference attack needs a reference model (one that never saw the forget set)")
    return list(names)


def membership_suite(model, processor, members: Sequence, nonmembers: Sequence, *,
                     attacks: Sequence[str] = DEFAULT_ATTACKS, k: float = 0.2, reference_model=None,
                     batch_size: int = 8) -> dict:
    """{attack: AUC or None} of members against non-members (views.Example lists), with "distance" (|AUC -
    0.5|: what an attacker can tell, whichever way) and "leans" per attack, and the example counts."""
    attacks = check_attacks(attacks, reference_model)
    needs = set().union(*(attack_for(n).needs for n in attacks)) if attacks else set()
    sides = [evidence(model, processor, side, needs, reference_model, batch_size) for side in (members, nonmembers)]
    options = {"k": k}
    auc = {n: mia_auc(*[[attack_for(n).score(e, options) for e in side] for side in sides]) for n in attacks}
    return {**auc,
            "distance": {n: None if a is None else abs(a - 0.5) for n, a in auc.items()},
            "leans": {n: None if a is None else "members" if a > 0.5 else "non-members" if a < 0.5 else "neither"
                      for n, a in auc.items()},
            "members": len(members), "nonmembers": len(nonmembers)}


def privacy_leak(auc: float | None, oracle_auc: float | None) -> float | None:
    """MUSE's PrivLeak, in percent: (AUC of the unlearned model - AUC of the oracle retrained without the
    forget set) / the oracle's AUC. 0: as private as never having seen it; negative: under-forgetting's
    opposite, the forget set made less likely than unseen data (over-unlearning)."""
    if auc is None or oracle_auc is None or oracle_auc == 0:
        return None
    return (auc - oracle_auc) / oracle_auc * 100
