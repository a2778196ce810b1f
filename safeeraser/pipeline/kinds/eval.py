"""eval: a split's answers judged by the experiment's judge, then by each agreement judge. Each judged file
is named by the answers' content and the judge's options (Runner.eval_target): answers made again are
judged again, never matched with the stats of the earlier ones."""
from __future__ import annotations

import json
from pathlib import Path

from safeeraser.eval import evaluate as judge_answers, make_judge, stats_path_for
from safeeraser.pipeline.experiment import agreement_blocks
from safeeraser.pipeline.kinds.base import Step, StepKind
from safeeraser.pipeline.locks import exclusive


def evaluate(runner, tag: str, answers: Path, split: str, block: dict | None = None) -> tuple[dict, Path]:
    """The stats of `answers` judged by the experiment's judge (or `block`), and the judged file."""
    name, kwargs, out = runner.eval_target(answers, block)
    stats = stats_path_for(out)
    if not stats.exists():
        runner.log(f"[{tag}] judging {split} with the {name} judge")
        cache = runner.work / "eval" / f"judge_cache_{name}.jsonl"
        with exclusive(cache.with_name(cache.name + ".lock")):
            judge = make_judge(name, cache_path=cache, **kwargs)
            judge_answers(answers, runner.cfg.data[split], out, judge=judge, show_progress=False,
                          aggregate=runner.aggregate(block))
        runner.executed.append(f"eval:{tag}:{split}" + ("" if block is None else f":{name}"))
        return json.loads(stats.read_text()), out
    result = json.loads(stats.read_text())
    runner.note_reuse(str(stats), result.get("provenance"))
    return result, out


def _blocks(runner) -> list:
    return [None, *agreement_blocks(runner.cfg)]


class Eval(StepKind):
    name = "eval"
    gpu_role = "judge"

    def plan(self, runner, graph):
        run = graph.run
        for split, answers in graph.answers.items():
            graph.add(Step(f"eval:{run.tag}:{split}", self.name, {"tag": run.tag, "answers": answers.output,
                                                                   "split": split},
                           [answers.id], output=str(runner.work / "eval")))
        for (label, split), answers in graph.attacked.items():
            graph.add(Step(f"eval:{run.tag}:{runner.attacks[label].slug}:{split}", self.name,
                           {"tag": f"{run.tag} {label}", "answers": answers.output, "split": split},
                           [answers.id], output=str(runner.work / "eval")))

    def run(self, runner, step, extra=None):
        for block in _blocks(runner):
            evaluate(runner, step.args["tag"], Path(step.args["answers"]), step.args["split"], block)

    def done(self, runner, step):
        answers = Path(step.args["answers"])
        return answers.exists() and all(stats_path_for(runner.eval_target(answers, block)[2]).exists()
                                        for block in _blocks(runner))


KIND = Eval()
