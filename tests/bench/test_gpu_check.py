"""The one-shot GPU check: its CPU dry run writes every figure of the GPU run, the merge reports a stage
that failed, and the random 7B models have the published architectures' sizes."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from safeeraser.bench import gpu_check

ROOT = Path(__file__).resolve().parents[2]


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@pytest.mark.heavy
def test_dry_run_writes_every_figure_of_the_gpu_check(tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "GPU_CHECK_OUT": str(out), "GPU_CHECK_WORKDIR": str(tmp_path / "work"),
           "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == gpu_check.SCHEMA and doc["dry"] is True
    assert [s["status"] for s in doc["stages"]] == ["ok"] * 3
    for model in gpu_check.MODELS:
        m = doc["models"][model]
        for key in gpu_check.MODEL_KEYS:
            assert _finite(gpu_check.get(m, key)), (model, key, gpu_check.get(m, key))
        for method in gpu_check.METHODS:
            assert m["train"][method]["effective_batch"] == 16
        vllm = m["infer"]["vllm"]
        assert isinstance(vllm["importable"], bool)
        assert vllm.get("new_tokens_per_s") is not None or vllm["reason"]
    # the machine facts and which attention ran
    mach = doc["machine"]
    assert mach["torch"] and mach["transformers"] and mach["attention"] == "sdpa"
    assert isinstance(mach["flash_attn_importable"], bool) and _finite(mach["peak_flops"])
    assert len(doc["targets"]) == 4 * len(gpu_check.MODELS)
    assert all(_finite(t["value"]) and t["met"] in (True, False) for t in doc["targets"])
    assert _finite(doc["grid_prediction"]["total_h"]) and "DRY RUN" in doc["grid_prediction"]["source"]
    assert doc["missing"] == [] and doc["complete"] is True
    assert "DRY RUN" in proc.stdout and "targets:" in proc.stdout


def _bench_json(model: str, tokens_per_s: float = 30_000.0) -> dict:
    """A `safeeraser bench` result with the keys the merge reads (numbers made up)."""
    def train(method, peak):
        return {"tokens_per_s": tokens_per_s, "samples_per_s": 8.0, "step_s_median": 2.0,
                "model_flops_per_s": 4.0e14, "peak_mb": peak, "effective_batch": 16, "batch_size": 4,
                "kl_reference": "adapter disabled" if method == "klpd" else "none"}

    side = {"new_tokens_per_s": 1200.0, "responses_per_s": 9.0}
    return {"meta": {"command": f"safeeraser bench --model {model}", "shapes": "full",
                     "machine": {"torch": "2.x", "transformers": "5.x", "gpu": "NVIDIA H200", "device": "cuda"}},
            "details": {"train": {"gdpd/ours": train("gdpd", 60_000.0), "klpd/ours": train("klpd", 63_000.0)},
                        "infer": {"attention": "flash_attention_2", "ours": side,
                                  "reference": {"new_tokens_per_s": 40.0, "responses_per_s": 0.3},
                                  "max_new_tokens": 128, "prompts": 32, "reference_prompts": 2,
                                  "mean_prompt_tokens": 640.0, "batch_size": 32}}}


def test_merge_judges_targets_on_the_gpus_peak_and_reports_a_timed_out_stage(tmp_path):
    llava = tmp_path / "llava.json"
    llava.write_text(json.dumps(_bench_json("llava-7b-random")))
    stages = [("llava-7b-random", 0, 100.0, str(llava)),
              ("qwen2.5-vl-7b-random", 124, 170.0, str(tmp_path / "qwen.json")),  # ran out of time
              ("vllm:llava-7b-random", 0, 1.0, str(tmp_path / "nothing.json"))]  # exit 0 but no file
    doc = gpu_check.merge(stages, dry=False)
    m = doc["models"]["llava-7b-random"]
    assert m["status"] == "ok"
    assert m["train"]["gdpd"]["mfu"] == pytest.approx(4.0e14 / 989e12)  # H200's dense bf16 peak
    assert m["train"]["klpd_over_gdpd_peak"] == pytest.approx(1.05)
    assert m["infer"]["ratio"] == pytest.approx(30.0)
    assert doc["machine"]["attention"] == "flash_attention_2" and doc["machine"]["gpu"] == "NVIDIA H200"
    assert doc["models"]["qwen2.5-vl-7b-random"]["status"] == "timed out after 170 s"
    assert doc["stages"][2]["status"].startswith("no readable output")
    assert "vLLM stage no readable output" in m["infer"]["vllm"]["reason"]
    targets = {t["name"]: t["met"] for t in doc["targets"]}
    assert targets["llava-7b-random gdpd step MFU"] is True  # 40.4% >= 40%
    assert targets["llava-7b-random inference new tokens/s, ours / reference way"] is True
    assert targets["llava-7b-random klpd / gdpd peak memory"] is True
    assert targets["qwen2.5-vl-7b-random gdpd step MFU"] is None  # not measured: neither met nor failed
    assert doc["complete"] is False
    assert doc["missing"] and all(p.startswith("models/qwen2.5-vl-7b-random/") for p in doc["missing"])
    assert doc["grid_prediction"]["total_h"] > 0  # predicted from the LLaVA figures


def test_unknown_gpu_has_no_peak_and_no_mfu_target_judged():
    peak, note = gpu_check.peak_flops("Some Future GPU", dry=False)
    assert math.isnan(peak) and "unknown GPU" in note
    assert gpu_check.peak_flops("NVIDIA H100 PCIe", dry=False)[0] == 756e12
    assert gpu_check.peak_flops("NVIDIA H100 80GB HBM3", dry=False)[0] == 989e12


def test_random_7b_models_have_the_published_sizes():
    """Built on the meta device (no memory): LLaVA-1.5-7B has 7.06 B parameters, Qwen2.5-VL-7B 8.29 B."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForImageTextToText

    from safeeraser.bench import assets, grid_cost
    from safeeraser.models.families import llava, qwen2_5_vl

    tok = SimpleNamespace(pad_token_id=0, bos_token_id=1, eos_token_id=2, convert_tokens_to_ids=lambda t: 3)
    sizes = {}
    for name, config in (("llava", llava.bench_config(tok)), ("qwen", qwen2_5_vl.bench_config(tok))):
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
        sizes[name] = (sum(p.numel() for p in model.parameters()), assets.linear_params(model))
    assert sizes["llava"][0] == 7_063_427_072 and sizes["qwen"][0] == 8_292_166_656
    llava_linear = {k: grid_cost.LLAVA_7B[k] for k in ("text", "vision", "projector")}
    assert sizes["llava"][1] == llava_linear  # the grid prediction's FLOP counts are this model's
    # Qwen's projector (the merger) sits inside its vision tower: counted as the projector, not the tower
    assert sizes["qwen"][1]["projector"] == 44_564_480


def test_random_7b_models_refuse_a_cpu_at_full_size_but_not_shrunk():
    from safeeraser.bench.assets import BenchSetupError, check_model_device

    with pytest.raises(BenchSetupError, match="--shapes tiny"):
        check_model_device("qwen2.5-vl-7b-random", "cpu", allow_cpu=False)
    check_model_device("qwen2.5-vl-7b-random", "cpu", allow_cpu=False, shapes="tiny")


def test_a_bench_model_is_a_family_hook_and_one_registry_line(monkeypatch, tmp_path):
    """A toy family's 7B bench model: its bench_files and one line in bench/assets.RANDOM_MODELS."""
    from types import SimpleNamespace

    from safeeraser.bench import assets

    made = {}

    class Toy(SimpleNamespace):
        bench_architecture = "ToyForConditionalGeneration"

        def bench_files(self, tiny_processor, dry_run):
            made["dry_run"] = dry_run
            return tiny_processor, SimpleNamespace(architectures=None, save_pretrained=lambda out: None)

    monkeypatch.setitem(assets.RANDOM_MODELS, "toy-7b-random", "toy")
    monkeypatch.setattr(assets, "family_for", lambda name: Toy() if name == "toy" else None)
    processor, config = assets.random_model_files("toy-7b-random", "tiny", "the tiny processor")
    assert processor == "the tiny processor" and made == {"dry_run": True}
