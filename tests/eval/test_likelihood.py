"""Likelihood metrics (safeeraser/eval/likelihood.py) on the tiny vanilla model and the mini benchmark."""
import dataclasses
import itertools
import math
import random

import pytest
import torch
import torch.nn.functional as F

from safeeraser.data.encode import IGNORE_INDEX, PromptEncoder, model_inputs, pad_batch, pad_token_id
from safeeraser.data.records import load_benchmark
from safeeraser.eval.likelihood import (AnswerScores, answer_nll, membership_auc, mia_auc, min_k_plus_plus_score,
                                        min_k_score, view_examples, view_likelihoods)
from safeeraser.models.families import family_of_model
from safeeraser.models.loading import load_model, load_processor
from safeeraser.train.evaluate import mean_nll


@pytest.fixture(scope="module")
def tiny(vanilla_dir):
    return load_model(str(vanilla_dir), "float32").eval(), load_processor(str(vanilla_dir))


@pytest.fixture(scope="module")
def records(mini_dir):
    return load_benchmark(mini_dir / "all_train.json")


def _by_hand(model, processor, example):
    """A plain forward of one example, and its answer positions' logits and target tokens."""
    family = family_of_model(model)
    enc = PromptEncoder(processor, family).encode(example.image, example.question, example.answer)
    with torch.no_grad():
        logits = model(**model_inputs(pad_batch([enc], pad_token_id(processor.tokenizer), family))).logits[0]
    targets = (enc.labels != IGNORE_INDEX).nonzero()[:, 0]
    return logits[targets - 1], enc.input_ids[targets]


def test_answer_nll_equals_cross_entropy_on_the_answer_positions(tiny, records):
    model, processor = tiny
    example = view_examples(records, "forget")[0]
    logits, targets = _by_hand(model, processor, example)
    (scores,) = answer_nll(model, processor, [(str(example.image), example.question, example.answer)])
    assert len(scores.logprobs) == len(targets) > 3
    assert scores.nll == pytest.approx(F.cross_entropy(logits, targets).item(), abs=1e-5)
    by_token = -F.cross_entropy(logits, targets, reduction="none")
    assert scores.logprobs == pytest.approx(by_token.tolist(), abs=1e-5)


def test_answer_nll_is_the_training_nll(tiny, records):
    model, processor = tiny
    examples = view_examples(records, "retain")[:6]
    nlls = [s.nll for s in answer_nll(model, processor, examples)]
    assert sum(nlls) / len(nlls) == pytest.approx(mean_nll(model, processor, examples), abs=1e-5)


def test_min_k_plus_plus_statistics_match_the_full_vocabulary(tiny, records):
    model, processor = tiny
    example = view_examples(records, "pd")[1]
    logits, targets = _by_hand(model, processor, example)
    (scores,) = answer_nll(model, processor, [example])
    for t in (0, len(targets) // 2):
        p = torch.softmax(logits[t].double(), -1)
        log_p = p.log()
        mu = (p * log_p).sum()
        sigma = math.sqrt((p * log_p ** 2).sum() - mu ** 2)
        assert scores.mu[t] == pytest.approx(mu.item(), abs=1e-4)
        assert scores.sigma[t] == pytest.approx(sigma, abs=1e-4)
        assert scores.logprobs[t] == pytest.approx(log_p[targets[t]].item(), abs=1e-4)


def test_batching_gives_the_same_values(tiny, records):
    model, processor = tiny
    # different lengths, images and views in one batch, so rows are padded
    examples = [view_examples(records, v)[i] for v in ("forget", "retain", "pd") for i in (0, 5)]
    one, four = answer_nll(model, processor, examples, batch_size=1), answer_nll(model, processor, examples,
                                                                                 batch_size=4)
    assert len({len(s.logprobs) for s in one}) > 1
    for a, b in zip(one, four, strict=True):
        assert b.nll == pytest.approx(a.nll, abs=1e-5)
        for field in ("logprobs", "mu", "sigma"):
            assert getattr(b, field) == pytest.approx(getattr(a, field), abs=1e-5)


def test_the_models_mode_is_restored(tiny, records):
    model, processor = tiny
    model.train()
    try:
        answer_nll(model, processor, view_examples(records, "forget")[:1])
        assert model.training
    finally:
        model.eval()


def test_a_malformed_example_is_named():
    with pytest.raises(ValueError, match="example 1: expected an .image, question, answer. triple"):
        answer_nll(None, None, [("a.png", "q", "a"), ("a.png", "q")])


def test_views_of_the_records(tiny, records):
    model, processor = tiny
    forget, retain, pd = (view_examples(records, v) for v in ("forget", "retain", "pd"))
    pairs = [p for r in records for p in r.unsafe_pairs]
    assert [e.answer for e in forget] == [p["model_response"] for p in pairs]
    assert [e.answer for e in pd] == [p["sd_response"] for p in pairs]
    assert {e.image for e in forget} == {r.image for r in records}
    assert {e.image for e in pd} == {r.sd_image for r in records}
    assert len(retain) == 4 * len(records) and retain[0].answer == records[0].raw["UnharmPair_text1"]["Prediction"]
    stats = view_likelihoods(model, processor, records[:3], views=("forget", "pd"), batch_size=4)
    assert list(stats) == ["forget", "pd"]
    scores = answer_nll(model, processor, view_examples(records[:3], "forget"))
    assert stats["forget"]["n"] == len(scores) == 6
    assert stats["forget"]["mean_nll"] == pytest.approx(sum(s.nll for s in scores) / 6, abs=1e-6)
    assert stats["forget"]["mean_prob"] == pytest.approx(sum(math.exp(-s.nll) for s in scores) / 6, abs=1e-6)
    assert view_likelihoods(model, processor, [], views=("retain",)) == {
        "retain": {"mean_nll": None, "mean_prob": None, "n": 0}}


def test_auc_of_known_score_lists():
    assert mia_auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert mia_auc([0, 1, 2], [3, 4, 5]) == 0.0
    assert mia_auc([1, 1, 1], [1, 1]) == 0.5
    assert mia_auc([1, 2], [1]) == 0.75  # a tie counts half
    assert mia_auc([], [1.0]) is None
    rng = random.Random(0)
    members = [rng.randint(0, 5) for _ in range(40)]
    others = [rng.randint(0, 4) for _ in range(30)]
    pairwise = sum((m > o) + 0.5 * (m == o) for m, o in itertools.product(members, others)) / (40 * 30)
    assert mia_auc(members, others) == pytest.approx(pairwise, abs=1e-12)
    with pytest.raises(ValueError, match="NaN"):
        mia_auc([float("nan")], [1.0])


def test_min_k_takes_the_k_lowest_tokens():
    logprobs = [-0.1, -5.0, -0.2, -3.0, -0.3, -0.4, -0.5, -0.6, -0.7, -0.8]
    assert min_k_score(logprobs, k=0.2) == pytest.approx(-4.0)  # 2 of 10 tokens: -5 and -3
    assert min_k_score(logprobs, k=0.05) == -5.0  # never fewer than one token
    assert min_k_score(logprobs, k=1.0) == pytest.approx(sum(logprobs) / 10)
    with pytest.raises(ValueError, match="k must be in"):
        min_k_score(logprobs, k=0)


def test_min_k_plus_plus_standardises_each_token_before_taking_the_lowest():
    # token 0 is unlikely but so is everything at its position (flat distribution); token 2 is the outlier
    scores = AnswerScores(nll=0.0, logprobs=[-6.0, -1.0, -3.0, -0.5], mu=[-6.0, -2.0, -0.5, -1.0],
                          sigma=[0.5, 1.0, 0.5, 1.0])
    z = [0.0, 1.0, -5.0, 0.5]
    assert min_k_plus_plus_score(scores, k=0.5) == pytest.approx((-5.0 + 0.0) / 2)
    assert min_k_plus_plus_score((scores.logprobs, scores.mu, scores.sigma), k=0.25) == min(z)
    assert min_k_score(scores.logprobs, k=0.25) == -6.0  # Min-K% picks token 0 instead
    assert min_k_plus_plus_score(([-0.0], [0.0], [0.0]), k=1.0) == 0.0  # one-hot: sigma 0
    with pytest.raises(ValueError, match="differ in length"):
        min_k_plus_plus_score(([-1.0, -2.0], [0.0], [1.0]))


def _garbled(record):
    """The record with its harmful answers' words reversed: text the model never saw."""
    raw = dict(record.raw, unsafe_pairs=[dict(p, model_response=" ".join(reversed(p["model_response"].split())))
                                         for p in record.unsafe_pairs])
    return dataclasses.replace(record, raw=raw)


def test_membership_auc_separates_trained_answers_from_unseen_ones(tiny, records):
    model, processor = tiny
    result = membership_auc(model, processor, records, [_garbled(r) for r in records], batch_size=8)
    assert (result["members"], result["nonmembers"]) == (24, 24)
    # the vanilla model was fine-tuned on these answers: every score tells them from unseen text
    assert all(result[n] > 0.9 for n in ("loss", "zlib", "min_k", "min_k_plus_plus")), result
    same = membership_auc(model, processor, records[:2], records[:2])
    names = ("loss", "zlib", "min_k", "min_k_plus_plus")  # the attacks that need only the model attacked
    assert same == {**{n: 0.5 for n in names}, "members": 4, "nonmembers": 4,
                    "distance": {n: 0.0 for n in names}, "leans": {n: "neither" for n in names}}
    # swapped: the garbled answers are now the "members", less likely than the "unseen" trained ones: an
    # AUC as far below 0.5 as it was above, the same distance, the other lean
    swapped = membership_auc(model, processor, [_garbled(r) for r in records], records, batch_size=8)
    for name in names:
        assert swapped[name] == pytest.approx(1 - result[name])
        assert swapped["distance"][name] == pytest.approx(result["distance"][name]) and result["distance"][name] > 0.4
        assert (result["leans"][name], swapped["leans"][name]) == ("members", "non-members")


def test_the_membership_scores_are_the_hand_computed_ones(tiny, records):
    import zlib

    from safeeraser.eval.mia import attack_for
    from safeeraser.eval.mia.base import Evidence
    from safeeraser.eval.mia.suite import gradient_norms

    model, processor = tiny
    example = view_examples(records, "forget")[0]
    (scores,) = answer_nll(model, processor, [example])
    evidence = Evidence(scores, example.answer, reference=AnswerScores(2.5, [], [], []), grad_norm=3.0)
    assert attack_for("loss").score(evidence, {}) == -scores.nll
    assert attack_for("zlib").score(evidence, {}) == pytest.approx(
        -scores.nll / len(zlib.compress(example.answer.encode())))
    assert attack_for("reference").score(evidence, {}) == pytest.approx(2.5 - scores.nll)
    assert attack_for("gradient_norm").score(evidence, {}) == -3.0
    # the gradient norm: of the answer's mean token NLL, over every weight of the model
    logits, targets = _by_hand_with_grad(model, processor, example)
    params = [p for p in model.parameters()]
    was = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    try:
        grads = torch.autograd.grad(F.cross_entropy(logits.float(), targets), params, allow_unused=True)
    finally:
        for p, r in zip(params, was):
            p.requires_grad_(r)
    expected = math.sqrt(sum(float(g.double().square().sum()) for g in grads if g is not None))
    assert gradient_norms(model, processor, [example]) == [pytest.approx(expected, rel=1e-4)]
    assert all(p.grad is None for p in model.parameters()) and [p.requires_grad for p in params] == was


def _by_hand_with_grad(model, processor, example):
    family = family_of_model(model)
    enc = PromptEncoder(processor, family).encode(example.image, example.question, example.answer)
    for p in model.parameters():
        p.requires_grad_(True)
    logits = model(**model_inputs(pad_batch([enc], pad_token_id(processor.tokenizer), family))).logits[0]
    targets = (enc.labels != IGNORE_INDEX).nonzero()[:, 0]
    return logits[targets - 1], enc.input_ids[targets]


def test_the_suite_with_a_reference_model_and_gradients_tells_members_from_unseen(tiny, records, tiny_dir):
    from safeeraser.eval.mia.suite import membership_suite, privacy_leak

    model, processor = tiny
    members = view_examples(records[:3], "forget")
    unseen = view_examples([_garbled(r) for r in records[:3]], "forget")
    base = load_model(str(tiny_dir), "float32").eval()  # the random model before the fine-tune: never saw them
    suite = membership_suite(model, processor, members, unseen, reference_model=base,
                             attacks=("loss", "zlib", "reference", "gradient_norm"))
    assert (suite["members"], suite["nonmembers"]) == (len(members), len(unseen))
    for name in ("loss", "zlib", "reference", "gradient_norm"):
        assert suite[name] > 0.8 and suite["leans"][name] == "members", (name, suite[name])
    with pytest.raises(ValueError, match="reference model"):
        membership_suite(model, processor, members, unseen, attacks=("reference",))
    with pytest.raises(ValueError, match="unknown membership attack 'loss2'"):
        membership_suite(model, processor, members, unseen, attacks=("loss2",))
    # MUSE's privacy leak: relative to the oracle's AUC, in percent
    assert privacy_leak(0.75, 0.5) == pytest.approx(50.0) and privacy_leak(0.4, 0.5) == pytest.approx(-20.0)
    assert privacy_leak(None, 0.5) is None
