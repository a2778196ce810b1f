"""Encoding a new example of a known image runs no image processing: the processor's own call gets the
image processor's cached output, and the token ids are those of an uncached call."""
import torch

from safeeraser.data.encode import PromptEncoder
from safeeraser.data.records import load_benchmark
from safeeraser.data.views import forget_items
from safeeraser.models.families import family_for


class _Counting:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_one_image_processing_per_image_and_the_same_ids(processor, mini_dir):
    item = forget_items(load_benchmark(mini_dir / "all_train.json"))[0]
    examples = [item.forget, *item.retain_pool]  # one image, several questions and answers
    assert len({e.image for e in examples}) == 1 and len(examples) > 1
    counting = _Counting(processor.image_processor)
    processor.image_processor = counting
    try:
        enc = PromptEncoder(processor, family_for("llava"))
        encoded = [enc.encode(e.image, e.question, e.answer) for e in examples]
        prompts = [enc.encode_prompt(e.image, e.question) for e in examples]
    finally:
        processor.image_processor = counting.inner
    assert counting.calls == 1
    assert processor.image_processor is counting.inner  # the processor is left as it was
    for e, got, prompt in zip(examples, encoded, prompts):
        text = enc._conversation(e.question, e.answer.strip(), add_generation_prompt=False).rstrip()
        ids = processor(text=[text], images=[enc._load(e.image)], return_tensors="pt")["input_ids"][0]
        assert torch.equal(got.input_ids, ids[:len(got.input_ids)])
        plain = processor(text=[enc.prompt_text(e.question)], images=[enc._load(e.image)], return_tensors="pt")
        assert torch.equal(prompt.input_ids, plain["input_ids"][0])
        assert torch.equal(got.images["pixel_values"], plain["pixel_values"])
