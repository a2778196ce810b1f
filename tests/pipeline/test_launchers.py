"""`safeeraser run --launcher ray|slurm`: a small grid (the vanilla model and ga, the exact judge and the
keyword one beside it) run as Ray tasks on a local Ray cluster and as jobs of submitit's local executor gives
the rows `local` gives; a failed step is reported with its log, the steps that need it are skipped, and the
others still run."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from safeeraser.pipeline.experiment import run_experiment

ray = pytest.importorskip("ray")
submitit = pytest.importorskip("submitit")

# what differs between two runs of the same grid by design: when, where, how long, and by what steps
RUN_FIELDS = ("seconds", "executed", "launcher", "provenance", "reused_from_other_code")


@pytest.fixture(scope="module")
def grid(tmp_path_factory, vanilla_dir, micro_dir):
    """write(workdir, **changes) -> the path of the small grid's experiment config. On the micro benchmark
    (two records a split): what the tests compare (the launchers' rows, reports and steps against local's)
    does not depend on how many records are answered."""
    root = tmp_path_factory.mktemp("launchers")

    def write(workdir: str, **changes):
        cfg = {"name": "l", "workdir": str(root / workdir),
               "data": {"train": str(micro_dir / "all_train.json"), "val": str(micro_dir / "all_val.json"),
                        "prompt": str(micro_dir / "prompt.json")},
               "model": {"vanilla": str(vanilla_dir)},
               "forget_overrides": ["max_train_steps=2", "batch_size=4", "gradient_accumulation_steps=1"],
               "methods": ["ga"], "infer": {"batch_size": 16, "max_new_tokens": 4, "seed": 0},
               "judge": {"name": "truth"}, "agreement": ["keyword"], "specificity": None,
               # one thread everywhere: results on a CPU depend on it, and a Ray task has one CPU
               "threads": 1, "bootstrap": {"resamples": 200, "seed": 0}, **changes}
        path = root / f"{workdir}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    write.root = root
    return write


@pytest.fixture(scope="module")
def baseline(grid):
    """The grid run by the local launcher, once for the module."""
    import torch

    threads = torch.get_num_threads()
    try:
        rows, runner = run_experiment(grid("local"), log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)  # run_experiment sets the experiment's threads for the process
    return rows, runner


@pytest.fixture(scope="module")
def ray_cluster(ray_exclusive):
    with ray_exclusive():  # no other worker's Ray test runs meanwhile (conftest.ray_exclusive)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield
        ray.shutdown()


def _report(path):
    report = json.loads(path.read_text())
    return {k: v for k, v in report.items() if k not in RUN_FIELDS}


@pytest.mark.heavy
def test_ray_tasks_give_the_rows_of_local(grid, baseline, ray_cluster):
    rows, runner = baseline
    logs: list[str] = []
    ray_rows, ray_runner = run_experiment(grid("ray"), log=logs.append, launcher="ray")
    assert ray_rows == rows
    assert sorted(ray_runner.executed) == sorted(runner.executed)  # the same steps did work, elsewhere
    assert any("forget:ga" == s for s in ray_runner.executed)
    report = _report(grid.root / "ray" / "report.json")
    local = _report(grid.root / "local" / "report.json")
    assert report["rows"] == local["rows"] and report["pd_effects"] == local["pd_effects"]
    assert report["agreement"] == local["agreement"]
    assert json.loads((grid.root / "ray" / "report.json").read_text())["launcher"] == "ray"
    # each step ran as a task that wrote its own log in the workdir
    submitted = [line for line in logs if line.startswith("[ray] submitted ")]
    assert len(submitted) == 9  # infer x2 and eval x2 for vanilla and ga, and ga's forget
    (forget_log,) = (grid.root / "ray" / "logs").glob("forget_ga-*.log")
    assert "unlearning" in forget_log.read_text()


@pytest.mark.heavy
def test_a_benchmark_grid_as_ray_tasks_gives_the_rows_of_local(grid, ray_cluster, tmp_path):
    """Another benchmark's grid (its score steps, kinds/score.py) through the same launcher: the rows local
    gives, each step a task of its own."""
    import torch

    from safeeraser.benchmarks import benchmark_for

    data = benchmark_for("fiubench").make_mini(tmp_path / "fiu", seed=0, identities=8)
    bench = {"benchmark": {"name": "fiubench", "data_path": str(data), "split": "forget10", "max_new_tokens": 4},
             "forget_overrides": ["max_train_steps=1", "batch_size=4", "gradient_accumulation_steps=1"]}
    threads = torch.get_num_threads()
    try:
        rows, local = run_experiment(grid("bench-local", **bench), log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    logs: list[str] = []
    ray_rows, ray_runner = run_experiment(grid("bench-ray", **bench), log=logs.append, launcher="ray")
    assert ray_rows == rows and [r["method"] for r in rows] == ["vanilla", "ga"]
    # the same steps did work (their hash names differ: each workdir holds its own refusals file)
    assert sorted(s.rsplit("-", 1)[0] for s in ray_runner.executed) == sorted(s.rsplit("-", 1)[0] for s in local.executed)
    assert sum(line.startswith("[ray] submitted score:") for line in logs) == 2  # vanilla's and ga's


@pytest.mark.heavy
def test_submitit_local_jobs_give_the_rows_of_local(grid, baseline):
    """Each job is a process of its own (seconds of imports each), so the jobs make a part only: ga's answers
    on val and their judgments; the other steps' outputs are the local run's."""
    rows, _ = baseline
    shutil.copytree(grid.root / "local", grid.root / "slurm", ignore=shutil.ignore_patterns("ga-*_val_*", "report*"))
    path = grid("slurm", launcher={"name": "slurm", "cluster": "local", "poll_s": 0.1})
    slurm_rows, runner = run_experiment(path, log=lambda *_: None)
    assert slurm_rows == rows
    assert sorted(runner.executed) == sorted(s for s in baseline[1].executed if s.startswith(("infer:ga-", "eval:ga-"))
                                             and s.split(":")[2] == "val")
    assert len(list((grid.root / "slurm" / "submitit").glob("*_log.out"))) == 2  # infer, then eval


@pytest.mark.heavy  # with the two above: the module's Ray cluster and baseline grid are made once
def test_a_failed_step_is_reported_with_its_log_and_the_others_go_on(grid, baseline, ray_cluster, capsys):
    from safeeraser.cli import main

    # the vanilla model's and ga's answers are there, their judgments not: those steps have work to do
    shutil.copytree(grid.root / "local", grid.root / "fail", ignore=shutil.ignore_patterns("eval", "report*"))
    path = grid("fail", methods=["ga", "gd"], method_overrides={"gd": ["LoRA.target_modules=[no_such_proj]"]})
    assert main(["run", "--config", str(path), "--launcher", "ray"]) == 1
    err = capsys.readouterr().err
    work = grid.root / "fail"
    (log,) = work.glob("logs/forget_gd-*.log")
    assert "FAILED  forget:gd-" in err and f"(log: {log.resolve()})" in err
    assert "no_such_proj" in log.read_text() and "Traceback" in log.read_text()
    skipped = [line.split()[1] for line in err.splitlines() if line.strip().startswith("skipped")]
    assert sorted(s.split(":")[0] + ":" + s.split(":")[-1] for s in skipped) == [
        "eval:train", "eval:val", "infer:train", "infer:val"]
    assert all(":gd-" in s for s in skipped)
    # the independent steps ran: both runs' answers judged by both judges; no report from a partial grid
    assert len(list(work.glob("eval/*_rr.json"))) == 8
    assert not (work / "report.json").exists()
