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
