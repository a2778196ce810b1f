"""Each method's loss against its published formula, written out by hand on fixed logits."""
from __future__ import annotations

import math

import pytest

from hand_written import cfg, token_nlls, view
from safeeraser.train.methods import parse_method
from safeeraser.train.methods.terms import KINDS


def test_simnpo_is_the_papers_formula_at_the_authors_weight():
    forget, retain = view(5, answer_from=(2, 4)), view(6, answer_from=(3, 1))
    beta, gamma = 2.5, 0.3
    settings = cfg(simnpo_beta=beta, simnpo_gamma=gamma)
    method = parse_method("simnpo")
    outs = {"forget": forget, "retain": retain}
    total = sum(t.weight * float(KINDS[t.kind](outs, t, settings, {})) for t in method.terms)

    def simnpo_row(nlls):  # -(2/beta) log sigmoid(-(beta/|y|) log pi(y|x) - gamma), |y| answer tokens
        x = beta * sum(nlls) / len(nlls) - gamma
        return -(2 / beta) * math.log(1 / (1 + math.exp(-x)))

    rows = token_nlls(forget)
    retain_rows = token_nlls(retain)
    expected = (0.125 * sum(simnpo_row(r) for r in rows) / len(rows)
                + sum(sum(r) / len(r) for r in retain_rows) / len(retain_rows))
    assert total == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name, retain", [("dpo", False), ("idkdpo", True)])
def test_dpo_is_minus_two_over_beta_log_sigmoid_of_the_margin(name, retain):
    refusal, harmful, kept = view(7, answer_from=(2, 3)), view(8, answer_from=(4, 2)), view(9, answer_from=(1, 5))
    beta = 0.1
    method = parse_method(name)
    outs = {"idk": refusal, "forget": harmful, "retain": kept}
    total = sum(t.weight * float(KINDS[t.kind](outs, t, cfg(), {"beta": beta})) for t in method.terms)

    def log_prob_sums(v, logits):  # sum over answer tokens of log p, per row, written out
        out = []
        for r in range(v.labels.shape[0]):
            out.append(sum(float(logits[r, t - 1].log_softmax(-1)[v.labels[r, t]])
                           for t in range(1, v.labels.shape[1]) if v.labels[r, t] != -100))
        return out

    margins = [(wc - wr) - (lc - lr) for wc, wr, lc, lr in zip(
        log_prob_sums(refusal, refusal.logits), log_prob_sums(refusal, refusal.ref_logits),
        log_prob_sums(harmful, harmful.logits), log_prob_sums(harmful, harmful.ref_logits))]
    expected = sum(-(2 / beta) * math.log(1 / (1 + math.exp(-beta * m))) for m in margins) / len(margins)
    if retain:
        rows = token_nlls(kept)
        expected += sum(sum(r) / len(r) for r in rows) / len(rows)
    assert total == pytest.approx(expected, rel=1e-5)


def test_undial_has_no_retain_term_unless_asked():
    method = parse_method("undial")
    assert method.views() == ["forget"] and method.reference_views() == ["forget"]
    with_retain = method.with_weights({"retain": 1.0})
    assert with_retain.views() == ["forget", "retain"]
    assert [t.name for t in method.in_epoch(0, method.resolve_args({})).terms] == ["undial"]
    assert parse_method("undialpd").views() == ["forget", "pd"]


def _kl_by_hand(v, temperature):
    """Per row, the mean over answer positions of T^2 KL(softmax(ref / T) || softmax(cur / T))."""
    out = []
    for r in range(v.labels.shape[0]):
        values = []
        for t in range(1, v.labels.shape[1]):
            if v.labels[r, t] == -100:
                continue
            p = [math.exp(x / temperature) for x in v.ref_logits[r, t - 1].tolist()]
            q = [math.exp(x / temperature) for x in v.logits[r, t - 1].tolist()]
            p, q = [x / sum(p) for x in p], [x / sum(q) for x in q]
            values.append(temperature ** 2 * sum(a * math.log(a / b) for a, b in zip(p, q)))
        out.append(sum(values) / len(values))
    return out


def test_scrub_max_and_min_epochs_are_the_papers_losses():
    forget, retain = view(11, answer_from=(2, 4)), view(12, answer_from=(3, 2))
    method = parse_method("scrubpd")
    args = method.resolve_args({})
    assert args == {"temperature": 4.0, "msteps": 2}
    outs = {"forget": forget, "retain": retain, "pd": view(13)}

    def total(epoch):
        return sum(t.weight * float(KINDS[t.kind](outs, t, cfg(), args)) for t in method.in_epoch(epoch, args).terms)

    pd_rows = token_nlls(outs["pd"])
    pd = sum(sum(r) / len(r) for r in pd_rows) / len(pd_rows)
    kl_forget, kl_retain = _kl_by_hand(forget, 4.0), _kl_by_hand(retain, 4.0)
    retain_rows = token_nlls(retain)
    ce = sum(sum(r) / len(r) for r in retain_rows) / len(retain_rows)
    maximise = -sum(kl_forget) / len(kl_forget) + pd
    minimise = 0.99 * ce + 0.001 * sum(kl_retain) / len(kl_retain) + pd
    # msteps=2: max epochs 0 and 2, min epochs 1, 3 and on
    for epoch, expected in ((0, maximise), (1, minimise), (2, maximise), (3, minimise), (4, minimise), (5, minimise)):
        assert total(epoch) == pytest.approx(expected, rel=1e-5), epoch
    assert [t.name for t in method.in_epoch(0, {**args, "msteps": 0}).terms] == ["retain_kl", "retain", "pd"]


def test_kl_without_a_temperature_is_the_plain_kl():
    retain = view(14, answer_from=(1, 3))
    (term,) = [t for t in parse_method("kl").terms if t.kind == "kl"]
    plain = _kl_by_hand(retain, 1.0)
    assert float(KINDS["kl"]({"retain": retain}, term, cfg(), {})) == pytest.approx(sum(plain) / len(plain), rel=1e-5)
