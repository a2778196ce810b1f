import torch

from safeeraser.data.encode import PromptEncoder, model_inputs, pad_batch
from safeeraser.data.records import load_benchmark
from safeeraser.models.families import family_for
from safeeraser.models.loading import load_model, load_processor


def test_round_trip_through_from_pretrained(tiny_dir, mini_dir, tmp_path):
    from transformers import LlavaForConditionalGeneration

    model = load_model(str(tiny_dir), "float32")
    assert isinstance(model, LlavaForConditionalGeneration)
    proc = load_processor(str(tiny_dir))
    rec = load_benchmark(mini_dir / "all_train.json")[0]
    llava = family_for("llava")
    batch = pad_batch([PromptEncoder(proc, llava).encode(rec.image, "What is shown?", "A cross.")],
                      proc.tokenizer.pad_token_id, llava)
    inputs = model_inputs(batch)
    with torch.no_grad():
        before = model(**inputs).logits
    model.save_pretrained(tmp_path / "copy")
    proc.save_pretrained(tmp_path / "copy")
    again = load_model(str(tmp_path / "copy"), "float32")
    with torch.no_grad():
        after = again(**inputs).logits
    assert torch.allclose(before, after, atol=1e-6)
    assert load_processor(str(tmp_path / "copy")).tokenizer.get_vocab() == proc.tokenizer.get_vocab()


def test_processor_expands_image_token_like_llava_hf(processor, mini_dir):
    from PIL import Image

    rec = load_benchmark(mini_dir / "all_train.json")[0]
    out = processor(images=[Image.open(rec.image)], text=["USER: <image>\nHi ASSISTANT:"], return_tensors="pt")
    # (56 / 14)^2 patches; the CLS feature is dropped by the "default" strategy
    assert int((out["input_ids"] == processor.image_token_id).sum()) == 16
    assert out["pixel_values"].shape[-2:] == (56, 56)
