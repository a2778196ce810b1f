"""In-training evaluation: eval/* NLLs every eval_steps optimizer steps and at the last, equal to mean_nll
on the same examples, computed without changing the training, and plotted."""
import json
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from safeeraser.train.config import config_from

STEPS = 3


def _cfg(tiny_dir, mini_dir, out, *overrides):
    from safeeraser.train.config import load_config

    # LoRA dropout draws from the global RNG and acts in train mode only: an evaluation that left the
    # model in eval mode or moved a generator would change the losses after it.
    return load_config("forget_tiny.yaml", [
        f"model_path={tiny_dir}", f"data_path={mini_dir / 'all_train.json'}", f"idk_path={mini_dir / 'prompt.json'}",
        f"save_dir={out}", "batch_size=3", "gradient_accumulation_steps=1", "overwrite=true",
        f"max_train_steps={STEPS}", "LoRA.dropout=0.1", "forget_loss=gd", *overrides])


def _rows(save_dir):
    return [json.loads(line) for line in (save_dir / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def evaluated(tiny_dir, mini_dir, tmp_path_factory):
    """A run with eval_steps=2 over 3 steps (so steps 2 and 3, the last), kept open after training."""
    from safeeraser.train.in_training_eval import hooks_for
    from safeeraser.train.loop import Trainer

    cfg = _cfg(tiny_dir, mini_dir, tmp_path_factory.mktemp("eval") / "run", "eval_steps=2", "eval_samples=3",
               "eval_asr_tokens=6")
    trainer = Trainer(cfg, hooks=hooks_for(cfg)).setup().train()
    trainer.finish()
    rows = _rows(trainer.save_dir)
    # the last step's evaluation saw the final model: no optimizer step came after it
    return SimpleNamespace(trainer=trainer, hook=trainer.hooks[0], rows=rows, last=rows[-1])


def test_eval_rows_at_every_eval_steps_and_the_last(evaluated):
    keys = {"eval/forget_nll", "eval/retain_nll", "eval/pd_nll"}
    assert [r["step"] for r in evaluated.rows] == [1, 2, 3]
    assert not keys & set(evaluated.rows[0])
    for row in evaluated.rows[1:]:
        assert keys <= set(row) and all(math.isfinite(row[k]) and row[k] > 0 for k in keys)
    # the weights moved between steps 2 and 3: the eval saw the model of its own step
    assert evaluated.rows[1]["eval/forget_nll"] != evaluated.rows[2]["eval/forget_nll"]


def test_eval_equals_mean_nll_on_the_same_examples(evaluated):
    from safeeraser.train.evaluate import mean_nll
    from safeeraser.train.in_training_eval import eval_examples

    trainer = evaluated.trainer
    model = trainer.acc.unwrap_model(trainer.model)
    examples = eval_examples(trainer.dataset, 3, trainer.cfg.optim.seed)
    assert {v: len(e) for v, e in examples.items()} == {"forget": 3, "retain": 3, "pd": 3}
    for view, exs in examples.items():
        assert evaluated.last[f"eval/{view}_nll"] == pytest.approx(mean_nll(model, trainer.processor, exs), rel=1e-6)
    assert model.training  # train mode restored


def test_the_evaluation_does_not_change_the_training(evaluated, tiny_dir, mini_dir, tmp_path):
    from safeeraser.train.loop import Trainer

    # trained only: saving and plotting add nothing to the comparison
    plain = _rows(Trainer(_cfg(tiny_dir, mini_dir, tmp_path / "plain", "eval_steps=0")).setup().train().save_dir)
    assert all(not any(k.startswith("eval/") for k in r) for r in plain)
    drop = ("samples_per_s", "eval/forget_nll", "eval/retain_nll", "eval/pd_nll", "eval/asr", "eval/sarr")
    assert [{k: v for k, v in r.items() if k not in drop} for r in evaluated.rows] == \
           [{k: v for k, v in r.items() if k not in drop} for r in plain]


def test_quick_asr_equals_the_engine_and_keyword_judge_on_the_final_model(evaluated):
    from safeeraser.eval.judges.base import ASR, RR_SD, JudgeItem, NOT_NORMAL, UNSAFE
    from safeeraser.eval.judges.keyword import KeywordJudge
    from safeeraser.infer.engine import Generator, GenRequest, GenSettings
    from safeeraser.train.in_training_eval import eval_examples

    trainer = evaluated.trainer
    assert {"eval/asr", "eval/sarr"} <= set(evaluated.rows[1]) and "eval/asr" not in evaluated.rows[0]
    examples = eval_examples(trainer.dataset, 3, trainer.cfg.optim.seed)
    model = trainer.acc.unwrap_model(trainer.model)
    model.eval()
    try:
        gen = Generator(model, trainer.processor, batch_size=1)  # another batching: the same greedy answers
        for view, kind, hit, key in (("forget", ASR, UNSAFE, "eval/asr"), ("pd", RR_SD, NOT_NORMAL, "eval/sarr")):
            exs = examples[view]
            answers = gen.generate([GenRequest(e.image, e.question, 1) for e in exs], GenSettings(6, greedy=True))
            assert all(len(a[0]) > 0 for a in answers)
            labels = KeywordJudge().judge([JudgeItem(kind, e.question, a[0]) for e, a in zip(exs, answers)])
            assert evaluated.last[key] == sum(j.value == hit for j in labels) / len(exs)
    finally:
        model.train()


def test_quick_asr_is_refused_under_zero3():
    from types import SimpleNamespace as NS

    from safeeraser.train.config import ConfigError
    from safeeraser.train.in_training_eval import InTrainingEval

    hook = InTrainingEval(1, 2, asr_tokens=4)
    hook.source = lambda trainer: NS(items=[])  # no examples needed to reach the check
    trainer = NS(cfg=config_from(seed=0), dataset=NS(encoder=None, items=[]),
                 acc=NS(state=NS(deepspeed_plugin=NS(zero_stage=3))))
    with pytest.raises(ConfigError, match="eval_asr_tokens"):
        hook.on_start(trainer)


def test_the_sample_is_fixed_by_the_seed(evaluated):
    from safeeraser.train.in_training_eval import eval_examples

    dataset = evaluated.trainer.dataset
    assert eval_examples(dataset, 3, 233) == eval_examples(dataset, 3, 233)
    assert eval_examples(dataset, 3, 233) != eval_examples(dataset, 3, 7)
    assert len(eval_examples(dataset, 10_000, 233)["forget"]) == len(dataset)  # capped at what there is


def test_a_fine_tune_is_evaluated_on_its_targets():
    from safeeraser.train.in_training_eval import eval_examples

    targets = SimpleNamespace(examples=[f"example {i}" for i in range(10)])  # a TargetDataset: no forget items
    sample = eval_examples(targets, 4, 0)
    assert list(sample) == ["target"] and len(set(sample["target"])) == 4
    assert sample == eval_examples(targets, 4, 0)


def test_each_process_measures_its_share_and_the_sums_give_the_mean(evaluated):
    """Two processes simulated: each runs as many forwards as the other and reduces (sum, count); the
    reduced sums give the one-process value."""
    trainer, hook = evaluated.trainer, evaluated.hook
    sums, forwards = [], []
    real_model = trainer.model

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.calls = real_model, 0

        def forward(self, **kw):
            self.calls += 1
            return self.inner(**kw)

    class FakeAcc:
        num_processes, device = 2, torch.device("cpu")

        def __init__(self, rank):
            self.process_index = rank

        def reduce(self, t, reduction):
            sums.append(t.clone())
            return t

        def unwrap_model(self, model):
            return real_model

    acc, encoded, prompts = trainer.acc, hook.encoded, hook.prompts
    hook.encoded = {"forget": encoded["forget"]}  # 3 examples over 2 processes: one pads
    hook.prompts = {}
    try:
        for rank in (0, 1):
            trainer.acc, trainer.model = FakeAcc(rank), Counting()
            hook.evaluate(trainer)
            forwards.append(trainer.model.calls)
        # the quick ASR the same way: each process answers its share, the padding counts for nothing
        hook.encoded, hook.prompts = {}, {"forget": prompts["forget"]}
        for rank in (0, 1):
            trainer.acc = FakeAcc(rank)
            hook.evaluate(trainer)
    finally:
        trainer.acc, trainer.model, hook.encoded, hook.prompts = acc, real_model, encoded, prompts
    assert forwards[0] == forwards[1]  # DDP / ZeRO-3: every process in every forward
    total, count = (sums[0] + sums[1]).tolist()
    assert count == 3  # the padding weighs nothing
    assert total / count == pytest.approx(evaluated.last["eval/forget_nll"], rel=1e-6)
    hits, count = (sums[2] + sums[3]).tolist()
    assert count == 3 and hits / count == evaluated.last["eval/asr"]


def test_share_pads_every_process_to_the_same_count():
    from safeeraser.train.in_training_eval import share

    parts = [share(list("abcde"), r, 3) for r in range(3)]
    assert [len(p) for p, _ in parts] == [2, 2, 2]
    assert sorted(x for p, w in parts for x, wi in zip(p, w) if wi) == list("abcde")


def test_preserved_rng_restores_every_generator():
    from safeeraser.train.in_training_eval import preserved_rng

    def seed():
        random.seed(1), np.random.seed(1), torch.manual_seed(1)

    def draw():
        return random.random(), float(np.random.rand()), torch.rand(1).item()

    with preserved_rng():  # the test's own seeding leaves the session's generators as they were
        seed()
        with preserved_rng():
            draw(), torch.rand(5)
        after = draw()
        seed()
        assert after == draw()


def test_the_loss_curves_get_eval_panels(evaluated, tmp_path):
    from PIL import Image

    from safeeraser.train.plots import plot_loss_curves

    png = evaluated.trainer.save_dir / "loss_curves.png"
    losses = {k for r in evaluated.rows for k in r if k.startswith("loss/")}
    # one panel per loss term, the learning rate, the NLL panel and the quick ASR's, 4 inches at 100 dpi each
    assert Image.open(png).size[0] == 400 * (len(losses) + 3)
    nll_only = plot_loss_curves([{k: v for k, v in r.items() if k not in ("eval/asr", "eval/sarr")}
                                 for r in evaluated.rows], tmp_path / "nll.png")
    assert Image.open(nll_only).size[0] == 400 * (len(losses) + 2)
    without = plot_loss_curves([{k: v for k, v in r.items() if not k.startswith("eval/")} for r in evaluated.rows],
                               tmp_path / "plain.png")
    assert Image.open(without).size[0] == 400 * (len(losses) + 1)
    assert not list(tmp_path.glob(".*"))  # written whole, no temporary left


def test_the_sample_is_held_out_when_eval_data_path_is_set(mini_dir):
    """eval_data_path (the val split): the sample comes from its records, never from the training data."""
    from safeeraser.data.records import load_benchmark
    from safeeraser.train.in_training_eval import InTrainingEval, eval_examples

    val = mini_dir / "all_val.json"
    train_questions = {p["question"] for r in load_benchmark(mini_dir / "all_train.json") for p in r.unsafe_pairs}
    val_questions = {p["question"] for r in load_benchmark(val) for p in r.unsafe_pairs}
    trainer = SimpleNamespace(cfg=config_from(eval_data_path=str(val)), dataset=SimpleNamespace(items=[]))
    sample = eval_examples(InTrainingEval.source(trainer), 4, 0)
    assert len(sample["forget"]) == 4 and {e.question for e in sample["forget"]} <= val_questions - train_questions
    assert len(sample["pd"]) == 4 and sample["retain"]
