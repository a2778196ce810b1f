"""The vanilla step: fine-tune the tiny model on the mini benchmark, then check what it answers."""
from __future__ import annotations

from pathlib import Path

from safeeraser.data.records import load_benchmark
from safeeraser.io import atomic_write_json
from safeeraser.numerics import pin
from safeeraser.reference.checkout import inference_tags
from safeeraser.train.config import config_differences, data_paths, flat_config

CHECK_FILE = "vanilla_check.json"


def check_model(model_dir: str | Path, splits: dict[str, str | Path], batch_size: int = 32) -> dict:
    """Greedy reproduction rates per split and kind; kept with the model as vanilla_check.json."""
    from safeeraser.infer.engine import Generator
    from safeeraser.infer.reproduce import reproduction_rates
    from safeeraser.models.loading import load_model, load_processor

    generator = Generator(load_model(str(model_dir)), load_processor(str(model_dir)), batch_size=batch_size,
                          inference_tags=_inference_tags(model_dir))
    report = {name: reproduction_rates(generator, load_benchmark(path)) for name, path in splits.items()}
    atomic_write_json(Path(model_dir) / CHECK_FILE, report)
    return report


def _inference_tags(model_dir: str | Path):
    """A model fine-tuned in the reference's format (its saved config.yaml says prompt_format=reference) is
    checked with the reference's inference prompt, as the grid then answers with it; None: the template."""
    from omegaconf import OmegaConf

    saved = Path(model_dir) / "config.yaml"
    saved_cfg = flat_config(OmegaConf.to_container(OmegaConf.load(saved))) if saved.exists() else {}
    if saved_cfg.get("prompt_format") != "reference":
        return None

    return inference_tags(saved_cfg["reference_dir"])


def format_check(report: dict) -> str:
    if not report:
        return "no answer check (another benchmark than SafeEraser: safeeraser benchmark-eval scores it)"
    lines = ["greedy answers that reproduce their targets:",
             f"  {'split':<8}{'harmful':>12}{'sd':>12}{'harmless':>12}"]
    for split, r in report.items():
        cells = [f"{r['rates'][k]['matched']}/{r['rates'][k]['total']}" for k in ("harmful", "sd", "unharm")]
        lines.append(f"  {split:<8}" + "".join(f"{c:>12}" for c in cells))
    first = next(iter(report.values()))["samples"]
    for kind, s in first.items():
        lines.append(f"  e.g. {kind}: Q: {s['question']}\n        A: {s['answer']}")
    return "\n".join(lines)


def stale_settings(request, model_dir: str | Path) -> list[str]:
    """How the settings of the vanilla model already in `model_dir` differ from those the TrainRequest
    `request` now gives (`key: old -> new`): a model made otherwise is another model."""
    from omegaconf import OmegaConf

    saved = Path(model_dir) / "config.yaml"
    if not saved.exists():
        return ["config.yaml: missing"]
    cfg = request.load(validate_paths=False)
    return config_differences(OmegaConf.to_container(OmegaConf.load(saved), resolve=True), cfg,
                              ignore=("overwrite", "resume_from_checkpoint", "report_to", "workers"))


def finetune(request) -> tuple[Path, dict]:
    """Fine-tune the vanilla model the TrainRequest `request` describes, then check what it answers."""
    cfg = request.load()
    pin(cfg.optim.numerics)  # before torch loads (the training loop imports it)
    from safeeraser.train.loop import run_training

    out = run_training(cfg)
    if cfg.data.benchmark != "safeeraser":  # the check reads SafeEraser's records: another's is benchmark-eval
        return out, {}
    splits = {Path(p).stem.replace("all_", ""): p for p in data_paths(cfg)}
    return out, check_model(out, splits)
