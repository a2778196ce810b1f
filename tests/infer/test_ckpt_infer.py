import json

import pytest
import torch

from safeeraser.infer import ckpt_infer
from safeeraser.infer.engine import Generator


@pytest.fixture(scope="module")
def ga_adapter(tmp_path_factory, vanilla_dir, mini_dir):
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    out = tmp_path_factory.mktemp("ga")
    run_training(load_config("forget_tiny.yaml", [
        f"model_path={vanilla_dir}", f"data_path={mini_dir / 'all_train.json'}", f"save_dir={out}",
        "forget_loss=ga", "max_train_steps=8", "lr=5e-3", "lr_scheduler_type=constant", "warmup_ratio=0",
        "batch_size=4", "gradient_accumulation_steps=1", "overwrite=true"]))
    return out


def _run(tmp_path, model, *extra, name="out.json", data=None):
    out = tmp_path / name
    argv = ["--eval_file", str(data), "--model_path", str(model), "--output_file", str(out),
            "--max_new_tokens", "24", *extra]
    assert ckpt_infer.main(argv) == 0
    return json.loads(out.read_text())


def test_output_schema_is_the_references(tmp_path, vanilla_dir, mini_dir):
    data = mini_dir / "all_val.json"
    src = json.loads(data.read_text())
    out = _run(tmp_path, vanilla_dir, "--limit", "2", data=data)
    assert len(out) == 2
    # what SPEC.md says a record becomes, written by hand from the input record
    expected = dict(src[0])
    expected["unsafe_pairs"] = [{"question": p["question"], "sd_response": "<str>", "model_response1": "<str>",
                                 "model_response2": "<str>", "model_response3": "<str>"} for p in src[0]["unsafe_pairs"]]
    for k in ("UnharmPair_text1", "UnharmPair_text2", "UnharmPair_image1", "UnharmPair_image2"):
        expected[k] = {"Question": src[0][k]["Question"], "Prediction": "<str>"}
    assert list(out[0]) == list(expected)
    for got, want in zip(out[0]["unsafe_pairs"], expected["unsafe_pairs"]):
        assert sorted(got) == sorted(want) and got["question"] == want["question"]
        assert all(isinstance(got[k], str) for k in want)
    assert out[0]["mini_meta"] == src[0]["mini_meta"]  # extra keys carried through


def test_greedy_batch_1_equals_batch_8(tmp_path, vanilla_dir, mini_dir):
    data = mini_dir / "all_val.json"
    a = _run(tmp_path, vanilla_dir, "--greedy", "--batch_size", "1", name="a.json", data=data)
    b = _run(tmp_path, vanilla_dir, "--greedy", "--batch_size", "8", name="b.json", data=data)
    assert a == b
    # the vanilla model answers its harmful questions
    assert a[0]["unsafe_pairs"][0]["model_response1"].startswith("Sure.")


def test_same_seed_same_samples_whatever_the_batch(tmp_path, vanilla_dir, mini_dir):
    data = mini_dir / "all_val.json"
    a = _run(tmp_path, vanilla_dir, "--seed", "7", "--batch_size", "3", name="a.json", data=data)
    b = _run(tmp_path, vanilla_dir, "--seed", "7", "--batch_size", "16", name="b.json", data=data)
    c = _run(tmp_path, vanilla_dir, "--seed", "8", "--batch_size", "3", "--temperature", "3.0", name="c.json",
             data=data)
    assert a == b
    assert a != c


def test_killed_run_resumes_to_the_same_file(tmp_path, vanilla_dir, mini_dir, monkeypatch):
    data = mini_dir / "all_train.json"
    common = ["--seed", "3", "--chunk_records", "4"]
    full = _run(tmp_path, vanilla_dir, *common, name="full.json", data=data)
    real = Generator.generate
    calls = {"n": 0, "requests": 0}

    def dying(self, requests, *a, **k):
        calls["n"] += 1
        calls["requests"] += len(requests)
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(self, requests, *a, **k)

    monkeypatch.setattr(Generator, "generate", dying)
    out = tmp_path / "part.json"
    argv = ["--eval_file", str(data), "--model_path", str(vanilla_dir), "--output_file", str(out),
            "--max_new_tokens", "24", *common]
    with pytest.raises(KeyboardInterrupt):
        ckpt_infer.main(argv)
    assert not out.exists()
    assert len(ckpt_infer.partial_path(out).read_text().splitlines()) == 4  # the first chunk is kept
    calls.update(n=10, requests=0)
    assert ckpt_infer.main(argv + ["--resume"]) == 0
    resumed = json.loads(out.read_text())
    assert resumed == full
    per_record = (2 * 2 + 4)
    assert calls["requests"] == (len(full) - 4) * per_record  # finished records were not regenerated
    assert not ckpt_infer.partial_path(out).exists()


def test_bad_image_is_skipped_and_counted(tmp_path, vanilla_dir, mini_dir, capsys):
    recs = json.loads((mini_dir / "all_val.json").read_text())
    for r in recs:
        r["image_path"] = str(mini_dir / r["image_path"])
        r["SDImage_path"] = str(mini_dir / r["SDImage_path"])
    broken = tmp_path / "Weapon" / "broken.png"
    broken.parent.mkdir()
    broken.write_text("not an image")
    recs[1]["image_path"] = str(broken)
    data = tmp_path / "val.json"
    data.write_text(json.dumps(recs))
    out = _run(tmp_path, vanilla_dir, "--greedy", data=data)
    assert len(out) == len(recs) - 1
    printed = capsys.readouterr().out
    assert "skipped 1 that could not be processed: records [1]" in printed
    assert f"\n  record 1: cannot read image '{broken}'" in printed  # each skip with its reason
    rc = ckpt_infer.main(["--eval_file", str(data), "--model_path", str(vanilla_dir), "--output_file",
                          str(tmp_path / "s.json"), "--strict", "--max_new_tokens", "4"])
    assert rc == 2 and "record 1" in capsys.readouterr().err


def test_unlearned_checkpoint_answers_differently(tmp_path, vanilla_dir, mini_dir, ga_adapter):
    data = mini_dir / "all_train.json"
    van = _run(tmp_path, vanilla_dir, "--greedy", "--limit", "3", name="v.json", data=data)
    ga = _run(tmp_path, vanilla_dir, "--greedy", "--limit", "3", "--checkpoint_path", str(ga_adapter),
              name="g.json", data=data)
    v = [p["model_response1"] for r in van for p in r["unsafe_pairs"]]
    g = [p["model_response1"] for r in ga for p in r["unsafe_pairs"]]
    assert sum(a != b for a, b in zip(v, g)) == len(v)


def test_adapter_mismatch_is_an_error(tmp_path, vanilla_dir, ga_adapter):
    import shutil

    from safetensors.torch import load_file, save_file

    from safeeraser.models.checkpoint import CheckpointError, apply_checkpoint

    bad = tmp_path / "bad"
    shutil.copytree(ga_adapter, bad)
    weights = load_file(str(bad / "adapter_model.safetensors"))
    weights.pop(sorted(k for k in weights if "lora_A" in k)[0])
    save_file(weights, str(bad / "adapter_model.safetensors"))
    with pytest.raises(CheckpointError, match="1 missing"):
        apply_checkpoint(str(vanilla_dir), str(bad))


def test_reference_checkpoint_pt_loads_like_the_adapter(tmp_path, vanilla_dir, mini_dir, ga_adapter):
    from safeeraser.data.encode import PromptEncoder, model_inputs, pad_batch
    from safeeraser.data.records import load_benchmark
    from safeeraser.models.checkpoint import CheckpointError, apply_checkpoint, load_adapter
    from safeeraser.models.families import family_for
    from safeeraser.models.loading import load_model, load_processor

    peft_model = load_adapter(load_model(str(vanilla_dir), "float32"), ga_adapter)
    # the reference: every trainable parameter, fp16, transformers-4 names under DeepSpeed's "module."
    legacy = {}
    for name, p in peft_model.named_parameters():
        if "lora_" in name or ("modules_to_save" in name):
            old = name.replace("base_model.model.model.language_model.", "base_model.model.language_model.model.")
            old = old.replace("base_model.model.model.multi_modal_projector.", "base_model.model.multi_modal_projector.")
            legacy["module." + old] = p.detach().half()
    torch.save(legacy, tmp_path / "checkpoint.pt")
    proc = load_processor(str(vanilla_dir))
    rec = load_benchmark(mini_dir / "all_train.json")[0]
    llava = family_for("llava")
    batch = pad_batch([PromptEncoder(proc, llava).encode(rec.image, rec.unsafe_pairs[0]["question"], "x")],
                      proc.tokenizer.pad_token_id, llava)
    inputs = model_inputs(batch)
    ref = apply_checkpoint(str(vanilla_dir), str(tmp_path / "checkpoint.pt"), "float32",
                           reference_lora_alpha=32)  # forget_tiny.yaml's alpha
    ours = apply_checkpoint(str(vanilla_dir), str(ga_adapter), "float32")
    with torch.no_grad():
        assert torch.allclose(ref(**inputs).logits, ours(**inputs).logits, atol=5e-3)
    legacy["module.base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_C.weight"] = \
        torch.zeros(1)
    torch.save(legacy, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="1 unexpected"):
        apply_checkpoint(str(vanilla_dir), str(tmp_path / "bad.pt"), "float32")
