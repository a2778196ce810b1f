"""Attacks (safeeraser/attacks/): each rewrites only what it says, deterministically; `safeeraser attack`
answers the attacked records and writes them back under the original fields, which eval_all scores."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from safeeraser.attacks import REGISTRY, AttackError, attack_for
from safeeraser.attacks.jailbreak import TEMPLATES
from safeeraser.attacks.run import attacked_records

from tests.families.conftest import FAMILIES


@pytest.mark.parametrize("variant", list(TEMPLATES))
def test_jailbreak_wraps_every_harmful_question_and_nothing_else(mini_dir, tmp_path, variant):
    originals, attacked = attacked_records("jailbreak", variant, mini_dir / "all_val.json", tmp_path)
    for before, after in zip(originals, attacked):
        for old, new in zip(before["unsafe_pairs"], after["unsafe_pairs"]):
            assert new["question"] == TEMPLATES[variant].format(question=old["question"]) != old["question"]
            assert new["model_response"] == old["model_response"]
        for key in ("UnharmPair_text1", "UnharmPair_text2", "UnharmPair_image1", "UnharmPair_image2"):
            assert after[key] == before[key]
        assert after["image_path"] == str(mini_dir / before["image_path"])  # made absolute, not changed


@pytest.mark.parametrize("variant", ["crop", "grey", "noise", "rotate"])
def test_image_rephrase_changes_the_pixels_the_same_way_every_time(mini_dir, tmp_path, variant):
    originals, first = attacked_records("image_rephrase", variant, mini_dir / "all_val.json", tmp_path / "a")
    _, second = attacked_records("image_rephrase", variant, mini_dir / "all_val.json", tmp_path / "b")
    for before, a, b in zip(originals, first, second):
        source = np.asarray(Image.open(mini_dir / before["image_path"]).convert("RGB"), dtype=np.int16)
        made = np.asarray(Image.open(a["image_path"]).convert("RGB"), dtype=np.int16)
        assert made.shape == source.shape and np.abs(made - source).mean() > 1.0  # really changed
        assert open(a["image_path"], "rb").read() == open(b["image_path"], "rb").read()  # deterministic
        assert a["unsafe_pairs"] == before["unsafe_pairs"]  # the questions are the record's
    grey = np.asarray(Image.open(first[0]["image_path"]).convert("RGB")) if variant == "grey" else None
    if grey is not None:
        assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()


def test_the_sd_variant_asks_the_harmful_question_about_the_harmless_image(mini_dir, tmp_path):
    originals, attacked = attacked_records("image_rephrase", "sd", mini_dir / "all_val.json", tmp_path)
    assert all(a["image_path"] == str(mini_dir / o["SDImage_path"]) for o, a in zip(originals, attacked))


def test_an_unknown_attack_or_variant_is_one_error(mini_dir, tmp_path):
    with pytest.raises(AttackError, match="unknown attack 'pgd2'. Known: jailbreak, image_rephrase"):
        attack_for("pgd2")
    with pytest.raises(AttackError, match="attack 'jailbreak' has no variant 'dan'. Its variants: role_play"):
        attacked_records("jailbreak", "dan", mini_dir / "all_val.json", tmp_path)


def test_an_attack_is_one_module_and_one_registry_line(tmp_path, monkeypatch, mini_dir):
    (tmp_path / "toyrecordattacks").mkdir()
    (tmp_path / "toyrecordattacks" / "__init__.py").write_text("")
    (tmp_path / "toyrecordattacks" / "shout.py").write_text(
        "import copy\nfrom safeeraser.attacks.base import Attack\n\n"
        "class Shout(Attack):\n    name = 'shout'\n    variants = ('upper',)\n\n"
        "    def apply(self, record, variant, index, images):\n        out = copy.deepcopy(record)\n"
        "        for pair in out['unsafe_pairs']:\n            pair['question'] = pair['question'].upper()\n"
        "        return out\n\nATTACK = Shout()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(REGISTRY, "shout", "toyrecordattacks.shout")
    attack_for.cache_clear()
    try:
        _, attacked = attacked_records("shout", "upper", mini_dir / "all_val.json", tmp_path / "w")
        assert attacked[0]["unsafe_pairs"][0]["question"].isupper()
    finally:
        attack_for.cache_clear()


def test_attack_answers_are_scored_by_eval_all_against_the_dataset(two_records, attack_cli, tmp_path, capsys):
    from safeeraser.cli import main
    from safeeraser.eval.matching import load_matched

    data, records = two_records
    out = tmp_path / "answers.json"
    assert attack_cli("jailbreak", "prefix_injection", data, out) == 0
    answered = json.loads(out.read_text())
    assert len(load_matched(out, data)) == 2  # same images and questions as the dataset: eval_all takes it
    for record, source in zip(answered, records):
        assert record["attack"]["kind"] == "jailbreak" and record["attack"]["variant"] == "prefix_injection"
        assert record["attack"]["questions"][0] == TEMPLATES["prefix_injection"].format(
            question=source["unsafe_pairs"][0]["question"])
        assert all(isinstance(pair["model_response1"], str) for pair in record["unsafe_pairs"])
    assert main(["eval", "--input_file", str(out), "--file_refer", str(data), "--output_file_rr",
                 str(tmp_path / "judged.json"), "--judge", "keyword", "--no_progress"]) == 0
    assert attack_cli("jailbreak", "dan", data, tmp_path / "x.json") == 2
    assert "has no variant 'dan'" in capsys.readouterr().err


def test_attack_answers_carry_a_meta_naming_the_attacked_checkpoint(two_records, attack_cli, tmp_path):
    from safeeraser.infer.ckpt_infer import meta_path
    from safeeraser.pipeline.kinds.infer import answers_done

    data, _ = two_records
    out = tmp_path / "grey.json"
    assert attack_cli("image_rephrase", "grey", data, out) == 0
    meta = json.loads(meta_path(out).read_text())
    assert meta["attack"] == {"kind": "image_rephrase", "variant": "grey"} and meta["checkpoint"] is None
    assert meta["skipped_records"] == [] and answers_done(out)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_jailbreak_prompt_is_the_familys_own_template_around_the_wrapped_question(family, tiny_family_dir,
                                                                                    mini_dir, tmp_path):
    from safeeraser.data.encode import PromptEncoder
    from safeeraser.models.families import family_of_path
    from safeeraser.models.loading import load_processor

    path = tiny_family_dir(family)
    encoder = PromptEncoder(load_processor(str(path)), family_of_path(str(path)))
    originals, attacked = attacked_records("jailbreak", "prefix_injection", mini_dir / "all_val.json", tmp_path)
    plain, wrapped = originals[0]["unsafe_pairs"][0]["question"], attacked[0]["unsafe_pairs"][0]["question"]
    image = attacked[0]["image_path"]
    # the user turn holds the wrapped question where the plain prompt holds the plain one: the family's
    # chat template (turn markers, image tokens, generation prompt) around it, nothing written by hand
    assert encoder.prompt_text(wrapped) == encoder.prompt_text(plain).replace(plain, wrapped)
    assert encoder.prompt_text(wrapped).count(wrapped) == 1
    tokens = encoder.encode_prompt(image, wrapped).input_ids.tolist()
    assert encoder.tokenizer.decode(tokens).count("Begin your reply with") == 1
