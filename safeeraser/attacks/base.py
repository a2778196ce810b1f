"""What an attack is: a way to rewrite a benchmark's records (the question around the harmful one, the
harmful image) so that an unlearned model's forgotten knowledge may come back. An attack names its
variants (one row each in a report), and turns one record into its attacked form; attacks/run.py answers
the attacked records with ckpt_infer and writes the answers back under the original record's fields, so
eval_all scores them against the dataset unchanged."""
from __future__ import annotations

import copy
from pathlib import Path

from safeeraser.data.records import load_benchmark


class AttackError(ValueError):
    """An attack asked for with a variant or option it does not have."""


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class Attack:
    name: str = ""
    variants: tuple[str, ...] = ()
    paper: str = ""  # where the attack comes from, for the documentation

    def check_variant(self, variant: str) -> str:
        if variant not in self.variants:
            raise AttackError(f"attack '{self.name}' has no variant '{variant}'. Its variants: {', '.join(self.variants)}")
        return variant

    # The attack's options (--option KEY=VALUE, `options:` in a grid) and their defaults; none by default
    options: dict = {}

    def check_options(self, given: dict) -> dict:
        """`given` over the defaults, each checked: one clear error, before any model loads."""
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise AttackError(f"attack '{self.name}' has no option '{unknown[0]}'. Its options: {known}")
        out = {**self.options, **given}
        for key, value in out.items():
            problem = self.option_problem(key, value)
            if problem:
                raise AttackError(f"attack '{self.name}': option '{key}' must be {problem}, got {value!r}")
        return out

    def option_problem(self, key: str, value) -> str | None:
        """What `value` of option `key` must be, when it is not (None when it is fine)."""
        return None

    def prepare(self, variant: str, settings, work: Path, options: dict, forget_file: Path | None = None):
        """The inference settings the attacked records are answered with: the same, unless the attack makes
        another model or other records first (relearn trains a model in `work`, pgd writes images).
        `settings.eval_file` is the attacked records' file; `options` are check_options' output;
        `forget_file` the benchmark's forget split (what an attacker who relearns would train on; None:
        the answered file's own records)."""
        return settings

    def model_transform(self, variant: str):
        """A function applied to the loaded model before it answers (an attack on the weights), or None."""
        return None

    def apply(self, record: dict, variant: str, index: int, images: Path) -> dict:
        """The attacked copy of `record` (its image paths absolute); `images` is a folder for the images the
        attack writes. Only the question texts and the image paths may change: the rest is the record's.
        By default the record unchanged: an attack on the model (prepare, model_transform)."""
        self.check_variant(variant)
        return copy.deepcopy(record)

    def apply_pairs(self, record: dict, variant: str, index: int, images: Path) -> list[dict]:
        """The attacked records that stand for `record`: one (apply's) unless the attack asks each harmful
        question on its own image, when it is one record of one pair per pair, in order."""
        return [self.apply(record, variant, index, images)]


def absolute(record) -> dict:
    """A loaded benchmark Record as read, with the image paths load_benchmark resolved."""
    return dict(record.raw, image_path=str(record.image), SDImage_path=str(record.sd_image))


def absolute_records(path: str | Path) -> list[dict]:
    """A benchmark file's records as read, checked (one clear error for a bad record or a missing image),
    with their images' paths made absolute."""
    return [absolute(r) for r in load_benchmark(Path(path))]
