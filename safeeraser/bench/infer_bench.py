"""Sampled inference: our batched Generator against one HF `generate` call per sampled answer.

The requests are the mini val file's harmful questions on their harmful images, three sampled answers
each, as `ckpt_infer` asks for them. Settings are held equal (temperature, top-p, no top-k, the same
`max_new_tokens`), and every answer is made exactly `max_new_tokens` long on both sides: a forward hook
on the output layer bans the EOS and pad tokens, so neither side can stop early and tokens/s and
responses/s measure the same work. (Equivalent to `min_new_tokens = max_new_tokens`, applied to both.)
"""
from __future__ import annotations

import time
from dataclasses import replace

from safeeraser.bench.assets import linear_params, load_model
from safeeraser.data.records import load_benchmark
from safeeraser.models.families import family_of_model


def harmful_requests(val_file: str, samples: int = 3):
    from safeeraser.infer.engine import GenRequest

    reqs = []
    for rec in load_benchmark(val_file):
        for j, pair in enumerate(rec.unsafe_pairs):
            reqs.append(GenRequest(rec.image, pair["question"], samples, key=rec.index * 1000 + 2 * j))
    return reqs


class FixedLength:
    """Ban the given tokens in the model's output layer (a forward hook), for as long as it is entered."""

    def __init__(self, model, token_ids: list[int]):
        import torch

        self.model = model
        self.ids = torch.tensor(sorted({t for t in token_ids if t is not None}), dtype=torch.long)
        self._handle = None

    def _hook(self, module, inputs, output):
        return output.index_fill(-1, self.ids.to(output.device), float("-inf"))

    def __enter__(self):
        self._handle = self.model.get_output_embeddings().register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def reference_generate(model, processor, requests, settings, device: str) -> dict:
    """The reference's way: batch 1, one `generate` call for every sampled answer."""
    import torch

    from safeeraser.data.encode import PromptEncoder, pad_token_id
    from safeeraser.infer.engine import sample_seed

    encoder = PromptEncoder(processor, family_of_model(model))
    tok = processor.tokenizer
    pad = pad_token_id(tok)
    dtype = next(model.parameters()).dtype
    responses = new_tokens = 0
    for i, req in enumerate(requests):
        enc = encoder.encode_prompt(req.image, req.question)
        ids = enc.input_ids
        extra = {k: v[None].to(device) for k, v in enc.tokens.items()}
        extra.update({k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in enc.images.items()})
        key = req.key if req.key is not None else i
        for j in range(req.num_return_sequences):
            torch.manual_seed(sample_seed(settings.seed, key, j))
            out = model.generate(
                input_ids=ids[None].to(device), attention_mask=torch.ones_like(ids)[None].to(device),
                **extra, do_sample=True, temperature=settings.temperature,
                top_p=settings.top_p, top_k=0, max_new_tokens=settings.max_new_tokens, pad_token_id=pad,
                eos_token_id=tok.eos_token_id)
            row = out[0, ids.shape[0]:].tolist()
            new_tokens += row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
            responses += 1
    return {"responses": responses, "new_tokens": new_tokens}


def measure_inference(assets, prompts: int, max_new_tokens: int, batch_size: int, samples: int = 3,
                      reference_prompts: int = 0, seed: int = 0, peak_flops: float = 0.0,
                      reference_first: bool = False) -> dict:
    """Ours on `prompts` requests and the reference's way on the first `reference_prompts` of them
    (all of them when 0): its time per answer does not depend on how many it is given. `reference_first`
    times the reference's way first (rounds alternate it, as the training rounds do)."""
    import torch

    from safeeraser.infer.engine import GenSettings, Generator
    from safeeraser.models.loading import load_processor

    device = assets.device
    requests = harmful_requests(assets.val_file, samples)[:prompts]
    ref_requests = requests[:reference_prompts] if reference_prompts else requests
    processor = load_processor(assets.processor_path)
    model = load_model(assets, seed=seed).eval()
    params = linear_params(model)
    tok = processor.tokenizer
    settings = GenSettings(max_new_tokens=max_new_tokens, greedy=False, temperature=1.0, top_p=0.9, seed=seed)
    warm = replace(settings, max_new_tokens=4)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    with FixedLength(model, [tok.eos_token_id, tok.pad_token_id]), torch.no_grad():
        Generator(model, processor, batch_size=batch_size).generate(requests[:1], warm)  # warm-up: first calls
        reference_generate(model, processor, ref_requests[:1], warm, device)
        gen = Generator(model, processor, batch_size=batch_size)  # a fresh image cache: both sides preprocess

        def timed(run) -> dict:
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            out = run()
            sync()
            return {**out, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}

        def run_ours() -> dict:
            answers = gen.generate(requests, settings)
            return {"responses": gen.stats.responses, "new_tokens": gen.stats.new_tokens, "answers": answers}

        runs = {"ours": run_ours, "reference": lambda: reference_generate(model, processor, ref_requests, settings,
                                                                           device)}
        sides = {side: timed(runs[side]) for side in (("reference", "ours") if reference_first else runs)}
        ours, ref = sides["ours"], sides["reference"]
        answers = ours.pop("answers")

    prompt_len = sum(len(gen.encoder.encode_prompt(r.image, r.question).input_ids) for r in requests) / len(requests)
    for side in (ours, ref):
        side["new_tokens_per_s"] = side["new_tokens"] / side["seconds"]
        side["responses_per_s"] = side["responses"] / side["seconds"]
        side["new_tokens_per_cpu_s"] = side["new_tokens"] / side["cpu_seconds"]
        side["responses_per_cpu_s"] = side["responses"] / side["cpu_seconds"]
        side["tokens_per_response"] = side["new_tokens"] / side["responses"]
        # Model FLOPs per answer: its prompt and its new tokens through the language model, its image
        # through the vision tower and projector (2 per matmul weight per token; attention left out).
        per_response = 2 * params["text"] * (prompt_len + side["tokens_per_response"])
        if peak_flops > 0 and device == "cuda":
            side["mfu"] = per_response * side["responses_per_s"] / peak_flops
    return {
        "attention": getattr(model.config, "_attn_implementation", None),
        "prompts": len(requests), "reference_prompts": len(ref_requests), "samples_per_prompt": samples,
        "max_new_tokens": max_new_tokens, "batch_size": batch_size, "temperature": settings.temperature,
        "top_p": settings.top_p, "fixed_length": True, "mean_prompt_tokens": prompt_len,
        "answers_nonempty": sum(1 for a in answers for s in a if s) / max(1, sum(len(a) for a in answers)),
        "ours": ours, "reference": ref,
    }


def measure_vllm(assets, prompts: int, max_new_tokens: int, samples: int = 3, seed: int = 0, **llm_kwargs) -> dict:
    """vLLM (`infer.vllm_backend`) on the same requests and sampling settings as `measure_inference`,
    with random weights (`load_format="dummy"`: vLLM reads only the folder's config and tokenizer).
    vLLM cannot ban EOS here as the HF sides do, so an answer may stop early: the rate counts the tokens
    it made (`tokens_per_response` says how many). Without vLLM: {"importable": False, "reason": ...}."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return {"importable": False, "reason": "vllm is not importable in this environment"}
    from importlib.metadata import version

    from safeeraser.infer.engine import GenSettings, GenStats
    from safeeraser.infer.vllm_backend import VllmGenerator
    from safeeraser.models.loading import load_processor

    requests = harmful_requests(assets.val_file, samples)[:prompts]
    processor = load_processor(assets.processor_path)
    t0 = time.perf_counter()
    gen = VllmGenerator(assets.model_path, None, processor, load_format="dummy", dtype=assets.dtype, seed=seed,
                        **llm_kwargs)
    startup = time.perf_counter() - t0
    settings = GenSettings(max_new_tokens=max_new_tokens, greedy=False, temperature=1.0, top_p=0.9, seed=seed)
    gen.generate(requests[:1], replace(settings, max_new_tokens=4))  # warm-up: first calls
    gen.stats = GenStats()
    gen.generate(requests, settings)
    st = gen.stats
    return {"importable": True, "version": version("vllm"), "startup_s": startup, "prompts": len(requests),
            "responses": st.responses, "new_tokens": st.new_tokens, "seconds": st.seconds,
            "new_tokens_per_s": st.new_tokens / st.seconds, "responses_per_s": st.responses / st.seconds,
            "tokens_per_response": st.new_tokens / max(1, st.responses), "max_new_tokens": max_new_tokens}
