"""ckpt_infer's --prompt_format reference: the reference's inference conversation read from a checkout
(a stand-in laid out as the real one, with our own text), checked before any model loads, recorded in the
answers' meta."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import fake_reference_checkout as fake
from safeeraser.data.encode import PromptEncoder
from safeeraser.infer import ckpt_infer
from safeeraser.models.families import family_for
from safeeraser.reference.checkout import CheckoutError, inference_tags


def test_the_inference_conversation_is_parsed_not_run(tmp_path):
    tags = inference_tags(fake.write(tmp_path))  # conversation.py exits the process if run
    assert tags.prompt("<image>", "What is it?") == f"{fake.CONV_SYSTEM} USER: <image>\nWhat is it? ASSISTANT:"


@pytest.mark.parametrize("text, what", [
    (fake.conversation_py().replace("SeparatorStyle.TWO", "SeparatorStyle.SINGLE"), "two-separator"),
    (fake.conversation_py().replace("'vicuna_v1': conv_vicuna_v1", "'other': conv_vicuna_v1"), "vicuna_v1"),
    (fake.conversation_py().replace("roles=", "roles=make() or "), "literal"),
])
def test_an_unexpected_conversation_file_is_named(tmp_path, text, what):
    root = fake.write(tmp_path)
    (root / "conversation.py").write_text(text)
    with pytest.raises(CheckoutError, match=f"conversation.py: .*{what}"):
        inference_tags(root)


def test_the_prompt_is_encoded_with_the_reference_conversation(tmp_path, processor, mini_dir):
    from safeeraser.data.records import load_benchmark

    record = load_benchmark(mini_dir / "all_val.json")[0]
    encoder = PromptEncoder(processor, family_for("llava"), inference_tags=inference_tags(fake.write(tmp_path)))
    n_image = encoder.image(record.image)[1]
    text = f"{fake.CONV_SYSTEM} USER: {processor.image_token * n_image}\nWhat is it? ASSISTANT:"
    assert encoder.encode_prompt(record.image, "What is it?").input_ids.tolist() == processor.tokenizer(text)["input_ids"]


def test_bad_reference_dir_is_one_error_before_any_model_loads(tmp_path, mini_dir, capsys):
    out = tmp_path / "out.json"
    argv = ["--eval_file", str(mini_dir / "all_val.json"), "--model_path", "org/model", "--output_file", str(out),
            "--prompt_format", "reference"]
    assert ckpt_infer.main(argv) == 2
    assert "--reference_dir must be a checkout" in capsys.readouterr().err
    assert ckpt_infer.main(argv + ["--reference_dir", str(tmp_path / "nowhere")]) == 2
    assert "--reference_dir: reference_dir" in capsys.readouterr().err and not out.exists()


def test_the_prompt_format_is_part_of_the_answers_identity(tmp_path):
    flags = {flag: 1 for flag in ckpt_infer.ANSWER_FLAGS}
    ours = ckpt_infer.generation_meta(SimpleNamespace(**flags, prompt_format="chat_template", reference_dir=None))
    assert set(ours) == set(ckpt_infer.ANSWER_FLAGS)  # answers made before the setting existed keep their meta
    root = fake.write(tmp_path / "a")
    ref = ckpt_infer.generation_meta(SimpleNamespace(**flags, prompt_format="reference", reference_dir=str(root)))
    (root / "conversation.py").write_text(fake.conversation_py(system="Another system sentence."))
    other = ckpt_infer.generation_meta(SimpleNamespace(**flags, prompt_format="reference", reference_dir=str(root)))
    assert ref["prompt_format"] == "reference" and ref["prompt_sha256"] != other["prompt_sha256"]


def test_a_vanilla_model_trained_in_the_reference_format_is_checked_in_it(tmp_path):
    from safeeraser.pipeline.vanilla import _inference_tags

    root = fake.write(tmp_path / "ref")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.yaml").write_text(f"prompt_format: reference\nreference_dir: {root}\n")
    assert _inference_tags(tmp_path / "m") == inference_tags(root)
    (tmp_path / "m" / "config.yaml").write_text("prompt_format: chat_template\n")
    assert _inference_tags(tmp_path / "m") is None and _inference_tags(tmp_path / "none") is None
