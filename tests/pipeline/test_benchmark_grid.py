"""`safeeraser run` on another benchmark than SafeEraser (`benchmark:`): its mini written in the released
format, the vanilla model and the retain-only oracle fine-tuned, each method's forget step, each run scored by
the benchmark's tasks, forget quality against the oracle, model utility, seeds, reuse, and one error per
bad block."""
from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
import yaml
from scipy.stats import ks_2samp

from safeeraser.pipeline.experiment import load_experiment, run_experiment
from safeeraser.provenance import folder_identity
from safeeraser.train.config import ConfigError


def write_config(tmp_path, **changes) -> str:
    cfg = {"name": "b", "workdir": str(tmp_path / "work"),
           "benchmark": {"name": "fiubench", "data_path": str(tmp_path / "fiu"), "split": "forget10",
                         "make_mini": {"seed": 0, "identities": 8}, "oracle": str(tmp_path / "oracle")},
           "model": {"vanilla": str(tmp_path / "vanilla"),
                     "finetune": {"config": "finetune_tiny.yaml", "overrides": ["num_epochs=2"]}},
           "forget_overrides": ["num_epochs=1", "batch_size=4", "gradient_accumulation_steps=1"],
           "methods": ["ga"], "infer": {"batch_size": 16}, "specificity": None, "threads": 1}
    for key, value in changes.items():
        block, _, sub = key.partition("__")
        if sub:
            cfg[block] = {**cfg[block], sub: value}
        else:
            cfg[key] = value
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def hand_hmean(values):
    return 0.0 if 0 in values else len(values) / sum(1 / v for v in values)


@pytest.mark.heavy
def test_a_benchmark_grid_end_to_end_with_forget_quality_seeds_and_reuse(tmp_path, tiny_dir):
    config = write_config(tmp_path, seeds=[1, 2], model={
        "vanilla": str(tmp_path / "vanilla"),
        "finetune": {"config": "finetune_tiny.yaml", "overrides": [f"model_path={tiny_dir}", "num_epochs=30"]}})
    rows, runner = run_experiment(config, log=lambda *_: None)
    assert [r["method"] for r in rows] == ["vanilla", "oracle", "ga"]
    assert {"make-mini", "refusals", "finetune", "finetune-oracle"} <= set(runner.executed)
    assert not any(s.startswith(("infer:", "eval:")) for s in runner.executed)  # scored, not answered and judged

    # the oracle is the vanilla fine-tune without the forget split's examples
    oracle_cfg = yaml.safe_load((tmp_path / "oracle" / "config.yaml").read_text())
    assert oracle_cfg["data"]["teach"] == "retain" and oracle_cfg["data"]["split"] == "forget10"

    def scores(run):
        return json.loads(runner.scores_path(run).read_text())["scores"]

    oracle = scores(runner.plan_run("oracle"))
    assert rows[1]["cells"]["forget10/forget_quality"] == 1.0  # a model is its own oracle
    runs = [scores(runner.plan_run("ga", s)) for s in (1, 2)]
    for run, cells in zip(runs, [r["cells"] for r in rows[2]["runs"]]):
        mine, theirs = run["forget10"]["truth_ratios"], oracle["forget10"]["truth_ratios"]
        assert len(mine) == 12  # forget10: the mini's first four identities, three questions each
        assert cells["forget10/forget_quality"] == pytest.approx(ks_2samp(mine, theirs).pvalue)
        retain = run["retain"]
        assert cells["summary/model_utility"] > 0  # the vanilla fine-tune taught the retained identities
        assert cells["summary/model_utility"] == pytest.approx(hand_hmean(
            [retain["probability"], retain["rouge"]["rougeL"], retain["truth_ratio"]]))
        assert cells["retain/keywords"] == retain["keywords"]
    seeds_row = rows[2]
    assert seeds_row["seeds"] == [1, 2]
    for key in ("forget10/rouge.rougeL", "summary/model_utility"):
        values = [r["cells"][key] for r in seeds_row["runs"]]
        assert seeds_row["cells"][key] == pytest.approx(sum(values) / 2)
        assert seeds_row["sd"][key] == pytest.approx(statistics.stdev(values))

    # intervals: the rows' scores inside them; none for a p-value or a probability
    for row in rows:
        for key in ("forget10/rouge.rougeL", "retain/keywords", "forget10/truth_ratio"):
            low, high = row["ci"][key]
            assert low - 1e-12 <= row["cells"][key] <= high + 1e-12
        assert "forget10/forget_quality" not in row["ci"] and "retain/probability" not in row["ci"]

    work = tmp_path / "work"
    report = json.loads((work / "report-seeds-1-2.json").read_text())
    assert report["rows"] == rows and report["benchmark"] == "fiubench" and report["splits"] == ["forget10", "retain"]
    md = (work / "report-seeds-1-2.md").read_text()
    assert "**forget10**" in md and "| ga (n=2) |" in md and "forget_quality" in md

    # a rerun does no work, and gives the same rows
    rows2, runner2 = run_experiment(config, log=lambda *_: None)
    assert runner2.executed == [] and rows2 == rows


def test_the_plan_scores_each_run_and_answers_nothing(tmp_path):
    from safeeraser.pipeline.launchers.plan import describe

    path = Path(write_config(tmp_path, methods=["ga", "po"]))
    cfg = yaml.safe_load(path.read_text())
    del cfg["specificity"]  # the experiment's default block: its steps are SafeEraser's, never planned here
    path.write_text(yaml.safe_dump(cfg))
    text = describe(load_experiment(str(path)))
    assert "prepare (make-mini, refusals, finetune, finetune-oracle)" in text
    steps = [line.split()[1] for line in text.splitlines() if line.strip().startswith("todo")]
    assert [s.split(":")[0] for s in steps] == ["score", "score", "forget", "score", "forget", "score"]


@pytest.mark.parametrize("changes, key, message", [
    ({"methods": ["ga", "gapd"]}, "methods", "'gapd' trains PD"),
    ({"benchmark__split": "forget_10"}, "benchmark.split", "not a split fiubench forgets"),
    ({"benchmark__name": "safeeraser"}, "benchmark.name", "the one without a benchmark block"),
    ({"benchmark__name": "tofu"}, "benchmark.name", "unknown benchmark 'tofu'"),
    ({"benchmark__eval_splits": ["forget10", "holdout"]}, "benchmark.eval_splits[1]", "unknown split 'holdout'"),
    ({"benchmark__make_mini": {"profiles": 3}}, "benchmark.make_mini.profiles", "not an argument"),
    ({"benchmark__max_new_tokens": 0}, "benchmark.max_new_tokens", "at least 1"),
    ({"attacks": ["jailbreak:role_play"]}, "attacks", "none runs on fiubench"),
])
def test_a_bad_benchmark_block_is_one_error_naming_its_key(tmp_path, changes, key, message):
    with pytest.raises(ConfigError, match=rf"key '{re.escape(key)}'.*{message}"):
        load_experiment(write_config(tmp_path, **changes))


def test_an_oracle_neither_made_nor_given_is_an_error(tmp_path):
    from safeeraser.pipeline.experiment import Runner

    cfg = load_experiment(write_config(tmp_path, model={"vanilla": str(tmp_path / "vanilla")}))
    with pytest.raises(ConfigError, match=r"key 'benchmark.oracle': folder .*oracle' not found"):
        Runner(cfg).pending_inputs()


def test_the_oracle_is_taught_everything_but_the_forget_split(tmp_path, tiny_dir):
    from safeeraser.benchmarks import benchmark_for
    from safeeraser.models.loading import load_processor
    from safeeraser.models.families import family_for
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import build_dataset
    from safeeraser.train.methods import method_of

    bench = benchmark_for("fiubench")
    root = bench.make_mini(tmp_path / "fiu", seed=0, identities=8)
    sizes = {}
    for teach in ("all", "retain"):
        cfg = load_config("finetune_tiny.yaml", [], settings={
            "model_path": str(tiny_dir), "benchmark": "fiubench", "data_path": str(root), "split": "forget10",
            "teach": teach, "save_dir": str(tmp_path / teach)})
        data = build_dataset(cfg, method_of(cfg, weights=False), load_processor(str(tiny_dir)), family_for("llava"))
        sizes[teach] = {(ex.question, ex.answer, str(ex.image)) for ex in data.examples}
    forget = {(q["question"], q["answer"], str(root / r["image_path"]))
              for r in bench.read(root, "forget10") for q in r["qa_list"]}
    assert len(sizes["all"]) == 8 * 3 and forget <= sizes["all"]
    assert sizes["retain"] == sizes["all"] - forget
    with pytest.raises(ConfigError, match="key 'teach'.*'ga' unlearns"):
        load_config("forget_tiny.yaml", [], settings={"forget_loss": "ga", "teach": "retain",
                                                       "model_path": str(tiny_dir)}, validate_paths=False)


def test_a_folder_identity_follows_its_files_but_not_hidden_ones(tmp_path):
    (tmp_path / "a.json").write_text("[]")
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.png").write_bytes(b"1")
    first = folder_identity(tmp_path)
    (tmp_path / ".safeeraser-images").mkdir()
    (tmp_path / ".safeeraser-images" / "y.png").write_bytes(b"2")
    assert folder_identity(tmp_path) == first
    (tmp_path / "img" / "x.png").write_bytes(b"12")
    assert folder_identity(tmp_path) != first
    assert folder_identity(tmp_path / "missing") is None


def test_units_carry_what_pools_back_to_the_tasks_score():
    from safeeraser.pipeline.benchmark_rows import unit_values

    def accuracy(answers, refs):
        return {"exact": sum(a == r for a, r in zip(answers, refs)) / len(answers)}

    def median_length(answers, refs):  # not a mean over items: no unit can carry its share
        return statistics.median(len(a) for a in answers)

    items = [("a.png", "q", "x", "r1"), ("a.png", "q", "y", "r1"), ("b.png", "q", "z", "r2"), ("c.png", "q", "w")]
    answers = ["x", "n", "z", "w"]
    # r1: 1 of 2 right, r2: 1 of 1, the item without a unit goes by its image (c.png): 1 of 1
    # the task's own score over all items, as the score file holds it: 3 of 4 right
    assert unit_values(accuracy, answers, items, "s/acc", {"exact": 0.75}) == {
        "s/acc.exact": [(1.0, 2), (1.0, 1), (1.0, 1)]}
    assert unit_values(median_length, ["a", "bbb", "cc", "dddddd"], items, "s/len", 2.5) == {}  # 3 pooled
