"""Mean answer NLL of a model on a list of examples: how unlearning is checked without generation."""
from __future__ import annotations

import torch

from safeeraser.data.encode import Encoded, PromptEncoder, batch_to, model_inputs, pad_batch, pad_token_id
from safeeraser.data.views import Example
from safeeraser.train.methods.terms import per_example_nll


@torch.no_grad()
def example_nlls(model, encoded: list[Encoded], pad_id: int, family, batch_size: int = 16,
                 device=None) -> torch.Tensor:
    """Each encoded example's mean answer-token NLL, shape (len(encoded),), in batches of `batch_size`,
    with the model as it is (the caller sets eval mode). One forward per batch: under DDP or ZeRO-3 every
    process must call this with as many batches as the others (in_training_eval pads its share)."""
    values = []
    for i in range(0, len(encoded), batch_size):
        batch = pad_batch(encoded[i:i + batch_size], pad_id, family)
        if device is not None:
            batch = batch_to(batch, device)
        logits = model(**model_inputs(batch), use_cache=False).logits
        values.append(per_example_nll(logits, batch["labels"]).float())
    return torch.cat(values) if values else torch.zeros(0)


@torch.no_grad()
def mean_nll(model, processor, examples: list[Example], batch_size: int = 16) -> float:
    from safeeraser.models.families import family_of_model

    family = family_of_model(model)
    encoder = PromptEncoder(processor, family)
    was_training = model.training
    model.eval()
    try:
        nlls = example_nlls(model, [encoder.encode(e.image, e.question, e.answer) for e in examples],
                            pad_token_id(processor.tokenizer), family, batch_size)
    finally:
        model.train(was_training)
    return nlls.mean().item()
