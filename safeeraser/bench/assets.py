"""What the bench runs on: the mini benchmark and one of three models, built once under a work folder.

- `tiny` / `small`: the tiny LLaVA-architecture models (`safeeraser.models.tiny`), saved and loaded
  from disk like any llava-hf model.
- `llava-7b-random`: LLaVA-1.5-7B's shapes (CLIP ViT-L/14-336 tower, two-layer GELU projector,
  Llama-2-7B language model, vocab 32064) with random weights, built directly on the device in bf16.
  It uses the tiny tokenizer with a 336 px CLIP image processor, so every image is 576 tokens as in
  LLaVA-1.5. Only the way the weights come into being differs from `tiny`: every bench section
  calls `load_model` and runs the same code on either.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

MODELS = ("tiny", "small", "llava-7b-random")
RANDOM_7B = "llava-7b-random"
IMAGE_SIZE_7B = 336  # CLIP ViT-L/14-336: (336 / 14)^2 = 576 image tokens


class BenchSetupError(RuntimeError):
    """The bench cannot run as asked (e.g. the 7B model on a CPU without --allow_cpu)."""


@dataclass
class Assets:
    model: str  # one of MODELS
    data_dir: str
    train_file: str
    val_file: str
    prompt_file: str
    processor_path: str
    model_path: str  # a saved model folder; for llava-7b-random the folder holds only its config
    device: str  # "cpu" or "cuda"
    dtype: str  # "float32" or "bfloat16"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Assets":
        return cls(**d)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchSetupError("--device cuda was asked for but no CUDA device is available")
    return name


def check_model_device(model: str, device: str, allow_cpu: bool) -> None:
    if model == RANDOM_7B and device != "cuda" and not allow_cpu:
        raise BenchSetupError(
            "--model llava-7b-random has 7B parameters (about 14 GB of bf16 weights, more for training) and "
            "is meant for a CUDA GPU, but none is available here. Run it on a GPU machine, use --model tiny "
            "(or small) on a CPU, or pass --allow_cpu to run it on the CPU anyway (hours, and 40+ GB of RAM).")


def _done(folder: Path) -> bool:
    return (folder / "bench_ready.json").exists()


def _mark(folder: Path, what: dict) -> None:
    (folder / "bench_ready.json").write_text(json.dumps(what))


def prepare_assets(model: str, workdir: str | Path, device: str, seed: int = 0) -> Assets:
    """Build (or reuse) the mini benchmark and the model's files under `workdir`."""
    from safeeraser.data.mini import make_mini
    from safeeraser.models.tiny import make_tiny

    if model not in MODELS:
        raise BenchSetupError(f"unknown model '{model}'; choose one of {', '.join(MODELS)}")
    work = Path(workdir)
    data = work / "mini"
    if not _done(data):
        make_mini(data, seed=seed)
        _mark(data, {"seed": seed})
    size = "small" if model == "small" else "tiny"
    tiny = work / f"model-{size}"
    if not _done(tiny):
        make_tiny(tiny, size=size, seed=seed)
        _mark(tiny, {"size": size, "seed": seed})
    processor_path = model_path = tiny
    if model == RANDOM_7B:
        model_path = processor_path = work / "model-llava-7b-random"
        if not _done(model_path):
            _save_7b_files(tiny, model_path)
            _mark(model_path, {"model": RANDOM_7B})
    dtype = "bfloat16" if device == "cuda" or model == RANDOM_7B else "float32"
    return Assets(model=model, data_dir=str(data), train_file=str(data / "all_train.json"),
                  val_file=str(data / "all_val.json"), prompt_file=str(data / "prompt.json"),
                  processor_path=str(processor_path), model_path=str(model_path), device=device, dtype=dtype)


def processor_336(tiny_processor):
    """The tiny tokenizer behind a 336 px CLIP image processor: 576 image tokens, as LLaVA-1.5."""
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from safeeraser.models.families.llava import CHAT_TEMPLATE as LLAVA15_CHAT_TEMPLATE
    from safeeraser.models.tiny import PATCH_SIZE

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE_7B}, crop_size={"height": IMAGE_SIZE_7B, "width": IMAGE_SIZE_7B})
    return LlavaProcessor(image_processor=image_processor, tokenizer=tiny_processor.tokenizer,
                          patch_size=PATCH_SIZE, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, chat_template=LLAVA15_CHAT_TEMPLATE)


def llava7b_config(tokenizer, vision_overrides: dict | None = None, **text_overrides):
    """LLaVA-1.5-7B's architecture. The overrides shrink it, for tests of this code path only."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision_kwargs = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                         image_size=IMAGE_SIZE_7B, patch_size=14, projection_dim=768, hidden_act="quick_gelu",
                         layer_norm_eps=1e-5)
    vision_kwargs.update(vision_overrides or {})
    vision = CLIPVisionConfig(**vision_kwargs)
    text_kwargs = dict(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                       rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    text_kwargs.update(text_overrides)
    text = LlamaConfig(**text_kwargs)
    return LlavaConfig(vision_config=vision, text_config=text,
                       image_token_id=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
                       vision_feature_select_strategy="default", projector_hidden_act="gelu",
                       pad_token_id=tokenizer.pad_token_id)


def _save_7b_files(tiny_dir: Path, out: Path) -> None:
    from safeeraser.models.loading import load_processor

    processor = processor_336(load_processor(str(tiny_dir)))
    out.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(out)
    llava7b_config(processor.tokenizer).save_pretrained(out)


def load_model(assets: Assets, seed: int = 0):
    """A fresh model on the bench's device: from disk (tiny, small) or randomly initialised (7B).
    Called once per copy: the reference's KL way calls it twice."""
    import torch

    from safeeraser.models.loading import DTYPES, attention_implementation
    from safeeraser.models.loading import load_model as load_saved

    if assets.model != RANDOM_7B:
        return load_saved(assets.model_path, assets.dtype, device=assets.device)
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    dtype = DTYPES[assets.dtype]
    config = LlavaConfig.from_pretrained(assets.model_path)
    attn = attention_implementation() if assets.device == "cuda" else "sdpa"
    torch.manual_seed(seed)
    with torch.device(assets.device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation=attn)
    text = config.text_config
    model.generation_config.pad_token_id = text.pad_token_id
    model.generation_config.eos_token_id = text.eos_token_id
    model.generation_config.bos_token_id = text.bos_token_id
    return model


def linear_params(model) -> dict[str, int]:
    """Parameters in matmuls, for FLOP estimates: language model (with lm_head), vision tower, projector."""
    import torch

    counts = {"text": 0, "vision": 0, "projector": 0}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or "lora_" in name:
            continue
        n = module.weight.numel()
        if "vision_tower" in name:
            counts["vision"] += n
        elif "multi_modal_projector" in name:
            counts["projector"] += n
        else:
            counts["text"] += n
    return counts
