"""What the bench runs on: the mini benchmark and one of its models, built once under a work folder.

- `tiny` / `small`: the tiny LLaVA-architecture models (`safeeraser.models.tiny`), saved and loaded
  from disk like any llava-hf model.
- `llava-7b-random`: LLaVA-1.5-7B's shapes (CLIP ViT-L/14-336 tower, two-layer GELU projector,
  Llama-2-7B language model, vocab 32064) with random weights, built directly on the device in bf16.
  It uses the tiny tokenizer with a 336 px CLIP image processor, so every image is 576 tokens as in
  LLaVA-1.5.
- `qwen2.5-vl-7b-random`: Qwen2.5-VL-7B-Instruct's shapes (32-block windowed ViT with its 2x2 merger,
  Qwen2-7B language model with grouped key/value heads and M-RoPE, vocab 152064) with random weights,
  the tiny Qwen tokenizer, and images resized to 672x672 px: 2,304 patches, 576 language tokens each,
  as many as LLaVA-1.5's, so that the two families' figures compare.
Only the way the weights come into being differs from `tiny`: the folder holds the processor, the
config and the generation config (no weights: nothing 14 GB is written), and every bench section calls
`load_model` and runs the same code on either. `shapes="tiny"` shrinks a random model's every width
and depth (same families, same code) for a CPU dry run of the GPU check (`scripts/gpu_check.sh --dry`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from safeeraser.data.mini import make_mini
from safeeraser.models.families import DEFAULT_FAMILY, family_for, family_of_model
from safeeraser.models.tiny import make_tiny

# The random 7B models: bench name -> the family whose architecture it has (Family.bench_files builds
# it). Adding one is a family's bench_files and one line here.
RANDOM_MODELS = {
    "llava-7b-random": "llava",
    "qwen2.5-vl-7b-random": "qwen2_5_vl",
}
MODELS = ("tiny", "small", *RANDOM_MODELS)
SHAPES = ("full", "tiny")  # a random model's sizes: the real architecture's, or shrunk for a CPU dry run


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
    model_path: str  # a saved model folder; for a random model it holds no weights
    device: str  # "cpu" or "cuda"
    dtype: str  # "float32" or "bfloat16"
    shapes: str = "full"  # a random model's sizes (SHAPES)

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


def check_model_device(model: str, device: str, allow_cpu: bool, shapes: str = "full") -> None:
    if model in RANDOM_MODELS and shapes == "full" and device != "cuda" and not allow_cpu:
        raise BenchSetupError(
            f"--model {model} has 7B parameters (about 15 GB of bf16 weights, more for training) and "
            "is meant for a CUDA GPU, but none is available here. Run it on a GPU machine, use --model tiny "
            "(or small) on a CPU, --shapes tiny for a dry run of the same code at tiny sizes, or pass "
            "--allow_cpu to run it on the CPU anyway (hours, and 40+ GB of RAM).")


def _done(folder: Path) -> bool:
    return (folder / "bench_ready.json").exists()


def _mark(folder: Path, what: dict) -> None:
    (folder / "bench_ready.json").write_text(json.dumps(what))


def _tiny_model(work: Path, family: str, size: str, seed: int) -> Path:
    folder = work / (f"model-{size}" if family == DEFAULT_FAMILY else f"model-{size}-{family}")
    if not _done(folder):
        make_tiny(folder, family=family, size=size, seed=seed)
        _mark(folder, {"family": family, "size": size, "seed": seed})
    return folder


def prepare_assets(model: str, workdir: str | Path, device: str, seed: int = 0, shapes: str = "full") -> Assets:
    """Build (or reuse) the mini benchmark and the model's files under `workdir`."""

    if model not in MODELS:
        raise BenchSetupError(f"unknown model '{model}'; choose one of {', '.join(MODELS)}")
    if shapes not in SHAPES:
        raise BenchSetupError(f"unknown shapes '{shapes}'; choose one of {', '.join(SHAPES)}")
    work = Path(workdir)
    data = work / "mini"
    if not _done(data):
        make_mini(data, seed=seed)
        _mark(data, {"seed": seed})
    family = RANDOM_MODELS.get(model, DEFAULT_FAMILY)
    tiny = _tiny_model(work, family, "small" if model == "small" else "tiny", seed)
    processor_path = model_path = tiny
    if model in RANDOM_MODELS:
        model_path = processor_path = work / f"model-{model}" if shapes == "full" else work / f"model-{model}-{shapes}"
        if not _done(model_path):
            _save_random_files(model, shapes, tiny, model_path)
            _mark(model_path, {"model": model, "shapes": shapes})
    # bf16 where it runs fast (a GPU) and for the full 7B shapes anywhere (half the memory)
    dtype = "bfloat16" if device == "cuda" or (model in RANDOM_MODELS and shapes == "full") else "float32"
    return Assets(model=model, data_dir=str(data), train_file=str(data / "all_train.json"),
                  val_file=str(data / "all_val.json"), prompt_file=str(data / "prompt.json"),
                  processor_path=str(processor_path), model_path=str(model_path), device=device, dtype=dtype,
                  shapes=shapes if model in RANDOM_MODELS else "full")


def random_model_files(model: str, shapes: str, tiny_processor):
    """(processor, config) of a random model: its family's 7B architecture behind the tiny tokenizer."""

    return family_for(RANDOM_MODELS[model]).bench_files(tiny_processor, dry_run=shapes == "tiny")


def _save_random_files(model: str, shapes: str, tiny_dir: Path, out: Path) -> None:
    from transformers import GenerationConfig

    from safeeraser.models.loading import load_processor

    processor, config = random_model_files(model, shapes, load_processor(str(tiny_dir)))
    # the class a loaded model folder names (vLLM picks its implementation by it)

    config.architectures = [family_for(RANDOM_MODELS[model]).bench_architecture]
    out.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(out)
    config.save_pretrained(out)
    # the tiny model's generation config: the family's pad and end-of-turn ids for this tokenizer
    GenerationConfig.from_pretrained(tiny_dir).save_pretrained(out)


def load_model(assets: Assets, seed: int = 0):
    """A fresh model on the bench's device: from disk (tiny, small) or randomly initialised (the random
    models, directly on the device: no CPU copy, nothing read from disk but the config).
    Called once per copy: the reference's KL way calls it twice."""
    import torch

    from safeeraser.models.loading import DTYPES, attention_implementation
    from safeeraser.models.loading import load_model as load_saved

    if assets.model not in RANDOM_MODELS:
        return load_saved(assets.model_path, assets.dtype, device=assets.device)
    from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

    dtype = DTYPES[assets.dtype]
    config = AutoConfig.from_pretrained(assets.model_path)
    attn = attention_implementation() if assets.device == "cuda" and dtype != torch.float32 else "sdpa"
    torch.manual_seed(seed)
    with torch.device(assets.device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype, attn_implementation=attn)
    model.generation_config = GenerationConfig.from_pretrained(assets.model_path)
    return model


def linear_params(model) -> dict[str, int]:
    """Parameters in matmuls, for FLOP estimates: language model (with lm_head), vision tower, projector
    (where each sits is the family's to say)."""
    import torch

    family = family_of_model(model)
    counts = {"text": 0, "vision": 0, "projector": 0}
    names = {"language": "text", "vision": "vision", "projector": "projector"}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or "lora_" in name:
            continue
        counts[names[family.part_of(name)]] += module.weight.numel()
    return counts
