"""What a benchmark is, to the toolkit: its splits as released, a reader that checks them (one DataError
naming the file, the record and the field), a generator of a small benchmark in the same format (for
tests and the CPU demo), its tasks' scores (prediction/reference lists -> a number, as the benchmark's
own code computes it) and its training items (the forget and retain examples the loop trains on)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from safeeraser.io import DataError


@dataclass(frozen=True)
class Benchmark:
    name: str
    splits: tuple[str, ...]
    read: Callable[[Path, str], list]  # (the benchmark's folder, a split) -> its records, checked
    make_mini: Callable[..., Path]  # (out folder, seed=...) -> the folder, in the released layout
    tasks: dict[str, Callable] = field(default_factory=dict)
    # The splits a run may forget (data.split), and the training items of one: (forget items, the retain
    # examples every item draws from), views.ForgetItem / views.Example, images as files
    forget_splits: tuple[str, ...] = ()
    training_items: Callable[[Path, str], tuple[list, tuple]] | None = None
    # Everything a vanilla model is fine-tuned on before unlearning (None: the forget items and the retain
    # pool of the split asked for cover it)
    teaching_examples: Callable[[Path], list] | None = None
    # Whether its items have PD examples (the harmful question on a harmless image: SafeEraser's SD images)
    has_pd: bool = False
    # What a model is asked to score a split: {task: [(image file, prompt, reference[, unit])]}
    # (benchmarks/evaluate.py generates the answers and scores each task with `tasks[task]`; the unit, the
    # record an item asks about, is what intervals resample: by default its image)
    eval_items: Callable[[Path, str], dict[str, list[tuple]]] | None = None
    # The truth-ratio items of a split: [(image file, question, answer, paraphrased answer, [perturbed
    # answers])] (benchmarks/evaluate.py scores their answer losses: eval/forget_quality.py)
    likelihood_items: Callable[[Path, str], list[tuple]] | None = None
    # The splits a grid scores after forgetting a split (what the benchmark's paper reports for it), and
    # the benchmark's model utility from {split: scores} (None: it defines no aggregate, or a split it reads
    # was not scored)
    eval_splits: Callable[[str], tuple[str, ...]] | None = None
    utility: Callable[[dict], float | None] | None = None

    def split_problem(self, split: str) -> str | None:
        """Why `split` is none of its splits (a filtered one, Test_Set:forget_10, by its part before ':'), or
        None."""
        if split.partition(":")[0] in self.splits:
            return None
        return f"unknown split '{split}' of {self.name}; its splits: {', '.join(self.splits)}"

    def forget_split_problem(self, split: str) -> str | None:
        """Why `split` cannot be forgotten (not one of its forget splits), or None."""
        if split in self.forget_splits:
            return None
        return f"'{split}' is not a split {self.name} forgets; its forget splits: {', '.join(self.forget_splits)}"

    def pd_problem(self, method: str, trains_pd: bool) -> str | None:
        """Why `method` cannot run here (it trains PD, and this benchmark has no SD images), or None."""
        if self.has_pd or not trains_pd:
            return None
        return (f"'{method}' trains PD on the harmful questions asked of harmless (SD) images, which {self.name} "
                f"does not have: use '{method.removesuffix('pd')}'")

    def forgets(self, split: str) -> bool:
        """Whether a split holds forgotten data: a forget split, or one of its variants (forget10_perturbed)."""
        return any(split == f or split.startswith(f + "_") for f in self.forget_splits)

    def quality_splits(self, scores: dict) -> list[str]:
        """The splits of a model's {split: scores} that get a forget quality: forgotten data scored with truth
        ratios (the oracle's, on the same split, are what they are tested against)."""
        return [split for split, block in scores.items() if self.forgets(split) and "truth_ratios" in block]


@dataclass(frozen=True)
class BenchmarkItems:
    """A benchmark's training data as the loop takes it (train.config.load_records_first): forget items
    and the retain examples they draw from."""

    benchmark: str
    items: list
    pool: tuple
    root: str = ""


def training_split(benchmark: str, forget_file: str, retain_file: str, items: list, pool: tuple, forget_keys: set,
                   retain_keys: set) -> tuple[list, tuple]:
    """A forget split's items and retain pool, checked: neither empty, and no record (by the benchmark's
    key: a profile's ID, a person's name) in both."""
    if not items:
        raise DataError(f"{forget_file}: {benchmark}'s forget split has no record to forget")
    if not pool:
        raise DataError(f"{retain_file}: {benchmark}'s retain split has no record to keep")
    both = sorted(forget_keys & retain_keys)
    if both:
        raise DataError(f"{forget_file} and {retain_file}: {len(both)} record(s) in both the forget and the retain "
                        f"split (e.g. {both[0]!r}): what is forgotten would also be kept")
    return items, pool
