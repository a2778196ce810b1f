"""The README's main command on a fresh CPU machine: mini benchmark, tiny model, vanilla fine-tune."""
from __future__ import annotations

import time
from pathlib import Path

from safeeraser.pipeline.vanilla import format_check


def run_demo(workdir: str | Path = ".", seed: int = 0, force: bool = False) -> dict:
    from safeeraser.data.mini import make_mini
    from safeeraser.models.tiny import make_tiny
    from safeeraser.pipeline.vanilla import finetune, load_check
    from safeeraser.train.config import CONFIG_DIR

    workdir = Path(workdir)
    t0 = time.perf_counter()
    data = workdir / "dataset" / "mini"
    if force or not (data / "all_val.json").exists():
        make_mini(data, seed=seed)
    print(f"[1/3] mini benchmark: {data}")
    base = workdir / "models" / "tiny-base"
    if force or not (base / "config.json").exists():
        make_tiny(base, seed=seed)
    print(f"[2/3] tiny LLaVA: {base}")
    vanilla = workdir / "models" / "tiny-vanilla"
    report = None if force else load_check(vanilla)
    if report is None:
        _, report = finetune(str(CONFIG_DIR / "finetune_tiny.yaml"), [
            f"model_path={base}", f"data_path=[{data / 'all_train.json'},{data / 'all_val.json'}]",
            f"save_dir={vanilla}", "overwrite=true",
        ])
    print(f"[3/3] vanilla model: {vanilla}")
    print(format_check(report))
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return report
