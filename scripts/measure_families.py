"""Per family, on its tiny model and the mini benchmark: seconds per unlearning step (gdpd, the real
training loop) and inference new tokens/s (ckpt_infer). Prints a Markdown table.

    .venv/bin/python scripts/measure_families.py [--families llava,qwen2_vl] [--threads 1] [--out DIR]

Step time is the median of the `log.jsonl` step times after the first (warm-up) step; inference is what
ckpt_infer reports for the whole mini val file. Times on a shared machine: measure at idle, say the load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    from safeeraser.models.families import REGISTRY

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", default=",".join(sorted(REGISTRY)))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--out", default=None, help="work folder (a temporary one by default)")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from safeeraser.data.mini import make_mini
    from safeeraser.infer.ckpt_infer import build_parser, run_inference
    from safeeraser.models.tiny import make_tiny
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    work = Path(args.out or tempfile.mkdtemp(prefix="families-"))
    data = work / "mini"
    if not (data / "all_val.json").exists():
        make_mini(data, seed=0)
    print(f"load average at start: {os.getloadavg()[0]:.2f}; torch threads: {torch.get_num_threads()}")
    print("| family | parameters | unlearning step (gdpd, batch 8), s | inference new tokens/s |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.families.split(","):
        base = make_tiny(work / f"tiny-{name}", family=name, seed=0)
        out = work / f"gdpd-{name}"
        cfg = load_config("forget_tiny.yaml", [
            f"model_path={base}", f"data_path={data / 'all_train.json'}", f"idk_path={data / 'prompt.json'}",
            f"save_dir={out}", "forget_loss=gdpd", f"max_train_steps={args.steps}", "batch_size=8",
            "gradient_accumulation_steps=1", "overwrite=true"])
        run_training(cfg)
        rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
        step_s = statistics.median(8 / r["samples_per_s"] for r in rows[1:])
        answers = work / f"answers-{name}.json"
        summary = run_inference(build_parser().parse_args([
            "--eval_file", str(data / "all_val.json"), "--model_path", str(base), "--checkpoint_path", str(out),
            "--output_file", str(answers), "--max_new_tokens", "64", "--batch_size", "32", "--dtype", "float32"]))
        from safeeraser.models.loading import load_model

        n = sum(p.numel() for p in load_model(str(base), "float32").parameters())
        print(f"| {name} | {n / 1e6:.2f} M | {step_s:.3f} | {summary['new_tokens_per_s']:.0f} |", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f} s")
