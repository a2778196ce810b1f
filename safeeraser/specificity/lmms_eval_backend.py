"""`--backend lmms-eval`: merge the checkpoint into the model, save it, run lmms-eval's CLI on the
matching tasks and put its scores in the same table as the native run.

lmms-eval is optional: it is looked for, never imported here, and its absence is a clear error.
Tested for real with lmms-eval 0.7.3 (tests/specificity/test_lmms_eval_handoff.py, on a tiny model and a
local task): its answers are token for token those of our engine on the same merged model."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from safeeraser.io import atomic_write_json
from safeeraser.specificity.engine_predict import load_model_with_checkpoint
from safeeraser.specificity.summary import summarize


@dataclass(frozen=True)
class LmmsEvalTask:
    task: str
    metric: str
    to_percent: float  # lmms-eval reports accuracies in [0, 1] and GPT scores in percent


TASKS = {
    "gqa": LmmsEvalTask("gqa", "exact_match", 100.0),
    "vizwiz": LmmsEvalTask("vizwiz_vqa_val", "exact_match", 100.0),
    "sqa": LmmsEvalTask("scienceqa_img", "exact_match", 100.0),
    "vqav2": LmmsEvalTask("vqav2_val", "exact_match", 100.0),
    "pope": LmmsEvalTask("pope", "pope_f1_score", 100.0),
    "mmvet": LmmsEvalTask("mmvet", "gpt_eval_score", 1.0),
    "mmbench": LmmsEvalTask("mmbench_en_dev", "gpt_eval_score", 1.0),
}


# lmms-eval models that answer one request at a time (0.7.3's llava_hf asserts a batch size of 1).
ONE_AT_A_TIME = ("llava_hf",)


class LmmsEvalError(RuntimeError):
    pass


def lmms_eval_installed() -> bool:
    return importlib.util.find_spec("lmms_eval") is not None


def build_command(model_dir: str | os.PathLike, benchmarks: list[str], output_path: str | os.PathLike, *,
                  limit: int | None, seed: int, batch_size: int, model: str = "llava_hf",
                  python: str = sys.executable, device: str | None = None,
                  include_path: str | os.PathLike | None = None, tasks: dict[str, LmmsEvalTask] | None = None
                  ) -> list[str]:
    """lmms-eval's command line. `device` goes to lmms-eval and, as device_map, to the model: its llava_hf
    passes an empty device_map to from_pretrained otherwise, which transformers 5 refuses. `include_path`:
    a folder of task YAMLs of one's own (local data), named by `tasks` (benchmark -> LmmsEvalTask)."""
    tasks = TASKS if tasks is None else tasks
    model_args = f"pretrained={model_dir}" + (f",device_map={device}" if device else "")
    command = [python, "-m", "lmms_eval", "--model", model, "--model_args", model_args,
               "--tasks", ",".join(tasks[name].task for name in benchmarks), "--batch_size", str(batch_size),
               "--output_path", str(output_path), "--log_samples", "--seed", str(seed)]
    if device:
        command += ["--device", device]
    if include_path is not None:
        command += ["--include_path", str(include_path)]
    if limit is not None:
        command += ["--limit", str(limit)]
    return command


def find_results_file(output_path: Path, earlier: set[Path] = frozenset()) -> Path:
    """lmms-eval writes <output_path>/<model>/<date>_results.json; the newest one is this run's. `earlier`:
    the files an earlier run left, never taken for this run's."""
    found = sorted((p for p in output_path.rglob("*results.json") if p not in earlier),
                   key=lambda p: p.stat().st_mtime)
    if not found:
        raise LmmsEvalError(f"lmms-eval wrote no *results.json under {output_path}"
                            + (" in this run" if earlier else ""))
    return found[-1]


def parse_results(results_file: Path, benchmarks: list[str], tasks: dict[str, LmmsEvalTask] | None = None
                  ) -> dict[str, dict]:
    """benchmark -> {score (percent or None), metric, unavailable?, task} from lmms-eval's results."""
    tasks = TASKS if tasks is None else tasks
    try:
        results = json.loads(results_file.read_text(encoding="utf-8"))["results"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise LmmsEvalError(f"{results_file}: not an lmms-eval results file (no 'results' object)") from None
    parsed = {}
    for name in benchmarks:
        spec = tasks[name]
        entry = {"benchmark": name, "metric": f"lmms-eval {spec.task} {spec.metric} (%)", "task": spec.task,
                 "source": str(results_file)}
        block = results.get(spec.task)
        # Metric keys carry the filter name ("exact_match,none"); older versions had the bare name.
        value = None if block is None else block.get(f"{spec.metric},none", block.get(spec.metric))
        if isinstance(value, (int, float)):
            entry["score"] = value * spec.to_percent
        else:
            entry["score"] = None
            entry["unavailable"] = (f"lmms-eval wrote no result for task {spec.task}" if block is None
                                    else f"lmms-eval's {spec.task} result has no numeric {spec.metric}")
        parsed[name] = entry
    return parsed


def merge_checkpoint(model_path: str, checkpoint_path: str, out_dir: Path, dtype: str) -> Path:
    """Save the model with the checkpoint merged, as a model folder lmms-eval loads; reused if there."""
    if (out_dir / "config.json").is_file():
        return out_dir
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model, processor = load_model_with_checkpoint(model_path, checkpoint_path, dtype)
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    partial.rename(out_dir)
    return out_dir


def _run_streaming(command: list[str], log_file: Path) -> tuple[int, str | None]:
    """Run lmms-eval with its output shown as it comes and kept in `log_file`; (exit status, its last
    error line). lmms-eval 0.7.3 exits 0 after an error in the evaluation, so the line is what tells."""
    last_error = None
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w", encoding="utf-8") as log, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as process:
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
            if "Error" in line or "ERROR" in line:
                last_error = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()  # without loguru's colours
    return process.returncode, last_error


def run_lmms_eval(model_path: str, checkpoint_path: str | None, benchmarks: list[str], output_dir: Path, *,
                  limit: int | None, seed: int, batch_size: int, model: str = "llava_hf",
                  dtype: str = "auto", device: str | None = None, include_path: str | os.PathLike | None = None,
                  tasks: dict[str, LmmsEvalTask] | None = None) -> dict:
    """Run lmms-eval and write the same scores.json files and specificity.json as the native run.
    `device`: where lmms-eval runs the model (default: cuda when there is one, else cpu)."""
    if not lmms_eval_installed():
        raise LmmsEvalError("--backend lmms-eval needs lmms-eval, which is not installed "
                            "(pip install lmms-eval), or use --backend native")
    output_dir = Path(output_dir)
    model_dir = model_path if checkpoint_path is None else merge_checkpoint(
        model_path, checkpoint_path, output_dir / "merged_model", dtype)
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if model in ONE_AT_A_TIME:
        batch_size = 1
    lmms_output = output_dir / "lmms_eval"
    command = build_command(model_dir, benchmarks, lmms_output, limit=limit, seed=seed, batch_size=batch_size,
                            model=model, device=device, include_path=include_path, tasks=tasks)
    earlier = set(lmms_output.rglob("*results.json"))
    status, last_error = _run_streaming(command, output_dir / "lmms_eval.log")
    if status != 0:
        raise LmmsEvalError(f"lmms-eval exited with status {status}: {' '.join(command)}")
    try:
        results_file = find_results_file(lmms_output, earlier)
    except LmmsEvalError as exc:
        said = f"; its last error: {last_error}" if last_error else ""
        raise LmmsEvalError(f"{exc}{said} (log: {output_dir / 'lmms_eval.log'})") from None
    results = parse_results(results_file, benchmarks, tasks)
    for name, scores in results.items():
        atomic_write_json(output_dir / name / "scores.json", scores)
    summary = summarize(results, backend="lmms-eval")
    atomic_write_json(output_dir / "specificity.json", summary)
    return summary
