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
    method = parse_method("simnpo")
    outs = {"forget": forget, "retain": retain}
    total = sum(t.weight * float(KINDS[t.kind](outs, t, cfg(), {"beta": beta, "gamma": gamma})) for t in method.terms)

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


def _total(name, outs, settings=None, args=None):
    method = parse_method(name)
    args = method.resolve_args(args or {})
    return sum(t.weight * float(KINDS[t.kind](outs, t, settings or cfg(), args))
               for t in method.in_epoch(0, args).terms)


def _mean_nll(v):
    rows = token_nlls(v)
    return sum(sum(r) / len(r) for r in rows) / len(rows)


def _seq_logps(v, logits):
    """Per row: the answer tokens' log-probabilities under `logits`, written out position by position."""
    out = []
    for r in range(v.labels.shape[0]):
        out.append([float(logits[r, t - 1].log_softmax(-1)[v.labels[r, t]])
                    for t in range(1, v.labels.shape[1]) if v.labels[r, t] != -100])
    return out


def test_gradient_ascent_difference_po_and_kl_are_the_references_sums():
    forget, retain, pd, idk = view(31, answer_from=(2, 5)), view(32), view(33, answer_from=(1, 4)), view(34)
    outs = {"forget": forget, "retain": retain, "pd": pd, "idk": idk}
    lf, lr, lp, li = (_mean_nll(v) for v in (forget, retain, pd, idk))
    kl = _kl_by_hand(retain, 1.0)
    expected = {"ga": -lf, "gapd": -lf + 0.5 * lp, "gd": -lf + lr, "gdpd": -lf + 0.5 * lr + 0.5 * lp,
                "po": li + lr, "popd": li + lr + lp, "kl": -lf + sum(kl) / len(kl),
                "klpd": -lf + sum(kl) / len(kl) + lp}
    for name, value in expected.items():
        assert _total(name, outs) == pytest.approx(value, rel=1e-5, abs=1e-5), name


def test_npo_is_minus_two_over_beta_log_sigmoid_of_minus_beta_log_ratio():
    forget, retain = view(35, answer_from=(2, 3)), view(36)
    beta = 0.7
    ratios = [sum(c) - sum(r) for c, r in zip(_seq_logps(forget, forget.logits), _seq_logps(forget, forget.ref_logits))]
    npo = sum(-(2 / beta) * math.log(1 / (1 + math.exp(beta * x))) for x in ratios) / len(ratios)
    outs = {"forget": forget, "retain": retain}
    assert _total("npo", outs, args={"beta": beta}) == pytest.approx(npo + _mean_nll(retain), rel=1e-5)


def test_wga_weights_each_token_by_its_probability_to_the_beta():
    forget, retain = view(37, answer_from=(1, 4)), view(38)
    beta = 0.5
    rows = [sum(math.exp(lp) ** beta * lp for lp in row) / len(row) for row in _seq_logps(forget, forget.logits)]
    outs = {"forget": forget, "retain": retain}
    assert _total("wga", outs, args={"beta": beta}) == pytest.approx(sum(rows) / len(rows) + _mean_nll(retain),
                                                                     rel=1e-5)


def test_undial_distils_the_reference_with_the_answer_logit_lowered():
    forget = view(39, answer_from=(2, 4))
    strength = 2.0
    rows = []
    for r in range(forget.labels.shape[0]):
        values = []
        for t in range(1, forget.labels.shape[1]):
            if forget.labels[r, t] == -100:
                continue
            teacher = forget.ref_logits[r, t - 1].tolist()
            teacher[int(forget.labels[r, t])] -= strength
            z = [math.exp(x) for x in teacher]
            target = [x / sum(z) for x in z]
            logq = forget.logits[r, t - 1].log_softmax(-1).tolist()
            values.append(-sum(p * q for p, q in zip(target, logq)))
        rows.append(sum(values) / len(values))
    assert _total("undial", {"forget": forget}, args={"strength": strength}) == pytest.approx(
        sum(rows) / len(rows), rel=1e-5)
