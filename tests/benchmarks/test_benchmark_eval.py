"""A benchmark's tasks on a model: the eval items, their scores through the generation engine's interface,
and `safeeraser benchmark-eval` end to end on the tiny model."""
from __future__ import annotations

import json

import pytest

from safeeraser.benchmarks import benchmark_for
from safeeraser.benchmarks.evaluate import evaluate_split


@pytest.fixture(scope="module")
def mini(benchmark_mini):
    return benchmark_mini("mllmu")


class Scripted:
    """Answers each task's requests, in order, from a list per task: what a model that knows every answer,
    or none, would say. Stands in for infer.engine.Generator, whose own tests cover generation."""

    def __init__(self, answers: list[list[str]]):
        self.answers = list(answers)

    def generate(self, requests, settings):
        assert settings.greedy
        answers = self.answers.pop(0)
        assert len(answers) == len(requests)
        return [[a] for a in answers]


def test_the_eval_items_and_their_scores(mini):
    bench = benchmark_for("mllmu")
    items = bench.eval_items(mini, "forget_10")
    records = bench.read(mini, "forget_10")
    for kind in ("Image_Textual", "Pure_Text"):  # each question type its own task, as eval.py reports them
        assert len(items[f"classification.{kind.lower()}"]) == sum(
            len(r["Classification_Task"][f"{kind}_Questions"]) for r in records)
        assert len(items[f"generation.{kind.lower()}"]) == sum(
            t["Type"] == kind for r in records for t in r["Generation_Task"])
    image, prompt, letter, unit = items["classification.image_textual"][0]
    assert unit == f"profile {records[0]['ID']}"
    assert image.is_file() and letter in "ABCD" and all(f"{k}: " in prompt for k in "ABCD")
    # a text-only question is shown the blank image, an image question the profile's
    assert items["classification.pure_text"][0][0] != image
    assert {item[0] for item in items["classification.pure_text"]} == {items["cloze.pure_text"][0][0]}
    assert all("[Blank]" in p and "__" not in p for _, p, *_ in items["cloze.image_textual"] + items["cloze.pure_text"])
    perfect = evaluate_split(Scripted([[item[2] for item in task] for task in items.values()]), bench, items)
    for kind in ("image_textual", "pure_text"):
        assert perfect[f"classification.{kind}"] == 100.0 and perfect[f"cloze.{kind}"] == 100.0
        assert perfect[f"generation.{kind}"] == pytest.approx({"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0})
    wrong = evaluate_split(Scripted([["Z"] * len(task) for task in items.values()]), bench, items)
    assert all(wrong[f"{t}.{k}"] == 0.0 for t in ("classification", "cloze") for k in ("image_textual", "pure_text"))


def test_benchmark_eval_writes_every_splits_scores(mini, tiny_dir, tmp_path, capsys):
    from safeeraser.cli import main

    out = tmp_path / "scores.json"
    assert main(["benchmark-eval", "--benchmark", "mllmu", "--data_path", str(mini), "--splits",
                 "forget_5,Test_Set", "--model_path", str(tiny_dir), "--output_file", str(out),
                 "--max_new_tokens", "2"]) == 0
    scores = json.loads(out.read_text())["scores"]
    assert set(scores) == {"forget_5", "Test_Set"}
    for split in scores.values():
        assert 0 <= split["classification.image_textual"] <= 100 and 0 <= split["cloze.pure_text"] <= 100
        assert set(split["generation.pure_text"]) == {"rouge1", "rouge2", "rougeL"}
    assert main(["benchmark-eval", "--benchmark", "mllmu", "--data_path", str(mini), "--splits", "forget_7",
                 "--model_path", str(tiny_dir), "--output_file", str(out)]) == 2
    assert "unknown split 'forget_7'" in capsys.readouterr().err


def test_the_test_set_of_the_forget_profiles(mini):
    from safeeraser.io import DataError

    bench = benchmark_for("mllmu")
    whole, forget = bench.eval_items(mini, "Test_Set"), bench.eval_items(mini, "Test_Set:forget_10")
    per_profile = len(whole["generation.image_textual"]) // len(bench.read(mini, "Test_Set"))
    assert len(forget["generation.image_textual"]) == 2 * per_profile  # forget_10's two profiles only
    assert set(forget["generation.image_textual"]) <= set(whole["generation.image_textual"])
    with pytest.raises(DataError, match="only Test_Set is filtered"):
        bench.eval_items(mini, "Test_Set:retain_90")


def test_fiubench_truth_ratios_and_forget_quality(tmp_path, vanilla_dir, forget_cfg, capsys):
    import math

    from safeeraser.benchmarks.evaluate import likelihood_split
    from safeeraser.cli import main
    from safeeraser.data.views import Example
    from safeeraser.eval.likelihood import answer_nll
    from safeeraser.models.loading import load_model, load_processor

    bench = benchmark_for("fiubench")
    root = bench.make_mini(tmp_path / "fiu", seed=0)
    model, processor = load_model(str(vanilla_dir), "float32").eval(), load_processor(str(vanilla_dir))
    got = likelihood_split(model, processor, bench, bench.likelihood_items(root, "forget5"), "forget5")
    # by hand: one question at a time, exp(mean perturbed loss - paraphrased loss), min(TR, 1/TR) on a forget split
    ratios, probs = [], []
    for image, question, answer, paraphrased, perturbed in bench.likelihood_items(root, "forget5"):
        loss = lambda text: answer_nll(model, processor, [Example(image, question, text)])[0].nll  # noqa: E731
        tr = math.exp(sum(loss(x) for x in perturbed) / len(perturbed) - loss(paraphrased))
        ratios.append(tr)
        probs.append(math.exp(-loss(answer)))
    assert got["questions"] == len(ratios) == 6
    assert got["truth_ratios"] == pytest.approx(ratios, rel=1e-4)
    assert got["truth_ratio"] == pytest.approx(sum(min(t, 1 / t) for t in ratios) / len(ratios), rel=1e-4)
    assert got["probability"] == pytest.approx(sum(probs) / len(probs), rel=1e-4)
    # the model as its own oracle: the same truth ratios, KS statistic 0, forget quality 1
    out = tmp_path / "scores.json"
    assert main(["benchmark-eval", "--benchmark", "fiubench", "--data_path", str(root), "--splits", "forget5,retain",
                 "--model_path", str(vanilla_dir), "--oracle_checkpoint", str(vanilla_dir), "--output_file", str(out),
                 "--max_new_tokens", "2"]) == 0
    scores = json.loads(out.read_text())["scores"]
    assert scores["forget5"]["forget_quality"] == {"p_value": 1.0, "statistic": 0.0}
    assert "forget_quality" not in scores["retain"] and 0 <= scores["retain"]["probability"] <= 1
    # another oracle (two steps of gradient ascent from the same model): the KS test of the model's truth
    # ratios against that oracle's, computed here on the oracle loaded by hand
    from scipy.stats import ks_2samp

    from safeeraser.models.checkpoint import load_for_generation
    from safeeraser.train.loop import run_training

    other = run_training(forget_cfg("forget_loss=ga", "max_train_steps=2", f"save_dir={tmp_path / 'other'}"))
    assert main(["benchmark-eval", "--benchmark", "fiubench", "--data_path", str(root), "--splits", "forget5",
                 "--model_path", str(vanilla_dir), "--oracle_checkpoint", str(other), "--output_file", str(out),
                 "--max_new_tokens", "2"]) == 0
    theirs = likelihood_split(load_for_generation(str(vanilla_dir), str(other), "float32").eval(), processor, bench,
                              bench.likelihood_items(root, "forget5"), "forget5")["truth_ratios"]
    assert theirs != pytest.approx(got["truth_ratios"], rel=1e-4)  # the oracle is another model
    test = ks_2samp(got["truth_ratios"], theirs)
    fq = json.loads(out.read_text())["scores"]["forget5"]["forget_quality"]
    assert fq["p_value"] == pytest.approx(test.pvalue, rel=1e-4) and fq["statistic"] == pytest.approx(test.statistic)
