"""Scoring answers without generating: one forward over encoded (prompt, answer) examples, the logits kept
only where they predict an answer token. Shared by the training's checks (train/evaluate.py, the in-training
evaluation) and the likelihood metrics (eval/likelihood.py), and the window by the training step."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from safeeraser.data.encode import IGNORE_INDEX, Encoded, batch_to, model_inputs, pad_batch


def answer_window(labels: torch.Tensor) -> int:
    """How many trailing positions' logits the loss reads: from the position that predicts the batch's
    earliest answer token to the end. 0 (all positions) when no row has an answer token."""
    columns = (labels != IGNORE_INDEX).any(0)
    if not columns.any():
        return 0
    first = int(columns.int().argmax())
    return labels.shape[1] - max(first - 1, 0)


@torch.no_grad()
def answer_logits(model, items: Sequence, pad_id: int, family, batch_size: int, device=None,
                  encode: Callable[..., Encoded] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(logits, labels) of each batch of `batch_size` items, right-padded, over the answer window only
    (labels cut to the same positions). Items are Encoded, or what `encode` turns into one, batch by batch
    (a benchmark's images are not all held at once). The model is used as it is: the caller sets eval
    mode. One forward per batch: under DDP or ZeRO-3 every process must ask for as many batches as the others."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        batch = pad_batch([encode(x) for x in chunk] if encode else list(chunk), pad_id, family)
        if device is not None:
            batch = batch_to(batch, device)
        keep = answer_window(batch["labels"])
        logits = model(**model_inputs(batch), use_cache=False, logits_to_keep=keep).logits
        yield logits, (batch["labels"][:, -keep:] if keep else batch["labels"])
