"""eval_all's judge-free block: view NLLs under the unlearned and vanilla models, membership AUCs."""
from __future__ import annotations

import json

from safeeraser.eval.command import main as eval_main
from safeeraser.infer.ckpt_infer import main as infer_main


def test_eval_all_adds_view_likelihoods_and_membership_auc(tmp_path, vanilla_dir, mini_dir, capsys):
    answers = tmp_path / "val_answers.json"
    assert infer_main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", str(vanilla_dir),
                       "--output_file", str(answers), "--max_new_tokens", "4"]) == 0
    capsys.readouterr()
    out = tmp_path / "val_rr.json"
    rc = eval_main(["--input_file", str(answers), "--output_file_rr", str(out), "--file_refer",
                    str(mini_dir / "all_val.json"), "--judge", "keyword", "--no_progress",
                    "--model_path", str(vanilla_dir), "--unseen_file", str(mini_dir / "all_train.json")])
    assert rc == 0, capsys.readouterr().err
    stats = json.loads(out.with_suffix(".txt").read_text())
    block = stats["likelihood"]
    assert "unlearned" not in block  # no checkpoint: the vanilla model only
    views = block["vanilla"]["views"]
    assert set(views) == {"forget", "retain", "pd"}
    assert all(v["n"] > 0 and 0 < v["mean_prob"] <= 1 and v["mean_nll"] >= 0 for v in views.values())
    auc = block["vanilla"]["membership_auc"]
    assert all(0 <= auc[k] <= 1 for k in ("min_k", "min_k_plus_plus", "loss"))
    assert "membership AUC" in capsys.readouterr().out


def test_checkpoint_without_model_is_one_error(tmp_path, capsys):
    rc = eval_main(["--input_file", "a.json", "--output_file_rr", str(tmp_path / "o.json"), "--file_refer", "b.json",
                    "--judge", "keyword", "--checkpoint_path", "ckpt"])
    assert rc == 2 and "need --model_path" in capsys.readouterr().err
