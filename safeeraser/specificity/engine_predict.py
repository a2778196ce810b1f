"""The model side of a native run: the model with its unlearning checkpoint applied, and ckpt_infer's
generation engine behind the predict_fn contract (greedy, as LLaVA-1.5's evaluation decodes)."""
from __future__ import annotations

from safeeraser.specificity.base import PredictFn, Request


def load_model_with_checkpoint(model_path: str, checkpoint_path: str | None, dtype: str = "auto"):
    """(model, processor): the base model with the checkpoint applied and merged by ckpt_infer's
    strict loader (adapter folder, model folder or the reference's checkpoint.pt; None: vanilla)."""
    from safeeraser.models.checkpoint import load_for_generation
    from safeeraser.models.loading import load_processor

    model = load_for_generation(model_path, checkpoint_path, dtype)
    return model, load_processor(model_path)


def predict_fn_from_generator(generator) -> PredictFn:
    """A predict_fn over an engine Generator: one greedy generate call per token budget."""
    from safeeraser.infer.engine import GenRequest, GenSettings

    def predict(requests: list[Request]) -> list[str]:
        answers: list[str | None] = [None] * len(requests)
        by_budget: dict[int, list[int]] = {}
        for i, request in enumerate(requests):
            if request.image is None:
                raise ValueError(f"question {request.question_id}: the engine needs an image")
            by_budget.setdefault(request.max_new_tokens, []).append(i)
        for budget, indices in by_budget.items():
            outputs = generator.generate([GenRequest(image=requests[i].image, question=requests[i].prompt)
                                          for i in indices],
                                         GenSettings(max_new_tokens=budget, greedy=True))
            for i, output in zip(indices, outputs):
                answers[i] = output[0]
        return answers  # type: ignore[return-value]

    return predict


def load_engine_predict_fn(model_path: str, checkpoint_path: str | None, batch_size: int,
                           dtype: str = "auto") -> PredictFn:
    from safeeraser.infer.engine import Generator

    model, processor = load_model_with_checkpoint(model_path, checkpoint_path, dtype)
    return predict_fn_from_generator(Generator(model, processor, batch_size=batch_size))
