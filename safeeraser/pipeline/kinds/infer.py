"""infer: the run's answers to a split (ckpt_infer), whole or, with launcher.infer_shards N > 1, as N shard
steps (one GPU each) whose merge (kinds/merge.py) takes the infer step's id: the steps after read the same
id and the same file either way. Answers are made again when records were skipped (the input may have been
fixed) or when the run's adapter changed since (a run unlearned again keeps its folder's name)."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from safeeraser.infer.ckpt_infer import format_summary, meta_path, run_inference, shard_path
from safeeraser.infer.settings import settings_for
from safeeraser.pipeline.kinds.base import Step, StepKind
from safeeraser.provenance import weights_identity

SPLITS = ("train", "val")


def checkpoint(step: Step) -> Path | None:
    return None if step.args.get("ckpt") is None else Path(step.args["ckpt"])


def answers_from_other_weights(meta_file: Path, ckpt: Path | None) -> str | None:
    """Which weight file of `ckpt` differs from the one the answers' meta recorded (size and modification
    time, as provenance.weights_identity keeps them), or None: the same weights, no checkpoint, or no
    record to compare (answers made before metas recorded it are kept)."""

    if ckpt is None or not meta_file.exists() or not Path(ckpt).is_dir():
        return None
    recorded = (json.loads(meta_file.read_text()).get("checkpoint") or {}).get("files")
    if not recorded:
        return None
    now = weights_identity(ckpt)["files"]
    changed = sorted(name for name in set(recorded) | set(now) if recorded.get(name) != now.get(name))
    return ", ".join(changed) or None


def answers_done(out: Path, ckpt: Path | None = None) -> bool:
    """The answers exist, with none missing, made from the weights now in `ckpt`."""

    made = meta_path(out)
    return (out.exists() and not (made.exists() and json.loads(made.read_text()).get("skipped_records"))
            and answers_from_other_weights(made, ckpt) is None)


def answers_made(runner, out: Path, ckpt: Path | None = None) -> bool:
    """Whether the answers in `out` are made (their reuse noted). Answers that lack records skipped when they
    were made, or that were made from other weights than `ckpt` holds now, are removed: not done."""

    made = meta_path(out)
    skipped = json.loads(made.read_text()).get("skipped_records") if out.exists() and made.exists() else None
    if skipped:
        runner.log(f"note: {out} lacks records {skipped} (skipped when it was made): answering again")
        out.unlink()
    changed = answers_from_other_weights(made, ckpt) if out.exists() else None
    if changed:
        runner.log(f"note: {out} was made from other weights than {ckpt} holds now ({changed}): answering again")
        out.unlink()
    if not out.exists():
        return False
    runner.note_reuse(str(out), json.loads(made.read_text()).get("environment") if made.exists() else None)
    return True


def answer(runner, what: str, ckpt: Path | None, split: str, out: Path, **shard) -> None:
    """ckpt_infer as the experiment sets it, resuming an interrupted run."""

    settings = settings_for(OmegaConf.to_container(runner.cfg.infer), eval_file=runner.cfg.data[split],
                            model_path=runner.cfg.model.vanilla, output_file=str(out), resume=True,
                            checkpoint_path=None if ckpt is None else str(ckpt), **shard)
    runner.log(what)
    runner.log(format_summary(run_inference(settings)))


class Infer(StepKind):
    name = "infer"
    gpu_role = "infer"  # a shard has these GPUs too

    def plan(self, runner, graph):
        if not runner.judging:  # another benchmark's runs are scored by its own tasks (kinds/score.py)
            return
        run, shards = graph.run, runner.cfg.launcher.infer_shards
        for split in SPLITS:
            out = runner.infer_path(run.tag, split)
            step_id = f"infer:{run.tag}:{split}"
            args = {"tag": run.tag, "ckpt": None if run.ckpt is None else str(run.ckpt), "split": split,
                    "out": str(out)}
            if shards <= 1:
                graph.answers[split] = graph.add(Step(step_id, self.name, args, graph.model_deps, output=str(out)))
                continue
            parts = [graph.add(Step(f"{step_id}:shard-{k}-of-{shards}", self.name, {**args, "shard": k, "shards": shards},
                                    graph.model_deps, output=str(shard_path(out, k, shards)))).id
                     for k in range(shards)]
            graph.answers[split] = graph.add(Step(step_id, "merge", {**args, "shards": shards}, parts, output=str(out)))

    def run(self, runner, step, extra=None):
        a, ckpt = step.args, checkpoint(step)
        tag, split, out = a["tag"], a["split"], Path(a["out"])
        if a.get("shard") is None:
            if not answers_made(runner, out, ckpt):
                answer(runner, f"[{tag}] inference on {split}", ckpt, split, out)
                runner.executed.append(f"infer:{tag}:{split}")
            return

        shard, shards = a["shard"], a["shards"]
        # nothing once the merged answers are made (their merge notes the reuse)
        if not answers_done(out, ckpt) and not answers_made(runner, shard_path(out, shard, shards), ckpt):
            answer(runner, f"[{tag}] inference on {split}, shard {shard} of {shards}", ckpt, split, out,
                   shards=shards, shard_index=shard)
            runner.executed.append(f"infer:{tag}:{split}:shard-{shard}-of-{shards}")

    def done(self, runner, step):
        # a shard is done once its own answers exist, or once the merged answers do: nothing is answered again
        out, shard, ckpt = Path(step.args["out"]), step.args.get("shard"), checkpoint(step)
        if answers_done(out, ckpt):
            return True
        if shard is None:
            return False

        return answers_done(shard_path(out, shard, step.args["shards"]), ckpt)


KIND = Infer()
