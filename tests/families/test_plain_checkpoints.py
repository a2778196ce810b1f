"""Checkpoints the toolkit did not build: a tiny model of each family re-saved by plain transformers code
the way hub checkpoints come, with the generation config transformers derives from the model config
(no list of end-of-turn ids) and, for LLaVA-1.5, a chat template in the style of llava-hf's, whose
assistant turn ends with a space and no EOS. They unlearn (gdpd, klpd, po), answer through ckpt_infer.py
and are scored by eval_all.py, unchanged."""
from __future__ import annotations

import json

import pytest

# llava-hf/llava-1.5-*-hf style: "USER: <image>\n{question} ASSISTANT: {answer} " (no EOS after the answer).
LLAVA_HF_STYLE_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}"
    "{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


@pytest.fixture
def plain_dir(family_name, tiny_family_dir, tmp_path):
    """The family's tiny weights and processor, loaded and saved again with plain transformers code."""
    from transformers import AutoModelForImageTextToText, AutoProcessor, GenerationConfig

    src = tiny_family_dir(family_name)
    model = AutoModelForImageTextToText.from_pretrained(src)
    processor = AutoProcessor.from_pretrained(src)
    model.generation_config = GenerationConfig.from_model_config(model.config)
    if family_name == "llava":
        processor.chat_template = LLAVA_HF_STYLE_TEMPLATE
    out = tmp_path / "plain"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def test_plain_checkpoint_unlearns_answers_and_is_scored(family_name, plain_dir, mini_dir, tmp_path):
    from safeeraser.data.encode import IGNORE_INDEX, PromptEncoder
    from safeeraser.data.records import load_benchmark
    from safeeraser.eval.command import main as eval_main
    from safeeraser.infer.ckpt_infer import main as infer_main
    from safeeraser.models.families import family_of_path
    from safeeraser.models.loading import load_processor
    from safeeraser.train.config import load_config
    from safeeraser.train.loop import run_training

    # Every training answer ends with a token that ends generation, whatever the template writes.
    enc = PromptEncoder(load_processor(str(plain_dir)), family_of_path(str(plain_dir)))
    rec = load_benchmark(mini_dir / "all_train.json")[0]
    example = enc.encode(rec.image, rec.unsafe_pairs[0]["question"], rec.unsafe_pairs[0]["model_response"])
    answer = example.labels[example.labels != IGNORE_INDEX]
    assert answer[-1].item() in enc.stop_ids

    adapters = {}
    for method in ("gdpd", "klpd", "po"):
        cfg = load_config("forget_tiny.yaml", [
            f"model_path={plain_dir}", f"data_path={mini_dir / 'all_train.json'}", f"idk_path={mini_dir / 'prompt.json'}",
            f"save_dir={tmp_path / method}", f"forget_loss={method}", "max_train_steps=1", "batch_size=4",
            "gradient_accumulation_steps=1", "overwrite=true"])
        adapters[method] = run_training(cfg)
        assert (adapters[method] / "adapter_model.safetensors").exists()
    answers = tmp_path / "answers.json"
    assert infer_main(["--eval_file", str(mini_dir / "all_val.json"), "--model_path", str(plain_dir),
                       "--checkpoint_path", str(adapters["gdpd"]), "--output_file", str(answers),
                       "--max_new_tokens", "4", "--batch_size", "8"]) == 0
    assert len(json.loads(answers.read_text())) == len(load_benchmark(mini_dir / "all_val.json"))
    assert eval_main(["--input_file", str(answers), "--file_refer", str(mini_dir / "all_val.json"),
                      "--output_file_rr", str(tmp_path / "rr.json"), "--judge", "keyword", "--no_progress"]) == 0
