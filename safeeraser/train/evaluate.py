"""Mean answer NLL of a model on a list of examples: how unlearning is checked without generation."""
from __future__ import annotations

import torch

from safeeraser.data.encode import Encoded, PromptEncoder, pad_token_id
from safeeraser.data.views import Example
from safeeraser.models.families import family_of_model
from safeeraser.models.scoring import answer_logits
from safeeraser.train.methods.terms import per_example_nll


@torch.no_grad()
def example_nlls(model, encoded: list[Encoded], pad_id: int, family, batch_size: int = 16,
                 device=None) -> torch.Tensor:
    """Each encoded example's mean answer-token NLL, shape (len(encoded),), in batches of `batch_size`,
    with the model as it is (the caller sets eval mode; see models.scoring.answer_logits)."""
    values = [per_example_nll(logits, labels).float()
              for logits, labels in answer_logits(model, encoded, pad_id, family, batch_size, device)]
    return torch.cat(values) if values else torch.zeros(0)


@torch.no_grad()
def mean_nll(model, processor, examples: list[Example], batch_size: int = 16) -> float:
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
