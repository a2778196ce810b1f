"""The generation engine's pieces: nucleus sampling, the reserved KV cache, one prompt pass per request."""
import pytest
import torch
from transformers.cache_utils import DynamicCache

from safeeraser.data.records import load_benchmark
from safeeraser.infer.engine import GenRequest, GenSettings, Generator, ReservedCache, nucleus_sample
from safeeraser.models.loading import load_model, load_processor


def test_nucleus_sample_draws_the_renormalised_nucleus():
    probs = torch.tensor([0.05, 0.5, 0.3, 0.1, 0.05])  # top-p 0.85: {1, 2, 3}, mass 0.9
    n = 9000
    uniforms = (torch.arange(n) + 0.5) / n  # evenly spread: counts follow the distribution exactly
    tokens = nucleus_sample(probs.log().expand(n, -1), 1.0, 0.85, uniforms)
    counts = torch.bincount(tokens, minlength=5).float() / n
    assert counts[0] == 0 and counts[4] == 0
    assert counts[1:4].tolist() == pytest.approx([0.5 / 0.9, 0.3 / 0.9, 0.1 / 0.9], abs=1e-3)


def test_nucleus_keeps_at_least_the_top_token_and_ties_at_its_edge():
    logits = torch.tensor([[0.0, 3.0, 1.0, 1.0]])
    assert nucleus_sample(logits, 1.0, 1e-6, torch.tensor([0.99])).item() == 1
    # top-p reached inside a tie: both tied tokens stay in the nucleus
    probs = torch.tensor([0.4, 0.3, 0.3])
    drawn = {nucleus_sample(probs.log()[None], 1.0, 0.5, torch.tensor([u])).item() for u in (0.1, 0.5, 0.9)}
    assert drawn == {0, 1, 2}


@pytest.fixture(scope="module")
def tiny(vanilla_dir):
    return load_model(str(vanilla_dir), "float32").eval(), load_processor(str(vanilla_dir))


def _decode_logits(model, ids, cache, steps):
    """Greedy decoding from `ids`, returning every step's last-position logits."""
    out = []
    with torch.no_grad():
        logits = model(input_ids=ids, cache=cache, use_cache=True).logits[:, -1]
        out.append(logits)
        for _ in range(steps):
            nxt = logits.argmax(-1, keepdim=True)
            logits = model(input_ids=nxt, cache=cache, use_cache=True).logits[:, -1]
            out.append(logits)
    return torch.stack(out)


@pytest.mark.parametrize("capacity", [64, 9])  # 9: fewer places than positions, so the cache must grow
def test_reserved_cache_decodes_like_the_dynamic_cache(tiny, capacity):
    model, _ = tiny
    ids = torch.tensor([[1, 40, 41, 42, 43, 44]])
    ours = _decode_logits(model, ids, ReservedCache(capacity), 12)
    theirs = _decode_logits(model, ids, DynamicCache(), 12)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_reserved_cache_repeats_rows_for_samples(tiny):
    model, _ = tiny
    ids = torch.tensor([[1, 40, 41, 42], [1, 50, 51, 52]])
    cache = ReservedCache(8)
    with torch.no_grad():
        model(input_ids=ids, cache=cache, use_cache=True)
    keys = cache.layers[0].keys.clone()
    cache.batch_repeat_interleave(3)
    assert cache.get_seq_length() == 4  # positions unchanged, rows tripled
    assert cache.layers[0].keys.shape[0] == 6
    assert torch.equal(cache.layers[0].keys, keys.repeat_interleave(3, 0))


def test_sampling_runs_each_image_and_prompt_once_per_request(tiny, mini_dir):
    model, proc = tiny
    recs = load_benchmark(mini_dir / "all_val.json")[:4]
    requests = [GenRequest(r.image, r.unsafe_pairs[0]["question"], 3, key=i) for i, r in enumerate(recs)]
    images, prompt_rows = [], []
    h1 = model.model.vision_tower.register_forward_hook(lambda m, i, o: images.append(i[0].shape[0]))
    h2 = model.get_output_embeddings().register_forward_hook(lambda m, i, o: prompt_rows.append(i[0].shape[0]))
    try:
        answers = Generator(model, proc, batch_size=8).generate(requests, GenSettings(max_new_tokens=6, seed=1))
    finally:
        h1.remove()
        h2.remove()
    assert sum(images) == 4  # not 12: the three samples share their request's prompt pass
    assert prompt_rows[0] == 4 and set(prompt_rows[1:]) == {12}
    assert all(len(a) == 3 for a in answers)


def test_max_positions_reads_the_language_model_config():
    from types import SimpleNamespace

    from safeeraser.infer.engine import max_positions

    vlm = SimpleNamespace(text_config=SimpleNamespace(max_position_embeddings=4096), max_position_embeddings=None)
    assert max_positions(vlm) == 4096
    assert max_positions(SimpleNamespace(max_position_embeddings=2048)) == 2048
    assert max_positions(SimpleNamespace()) is None


def test_prompt_tokens_count_the_image_tokens(tiny, mini_dir):
    model, proc = tiny
    rec = load_benchmark(mini_dir / "all_val.json")[0]
    gen = Generator(model, proc)
    question = rec.unsafe_pairs[0]["question"]
    n = gen.prompt_tokens(GenRequest(rec.image, question))
    assert gen.max_positions == model.config.text_config.max_position_embeddings
    assert n == len(gen.encoder.encode_prompt(rec.image, question).input_ids)
    assert n > gen.encoder.image(rec.image)[1] + len(proc.tokenizer(question).input_ids) - 1
