"""Mean answer NLL of a model on a list of examples: how unlearning is checked without generation."""
from __future__ import annotations

import torch

from safeeraser.data.encode import PromptEncoder, model_inputs, pad_batch, pad_token_id
from safeeraser.data.views import Example
from safeeraser.train.methods.terms import per_example_nll


@torch.no_grad()
def mean_nll(model, processor, examples: list[Example], batch_size: int = 16) -> float:
    from safeeraser.models.families import family_of_model

    family = family_of_model(model)
    encoder = PromptEncoder(processor, family)
    pad_id = pad_token_id(processor.tokenizer)
    was_training = model.training
    model.eval()
    values = []
    for i in range(0, len(examples), batch_size):
        batch = pad_batch([encoder.encode(e.image, e.question, e.answer) for e in examples[i:i + batch_size]], pad_id,
                          family)
        logits = model(**model_inputs(batch)).logits
        values.append(per_example_nll(logits, batch["labels"]))
    model.train(was_training)
    return torch.cat(values).mean().item()
