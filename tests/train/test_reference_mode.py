"""Reference mode's training options, each against a separate hand-written computation of what the
SafeEraser code does (its forget.py and data_module.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import fake_reference_checkout as fake
from safeeraser.data.encode import IGNORE_INDEX, PromptEncoder
from safeeraser.data.records import load_benchmark
from safeeraser.data.views import Example, all_retain, forget_items
from safeeraser.reference.checkout import TrainingTags
from safeeraser.train.config import ConfigError, config_from
from safeeraser.train.dataset import InOrderSampler, Pairing, UnlearnDataset, train_sampler
from safeeraser.train.loop import warmup_steps
from safeeraser.train.methods import method_of
from safeeraser.train.methods.terms import KINDS
from hand_written import cfg as _cfg, token_nlls as _token_nlls, view as _view


def test_batch_token_mean_and_pooled_nll_are_one_mean_over_all_answer_tokens():
    a, b = _view(0, answer_from=(2, 5)), _view(1, answer_from=(4, 1))
    term = SimpleNamespace(view="idk", pair="retain")
    flat_a = [x for row in _token_nlls(a) for x in row]
    flat_b = [x for row in _token_nlls(b) for x in row]
    pooled = KINDS["pooled_nll"]({"idk": a, "retain": b}, term, _cfg(), {})
    assert float(pooled) == pytest.approx(sum(flat_a + flat_b) / len(flat_a + flat_b), rel=1e-6)
    batch = KINDS["nll"]({"idk": a}, term, _cfg(token_mean="batch"), {})
    assert float(batch) == pytest.approx(sum(flat_a) / len(flat_a), rel=1e-6)
    per_example = KINDS["nll"]({"idk": a}, term, _cfg(), {})
    rows = _token_nlls(a)
    assert float(per_example) == pytest.approx(sum(sum(r) / len(r) for r in rows) / len(rows), rel=1e-6)
    assert float(per_example) != pytest.approx(float(batch), rel=1e-3)  # rows of unequal length differ


def test_reference_kl_is_kl_div_batchmean_over_every_position():
    view = _view(2)
    term = SimpleNamespace(view="retain", pair=None)
    got = KINDS["kl"]({"retain": view}, term, _cfg(kl_positions="reference"), {})
    vocab = view.logits.shape[-1]
    cur = F.log_softmax(view.logits, -1).view(-1, vocab)
    ref = F.log_softmax(view.ref_logits, -1).view(-1, vocab)
    expected = F.kl_div(cur, ref, reduction="batchmean", log_target=True)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    # `all` leaves out the last position; the older kl_all_positions=true means `all`
    all_but_last = KINDS["kl"]({"retain": view}, term, _cfg(kl_positions="all"), {})
    alias = KINDS["kl"]({"retain": view}, term, _cfg(kl_all_positions=True), {})
    per = (ref.exp() * (ref - cur)).sum(-1).view(view.logits.shape[:2])[:, :-1]
    assert float(all_but_last) == float(alias) == pytest.approx(float(per.mean()), rel=1e-6)


def test_po_pooling_makes_one_term_of_refusal_and_retain():
    cfg = config_from(forget_loss="idkpd", po_pooling="pooled", loss_weights={})
    terms = [(t.name, t.view, t.kind, t.weight, t.pair) for t in method_of(cfg).terms]
    assert terms == [("idk_retain", "idk", "pooled_nll", 1.0, "retain"), ("pd", "pd", "nll", 1.0, None)]
    cfg.method.forget_loss = "gdpd"  # nothing to pool
    assert [t.name for t in method_of(cfg).terms] == ["forget", "retain", "pd"]


@pytest.mark.parametrize("ratio, steps, ceil, rounded", [(0.06, 1, 1, 0), (0.06, 75, 5, 4), (0.06, 8, 1, 0),
                                                         (0.1, 25, 3, 2), (0.06, 160, 10, 10)])
def test_warmup_rounding(ratio, steps, ceil, rounded):
    # Python's round is half to even: 0.06 * 75 = 4.5 -> 4, 0.1 * 25 = 2.5 -> 2
    assert warmup_steps(config_from(warmup_ratio=ratio, warmup_rounding="ceil"), steps) == ceil
    assert warmup_steps(config_from(warmup_ratio=ratio, warmup_rounding="round"), steps) == rounded


@pytest.mark.parametrize("per_process, processes", [(False, 2), (True, 1), (True, 2)])
def test_schedule_advance_per_process(per_process, processes):
    import math

    from transformers import get_scheduler

    from safeeraser.train.loop import advance_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=10)
    cfg = config_from(lr_schedule_per_process=per_process)
    rate = processes if per_process else 1
    for update in range(1, 8):
        opt.step()
        advance_schedule(sched, cfg, processes)
        s = update * rate  # the schedule's step count, written out; the cosine is not clamped past its end
        expected = s / 2 if s < 2 else max(0.0, 0.5 * (1 + math.cos(math.pi * (s - 2) / 8)))
        assert sched.get_last_lr()[0] == pytest.approx(expected), update


class _Echo:
    """An encoder that returns what it is asked to encode."""

    def encode(self, image, question, answer):
        return Example(image, question, answer)


def _dataset(mini_dir, pairing, views=("forget", "retain", "pd"), copies=1):
    records = load_benchmark(mini_dir / "all_train.json")
    items = forget_items(records) * copies
    return UnlearnDataset(items, list(views), _Echo(), [" i can NOT help."], seed=3, pairing=pairing,
                          all_retain=all_retain(records)), items, all_retain(records)


def test_reference_retain_draw_is_uniform_over_all_records_and_pd_follows_it(mini_dir):
    # The mini data has two unsafe pairs per record and four harmless ones (R = 2F), where the reference's
    # PD draw fails; each forget item twice makes F = R
    ds, items, pool = _dataset(mini_dir, Pairing("reference", "reference"), copies=2)
    assert len(pool) == len(items)
    own, draws, hits = 0, 0, [0] * len(pool)
    for epoch in range(40):
        ds.set_epoch(epoch)
        for i, item in enumerate(items):
            row = ds[i]
            j = pool.index(row["retain"])
            hits[j] += 1
            assert row["pd"] == items[j].pd  # the PD example at the retain draw's index
            own += pool[j] in item.retain_pool
            draws += 1
    # A draw lands in the pair's own record with probability 4/R (chance)
    p = 4 / len(pool)
    sigma = (p * (1 - p) / draws) ** 0.5
    assert abs(own / draws - p) < 4 * sigma
    assert min(hits) > 0  # every harmless pair is drawn
    ours, items, _ = _dataset(mini_dir, Pairing())
    for i, item in enumerate(items):  # ours: the pair's own record and its own SD example, always
        assert ours[i]["retain"] in item.retain_pool and ours[i]["pd"] == item.pd
    crashing, _, _ = _dataset(mini_dir, Pairing("reference", "reference"))
    with pytest.raises(IndexError):  # R > F: build_dataset refuses such data first; this is the backstop
        for epoch in range(5):
            crashing.set_epoch(epoch)
            [crashing[i] for i in range(len(crashing))]


def test_capitalize_as_the_reference(mini_dir):
    ds, items, _ = _dataset(mini_dir, Pairing(casing="capitalize"), views=("idk", "retain", "pd"))
    row = ds[0]
    assert row["idk"].answer == "I can not help."  # blanks stripped, then str.capitalize
    assert row["idk"].question == items[0].forget.question.capitalize()
    assert row["pd"] == Example(items[0].pd.image, items[0].pd.question.capitalize(), items[0].pd.answer.capitalize())


def test_sequential_order():
    sampler = train_sampler(list(range(5)), config_from(data_order="sequential", seed=1))
    assert isinstance(sampler, InOrderSampler)
    sampler.set_epoch(3)
    assert list(sampler) == [0, 1, 2, 3, 4]


TAGS = TrainingTags(fake.SYSTEM_TAG, fake.USER_TAG, fake.ANSWER_TAG)


def test_reference_prompt_and_label_rule(processor, mini_dir):
    record = load_benchmark(mini_dir / "all_train.json")[0]
    enc = PromptEncoder(processor, _family(processor), reference_tags=TAGS, end_token=False)
    question, answer = "What is shown?", "A red Box."
    e = enc.encode(record.image, question, answer)
    tok = processor.tokenizer
    n_image = enc.image(record.image)[1]
    text = f"{TAGS.system}{TAGS.user}{processor.image_token * n_image}\n{question}{TAGS.answer}{answer}"
    assert e.input_ids.tolist() == tok(text)["input_ids"]  # BOS + the text; no end token
    # The label rule, counted by hand: BOS, the instruction with its tag, the image's extra tokens
    prefix = tok(f"{TAGS.system}{TAGS.user}{processor.image_token}\n{question}{TAGS.answer}")["input_ids"]
    masked = 1 + len(prefix) - 2 + n_image - 1
    assert e.labels[:masked].eq(IGNORE_INDEX).all() and e.labels[masked:].tolist() == e.input_ids[masked:].tolist()
    assert tok.decode(e.input_ids[masked:]).strip() == answer
    assert e.labels[-1].item() != tok.eos_token_id
    with_end = PromptEncoder(processor, _family(processor), reference_tags=TAGS).encode(record.image, question, answer)
    assert with_end.input_ids.tolist() == e.input_ids.tolist() + [tok.eos_token_id]
    assert with_end.labels.tolist() == e.labels.tolist() + [tok.eos_token_id]


def test_chat_template_without_the_end_token(processor, mini_dir):
    record = load_benchmark(mini_dir / "all_train.json")[0]
    with_end = PromptEncoder(processor, _family(processor)).encode(record.image, "What is shown?", "A red box.")
    without = PromptEncoder(processor, _family(processor), end_token=False).encode(record.image, "What is shown?",
                                                                                    "A red box.")
    assert with_end.labels[-1].item() == processor.tokenizer.eos_token_id
    assert without.labels.tolist() == with_end.labels[:-1].tolist()
    assert without.input_ids.tolist() == with_end.input_ids[:-1].tolist()


def _family(processor):
    from safeeraser.models.families import family_for

    return family_for("llava")


@pytest.mark.parametrize("overrides, key", [
    (["pd_pairing=reference"], "pd_pairing"),
    (["prompt_format=reference"], "reference_dir"),
    (["retain_pairing=everything"], "retain_pairing"),
    (["kl_positions=last"], "kl_positions"),
])
def test_reference_keys_are_checked(overrides, key):
    from safeeraser.train.config import load_config

    with pytest.raises(ConfigError, match=f"key '{key}'"):
        load_config("forget_lora.yaml", overrides, validate_paths=False)


def test_a_checkout_without_model_config_is_named(tmp_path):
    from safeeraser.train.config import load_config

    root = fake.write(tmp_path / "ref")
    (root / "config" / "model_config.yaml").unlink()
    with pytest.raises(ConfigError, match="model_config.yaml: not found"):
        load_config("forget_reference.yaml", [f"reference_dir={root}", f"data_path={tmp_path}/x.json"])


def test_pd_pairing_reference_refuses_data_the_reference_would_crash_on(tmp_path, processor, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "reference_parity"))
    import case

    from safeeraser.data.records import load_benchmark as load
    from safeeraser.io import DataError
    from safeeraser.train.loop import build_dataset

    case.write(tmp_path)
    monkeypatch.chdir(tmp_path)  # the case's image paths are relative to it, as the reference reads them
    records = load(tmp_path / "dataset" / "uneven.json")
    cfg = config_from(prompt_format="chat_template", max_length=0, train_end_token=True, idk_path="",
                      retain_pairing="reference", pd_pairing="reference", text_casing="keep", seed=1,
                      data_path=str(tmp_path / "dataset" / "uneven.json"))
    with pytest.raises(DataError, match=r"uneven.json: .*8 harmless pairs and only 6 unsafe pairs.*IndexError"):
        build_dataset(cfg, method_of(config_from(forget_loss="gdpd", po_pooling="sum", loss_weights={})),
                      processor, _family(processor), records)

