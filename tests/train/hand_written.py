"""Fixed logits and losses written out token by token, for checking loss formulas against a computation
that shares no code with the implementation."""
from __future__ import annotations

import torch

from safeeraser.data.encode import IGNORE_INDEX
from safeeraser.train.config import config_from
from safeeraser.train.step import ViewOutput


def cfg(**kw):
    """A training config with the schema's defaults and `kw` (flat keys)."""
    return config_from(**kw)


def view(seed, rows=2, width=7, vocab=11, answer_from=(3, 5)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, width, vocab, generator=g)
    labels = torch.randint(0, vocab, (rows, width), generator=g)
    for r, start in enumerate(answer_from):
        labels[r, :start] = IGNORE_INDEX
    return ViewOutput(logits, labels, ref_logits=torch.randn(rows, width, vocab, generator=g))


def token_nlls(view):
    """Each answer token's NLL, written out position by position."""
    out = []
    for r in range(view.labels.shape[0]):
        row = []
        for t in range(1, view.labels.shape[1]):
            if view.labels[r, t] != IGNORE_INDEX:
                logp = view.logits[r, t - 1].log_softmax(-1)[view.labels[r, t]]
                row.append(-float(logp))
        out.append(row)
    return out
