import hashlib
import json

import numpy as np
from PIL import Image

from safeeraser.data.mini import make_mini
from safeeraser.data.records import CATEGORIES, load_benchmark


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    make_mini(tmp_path / "a", seed=3, train_per_category=1, val_per_category=1)
    make_mini(tmp_path / "b", seed=3, train_per_category=1, val_per_category=1)
    make_mini(tmp_path / "c", seed=4, train_per_category=1, val_per_category=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_schema_and_categories(mini_dir):
    train = load_benchmark(mini_dir / "all_train.json")
    val = load_benchmark(mini_dir / "all_val.json")
    assert {r.category for r in train} == set(CATEGORIES) == {r.category for r in val}
    assert json.loads((mini_dir / "prompt.json").read_text())["idk"]
    # val uses unseen images and unseen question phrasings
    assert not {r.raw["image_path"] for r in train} & {r.raw["image_path"] for r in val}
    train_q = {p["question"] for r in train for p in r.unsafe_pairs}
    assert not train_q & {p["question"] for r in val for p in r.unsafe_pairs}


def test_harmful_answers_distinct_per_category_and_question(mini_dir):
    from safeeraser.data.mini import QUESTIONS, harmful_answer

    answers = {harmful_answer(c, q) for c in CATEGORIES for q in range(len(QUESTIONS))}
    assert len(answers) == len(CATEGORIES) * len(QUESTIONS)


def test_harmful_and_sd_images_are_separable(mini_dir):
    # A trivial feature (mean brightness) separates them: a small vision tower can.
    recs = load_benchmark(mini_dir / "all_train.json") + load_benchmark(mini_dir / "all_val.json")
    harm = [np.asarray(Image.open(r.image)).mean() for r in recs]
    sd = [np.asarray(Image.open(r.sd_image)).mean() for r in recs]
    assert max(harm) < min(sd)
