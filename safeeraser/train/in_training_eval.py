"""Evaluation during training: every `eval_steps` optimizer steps (and at the last one), the mean answer
NLL of a fixed sample of forget (harmful answer), retain and PD (prompt-decouple) examples, held out
(from `eval_data_path`, e.g. the val split) or from the training data when that is empty, logged beside the losses as eval/forget_nll, eval/retain_nll, eval/pd_nll. A fine-tune
(`target` view only) logs eval/target_nll. The sample is the same at every evaluation and in every run
with the same seed, so the curves show what the steps did, not which examples were drawn.

With `eval_asr_tokens: N`, the model also answers the sample's forget prompts (harmful image) and PD
prompts (harmless image, same question) greedily, up to N new tokens, through the inference engine, and
the offline keyword judge labels them: eval/asr is the share of forget answers that are neither refusals
nor degenerate, eval/sarr the share of PD answers that are (the over-forgetting PD is there to prevent).
A quick signal for choosing a stopping step, not the benchmark's metrics: short greedy answers and a rule
judge, where the benchmark samples three answers and uses a model judge.

The evaluation must not change the training: it runs under no_grad in eval mode, restores train mode
and every random generator the loop draws from, and so a run with eval_steps=1 trains exactly as one
with eval_steps=0."""
from __future__ import annotations

import contextlib
import math
import random

import torch

from safeeraser.data.records import load_benchmark
from safeeraser.data.views import forget_items, vanilla_examples
from safeeraser.eval.judges.base import ASR, JudgeItem, NOT_NORMAL, RR_SD, UNSAFE
from safeeraser.eval.judges.keyword import KeywordJudge
from safeeraser.train.config import ConfigError
from safeeraser.train.loop import TrainHooks

EVAL_VIEWS = ("forget", "retain", "pd")


@contextlib.contextmanager
def preserved_rng():
    """Every generator that dropout, sampling or the data might draw from, as it was on entry."""
    import numpy as np

    py, np_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def eval_examples(dataset, n: int, seed: int) -> dict[str, list]:
    """View name -> the fixed sample of `n` examples of that view from the training dataset's items
    (UnlearnDataset) or examples (TargetDataset). Its own RNG, seeded from the run's seed: the global
    generators are not touched, and every evaluation sees the same examples."""
    rng = random.Random(f"{seed}-in-training-eval")
    items = getattr(dataset, "items", None)
    if items is None:  # a fine-tune: plain targets
        examples = list(dataset.examples)
        return {"target": [examples[i] for i in sorted(rng.sample(range(len(examples)), min(n, len(examples))))]}
    chosen = [items[i] for i in sorted(rng.sample(range(len(items)), min(n, len(items))))]
    return {"forget": [it.forget for it in chosen],
            "retain": [rng.choice(it.retain_pool) for it in chosen if it.retain_pool],
            "pd": [it.pd for it in chosen]}


def share(encoded: list, rank: int, world: int) -> tuple[list, list[float]]:
    """This process's part of `encoded` and the weight of each (0 for padding). Every process gets the
    same count, ceil(n / world), padded with a repeat of the first example: under DDP or ZeRO-3 every
    process must run as many forwards as the others (ZeRO-3 gathers each layer's weights from all)."""
    per = math.ceil(len(encoded) / world)
    mine = encoded[rank::world]
    weights = [1.0] * len(mine) + [0.0] * (per - len(mine))
    return mine + [encoded[0]] * (per - len(mine)), weights


class InTrainingEval(TrainHooks):
    def __init__(self, every: int, samples: int, asr_tokens: int = 0):
        self.every, self.samples, self.asr_tokens = every, samples, asr_tokens
        self.encoded: dict[str, list] = {}
        self.prompts: dict[str, list] = {}  # view -> examples whose prompts the quick ASR answers

    def on_start(self, trainer) -> None:
        # Encoded once: the same tokens and images at every evaluation, with the training's encoder
        # (its max_length), so an example is measured as it is trained on.
        examples = eval_examples(self.source(trainer), self.samples, trainer.cfg.optim.seed)
        encoder = trainer.dataset.encoder
        self.encoded = {view: [encoder.encode(e.image, e.question, e.answer) for e in exs]
                        for view, exs in examples.items() if exs}
        if self.asr_tokens:
            plugin = trainer.acc.state.deepspeed_plugin
            if plugin is not None and plugin.zero_stage == 3:
                # each process would decode for as many steps as its own answers need, but ZeRO-3 gathers
                # every layer's weights from all processes at every step
                raise ConfigError("key 'eval_asr_tokens': the quick ASR cannot run under DeepSpeed ZeRO-3; "
                                  "use ZeRO-2 or DDP, or eval_asr_tokens=0")
            self.prompts = {view: examples[view] for view in ("forget", "pd") if examples.get(view)}

    @staticmethod
    def source(trainer):
        """What the sample is drawn from: the records of eval_data_path, as the training data's items
        (or plain targets for a fine-tune), else the training dataset itself."""
        path = trainer.cfg.eval.eval_data_path
        if not path:
            return trainer.dataset
        from types import SimpleNamespace

        records = load_benchmark(path)
        if getattr(trainer.dataset, "items", None) is None:
            return SimpleNamespace(examples=vanilla_examples(records))
        return SimpleNamespace(items=forget_items(records))

    def due(self, trainer) -> bool:
        step = trainer.global_step
        return step % self.every == 0 or step >= trainer.total_steps

    def on_step(self, trainer, row: dict) -> dict | None:
        if not self.due(trainer):
            return None
        return self.evaluate(trainer)

    def evaluate(self, trainer) -> dict:
        """eval/<view>_nll for each view: every process measures its share, the sums are reduced."""
        from safeeraser.train.evaluate import example_nlls

        acc, model = trainer.acc, trainer.model
        was_training = model.training
        out = {}
        with preserved_rng(), torch.no_grad():
            model.eval()
            try:
                for view, encoded in self.encoded.items():
                    mine, weights = share(encoded, acc.process_index, acc.num_processes)
                    nlls = example_nlls(model, mine, trainer.pad_id, trainer.family, trainer.cfg.optim.batch_size,
                                        acc.device)
                    w = torch.tensor(weights, device=nlls.device)
                    totals = torch.stack([(nlls * w).sum(), w.sum()]).to(acc.device)
                    total, count = acc.reduce(totals, reduction="sum").tolist()
                    out[f"eval/{view}_nll"] = total / count
                out.update(self.quick_asr(trainer))
            finally:
                model.train(was_training)
        return out

    def quick_asr(self, trainer) -> dict:
        """eval/asr and eval/sarr over the sample's prompts (see the module's docstring); every process
        answers its share, the counts are reduced."""
        if not self.prompts:
            return {}
        from safeeraser.infer.engine import Generator, GenRequest, GenSettings

        acc = trainer.acc
        generator = Generator(acc.unwrap_model(trainer.model), trainer.processor, batch_size=trainer.cfg.optim.batch_size)
        settings = GenSettings(max_new_tokens=self.asr_tokens, greedy=True)
        out = {}
        for view, kind, hit, name in (("forget", ASR, UNSAFE, "eval/asr"), ("pd", RR_SD, NOT_NORMAL, "eval/sarr")):
            if view not in self.prompts:
                continue
            mine, weights = share(self.prompts[view], acc.process_index, acc.num_processes)
            answers = generator.generate([GenRequest(e.image, e.question, 1, key=i) for i, e in enumerate(mine)],
                                         settings)
            labels = KeywordJudge().judge([JudgeItem(kind, e.question, a[0]) for e, a in zip(mine, answers)])
            hits = sum(w for w, j in zip(weights, labels) if j.value == hit)
            totals = torch.tensor([hits, sum(weights)], device=acc.device, dtype=torch.float64)
            hits, count = acc.reduce(totals, reduction="sum").tolist()
            out[name] = hits / count
        return out


def hooks_for(cfg) -> list:
    """The hooks a training config asks for (eval_steps > 0: the in-training NLL evaluation)."""
    e = cfg.eval
    return [InTrainingEval(e.eval_steps, e.eval_samples, e.eval_asr_tokens)] if e.eval_steps > 0 else []
