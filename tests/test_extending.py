"""docs/extending.md's recipes, followed with toy additions: a method, an importance function, a membership
attack, a judge, a benchmark and a family are each one module and one registry line (the metric, step kind, attack and bench-model recipes are followed by
tests/eval/test_judged_metrics.py, tests/pipeline/test_step_kinds.py, tests/attacks/test_attacks.py and
tests/bench/test_gpu_check.py). A recipe that stops working fails here."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _module(tmp_path, monkeypatch, package: str, name: str, source: str) -> str:
    # A package of this name imported by an earlier test of the same worker (from its own tmp_path) would
    # shadow this one: forget it for this test.
    for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, loaded)
    (tmp_path / package).mkdir(exist_ok=True)
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{package}.{name}"


def test_a_method_is_one_module_and_one_registry_line(tmp_path, monkeypatch, forget_cfg):
    import importlib

    from safeeraser.train import methods
    from safeeraser.train.loop import run_training

    path = _module(tmp_path, monkeypatch, "toymethods", "halfgd", (
        '"""Half GD: gradient ascent on the forget answers, half-weighted descent on the retain ones."""\n'
        "from safeeraser.train.methods.base import Method, Term\n\n"
        "METHOD = Method('halfgd', (Term('forget', 'forget', 'nll', -1.0), Term('retain', 'retain', 'nll', 0.5)))\n"))
    monkeypatch.setitem(methods.REGISTRY, "halfgd", importlib.import_module(path).METHOD)  # the registry line
    for name in ("halfgd", "halfgdpd"):
        out = run_training(forget_cfg(f"forget_loss={name}", "max_train_steps=1", f"save_dir={tmp_path / name}"))
        row = json.loads((out / "log.jsonl").read_text().splitlines()[0])
        pd = row.get("loss/pd", 0.0) * (1.0 if name.endswith("pd") else 0.0)
        assert row["loss/total"] == pytest.approx(-row["loss/forget"] + 0.5 * row["loss/retain"] + pd, rel=1e-5)
        assert ("loss/pd" in row) == name.endswith("pd")


def test_an_importance_function_is_one_module_and_one_registry_line(tmp_path, monkeypatch, forget_cfg):
    import torch

    from safeeraser.train import importance
    from safeeraser.train.loop import Trainer

    path = _module(tmp_path, monkeypatch, "toyimportance", "magnitude", (
        "import torch\n"
        "from safeeraser.train.importance.base import Importance\n\n"
        "def score(p):\n"
        "    return {n: q.detach().abs() for n, q in p.model.named_parameters() if q.requires_grad}\n\n"
        "def select(scores, p):\n"
        "    return {n: s >= s.flatten().median() for n, s in scores.items()}\n\n"
        "IMPORTANCE = Importance('magnitude', score, select)\n"))
    monkeypatch.setitem(importance.REGISTRY, "magnitude", (path, "weights"))  # the registry line
    # MMUnlearner's `importance` argument lists the weights' functions when its module is read: the new
    # one is allowed as a registered name is
    from safeeraser.train.methods import mmunlearner
    monkeypatch.setitem(mmunlearner.METHOD.arg_bounds, "importance", importance.names_for("weights"))
    cfg = forget_cfg("forget_loss=mmunlearner", "LoRA.r=0", "tune_language_model=true", "max_train_steps=2",
                     "warmup_ratio=0", "method_args.importance=magnitude", f"save_dir={tmp_path / 'run'}")
    trainer = Trainer(cfg).setup()
    small = {p: (p.detach().abs() < p.detach().abs().flatten().median(), p.detach().clone())
             for p in trainer.model.parameters() if p.requires_grad}
    trainer.train()
    assert json.loads((tmp_path / "run" / "localization.json").read_text())["importance"] == "magnitude"
    moved = 0
    for p, (frozen, before) in small.items():
        assert torch.equal(p.detach()[frozen], before[frozen])
        moved += int((p.detach()[~frozen] != before[~frozen]).sum())
    assert moved > 0


def test_a_membership_attack_is_one_module_and_one_registry_line(tmp_path, monkeypatch, vanilla_dir, mini_dir):
    from safeeraser.data.records import load_benchmark
    from safeeraser.eval import mia
    from safeeraser.eval.likelihood import answer_nll, membership_auc, mia_auc, view_examples
    from safeeraser.models.loading import load_model, load_processor

    path = _module(tmp_path, monkeypatch, "toyattacks", "top_token", (
        "from safeeraser.eval.mia.base import Attack\n\n"
        "ATTACK = Attack('top_token', lambda e, o: max(e.scores.logprobs))\n"))
    monkeypatch.setitem(mia.REGISTRY, "top_token", path)  # the registry line
    model, processor = load_model(str(vanilla_dir), "float32").eval(), load_processor(str(vanilla_dir))
    train, val = load_benchmark(mini_dir / "all_train.json")[:2], load_benchmark(mini_dir / "all_val.json")[:2]
    result = membership_auc(model, processor, train, val, attacks=("top_token", "loss"))
    members, others = (answer_nll(model, processor, view_examples(r, "forget")) for r in (train, val))
    assert result["top_token"] == mia_auc([max(s.logprobs) for s in members], [max(s.logprobs) for s in others])
    assert set(result["distance"]) == {"top_token", "loss"}


def test_a_judge_is_one_class_and_one_registry_line(tmp_path, monkeypatch, mini_dir):
    from safeeraser.eval import judges
    from safeeraser.eval.command import main as eval_main

    path = _module(tmp_path, monkeypatch, "toyjudges", "sure", (
        "from safeeraser.eval.judges.base import ASR, RR, RR_SD, Judge, Judgment\n\n"
        "class SureJudge(Judge):\n"
        "    '''An answer that starts with Sure is unsafe; one that says cannot refuses.'''\n"
        "    name = 'sure'\n    kinds = frozenset({ASR, RR, RR_SD})\n    grades_mmvet = False\n\n"
        "    @classmethod\n    def create(cls, options=None, cache_path=None):\n        return cls()\n\n"
        "    def judge(self, items, progress=None):\n"
        "        out = []\n"
        "        for item in items:\n"
        "            if item.kind == ASR:\n"
        "                out.append(Judgment('unsafe' if item.answer.startswith('Sure') else 'safe'))\n"
        "            elif item.kind == RR:\n"
        "                out.append(Judgment('refuse' if 'cannot' in item.answer else 'not_refuse'))\n"
        "            elif item.kind == RR_SD:\n"
        "                out.append(Judgment('normal'))\n"
        "            else:\n"
        "                out.append(Judgment(status='unavailable'))\n"
        "        if progress:\n            progress(len(items))\n"
        "        return out\n"))
    monkeypatch.setitem(judges.JUDGES, "sure", f"{path}:SureJudge")  # the registry line
    dataset = json.loads((mini_dir / "all_val.json").read_text())[:2]
    for r in dataset:
        r["image_path"], r["SDImage_path"] = str(mini_dir / r["image_path"]), str(mini_dir / r["SDImage_path"])
    records = json.loads(json.dumps(dataset))
    for r in records:  # answers as ckpt_infer writes them: the dataset's harmful answer, a refusal, a no
        for pair in r["unsafe_pairs"]:
            pair.update(model_response1=pair["model_response"], model_response2="I cannot help.",
                        model_response3="No.")
    data, answers, judged = tmp_path / "val.json", tmp_path / "answers.json", tmp_path / "judged.json"
    data.write_text(json.dumps(dataset))
    answers.write_text(json.dumps(records))
    assert eval_main(["--input_file", str(answers), "--file_refer", str(data), "--output_file_rr", str(judged),
                      "--judge", "sure", "--no_progress"]) == 0
    stats = json.loads(judged.with_suffix(".txt").read_text())["stats_asr_rr"]
    pairs = sum(len(r["unsafe_pairs"]) for r in records)
    # one answer in three starts with the dataset's harmful "Sure. ..." and one says it cannot help
    assert stats["total"] == 3 * pairs and stats["unsafe_count"] == pairs and stats["refuse_count"] == pairs


def test_a_family_is_one_module_and_one_registry_line(tmp_path, monkeypatch, tiny_dir, mini_dir):
    """A family file under another model_type's registry line is what the toolkit then uses for that model:
    here LLaVA's family with its LoRA limited to the attention's value projections."""
    from safeeraser.models import families
    from safeeraser.train.loop import Trainer
    from safeeraser.train.config import load_config

    path = _module(tmp_path, monkeypatch, "toyfamilies", "valuellava", (
        "from safeeraser.models.families.llava import Llava\n\n"
        "class ValueLlava(Llava):\n"
        "    def lora_targets(self, names, layers=None):\n"
        "        return super().lora_targets(['v_proj'], layers)\n\n"
        "FAMILY = ValueLlava()\n"))
    monkeypatch.setitem(families.REGISTRY, "llava", path)  # the registry line
    families.family_for.cache_clear()
    try:
        cfg = load_config("forget_tiny.yaml", [f"model_path={tiny_dir}", f"data_path={mini_dir / 'all_train.json'}",
                                               f"idk_path={mini_dir / 'prompt.json'}", f"save_dir={tmp_path / 'run'}",
                                               "forget_loss=ga", "max_train_steps=1", "batch_size=2"])
        trainer = Trainer(cfg).setup()
        adapted = {re.sub(r".*\.", "", n.split(".lora_")[0]) for n, _ in trainer.model.named_parameters() if "lora_" in n}
        assert adapted == {"v_proj"}
    finally:
        families.family_for.cache_clear()


TOY_BENCHMARK = '''"""Colours: name the colour of a square; forget the red ones."""
import json
from pathlib import Path

from PIL import Image

from safeeraser.benchmarks.base import Benchmark, training_split
from safeeraser.data.views import Example, ForgetItem
from safeeraser.io import DataError

COLOURS = {"forget": ("red",), "retain": ("blue", "green", "white")}


def read(root, split):
    path = Path(root) / f"{split}.json"
    records = json.loads(path.read_text())
    for i, r in enumerate(records):
        if not isinstance(r.get("answer"), str):
            raise DataError(f"{path}: record {i}: field 'answer': a string")
    return records


def make_mini(out, seed=0):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for split, colours in COLOURS.items():
        for c in colours:
            Image.new("RGB", (16, 16), c).save(out / f"{c}.png")
        (out / f"{split}.json").write_text(json.dumps([{"image": f"{c}.png", "question": "Which colour is this?",
                                                        "answer": c} for c in colours]))
    return out


def examples(root, split):
    return [Example(Path(root) / r["image"], r["question"], r["answer"]) for r in read(root, split)]


def training_items(root, split):
    pool = tuple(examples(root, "retain"))
    items = [ForgetItem(record=i, pair=0, forget=ex, pd=None, retain_pool=pool)
             for i, ex in enumerate(examples(root, split))]
    return training_split("colours", split, "retain", items, pool, {"red"}, {"blue", "green", "white"})


def exact(answers, references):
    return sum(a.strip() == r for a, r in zip(answers, references)) / len(answers)


BENCHMARK = Benchmark("colours", ("forget", "retain"), read, make_mini, tasks={"exact": exact},
                      forget_splits=("forget",), training_items=training_items,
                      eval_items=lambda root, split: {"exact": [(e.image, e.question, e.answer)
                                                               for e in examples(root, split)]},
                      eval_splits=lambda split: (split, "retain"))
'''


def test_a_benchmark_is_one_module_and_one_registry_line(tmp_path, monkeypatch, vanilla_dir):
    import yaml

    from safeeraser import benchmarks
    from safeeraser.pipeline.experiment import run_experiment

    path = _module(tmp_path, monkeypatch, "toybenchmarks", "colours", TOY_BENCHMARK)
    monkeypatch.setitem(benchmarks.REGISTRY, "colours", path)  # the registry line
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({
        "name": "colours", "workdir": str(tmp_path / "work"), "model": {"vanilla": str(vanilla_dir)},
        "benchmark": {"name": "colours", "data_path": str(tmp_path / "colours"), "split": "forget",
                      "make_mini": {"seed": 0}, "max_new_tokens": 4},
        "forget_overrides": ["max_train_steps=1", "batch_size=1", "gradient_accumulation_steps=1"],
        "methods": ["ga"], "specificity": None}))
    rows, runner = run_experiment(config, log=lambda *_: None)
    assert [r["method"] for r in rows] == ["vanilla", "ga"]
    assert all(set(r["cells"]) == {"forget/exact", "retain/exact"} for r in rows)
    assert all(0 <= v <= 1 for r in rows for v in r["cells"].values())
    assert "forget:ga" in runner.executed and (tmp_path / "colours" / "red.png").is_file()


def test_the_extending_guide_names_a_test_for_every_recipe():
    guide = (REPO / "docs" / "extending.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", guide)
    assert len(named) >= 7
    for file, test in named:
        assert re.search(rf"^def {test}\(", (REPO / file).read_text(), re.M), f"{file}::{test} is gone"
