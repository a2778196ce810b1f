"""`--backend lmms-eval` for real: lmms-eval's own CLI runs on the tiny model with a LoRA checkpoint merged,
on a local POPE task (a task YAML of ours over the shipped fixture questions: no downloads), and its
scores come back as the native run's files. Its answers must be our engine's, token for token: what
lmms-eval scores is the unlearned model, not the base one.

The real run skips where lmms-eval is not importable: it is in no extra (lmms-eval 0.7.3 imports
`filelock._api`, which filelock 4 removed, and requirements.lock pins filelock 4.3.1; its `llava_hf`
needs decord, the `video-legacy` extra). Run with it: a venv with `pip install -c requirements.lock -e .`,
`pip install "lmms-eval[video-legacy]==0.7.3" "filelock<4" pytest`. One lmms-eval run takes 30-50 s on
2 CPU cores (its task index and imports)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from safeeraser.specificity import builtin_data_root, lmms_eval_backend
from safeeraser.specificity.lmms_eval_backend import LmmsEvalError, LmmsEvalTask, run_lmms_eval

needs_lmms_eval = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None, reason="lmms-eval is not installed")

PROMPT = "\nAnswer the question using a single word or phrase."
TASK = """task: safeeraser_local_pope
dataset_path: json
dataset_kwargs:
  data_files:
    test: {questions}
test_split: test
output_type: generate_until
doc_to_visual: !function local_pope.doc_to_visual
doc_to_text: !function local_pope.doc_to_text
doc_to_target: label
generation_kwargs:
  max_new_tokens: 6
  temperature: 0
  do_sample: false
process_results: !function local_pope.process_results
metric_list:
  - metric: pope_accuracy
    aggregation: !function local_pope.accuracy
    higher_is_better: true
  - metric: pope_f1_score
    aggregation: !function local_pope.f1
    higher_is_better: true
"""
UTILS = '''from PIL import Image
from lmms_eval.tasks.pope.utils import pope_aggregate_accuracy as accuracy
from lmms_eval.tasks.pope.utils import pope_aggregate_f1_score as f1
from lmms_eval.tasks.pope.utils import pope_process_results

IMAGES = {images!r}


def doc_to_visual(doc):
    return [Image.open(f"{{IMAGES}}/{{doc['image']}}").convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["text"] + {prompt!r}


def process_results(doc, results):
    return pope_process_results({{**doc, "answer": doc["label"]}}, results)
'''


def _random_adapter(base: Path, out: Path) -> Path:
    """A LoRA adapter whose weights all differ from zero, so that merging it changes the answers."""
    from peft import LoraConfig, get_peft_model

    from safeeraser.models.loading import load_model

    model = get_peft_model(load_model(str(base), "float32"), LoraConfig(
        r=4, lora_alpha=16, target_modules=r".*language_model.*\.(q_proj|v_proj|down_proj)", init_lora_weights=False))
    model.save_pretrained(out)
    return out


def test_a_failed_lmms_eval_run_is_its_last_error_not_an_earlier_runs_results(tmp_path, monkeypatch):
    """lmms-eval 0.7.3 exits 0 after an error: the results an earlier run left must not pass for this one's."""
    earlier = tmp_path / "spec" / "lmms_eval" / "m" / "20240101_results.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text(json.dumps({"results": {"pope": {"pope_f1_score,none": 0.9}}}))
    built = {}

    def fake_command(*args, **kwargs):
        built.update(kwargs)
        return [sys.executable, "-c", "print('\\x1b[31mERROR\\x1b[0m | Error during evaluation: no filelock._api')"]

    monkeypatch.setattr(lmms_eval_backend, "lmms_eval_installed", lambda: True)
    monkeypatch.setattr(lmms_eval_backend, "build_command", fake_command)
    with pytest.raises(LmmsEvalError) as failed:
        run_lmms_eval("m", None, ["pope"], tmp_path / "spec", limit=None, seed=0, batch_size=8, device="cpu")
    message = str(failed.value)
    assert "in this run" in message and "ERROR | Error during evaluation: no filelock._api" in message
    assert "\x1b" not in message and (tmp_path / "spec" / "lmms_eval.log").read_text().count("filelock") == 1
    assert built["batch_size"] == 1 and built["device"] == "cpu"  # llava_hf answers one request at a time


@needs_lmms_eval
def test_lmms_eval_scores_the_merged_checkpoint_with_our_engines_answers(tmp_path, tiny_dir, monkeypatch):
    from safeeraser.specificity.base import Request
    from safeeraser.specificity.engine_predict import load_engine_predict_fn

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    pope = builtin_data_root() / "pope"
    questions = pope / "coco" / "coco_pope_random.json"
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "local_pope.yaml").write_text(TASK.format(questions=questions))
    (tasks / "local_pope.py").write_text(UTILS.format(images=str(pope / "val2014"), prompt=PROMPT))
    adapter = _random_adapter(tiny_dir, tmp_path / "adapter")
    local = {"pope": LmmsEvalTask("safeeraser_local_pope", "pope_f1_score", 100.0)}

    summary = run_lmms_eval(str(tiny_dir), str(adapter), ["pope"], tmp_path / "spec", limit=None, seed=0,
                            batch_size=8, device="cpu", include_path=tasks, tasks=local)

    out = tmp_path / "spec"
    results_file, = (out / "lmms_eval").rglob("*_results.json")
    results = json.loads(results_file.read_text())
    assert results["config"]["model_args"].startswith(f"pretrained={out / 'merged_model'}")
    f1 = results["results"]["safeeraser_local_pope"]["pope_f1_score,none"]
    scores = json.loads((out / "pope" / "scores.json").read_text())
    assert scores["score"] == pytest.approx(100 * f1) and json.loads((out / "specificity.json").read_text()) == summary
    samples_file, = (out / "lmms_eval").rglob("*_samples_*.jsonl")
    samples = sorted((json.loads(line) for line in samples_file.read_text().splitlines()), key=lambda s: s["doc_id"])
    docs = [json.loads(line) for line in questions.read_text().splitlines()]
    theirs = [s["filtered_resps"] if isinstance(s["filtered_resps"], str) else s["filtered_resps"][0] for s in samples]
    requests = [Request(str(d["question_id"]), pope / "val2014" / d["image"], d["text"] + PROMPT, 6) for d in docs]
    ours = load_engine_predict_fn(str(tiny_dir), str(adapter), batch_size=4, dtype="float32")(requests)
    base = load_engine_predict_fn(str(tiny_dir), None, batch_size=4, dtype="float32")(requests)
    assert [t.strip() for t in theirs] == [o.strip() for o in ours]
    assert ours != base  # the checkpoint changed the answers: lmms-eval saw the unlearned model
