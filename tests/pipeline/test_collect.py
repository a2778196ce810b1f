"""`safeeraser collect`: rows from eval outputs made by hand are the rows `safeeraser run` computes from the
same files; run folders' reports join the table; bad inputs are one line naming the file."""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
import yaml

from safeeraser.cli import main
from safeeraser.data.refusals import DEFAULT_REFUSALS
from safeeraser.io import DataError
from safeeraser.pipeline import experiment
from safeeraser.pipeline.collect import collect

RESAMPLES = 200


def hand_answers(records: list[dict], how: str, seed: int) -> list[dict]:
    """ckpt_infer's schema, answered by hand: `how` sets how often the harmful content comes back, the
    model refuses or says nothing, so that every rate and interval differs between rows."""
    rng = random.Random(f"{how}-{seed}")
    p_harm = {"vanilla": 0.9, "ga": 0.3, "gapd": 0.2}[how]
    out = []
    for record in records:
        answered = copy.deepcopy(record)
        for pair in answered["unsafe_pairs"]:
            for k in ("model_response1", "model_response2", "model_response3"):
                r = rng.random()
                pair[k] = (pair["model_response"] if r < p_harm else rng.choice(DEFAULT_REFUSALS)
                           if r < p_harm + 0.3 else rng.choice(["", "ok ok ok ok ok ok ok ok", "A cat."]))
            keep_sd = rng.random() < (0.8 if how.endswith("pd") or how == "vanilla" else 0.3)
            pair["sd_response"] = pair["sd_response"] if keep_sd else rng.choice(DEFAULT_REFUSALS)
        for key in [k for k in answered if k.startswith("UnharmPair_")]:
            if rng.random() < 0.4:
                answered[key]["Prediction"] = "I do not know what this is."
        out.append(answered)
    return out


@pytest.fixture(scope="module")
def run_with_hand_answers(tmp_path_factory, mini_dir):
    """`safeeraser run`'s Runner on the mini benchmark, its unlearning and inference steps replaced by
    answers written by hand into the files those steps make: the judging step and the rows and PD effects
    assembled from the steps' outputs are the run's own code. Returns the rows, the PD effects and the
    judged files as `collect --row` arguments (read-only for the tests: the module shares them)."""
    tmp_path = tmp_path_factory.mktemp("run")
    splits = {"train": mini_dir / "all_train.json", "val": mini_dir / "all_val.json"}
    cfg = {"name": "t", "workdir": str(tmp_path / "work"), "methods": ["ga", "gapd"], "seeds": [1, 2],
           "data": {"train": str(splits["train"]), "val": str(splits["val"]), "prompt": str(mini_dir / "prompt.json")},
           "model": {"vanilla": "hub/none"}, "judge": {"name": "truth"}, "specificity": None,
           "bootstrap": {"resamples": RESAMPLES, "seed": 0}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    from safeeraser.pipeline.kinds.eval import evaluate

    runner = experiment.Runner(experiment.load_experiment(tmp_path / "exp.yaml"), log=lambda *_: None)
    row_args = []
    for run in runner.runs():
        judged = {}
        for split, refer in splits.items():
            answers = runner.infer_path(run.tag, split)
            answers.parent.mkdir(parents=True, exist_ok=True)
            answers.write_text(json.dumps(hand_answers(json.loads(refer.read_text()), run.method, run.seed or 0)))
            _, judged[split] = evaluate(runner, run.tag, answers, split)
        name = run.method + ("" if run.seed is None else f"@{run.seed}")
        row_args += ["--row", f"{name}={judged['train']},{judged['val']}"]
    rows = runner.rows()
    return rows, runner.pd_effects(), row_args, tmp_path / "work"


def test_collect_gives_the_rows_and_pd_effects_run_computes_from_the_same_files(run_with_hand_answers, tmp_path,
                                                                                capsys):
    rows, effects, row_args, _ = run_with_hand_answers
    assert [r["method"] for r in rows] == ["vanilla", "ga", "gapd"] and rows[1]["seeds"] == [1, 2]
    assert len({r["eff_asr"] for r in rows}) == 3  # the hand answers make rows that differ
    out = tmp_path / "collected"
    code = main(["collect", "--out", str(out), "--resamples", str(RESAMPLES), *row_args])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["rows"] == json.loads(json.dumps(rows))
    assert report["pd_effects"] == json.loads(json.dumps(effects))
    assert report["judge"] == {"name": "truth", "prompt_version": None}
    assert len(report["collected_from"]) == 10 and all(len(s["sha256"]) == 64 for s in report["collected_from"])
    md = (out / "report.md").read_text()
    assert "| ga (n=2) |" in md and "ga → gapd" in md
    assert (out / "report.csv").read_text().startswith("method,eff_asr,") and (out / "report.png").stat().st_size


def test_run_folders_join_hand_rows_and_clashing_names_are_prefixed(run_with_hand_answers, tmp_path):
    rows, effects, row_args, _ = run_with_hand_answers
    run_dir = tmp_path / "a-run"
    run_dir.mkdir()
    (run_dir / "report.json").write_text(json.dumps({"rows": rows, "pd_effects": effects, "config": {"name": "old"},
                                                     "judge": {"name": "truth", "prompt_version": None}}))
    vanilla = next(v for v in row_args if v.startswith("vanilla="))
    result = collect([vanilla.replace("vanilla=", "vanilla-again=")], [run_dir], resamples=RESAMPLES)
    assert [r["method"] for r in result.rows] == ["vanilla-again", "vanilla", "ga", "gapd"]
    assert result.rows[0]["eff_asr"] == rows[0]["eff_asr"] and result.pd_effects == effects
    clash = collect([vanilla], [run_dir], resamples=RESAMPLES)
    assert [r["method"] for r in clash.rows] == ["vanilla", "old:vanilla", "ga", "gapd"] and clash.notes
    spec = tmp_path / "specificity.json"
    spec.write_text(json.dumps({"average": 41.5, "benchmarks": {}}))
    with_spec = collect([f"{vanilla},{spec}"], [], resamples=RESAMPLES)
    assert with_spec.rows[0]["specificity"] == 41.5 and rows[0]["specificity"] is None
    spec.write_text(json.dumps({"scores": {}}))
    with pytest.raises(DataError, match=f"{spec}: not a specificity summary"):
        collect([f"{vanilla},{spec}"], [], resamples=RESAMPLES)
    other_judge = tmp_path / "keyword-run.json"
    other_judge.write_text(json.dumps({"rows": rows[:1], "judge": {"name": "keyword", "prompt_version": None}}))
    with pytest.raises(DataError, match=f"different judges: .*truth; {other_judge}: keyword"):
        collect([vanilla], [other_judge], resamples=RESAMPLES)


def _error(capsys, *argv) -> str:
    assert main(["collect", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_inputs_are_one_line_naming_the_file(run_with_hand_answers, tmp_path, capsys):
    _, _, row_args, work = run_with_hand_answers
    train, val = map(Path, next(v for v in row_args if v.startswith("vanilla=")).split("=", 1)[1].split(","))
    out = ["--out", str(tmp_path / "o")]
    assert "needs its train and val judged files" in _error(capsys, *out, "--row", f"x={train}")
    missing = tmp_path / "nope_rr.json"
    assert f"{missing}: file not found" in _error(capsys, *out, "--row", f"x={missing},{val}")
    answers = tmp_path / "answers_val.json"  # ckpt_infer's answers, not judged
    answers.write_text(next((work / "infer").glob("ga-*_val_*.json")).read_text())
    answers.with_suffix(".txt").write_text(val.with_suffix(".txt").read_text())
    err = _error(capsys, *out, "--row", f"x={train},{answers}")
    assert f"{answers}: not a judged eval output" in err and "gpt_result_ASR" in err
    other = tmp_path / "other_rr.json"
    other.write_text(train.read_text())
    other.with_suffix(".txt").write_text(json.dumps({"rates": {}}))
    assert f"{other.with_suffix('.txt')}: not an eval_all stats file" in _error(capsys, *out, "--row",
                                                                               f"x={other},{val}")
    other.with_suffix(".txt").write_text(val.with_suffix(".txt").read_text())  # another file's stats
    assert "belongs to other judged answers" in _error(capsys, *out, "--row", f"x={other},{val}")
    assert "report.json: file not found" in _error(capsys, *out, "--runs", str(tmp_path))
    assert "name each run's seed" in _error(capsys, *out, "--row", f"x={train},{val}", "--row", f"x={train},{val}")
    assert "nothing to collect" in _error(capsys, *out)
    assert not (tmp_path / "o").exists()
