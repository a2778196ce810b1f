import torch

from safeeraser.data.encode import IGNORE_INDEX, PromptEncoder, pad_batch
from safeeraser.data.records import load_benchmark
from safeeraser.models.families import family_for

LLAVA = family_for("llava")


def test_prompt_is_llava15_format(processor):
    enc = PromptEncoder(processor, LLAVA)
    assert enc.prompt_text("What is it?") == "USER: <image>\nWhat is it? ASSISTANT:"


def test_labels_cover_answer_and_eos_only(processor, mini_dir):
    enc = PromptEncoder(processor, LLAVA)
    rec = load_benchmark(mini_dir / "all_train.json")[0]
    pair = rec.unsafe_pairs[0]
    e = enc.encode(rec.image, pair["question"], pair["model_response"])
    tok = processor.tokenizer
    answer_ids = e.labels[e.labels != IGNORE_INDEX]
    assert answer_ids[-1].item() == tok.eos_token_id
    assert tok.decode(answer_ids[:-1]).strip() == pair["model_response"]
    # the prompt part is exactly what inference feeds the model
    prompt = enc.encode_prompt(rec.image, pair["question"])
    n_prompt = int((e.labels == IGNORE_INDEX).sum())
    assert torch.equal(e.input_ids[:n_prompt], prompt.input_ids)
    assert torch.equal(e.images["pixel_values"], prompt.images["pixel_values"])
    # every image token the vision tower produces is present
    assert int((e.input_ids == processor.image_token_id).sum()) == 16


def test_processor_runs_for_new_examples_only(processor, mini_dir, monkeypatch):
    enc = PromptEncoder(processor, LLAVA)
    rec = load_benchmark(mini_dir / "all_train.json")[0]
    calls = []
    real = enc.processor.__class__.__call__
    monkeypatch.setattr(enc.processor.__class__, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    for pair in rec.unsafe_pairs:
        enc.encode(rec.image, pair["question"], pair["model_response"])
    # the image's inputs once, then prompt and conversation once per new example
    assert len(calls) == 1 + 2 * len(rec.unsafe_pairs)
    for pair in rec.unsafe_pairs:  # a later epoch: nothing is processed again
        enc.encode(rec.image, pair["question"], pair["model_response"])
    assert len(calls) == 1 + 2 * len(rec.unsafe_pairs)


def test_pad_batch_sides(processor, mini_dir):
    enc = PromptEncoder(processor, LLAVA)
    rec = load_benchmark(mini_dir / "all_train.json")[0]
    a = enc.encode(rec.image, "Q?", "short")
    b = enc.encode(rec.image, "Q?", "a much longer answer than the other one")
    right = pad_batch([a, b], 0, LLAVA, "right")
    left = pad_batch([a, b], 0, LLAVA, "left")
    n = len(a.input_ids)
    assert right["attention_mask"][0, :n].all() and not right["attention_mask"][0, n:].any()
    assert left["attention_mask"][0, -n:].all() and not left["attention_mask"][0, :-n].any()
    assert (right["labels"][0, n:] == IGNORE_INDEX).all()


def test_repeated_training_example_is_tokenised_once(processor, mini_dir, monkeypatch):
    enc = PromptEncoder(processor, LLAVA)
    rec = load_benchmark(mini_dir / "all_train.json")[0]
    pair = rec.unsafe_pairs[0]
    first = enc.encode(rec.image, pair["question"], pair["model_response"])
    calls = []
    real = enc.tokenizer.__class__.__call__
    monkeypatch.setattr(enc.tokenizer.__class__, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    again = enc.encode(rec.image, pair["question"], pair["model_response"])
    assert calls == []  # a seen example is not tokenised again
    other = enc.encode(rec.image, pair["question"], "a different answer")
    assert len(calls) > 0  # a new answer is
    n = len(calls)
    enc.encode(rec.image, pair["question"], pair["model_response"])
    assert len(calls) == n
    assert torch.equal(again.input_ids, first.input_ids) and torch.equal(again.labels, first.labels)
    assert not torch.equal(other.labels, first.labels)


def test_image_cache_keeps_only_the_most_recent(processor, mini_dir, monkeypatch):
    enc = PromptEncoder(processor, LLAVA, image_cache_size=1)
    first, second = [r.image for r in load_benchmark(mini_dir / "all_train.json")[:2]]
    calls = []
    real = enc.processor.__class__.__call__
    monkeypatch.setattr(enc.processor.__class__, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    enc.image(first)
    enc.image(first)
    assert len(calls) == 1
    enc.image(second)  # evicts the first
    enc.image(first)
    assert len(calls) == 3
