"""The typographic attack: each harmful question drawn into its own image and a harmless instruction asked
about it; the pairs answered one by one are put back into their records."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from safeeraser.attacks.run import attacked_records, restore
from safeeraser.attacks.typographic import INSTRUCTIONS, render


def test_each_pair_gets_its_own_image_and_the_instruction(mini_dir, tmp_path):
    originals, attacked = attacked_records("typographic", "list", mini_dir / "all_val.json", tmp_path)
    assert len(attacked) == sum(len(r["unsafe_pairs"]) for r in originals)
    for part in attacked:
        original = originals[part["attack_index"]]
        pair = original["unsafe_pairs"][part["attack_pair"]]
        assert part["unsafe_pairs"] == [{**pair, "question": INSTRUCTIONS["list"]}]
        pixels = np.asarray(Image.open(part["image_path"]).convert("L"))
        assert (pixels < 128).mean() > 0.005  # text was drawn
        assert Image.open(part["image_path"]).tobytes() == render(pair["question"], "list").tobytes()
    assert render("a", "question").tobytes() != render("b", "question").tobytes()


def test_pairs_answered_apart_are_put_back_in_order_and_a_partial_record_is_left_out(mini_dir, tmp_path):
    originals, attacked = attacked_records("typographic", "question", mini_dir / "all_val.json", tmp_path)
    answers = []
    for part in reversed(attacked):  # in any order
        done = json.loads(json.dumps(part))
        done["unsafe_pairs"][0]["model_response1"] = f"answer {part['attack_index']}-{part['attack_pair']}"
        answers.append(done)
    answers = [a for a in answers if not (a["attack_index"] == 1 and a["attack_pair"] == 0)]  # one pair lost
    restored = restore(answers, originals, "typographic", "question")
    assert [r["image_path"] for r in restored] == [o["image_path"] for i, o in enumerate(originals) if i != 1]
    first = next(r for r in restored if r["image_path"] == originals[0]["image_path"])
    assert [p["model_response1"] for p in first["unsafe_pairs"]] == [
        f"answer 0-{j}" for j in range(len(originals[0]["unsafe_pairs"]))]
    assert [p["question"] for p in first["unsafe_pairs"]] == [p["question"] for p in originals[0]["unsafe_pairs"]]
    assert len(first["attack"]["image_path"]) == len(originals[0]["unsafe_pairs"])


def test_typographic_answers_are_scored_against_the_dataset(two_records, attack_cli, tmp_path):
    from safeeraser.eval.matching import load_matched

    data, _ = two_records
    out = tmp_path / "typo.json"
    assert attack_cli("typographic", "list", data, out) == 0
    assert len(load_matched(out, data)) == 2
