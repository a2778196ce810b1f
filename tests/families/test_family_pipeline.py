"""Every family through the pipeline on its tiny model: the same prompt for training and inference,
LoRA on the language model only, exact fused and reference passes, batch-invariant generation, and
forget -> resume -> ckpt_infer -> eval_all."""
from __future__ import annotations

import json

import pytest
import torch

from safeeraser.data.encode import IGNORE_INDEX, PromptEncoder, model_inputs, pad_batch
from safeeraser.data.records import load_benchmark
from safeeraser.models.families import UnsupportedFamily, family_for, family_of_path
from safeeraser.models.loading import load_model, load_processor


def _first(mini_dir):
    rec = load_benchmark(mini_dir / "all_train.json")[0]
    return rec, rec.unsafe_pairs[0]


def test_tiny_model_loads_through_the_auto_classes(family_name, tiny_family_dir, mini_dir, tmp_path):
    path = tiny_family_dir(family_name)
    family = family_of_path(str(path))
    assert family.model_type == family_name == json.loads((path / "config.json").read_text())["model_type"]
    model, proc = load_model(str(path), "float32").eval(), load_processor(str(path))
    rec, pair = _first(mini_dir)
    enc = PromptEncoder(proc, family)
    batch = pad_batch([enc.encode(rec.image, pair["question"], pair["model_response"])], enc.tokenizer.pad_token_id,
                      family)
    with torch.no_grad():
        before = model(**model_inputs(batch)).logits
    model.save_pretrained(tmp_path / "copy")
    proc.save_pretrained(tmp_path / "copy")
    with torch.no_grad():
        after = load_model(str(tmp_path / "copy"), "float32").eval()(**model_inputs(batch)).logits
    assert torch.allclose(before, after, atol=1e-5)
    # the random model sees its image (a projector left at zeros would give every image the same features)
    other = {k: (torch.rand_like(v) if v.is_floating_point() else v) for k, v in batch["images"].items()}
    with torch.no_grad():
        elsewhere = model(**model_inputs({**batch, "images": other})).logits
    assert (elsewhere - before).abs().max() > 1e-3


def test_training_prompt_is_the_inference_prompt(family_name, tiny_family_dir, mini_dir):
    path = tiny_family_dir(family_name)
    proc, family = load_processor(str(path)), family_for(family_name)
    enc = PromptEncoder(proc, family)
    rec, pair = _first(mini_dir)
    train = enc.encode(rec.image, pair["question"], pair["model_response"])
    prompt = enc.encode_prompt(rec.image, pair["question"])
    n_prompt = int((train.labels == IGNORE_INDEX).sum())
    assert torch.equal(train.input_ids[:n_prompt], prompt.input_ids)
    for k, v in prompt.tokens.items():
        assert torch.equal(train.tokens[k][:n_prompt], v), k
    assert prompt.images.keys() == train.images.keys()
    # the loss covers the answer and the token that ends it, nothing after
    answer = train.labels[n_prompt:]
    assert (answer != IGNORE_INDEX).all() and answer[-1].item() in enc.stop_ids
    assert enc.tokenizer.decode(answer[:-1], skip_special_tokens=True).strip() == pair["model_response"].strip()
    # exactly what the processor makes of the prompt on its own: no re-implemented expansion
    direct = proc(text=[enc.prompt_text(pair["question"])], images=[enc._load(rec.image)], return_tensors="pt",
                  add_special_tokens=not (enc.tokenizer.bos_token and
                                          enc.prompt_text("q").startswith(enc.tokenizer.bos_token)))
    assert direct["input_ids"][0].tolist() == prompt.input_ids.tolist()


def test_lora_adapts_the_language_model_only(family_name, family_cfg):
    from safeeraser.train.model_setup import prepare_model

    cfg = family_cfg(family_name)
    family = family_for(family_name)
    model = prepare_model(load_model(cfg.model.model_path, "float32"), cfg, family)
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora and all(family.part_of(n) == "language" for n in lora)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    # tune_mm_projector=true: the projector's full copy trains, the vision tower does not
    assert any(family.part_of(n) == "projector" for n in trainable)
    assert not any(family.part_of(n) == "vision" for n in trainable)


def test_full_fine_tuning_follows_the_tune_flags(family_name, family_cfg):
    from safeeraser.train.model_setup import prepare_model

    cfg = family_cfg(family_name, "LoRA.r=0", "tune_vision_tower=false", "tune_mm_projector=true",
                     "tune_language_model=false")
    family = family_for(family_name)
    model = prepare_model(load_model(cfg.model.model_path, "float32"), cfg, family)
    parts = {}
    for n, p in model.named_parameters():
        parts.setdefault(family.part_of(n), set()).add(p.requires_grad)
    assert parts["projector"] == {True} and parts["vision"] == {False} and parts["language"] == {False}


@pytest.mark.parametrize("method", ["gdpd", "klpd"])
def test_fused_forward_and_reference_equal_separate_passes(family_name, family_cfg, mini_dir, method):
    from safeeraser.data.views import forget_items
    from safeeraser.train.dataset import UnlearnDataset, ViewCollator
    from safeeraser.train.methods import parse_method
    from safeeraser.train.model_setup import prepare_model
    from safeeraser.train.step import compute_loss

    cfg = family_cfg(family_name, f"forget_loss={method}")
    family = family_for(family_name)
    proc = load_processor(cfg.model.model_path)
    m = parse_method(method)
    ds = UnlearnDataset(forget_items(load_benchmark(mini_dir / "all_train.json")), m.views(),
                        PromptEncoder(proc, family), ["I can't help."], seed=0)
    pad = proc.tokenizer.pad_token_id
    views = ViewCollator(pad, family)([ds[i] for i in range(3)])
    torch.manual_seed(0)
    model = prepare_model(load_model(cfg.model.model_path, "float32"), cfg, family)
    with torch.no_grad():  # a non-trivial adapter, so that current and reference differ
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    model.eval()
    results = []
    for fused in (True, False):
        cfg.optim.fused_forward = fused
        with torch.no_grad():
            results.append(compute_loss(model, views, m, cfg, pad, family)[1])
    for name in results[0]:
        assert results[0][name].item() == pytest.approx(results[1][name].item(), rel=1e-4, abs=1e-5), name
    if method == "klpd":
        assert results[0]["kl"].item() > 0  # the reference really is the adapter-free model


def test_gradient_checkpointing_gives_lora_the_same_gradients(family_name, family_cfg, mini_dir):
    """With checkpointing on, every LoRA A and B weight still gets its gradient (reentrant checkpointing
    would give none unless the inputs required grad), equal to the gradient without it."""
    from safeeraser.data.views import forget_items
    from safeeraser.train.dataset import UnlearnDataset, ViewCollator
    from safeeraser.train.methods import parse_method
    from safeeraser.train.model_setup import prepare_model
    from safeeraser.train.step import compute_loss

    family = family_for(family_name)
    grads = []
    for checkpointing in (False, True):
        cfg = family_cfg(family_name, "forget_loss=gd", f"gradient_checkpointing={str(checkpointing).lower()}",
                         "tune_mm_projector=false", "LoRA.dropout=0")
        proc = load_processor(cfg.model.model_path)
        m = parse_method("gd")
        ds = UnlearnDataset(forget_items(load_benchmark(mini_dir / "all_train.json")), m.views(),
                            PromptEncoder(proc, family), [], seed=0)
        views = ViewCollator(proc.tokenizer.pad_token_id, family)([ds[i] for i in range(2)])
        torch.manual_seed(0)
        model = prepare_model(load_model(cfg.model.model_path, "float32"), cfg, family)
        with torch.no_grad():  # B = 0 at init would leave A without gradient
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.05)
        model.train()
        assert model.is_gradient_checkpointing == checkpointing
        loss, _ = compute_loss(model, views, m, cfg, proc.tokenizer.pad_token_id, family)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if "lora_" in n})
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys() and any("lora_B" in n for n in plain)
    for n, g in checkpointed.items():
        assert g.abs().sum() > 0, n
        assert torch.allclose(g, plain[n], rtol=1e-4, atol=1e-7), n


def _model_and_requests(family_name, tiny_family_dir, mini_dir):
    """The family's tiny model and processor, and 4 requests of 2 answers each with stable keys."""
    from safeeraser.infer.engine import GenRequest

    path = tiny_family_dir(family_name)
    model, proc = load_model(str(path), "float32").eval(), load_processor(str(path))
    records = load_benchmark(mini_dir / "all_train.json")[:2]
    pairs = [(r, p) for r in records for p in r.unsafe_pairs[:2]]
    return model, proc, [GenRequest(r.image, p["question"], 2, key=i) for i, (r, p) in enumerate(pairs)]


def test_generation_does_not_depend_on_batch_size(family_name, tiny_family_dir, mini_dir):
    from safeeraser.infer.engine import GenSettings, Generator

    model, proc, reqs = _model_and_requests(family_name, tiny_family_dir, mini_dir)
    for settings in (GenSettings(max_new_tokens=6, greedy=True), GenSettings(max_new_tokens=6, seed=3)):
        one = Generator(model, proc, batch_size=1).generate(reqs, settings)
        many = Generator(model, proc, batch_size=4).generate(reqs, settings)
        assert one == many, settings


def test_greedy_engine_equals_transformers_generate(family_name, tiny_family_dir, mini_dir):
    """Our decoding loop (reserved cache, the family's positions) answers as transformers' `generate`."""
    from safeeraser.infer.engine import GenRequest, GenSettings, Generator

    path = tiny_family_dir(family_name)
    model, proc = load_model(str(path), "float32").eval(), load_processor(str(path))
    gen = Generator(model, proc, batch_size=4)
    rec, pair = _first(mini_dir)
    ours = gen._decode_batch(
        _left_batch(gen, [(rec.image, pair["question"]), (rec.sd_image, "Hi?")]), GenSettings(8, greedy=True),
        [0, 1], 1)
    batch = _left_batch(gen, [(rec.image, pair["question"]), (rec.sd_image, "Hi?")])
    with torch.no_grad():
        theirs = model.generate(**model_inputs(batch), max_new_tokens=8, do_sample=False, min_new_tokens=8,
                                eos_token_id=None, pad_token_id=gen.pad_id)[:, batch["input_ids"].shape[1]:]
    n = ours.shape[1]
    # ours stops a row at its end token; up to there both agree token for token
    for row_ours, row_theirs in zip(ours.tolist(), theirs.tolist()):
        end = next((i + 1 for i, t in enumerate(row_ours) if t in gen.stop_ids), n)
        assert row_ours[:end] == row_theirs[:end]


def _left_batch(gen, pairs):
    from safeeraser.data.encode import batch_to

    items = [gen.encoder.encode_prompt(image, question) for image, question in pairs]
    return batch_to(pad_batch(items, gen.pad_id, gen.family, side="left"), gen.device)


@pytest.mark.parametrize("method", ["gdpd", "klpd", "po"])
def test_unlearning_runs_and_saves_a_strict_adapter(family_name, family_cfg, tmp_path, method):
    from safeeraser.models.checkpoint import load_adapter
    from safeeraser.train.loop import run_training

    out = run_training(family_cfg(family_name, f"forget_loss={method}", "max_train_steps=2",
                                  f"save_dir={tmp_path / method}"))
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(torch.isfinite(torch.tensor(r["loss/total"])) for r in rows)
    model = load_adapter(load_model(str(family_cfg(family_name).model.model_path), "float32"), out)
    assert any("lora_" in n for n, _ in model.named_parameters())


def test_resume_equals_uninterrupted_run(family_name, family_cfg, tmp_path, kill_at_step):
    from safetensors.torch import load_file

    from safeeraser.train.loop import run_training

    common = ("forget_loss=gdpd", "max_train_steps=3", "save_steps=1", "LoRA.dropout=0.1")
    full = run_training(family_cfg(family_name, *common, f"save_dir={tmp_path / 'full'}"))
    restore = kill_at_step(3)
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        run_training(family_cfg(family_name, *common, f"save_dir={part}"))
    restore()
    resumed = run_training(family_cfg(family_name, *common, f"save_dir={part}", "resume_from_checkpoint=latest"))
    a, b = load_file(str(full / "adapter_model.safetensors")), load_file(str(resumed / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-6, k


def test_forget_infer_eval_end_to_end(family_name, family_cfg, mini_dir, tmp_path):
    from safeeraser.eval.command import main as eval_main
    from safeeraser.infer.ckpt_infer import main as infer_main
    from safeeraser.train.loop import run_training

    cfg = family_cfg(family_name, "forget_loss=gapd", "max_train_steps=1", f"save_dir={tmp_path / 'gapd'}")
    out = run_training(cfg)
    answers = tmp_path / "answers.json"
    assert infer_main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", cfg.model.model_path,
                       "--checkpoint_path", str(out), "--output_file", str(answers),
                       "--max_new_tokens", "6", "--batch_size", "4"]) == 0
    rows = json.loads(answers.read_text())
    assert len(rows) == 6 and all("model_response1" in p for r in rows for p in r["unsafe_pairs"])
    assert eval_main(["--input_file", str(answers), "--file_refer", str(mini_dir / "all_val.json"),
                      "--output_file_rr", str(tmp_path / "rr.json"), "--judge", "keyword", "--no_progress"]) == 0
    assert (tmp_path / "rr.json").exists()


def test_unsupported_model_type_is_one_clear_error():
    with pytest.raises(UnsupportedFamily, match="Supported families: .*llava.*qwen2_vl"):
        family_for("bert")


def test_specificity_runner_answers_with_every_family(family_name, tiny_family_dir, tmp_path):
    """The specificity runner's native path (the engine behind predict_fn) on the built-in fixtures."""
    from safeeraser.specificity import builtin_data_root, run_specificity
    from safeeraser.specificity.engine_predict import load_engine_predict_fn

    predict = load_engine_predict_fn(str(tiny_family_dir(family_name)), None, batch_size=4, dtype="float32")
    summary = run_specificity(predict, "pope,sqa", builtin_data_root(), tmp_path / "spec", limit=2,
                              max_new_tokens=3, progress=False)
    answered = [json.loads(x) for x in (tmp_path / "spec" / "pope" / "predictions.jsonl").read_text().splitlines()]
    assert len(answered) == 2 and summary["average"] is not None


def test_generic_generate_path_answers_as_the_fast_loop(family_name, tiny_family_dir, mini_dir):
    """engine="generate" (transformers' generate, the generic path) and the fast loop give the same
    answers, greedy and seeded sampled, so a family on either path gets the same prompt and answers."""
    from safeeraser.infer.engine import GenSettings, Generator

    model, proc, reqs = _model_and_requests(family_name, tiny_family_dir, mini_dir)
    for settings in (GenSettings(max_new_tokens=8, greedy=True), GenSettings(max_new_tokens=8, seed=5)):
        fast = Generator(model, proc, batch_size=4, engine="fast").generate(reqs, settings)
        generic = Generator(model, proc, batch_size=4, engine="generate")
        assert generic.use_generate
        assert generic.generate(reqs, settings) == fast, settings


@pytest.mark.heavy
def test_localized_methods_run_on_every_family(family_name, family_cfg, tmp_path):
    """MANU finds MLP neurons of both modalities in every family and silences them; MMUnlearner's Fisher
    mask leaves part of every family's tuned weights unchanged after its steps; MIP-Editor finds units of
    both modalities to edit; SMFA's masked merge saves a plain model of the family."""
    from safeeraser.train.loop import Trainer, run_training

    manu = run_training(family_cfg(family_name, "forget_loss=manu", "LoRA.r=0", "tune_language_model=true",
                                   f"save_dir={tmp_path / 'manu'}"))
    summary = json.loads((manu / "localization.json").read_text())
    assert set(summary["selected"]) == {"vision", "language"}
    pruned = dict(load_model(str(manu), "float32").named_modules())
    for name, rows in summary["neurons"].items():
        assert (pruned[name].weight[rows] == 0).all(), name

    trainer = Trainer(family_cfg(family_name, "forget_loss=mmunlearner", "LoRA.r=0", "tune_language_model=true",
                                 "max_train_steps=2", f"save_dir={tmp_path / 'mmu'}")).setup()
    frozen = {p: (~m, p.detach()[~m].clone()) for p, m in trainer.mask.masks.items()}
    trainer.train()
    assert sum(int(m.sum()) for m, _ in frozen.values()) > 0
    for p, (m, before) in frozen.items():
        assert torch.equal(p.detach()[m], before)

    mip = run_training(family_cfg(family_name, "forget_loss=mip_editor", "LoRA.r=0", "tune_language_model=true",
                                  "tune_vision_tower=true", "max_train_steps=1", "method_args.ig_steps=1",
                                  "method_args.per_layer=2", f"save_dir={tmp_path / 'mip'}"))
    summary = json.loads((mip / "localization.json").read_text())
    assert set(summary["selected"]) == {"vision", "language"}  # units of both modalities carry the answers
    assert all(len(rows) == 2 for rows in summary["neurons"].values())

    smfa = run_training(family_cfg(family_name, "forget_loss=smfa", "max_train_steps=1", "warmup_ratio=0",
                                   f"save_dir={tmp_path / 'smfa'}"))
    kept = json.loads((smfa / "localization.json").read_text())["selected"]["language"]
    assert 0 < kept["chosen"] <= kept["of"]
    merged = dict(load_model(str(smfa), "float32").named_parameters())
    base = dict(load_model(str(family_cfg(family_name).model.model_path), "float32").named_parameters())
    assert merged.keys() == base.keys()  # a plain model of the family, the adapters merged away
    assert any(not torch.equal(merged[n], base[n]) for n in base if "language_model" in n)
