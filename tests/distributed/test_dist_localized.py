"""The methods that restrict where the model changes, under two CPU processes (gloo) in one launch: each
trains and saves; the importance pass gives the restriction a one-process run gives (the same
micro-batches on any number of processes, their sums added over the processes)."""
from __future__ import annotations

import json

from dist_helpers import GDPD_HALF_BATCH, LOCALIZED, run_overrides


def test_localized_methods_run_under_two_processes_and_restrict_as_one_process(cpu_multi_runs, vanilla_dir,
                                                                               mini_dir, tmp_path):
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    for name in LOCALIZED:
        out = cpu_multi_runs[name]
        assert (out / "run_complete.json").exists() and (out / "config.json").exists(), name  # a full model
        assert json.loads((out / "localization.json").read_text())["selected"], name
    assert cpu_multi_runs["stdout"].count(f"saved to {cpu_multi_runs['mmunlearner']}") == 1  # reported once
    method, more = LOCALIZED["mmunlearner"]
    micro_batch = GDPD_HALF_BATCH[3]  # each process's: the importance pass's micro-batches are of this size
    one = run_training(load_config("forget_tiny.yaml", run_overrides(
        vanilla_dir, mini_dir, method, tmp_path / "one", micro_batch, 1) + more))
    two_processes = json.loads((cpu_multi_runs["mmunlearner"] / "localization.json").read_text())["selected"]
    one_process = json.loads((one / "localization.json").read_text())["selected"]
    for part, counts in one_process.items():
        assert two_processes[part]["of"] == counts["of"]
        # the same micro-batches, summed in another order: at most a few ties at the threshold may flip
        assert abs(two_processes[part]["chosen"] - counts["chosen"]) <= max(2, counts["of"] // 10000), part
    neurons = json.loads((cpu_multi_runs["mip-editor"] / "localization.json").read_text())["neurons"]
    assert any("vision_tower" in n for n in neurons) and any("language_model" in n for n in neurons)
