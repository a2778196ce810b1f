"""In-process judge backends: transformers (`hf`) and vLLM (`vllm`).

Why not the toolkit's own engine (safeeraser/infer/engine.py, Generator): it serves one image and one
question per request through a VLM family's chat template. Guard models take their own raw prompt
formats (Llama Guard 3, WildGuard, HarmBench are text-only causal LMs) or a two-turn conversation
(Llama Guard 4), which the engine cannot express. So `hf` batches transformers' `generate` itself:
greedy, left-padded, longest prompts first, each batch's replies cached as soon as they exist.

`vllm` is written against vLLM's documented offline API (LLM.generate for raw prompts, LLM.chat for
conversations, SamplingParams(temperature=0)); vLLM is not installed where this was written, so that
path is untested.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from safeeraser.eval.judges.asker import Ask, CachedAsker, Record
from safeeraser.eval.judges.base import JudgeConfigError

DTYPES = ("auto", "bf16", "fp16", "fp32")


def _torch_dtype(name: str):
    import torch

    return {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def _check_model_path(model: str) -> None:
    """A path-like model name must exist: a typo would otherwise become a hub lookup and an obscure error."""
    looks_local = model.startswith((".", "/", "~")) or model.count("/") > 1  # a hub id is "org/name"
    if looks_local and not Path(model).expanduser().exists():
        raise JudgeConfigError(f"judge model {model}: no such folder")


class HFAsker(CachedAsker):
    def __init__(self, model: str, prompt_version: str, cache_path, *, batch_size: int = 8,
                 max_new_tokens: int = 32, dtype: str = "auto", device: str | None = None):
        super().__init__(model, prompt_version, cache_path)
        if dtype not in DTYPES:
            raise JudgeConfigError(f"judge dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
        if batch_size < 1:
            raise JudgeConfigError("judge batch_size must be at least 1")
        _check_model_path(model)
        self.batch_size, self.max_new_tokens, self.dtype, self.device = batch_size, max_new_tokens, dtype, device
        self._model = None  # loaded on the first prompt that is not cached: a cached rerun loads nothing

    def describe(self) -> dict:
        return {"model": self.model, "backend": "hf"}

    def _load(self) -> None:
        import torch
        from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor,
                                  AutoTokenizer)

        try:
            config = AutoConfig.from_pretrained(self.model)
            self.vision = getattr(config, "vision_config", None) is not None
            if self.vision:  # an image-text-to-text model (Llama Guard 4): its processor builds the inputs
                self.processor = AutoProcessor.from_pretrained(self.model)
                self.tokenizer = self.processor.tokenizer
                cls = AutoModelForImageTextToText
            else:
                self.processor = self.tokenizer = AutoTokenizer.from_pretrained(self.model)
                cls = AutoModelForCausalLM
            model = cls.from_pretrained(self.model, dtype=_torch_dtype(self.dtype))
        except (OSError, ValueError) as exc:
            raise JudgeConfigError(f"cannot load judge model {self.model}: {str(exc).splitlines()[0]}") from None
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model = model.to(device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _text(self, ask: Ask) -> str:
        if ask.completion:
            return ask.prompt
        messages = ask.messages or [{"role": "user", "content": ask.prompt}]
        if ask.messages:  # the template sees image placeholders; the pixels go to the processor
            messages = [{"role": m["role"], "content": [
                {"type": "image"} if p.get("type") == "image" else p for p in m["content"]]} for m in messages]
        try:
            return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except ValueError as exc:  # no chat template
            raise JudgeConfigError(f"judge model {self.model}: {str(exc).splitlines()[0]}") from None

    @staticmethod
    def _images(ask: Ask) -> list:
        from PIL import Image

        images = []
        for message in ask.messages or []:
            for part in message["content"] if not isinstance(message["content"], str) else []:
                if part.get("type") == "image":
                    with Image.open(part["path"]) as im:
                        images.append(im.convert("RGB"))
        return images

    def _fetch(self, todo: dict[str, Ask], record: Record) -> None:
        import torch
        from transformers import GenerationConfig

        if self._model is None:
            self._load()
        texts = {key: self._text(ask) for key, ask in todo.items()}
        # Longest first: similar lengths share a batch (less padding), and an out-of-memory shows at once.
        order = sorted(todo, key=lambda k: -len(texts[k]))
        config = GenerationConfig(max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
                                  temperature=None, top_p=None, top_k=None,
                                  pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
        bos = self.tokenizer.bos_token
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            batch_texts = [texts[k] for k in chunk]
            # Raw prompts get the tokenizer's BOS; a chat template that wrote it already must not get two.
            special = not (bos and all(t.startswith(bos) for t in batch_texts))
            kwargs = dict(text=batch_texts, return_tensors="pt", padding=True, add_special_tokens=special)
            images = [im for k in chunk for im in self._images(todo[k])]
            if images:
                kwargs["images"] = images
            inputs = self.processor(**kwargs).to(self._model.device)
            if self.vision:  # pixel values in the model's dtype
                for name, value in inputs.items():
                    if torch.is_floating_point(value):
                        inputs[name] = value.to(self._model.dtype)
            with torch.no_grad():
                out = self._model.generate(**inputs, generation_config=config)
            new = out[:, inputs["input_ids"].shape[1]:].cpu()
            self.usage.requests += len(chunk)
            self.usage.prompt_tokens += int(inputs["attention_mask"].sum())
            self.usage.completion_tokens += int((new != self.tokenizer.pad_token_id).sum())
            for key, row in zip(chunk, new, strict=True):
                record(key, self.tokenizer.decode(row, skip_special_tokens=True))


class VLLMAsker(CachedAsker):
    def __init__(self, model: str, prompt_version: str, cache_path, *, max_new_tokens: int = 32,
                 dtype: str = "auto"):
        super().__init__(model, prompt_version, cache_path)
        if importlib.util.find_spec("vllm") is None:
            raise JudgeConfigError("the vllm judge backend needs vLLM, which is not installed (pip install vllm); "
                                   "or use --backend hf, or serve the model and pass --base_url")
        if dtype not in DTYPES:
            raise JudgeConfigError(f"judge dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
        _check_model_path(model)
        self.max_new_tokens = max_new_tokens
        self.dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, "auto")
        self._llm = None

    def describe(self) -> dict:
        return {"model": self.model, "backend": "vllm"}

    def _fetch(self, todo: dict[str, Ask], record: Record) -> None:
        import vllm

        if self._llm is None:
            self._llm = vllm.LLM(model=self.model, dtype=self.dtype)
        params = vllm.SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens)
        raw = [k for k, a in todo.items() if a.completion]
        chats = [k for k, a in todo.items() if not a.completion]
        if raw:
            outputs = self._llm.generate([todo[k].prompt for k in raw], params)
            for key, output in zip(raw, outputs, strict=True):
                self.usage.requests += 1
                record(key, output.outputs[0].text)
        if chats:
            from safeeraser.eval.judges.chat import _openai_messages  # deferred: openai (eval.judges is light)

            conversations = [_openai_messages(todo[k].messages or [{"role": "user", "content": todo[k].prompt}])
                             for k in chats]
            outputs = self._llm.chat(conversations, params)
            for key, output in zip(chats, outputs, strict=True):
                self.usage.requests += 1
                record(key, output.outputs[0].text)
