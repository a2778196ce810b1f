"""eval_all's judge-free block: view NLLs under the unlearned and vanilla models, membership AUCs."""
from __future__ import annotations

import json

from safeeraser.eval.command import main as eval_main
from safeeraser.infer.ckpt_infer import main as infer_main


def test_eval_all_adds_view_likelihoods_and_membership_auc(tmp_path, vanilla_dir, tiny_dir, mini_dir, capsys):
    answers = tmp_path / "val_answers.json"
    assert infer_main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", str(vanilla_dir),
                       "--output_file", str(answers), "--max_new_tokens", "4"]) == 0
    capsys.readouterr()
    out = tmp_path / "val_rr.json"
    rc = eval_main(["--input_file", str(answers), "--output_file_rr", str(out), "--file_refer",
                    str(mini_dir / "all_val.json"), "--judge", "keyword", "--no_progress",
                    "--model_path", str(vanilla_dir), "--unseen_file", str(mini_dir / "all_train.json"),
                    "--mia_attacks", "loss,zlib,min_k,min_k_plus_plus,reference", "--mia_reference", str(tiny_dir),
                    "--oracle_checkpoint", str(vanilla_dir)])
    assert rc == 0, capsys.readouterr().err
    stats = json.loads(out.with_suffix(".txt").read_text())
    block = stats["likelihood"]
    assert "unlearned" not in block  # no checkpoint: the vanilla model only
    views = block["vanilla"]["views"]
    assert set(views) == {"forget", "retain", "pd"}
    assert all(v["n"] > 0 and 0 < v["mean_prob"] <= 1 and v["mean_nll"] >= 0 for v in views.values())
    auc = block["vanilla"]["membership_auc"]
    names = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference")
    assert all(0 <= auc[k] <= 1 for k in names)
    # the "oracle" here is the vanilla model itself: the same AUCs, no privacy leak
    assert all(block["oracle"]["membership_auc"][k] == auc[k] and auc["privacy_leak"][k] == 0 for k in names)
    printed = capsys.readouterr().out
    assert "membership AUC" in printed and "privacy leak against the oracle" in printed


def test_checkpoint_without_model_is_one_error(tmp_path, capsys):
    rc = eval_main(["--input_file", "a.json", "--output_file_rr", str(tmp_path / "o.json"), "--file_refer", "b.json",
                    "--judge", "keyword", "--checkpoint_path", "ckpt"])
    assert rc == 2 and "need --model_path" in capsys.readouterr().err


def test_an_unseen_file_with_forget_items_is_refused_before_judging(tmp_path, mini_dir, capsys):
    records = json.loads((mini_dir / "all_val.json").read_text())
    for r in records:  # absolute image paths, so a copy elsewhere names the same images
        r["image_path"], r["SDImage_path"] = str(mini_dir / r["image_path"]), str(mini_dir / r["SDImage_path"])
    refer = tmp_path / "refer.json"
    refer.write_text(json.dumps(records))
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([dict(r, unsafe_pairs=[dict(p, model_response1="a", model_response2="b",
                                                              model_response3="c") for p in r["unsafe_pairs"]])
                                   for r in records]))
    mixed = tmp_path / "unseen.json"  # one record of the forget file among unseen ones
    train = json.loads((mini_dir / "all_train.json").read_text())
    for r in train:
        r["image_path"], r["SDImage_path"] = str(mini_dir / r["image_path"]), str(mini_dir / r["SDImage_path"])
    mixed.write_text(json.dumps(train[:3] + records[1:2]))
    base = ["--input_file", str(answers), "--output_file_rr", str(tmp_path / "o.json"), "--file_refer", str(refer),
            "--judge", "keyword", "--no_progress", "--model_path", "any-model"]
    assert eval_main(base + ["--unseen_file", str(refer)]) == 2
    assert "is the forget file" in capsys.readouterr().err
    assert eval_main(base + ["--unseen_file", str(mixed)]) == 2
    err = capsys.readouterr().err
    n_shared = len(records[1]["unsafe_pairs"])
    assert f"shares {n_shared} harmful item(s)" in err and "unseen items must be unseen" in err
    assert not (tmp_path / "o.json").exists()  # nothing was judged


def test_bad_membership_options_are_one_error(tmp_path, capsys):
    base = ["--input_file", "a.json", "--output_file_rr", str(tmp_path / "o.json"), "--file_refer", "b.json",
            "--judge", "keyword", "--model_path", "m", "--unseen_file", "u.json"]
    assert eval_main(base + ["--mia_attacks", "loss,nope"]) == 2
    assert "unknown membership attack 'nope'" in capsys.readouterr().err
    assert eval_main(base + ["--mia_attacks", "reference"]) == 2
    assert "needs --mia_reference" in capsys.readouterr().err
    assert eval_main(base[:-2] + ["--oracle_checkpoint", "o"]) == 2
    assert "need --unseen_file" in capsys.readouterr().err
    assert eval_main(base + ["--oracle_checkpoint", str(tmp_path / "missing")]) == 2
    assert "--oracle_checkpoint" in capsys.readouterr().err
