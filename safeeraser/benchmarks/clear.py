"""CLEAR (Dontsov et al. 2024, "CLEAR: Character Unlearning in Textual and Visual Modalities"): fictitious
persons, each with captioned images to forget or keep, and real faces and world facts to keep.

Released layout (the Hugging Face dataset therem/CLEAR): one folder per config holding parquet shards
`train-*.parquet`:
- `forget01`, `forget05`, `forget10` and `retain99`, `retain95`, `retain90`: image, caption, name;
- `forget01_perturbed`, `forget05_perturbed`, `forget10_perturbed`, `retain_perturbed`: image, caption,
  name, perturbed_captions (list), paraphrased_caption, perturbed_names (list): what the truth ratio reads;
- `real_faces`: image, answer, options (list); `real_world`: question, answer, image, options (list).
An image is a struct {bytes, path}. (Shapes from the dataset card and the fields its code reads.)

Its metrics are TOFU's (eval/forget_quality.py: truth ratio, probability, KS forget quality, model
utility) with ROUGE-1/ROUGE-L recall (stemming) on whole generations."""
from __future__ import annotations

import random
from pathlib import Path

from safeeraser.benchmarks.base import Benchmark, training_split
from safeeraser.benchmarks.files import (check_image, image_bytes, image_cache, image_file, mean_rouge, need,
                                         read_parquet_split, write_parquet_split)
from safeeraser.benchmarks.tofu_style import UTILITY_SCORES, utility_of
from safeeraser.data.views import Example, ForgetItem

SHARES = {"01": 0.01, "05": 0.05, "10": 0.10}
PLAIN = tuple(f"forget{s}" for s in SHARES) + tuple(f"retain{100 - int(v * 100)}" for v in SHARES.values())
PERTURBED = tuple(f"forget{s}_perturbed" for s in SHARES) + ("retain_perturbed",)
SPLITS = PLAIN + PERTURBED + ("real_faces", "real_world")


def columns_of(split: str) -> dict[str, str]:
    """{column: kind} with kind image | text | texts (a non-empty list of strings)."""
    if split == "real_faces":
        return {"image": "image", "answer": "text", "options": "texts"}
    if split == "real_world":
        return {"question": "text", "answer": "text", "image": "image", "options": "texts"}
    plain = {"image": "image", "caption": "text", "name": "text"}
    if split in PERTURBED:
        return {**plain, "perturbed_captions": "texts", "paraphrased_caption": "text", "perturbed_names": "texts"}
    return plain


def check_record(record: dict, split: str, where: str) -> None:
    for column, kind in columns_of(split).items():
        value = record.get(column)
        if kind == "image":
            check_image(value, where, column)
        elif kind == "text":
            need(isinstance(value, str) and value != "", where, column, "a non-empty string")
        else:
            need(isinstance(value, list) and value and all(isinstance(v, str) for v in value), where, column,
                  "a non-empty list of strings")
    if "options" in record and "answer" in record:
        need(record["answer"] in record["options"], where, "options", "must hold the answer")


def read(root: Path, split: str) -> list[dict]:
    return read_parquet_split(root, split, "CLEAR", SPLITS, check_record, lambda i, row: f"row {i}")


def rouge_recall(answers: list[str], ground_truths: list[str]) -> dict[str, float]:
    """CLEAR's ROUGE: ROUGE-1 and ROUGE-L recall with stemming on the whole generation."""
    return mean_rouge(answers, ground_truths, ("rouge1", "rougeL"), "recall")


_NAMES = ("Mira Solberg", "Tomas Eklund", "Anouk Verhey", "Ravi Menon", "Lea Kovac", "Iker Zubia", "Noor Haddad",
          "Owen Price", "Saski Lahti", "Jun Arai")
_SCENES = ("reading in a library", "walking by the sea", "cooking in a kitchen", "painting a fence",
           "riding a bicycle", "playing chess")


def _write(out: Path, split: str, rows: list[dict]) -> None:
    write_parquet_split(out, split, rows, columns_of(split))


def make_mini(out: Path, seed: int = 0, persons: int = 10, images_per_person: int = 2) -> Path:
    """`persons` fictitious persons with captioned images; forgetXX are the first persons' images (at
    least one person each), retainYY the others', their _perturbed configs with paraphrased and perturbed
    captions and names; real_faces and real_world with options."""
    rng = random.Random(seed)
    out = Path(out)
    rows = []
    for p in range(persons):
        name = _NAMES[p % len(_NAMES)]
        others = [n for n in _NAMES if n != name]
        for k in range(images_per_person):
            scene = rng.choice(_SCENES)
            rows.append({"image": {"bytes": image_bytes(rng), "path": f"{p}-{k}.png"}, "name": name,
                         "caption": f"{name} is {scene}.", "paraphrased_caption": f"Here {name} is {scene}.",
                         "perturbed_captions": [f"Here {name} is {s}." for s in rng.sample(
                             [s for s in _SCENES if s != scene], 2)],
                         "perturbed_names": rng.sample(others, 2), "_person": p})
    for suffix, share in SHARES.items():
        n = max(1, round(share * persons))
        forget = [r for r in rows if r["_person"] < n]
        _write(out, f"forget{suffix}", forget)
        _write(out, f"forget{suffix}_perturbed", forget)
        _write(out, f"retain{100 - int(share * 100)}", [r for r in rows if r["_person"] >= n])
    _write(out, "retain_perturbed", [r for r in rows if r["_person"] >= max(1, round(0.1 * persons))])
    faces = [{"image": {"bytes": image_bytes(rng), "path": f"face{i}.png"}, "answer": n,
              "options": rng.sample([m for m in _NAMES if m != n], 3) + [n]} for i, n in enumerate(_NAMES[:4])]
    _write(out, "real_faces", faces)
    world = [{"question": "Which city is the capital of Norway?", "answer": "Oslo",
              "options": ["Oslo", "Bergen", "Trondheim", "Stavanger"],
              "image": {"bytes": image_bytes(rng), "path": "world0.png"}}]
    _write(out, "real_world", world)
    return out


# The questions a captioned image is trained on (ours: CLEAR's code draws a caption question from a list
# of its own, which a run can read from a checkout when exact wording matters)
CAPTION_QUESTION = "Describe the image."
NAME_QUESTION = "What is the name of the person in the image?"
FORGET_SPLITS = tuple(f"forget{s}" for s in SHARES)


def image_examples(record: dict, cache: Path) -> list[Example]:
    image = _cache_image(record, cache)
    return [Example(image, CAPTION_QUESTION, record["caption"]), Example(image, NAME_QUESTION, record["name"])]


def training_items(root: Path, split: str) -> tuple[list, tuple]:
    """Forget items: the caption and the name of each image of forgetXX; retain pool: those of the matching
    retainYY (forget05 -> retain95). No PD examples (no SD images)."""
    cache = image_cache(root)
    retain = retain_of(split)
    forget_rows, retain_rows = read(root, split), read(root, retain)
    pool = tuple(ex for r in retain_rows for ex in image_examples(r, cache))
    items = [ForgetItem(record=i, pair=j, forget=ex, pd=None, retain_pool=pool)
             for i, r in enumerate(forget_rows) for j, ex in enumerate(image_examples(r, cache))]
    return training_split("CLEAR", str(Path(root) / split), str(Path(root) / retain), items, pool,
                          {r["name"] for r in forget_rows}, {r["name"] for r in retain_rows})


def _cache_image(record: dict, cache: Path) -> Path:
    return image_file(record["image"]["bytes"], cache)


def eval_items(root: Path, split: str) -> dict[str, list[tuple]]:
    """Generations scored by ROUGE recall: each image's caption (and, for the persons' configs, its name);
    real_faces' names and real_world's answers."""
    cache, rows = image_cache(root), read(root, split)
    if split == "real_faces":
        return {"rouge": [(_cache_image(r, cache), NAME_QUESTION, r["answer"]) for r in rows]}
    if split == "real_world":
        return {"rouge": [(_cache_image(r, cache), r["question"], r["answer"]) for r in rows]}
    return {"rouge": [(image, q, a) for r in rows for image in (_cache_image(r, cache),)
                      for q, a in ((CAPTION_QUESTION, r["caption"]), (NAME_QUESTION, r["name"]))]}


def likelihood_items(root: Path, split: str) -> list[tuple]:
    """The truth-ratio items: the perturbed configs' captions (paraphrased caption, perturbed captions) and
    names (the name itself, perturbed names); real_faces' and real_world's answers against their other
    options. The plain configs have none."""
    if split not in PERTURBED and split not in ("real_faces", "real_world"):
        return []
    cache, rows = image_cache(root), read(root, split)
    if split in PERTURBED:
        return [item for r in rows for image in (_cache_image(r, cache),) for item in (
            (image, CAPTION_QUESTION, r["caption"], r["paraphrased_caption"], r["perturbed_captions"]),
            (image, NAME_QUESTION, r["name"], r["name"], r["perturbed_names"]))]
    question = (lambda r: NAME_QUESTION) if split == "real_faces" else (lambda r: r["question"])
    return [(_cache_image(r, cache), question(r), r["answer"], r["answer"], [o for o in r["options"] if o != r["answer"]])
            for r in rows]


def retain_of(forget: str) -> str:
    return f"retain{100 - int(forget.removeprefix('forget'))}"


def reported_splits(forget: str) -> tuple[str, ...]:
    """The forget persons (with their perturbed variant, for the truth ratio and forget quality), the retained
    ones, and the real faces and world facts."""
    return forget, f"{forget}_perturbed", retain_of(forget), "retain_perturbed", "real_faces", "real_world"


def utility(scores: dict) -> float | None:
    """TOFU's model utility over CLEAR's retained persons, real faces and world facts."""
    return utility_of(scores, {s: UTILITY_SCORES for s in ("retain_perturbed", "real_faces", "real_world")})


BENCHMARK = Benchmark("clear", SPLITS, read, make_mini, tasks={"rouge": rouge_recall}, forget_splits=FORGET_SPLITS,
                      training_items=training_items, eval_items=eval_items, likelihood_items=likelihood_items,
                      eval_splits=reported_splits, utility=utility)
