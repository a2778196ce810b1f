"""vLLM generation with the same interface as engine.Generator (optional; `pip install .[vllm]`).

An adapter is merged into the base weights and saved once, so vLLM serves a plain model folder of
the family; per-request seeds keep sampling reproducible as in the HF engine.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

from safeeraser.data.encode import PromptEncoder
from safeeraser.infer.engine import GenRequest, GenSettings, GenStats, max_positions
from safeeraser.models.families import family_of_path


def merged_model_dir(model_path: str, checkpoint_path: str | None, cache_root: str | Path = ".cache/merged") -> str:
    if not checkpoint_path:
        return model_path
    from safeeraser.models.checkpoint import apply_checkpoint
    from safeeraser.models.loading import load_processor

    digest = hashlib.sha256(f"{model_path}|{Path(checkpoint_path).resolve()}".encode()).hexdigest()[:16]
    out = Path(cache_root) / digest
    if not (out / "config.json").exists():
        model = apply_checkpoint(model_path, checkpoint_path, merge=True)
        model.save_pretrained(out)
        load_processor(model_path).save_pretrained(out)
    return str(out)


class VllmGenerator:
    def __init__(self, model_path: str, checkpoint_path: str | None, processor, inference_tags=None, **llm_kwargs):
        try:
            from vllm import LLM
        except ImportError:
            raise RuntimeError('--backend vllm needs vLLM: pip install -e ".[vllm]"') from None
        from transformers import AutoConfig

        self.encoder = PromptEncoder(processor, family_of_path(model_path), inference_tags=inference_tags)
        self.llm = LLM(model=merged_model_dir(model_path, checkpoint_path), **llm_kwargs)
        self.max_positions = max_positions(AutoConfig.from_pretrained(model_path))
        self.stats = GenStats()

    def prompt_tokens(self, request: GenRequest) -> int:
        return len(self.encoder.encode_prompt(request.image, request.question).input_ids)

    def generate(self, requests: list[GenRequest], settings: GenSettings):
        from PIL import Image
        from vllm import SamplingParams

        prompts, params = [], []
        for i, r in enumerate(requests):
            with Image.open(r.image) as im:
                image = im.convert("RGB")
            prompts.append({"prompt": self.encoder.prompt_text(r.question), "multi_modal_data": {"image": image}})
            key = r.key if r.key is not None else i
            params.append(SamplingParams(
                n=r.num_return_sequences, max_tokens=settings.max_new_tokens,
                temperature=0.0 if settings.greedy else settings.temperature,
                top_p=1.0 if settings.greedy else settings.top_p, seed=settings.seed * 1_000_003 + key))
        t0 = time.perf_counter()
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        answers = [[c.text.strip() for c in o.outputs] for o in outs]
        self.stats.seconds += time.perf_counter() - t0
        self.stats.responses += sum(len(a) for a in answers)
        self.stats.new_tokens += sum(len(c.token_ids) for o in outs for c in o.outputs)
        return answers
