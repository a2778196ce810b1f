import json

import pytest
import yaml

from safeeraser.pipeline.experiment import run_experiment
from safeeraser.train.config import ConfigError


@pytest.fixture
def experiment(tmp_path, vanilla_dir, mini_dir):
    def write(methods, **extra):
        cfg = {
            "name": "t", "workdir": str(tmp_path / "work"),
            "data": {"train": str(mini_dir / "all_train.json"), "val": str(mini_dir / "all_val.json"),
                     "prompt": str(mini_dir / "prompt.json")},
            "model": {"vanilla": str(vanilla_dir)},
            "forget_overrides": ["max_train_steps=2", "batch_size=4", "gradient_accumulation_steps=1"],
            "methods": methods,
            "infer": {"batch_size": 16, "max_new_tokens": 6, "seed": 0},
            "judge": {"name": "keyword"},
            "specificity": {"benchmarks": "pope,sqa", "data_root": "builtin", "limit": 2},
            **extra,
        }
        path = tmp_path / "exp.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path
    return write


@pytest.mark.heavy
def test_grid_runs_end_to_end_then_skips_what_is_done(experiment, tmp_path):
    rows, runner = run_experiment(experiment(["ga", "gdpd"]), log=lambda *_: None)
    work = tmp_path / "work"
    assert [r["method"] for r in rows] == ["vanilla", "ga", "gdpd"]
    for name in ("report.md", "report.csv", "report.json", "report.png"):
        assert (work / name).stat().st_size > 0
    assert "| gdpd |" in (work / "report.md").read_text()
    report = json.loads((work / "report.json").read_text())
    assert report["rows"] == rows
    vanilla = rows[0]
    assert vanilla["gen_asr"] == 100.0 and vanilla["rouge_l"] > 50  # the vanilla model answers
    assert all(r["specificity"] is not None for r in rows)
    assert sum(s.startswith("forget:") for s in runner.executed) == 2

    # a rerun does no work
    rows2, runner2 = run_experiment(experiment(["ga", "gdpd"]), log=lambda *_: None)
    assert runner2.executed == [] and rows2 == rows

    # adding a method runs only that method's steps
    _, runner3 = run_experiment(experiment(["ga", "gdpd", "po"]), log=lambda *_: None)
    assert runner3.executed and all(":po" in s or "po-" in s for s in runner3.executed)


def test_unknown_method_is_a_config_error(experiment):
    with pytest.raises(ConfigError, match="unknown method 'gx'"):
        run_experiment(experiment(["ga", "gx"]), log=lambda *_: None)


@pytest.mark.parametrize("name", ["mini.yaml", "llava7b.yaml", "llava13b.yaml", "qwen25vl7b.yaml",
                                  "llava7b_reference.yaml", "mini_reference.yaml"])
def test_shipped_experiment_configs_validate(name):
    from safeeraser.pipeline.experiment import load_experiment

    cfg = load_experiment(name)
    assert cfg.methods and cfg.workdir == f"runs/{cfg.name}"


@pytest.mark.heavy
def test_seeds_run_each_method_once_per_seed_and_report_mean_and_sd(experiment, tmp_path):
    rows, runner = run_experiment(experiment(["ga"], seeds=[1, 2]), log=lambda *_: None)
    work = tmp_path / "work"
    vanilla, ga = rows
    assert "sd" not in vanilla  # the vanilla model is not unlearned: one run
    assert ga["seeds"] == [1, 2] and len(ga["runs"]) == 2
    assert sorted(p.name.split("-")[0] for p in (work / "forget").iterdir()) == ["ga", "ga"]
    assert sum(s.startswith("forget:") for s in runner.executed) == 2
    for key in ("eff_asr", "rouge_l", "sarr"):
        values = [r[key] for r in ga["runs"]]
        assert ga[key] == pytest.approx(sum(values) / 2)
        assert ga["sd"][key] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    # a run over seeds is its own report: it never replaces the single-run one
    assert not (work / "report.md").exists()
    md = (work / "report-seeds-1-2.md").read_text()
    assert "| ga (n=2) |" in md and " ± " in md and "hierarchical bootstrap" in md
    header = (work / "report-seeds-1-2.csv").read_text().splitlines()[0]
    assert "rouge_l_sd" in header and header.endswith("seeds") and "sarr_low" in header
    lo, hi = ga["ci"]["eff_asr"]
    assert lo <= ga["eff_asr"] <= hi
    # the rows made again: each seed's judged values counted once, the same intervals
    assert runner.rows() == rows and [len(runner.values[None, m]) for m in ("vanilla", "ga")] == [1, 2]


def test_combine_seeds_keeps_a_missing_column_missing():
    from safeeraser.pipeline.columns import COLUMNS
    from safeeraser.pipeline.rows import combine_seeds

    runs = [{c.key: 10.0 * i for c in COLUMNS} for i in (1, 2, 3)]
    runs[1]["gpt_eval"] = None
    row = combine_seeds("gd", [0, 1, 2], runs)
    assert row["eff_asr"] == pytest.approx(20.0) and row["sd"]["eff_asr"] == pytest.approx(10.0)
    assert row["gpt_eval"] is None and row["sd"]["gpt_eval"] is None


@pytest.mark.parametrize("seeds", [[1, 1], ["a"], [True]])
def test_bad_seeds_are_a_config_error(experiment, seeds):
    with pytest.raises(ConfigError, match="key 'seeds'"):
        run_experiment(experiment(["ga"], seeds=seeds), log=lambda *_: None)


@pytest.mark.parametrize("family", ["llava_next", "qwen2_vl", "qwen2_5_vl", "gemma3", "internvl"])
def test_mini_grid_with_another_family_by_one_override(tmp_path, micro_dir, family):
    """`model.make_tiny.family=NAME` is all it takes: the grid builds that family's tiny model, fine-tunes
    it (briefly here, on two records a split), unlearns with ga and gapd, answers, judges and reports."""
    cfg = {
        "name": "f", "workdir": str(tmp_path / "work"),
        "data": {"train": str(micro_dir / "all_train.json"), "val": str(micro_dir / "all_val.json"),
                 "prompt": str(micro_dir / "prompt.json")},
        "model": {"make_tiny": {"out": str(tmp_path / "base"), "size": "tiny", "seed": 0},
                  "finetune": {"config": "finetune_tiny.yaml",
                               "overrides": [f"model_path={tmp_path / 'base'}", "num_epochs=1"]},
                  "vanilla": str(tmp_path / "vanilla")},
        "forget_overrides": ["max_train_steps=1", "batch_size=4", "gradient_accumulation_steps=1"],
        "methods": ["ga", "gapd"],
        "infer": {"batch_size": 16, "max_new_tokens": 4, "seed": 0},
        "judge": {"name": "keyword"},
        "specificity": None,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rows, runner = run_experiment(path, [f"model.make_tiny.family={family}"], log=lambda *_: None)
    assert [r["method"] for r in rows] == ["vanilla", "ga", "gapd"]
    assert json.loads((tmp_path / "base" / "config.json").read_text())["model_type"] == family
    assert "make-tiny" in runner.executed and "finetune" in runner.executed
    assert all(0 <= r["eff_asr"] <= 100 and r["rouge_l"] is not None for r in rows)
    # stopped after the fine-tune but before its check: a rerun runs the check alone
    (tmp_path / "vanilla" / "vanilla_check.json").unlink()
    _, again = run_experiment(path, [f"model.make_tiny.family={family}"], log=lambda *_: None)
    assert again.executed == ["vanilla-check"] and (tmp_path / "vanilla" / "vanilla_check.json").exists()


def test_a_tiny_model_of_another_family_is_never_reused(tmp_path, mini_dir, tiny_dir):
    cfg = {"name": "x", "workdir": str(tmp_path / "work"),
           "data": {"train": str(mini_dir / "all_train.json"), "val": str(mini_dir / "all_val.json"),
                    "prompt": str(mini_dir / "prompt.json")},
           "model": {"make_tiny": {"family": "qwen2_vl", "out": str(tiny_dir)}, "vanilla": str(tiny_dir)},
           "methods": ["ga"], "specificity": None}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="holds a 'llava' model, not 'qwen2_vl'"):
        run_experiment(path, log=lambda *_: None)


def test_mini_config_keeps_each_family_apart():
    from safeeraser.pipeline.experiment import load_experiment

    a, b = load_experiment("mini.yaml"), load_experiment("mini.yaml", ["model.make_tiny.family=gemma3"])
    assert a.model.make_tiny.family == "llava" and a.workdir != b.workdir
    assert a.model.vanilla != b.model.vanilla and a.model.make_tiny.out != b.model.make_tiny.out


def _judge_config(tmp_path, judge: dict):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "j", "workdir": str(tmp_path / "work"), "methods": ["ga"],
                                    "model": {"vanilla": str(tmp_path / "no-model")}, "judge": judge}))
    return path


@pytest.mark.parametrize("judge, key", [
    ({"name": "gpt5"}, "judge.name"),
    ({"name": "wildguard", "backend": "tpu"}, "judge.backend"),
    ({"name": "wildguard", "backend": "hf", "batch_size": 0}, "judge.batch_size"),
    ({"name": "llamaguard", "modle": "x"}, "judge.modle"),
    ({"name": "keyword", "aggregate": "theirs"}, "judge.aggregate"),
    ({"name": "keyword", "templates": "reference"}, "judge.templates"),
])
def test_bad_judge_block_is_a_config_error_naming_the_key(tmp_path, judge, key):
    from safeeraser.pipeline.experiment import load_experiment

    with pytest.raises(ConfigError, match=f"key '{key}'"):
        load_experiment(_judge_config(tmp_path, judge))


def test_open_judges_are_accepted(tmp_path):
    from safeeraser.pipeline.experiment import Runner, load_experiment

    cfg = load_experiment(_judge_config(tmp_path, {"name": "wildguard", "backend": "hf", "model": "/m",
                                                   "batch_size": 4}))
    name, kwargs, extra = Runner(cfg).judge()
    assert name == "wildguard" and kwargs["backend"] == "hf" and kwargs["settings"].model == "/m"


def test_reference_judging_options_reach_the_judge_and_the_stats(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    import fake_reference_checkout as fake
    from safeeraser.pipeline.experiment import Runner, load_experiment

    root = fake.write(tmp_path / "ref")
    cfg = load_experiment(_judge_config(tmp_path, {"name": "openai", "base_url": "http://127.0.0.1:9/v1",
                                                   "templates": "reference", "reference_dir": str(root),
                                                   "aggregate": "reference"}))
    runner = Runner(cfg)
    name, kwargs, extra = runner.judge()
    assert (kwargs["templates"], kwargs["reference_dir"]) == ("reference", str(root)) and "aggregate" not in kwargs
    assert runner.aggregate() == "reference" and extra["aggregate"] == "reference"  # names the judged output


def test_openai_judge_without_a_key_fails_before_any_training(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="key 'judge.api_key'.*OPENAI_API_KEY"):
        run_experiment(_judge_config(tmp_path, {"name": "openai"}), log=lambda *_: None)
    assert not (tmp_path / "work").exists()  # nothing was started
