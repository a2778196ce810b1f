"""Re-save our tiny LLaVA (transformers 5 layout) as a folder transformers 4.46.3 loads, then check it.

Run with the REFERENCE venv (so 4.46's own classes write config, tokenizer and image-processor files):

    $REFERENCE_PYTHON export_legacy.py OURS_DIR OUT_DIR [--image PNG] [--ours-python PY]

OUT_DIR must contain "llava" (the reference picks its code path by that substring). After writing, the
script loads OUT_DIR with 4.46 and OURS_DIR with transformers 5 (a subprocess in our venv running this
file with --probe) and checks: weights bit-identical, token ids equal, pixels within 1e-6, logits of one
forward on the same ids/pixels within 1e-5. The report goes to OUT_DIR/export_check.json; the exit
status is non-zero if any check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# transformers 4 kept the language model as a child module with its own `model.`, and CLIP's vision
# model nested under `vision_model.`. Transformers 5 holds them under `model.` in memory and its
# save_pretrained writes a mix (4.x names for the language model, no `vision_model.` level), so the
# rules below accept either spelling and emit the 4.x one.
_RULES = ((r"^model\.(?=language_model\.|vision_tower\.|multi_modal_projector\.)", ""),
          (r"^lm_head\.", "language_model.lm_head."),
          (r"^language_model\.(?!model\.|lm_head\.)", "language_model.model."),
          (r"^vision_tower\.(?!vision_model\.)", "vision_tower.vision_model."))
_LEGACY_ROOTS = ("language_model.model.", "language_model.lm_head.", "vision_tower.vision_model.",
                 "multi_modal_projector.")
# Strings with the image placeholder in different surroundings; the case's own texts are added.
PROBE_TEXTS = ["<image>", "USER: <image>\nWhat is on the shelf? ASSISTANT: A box.</s>", "a<image>b",
               " <image> \n<image>", "Two words<pad><unk>"]
PIXEL_TOL, LOGIT_TOL = 1e-6, 1e-5


def legacy_key(key: str) -> str:
    new = key
    for pattern, repl in _RULES:
        new = re.sub(pattern, repl, new)
    if not new.startswith(_LEGACY_ROOTS):
        raise KeyError(f"no 4.x name for {key}")
    return new


def _probe_texts() -> list[str]:
    sys.path.insert(0, str(HERE))
    import case

    convo = f"USER: <image>\n{case.QUESTION} ASSISTANT: {case.HARMFUL}"
    return PROBE_TEXTS + [convo, f"<image>\n{case.HARMLESS_Q} ASSISTANT:{case.REFUSAL}"]


def _expand(ids: list[int], image_id: int, n: int) -> list[int]:
    """What a v5 processor does to the placeholder: one token per image patch."""
    return [t for i in ids for t in ([i] * n if i == image_id else [i])]


def probe(model_dir: str, inp: str, out: str) -> None:
    """Run in OUR venv (transformers 5): token ids and pixels as our toolkit makes them, and logits
    on the ids/pixels the 4.46 side sends, so both logits come from identical inputs."""
    import torch
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    req = torch.load(inp, weights_only=True)  # our own temporary file, still never unpickled
    proc = AutoProcessor.from_pretrained(model_dir)  # what safeeraser.models.loading uses
    ids = [proc.tokenizer(t)["input_ids"] for t in req["texts"]]
    pixels = proc.image_processor(Image.open(req["image"]), return_tensors="pt")["pixel_values"]
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=req["ids"], pixel_values=req["pixels"],
                       attention_mask=torch.ones_like(req["ids"])).logits
    import transformers
    torch.save({"ids": ids, "pixels": pixels, "logits": logits, "transformers": transformers.__version__}, out)


def export(ours: Path, out: Path) -> dict:
    """Write OUT with 4.46's classes; returns the renamed state dict for the bit-identity check."""
    from safetensors.torch import load_file, save_file
    from transformers import (CLIPImageProcessor, GenerationConfig, LlavaConfig, PreTrainedTokenizerFast)

    cfg = json.loads((ours / "config.json").read_text())
    text = {k: v for k, v in cfg["text_config"].items() if k not in ("rope_parameters", "dtype")}
    rope = cfg["text_config"].get("rope_parameters") or {}
    assert rope.get("rope_type", "default") == "default", "4.46 export handles plain RoPE only"
    text["rope_theta"] = rope.get("rope_theta", 10000.0)
    vision = {k: v for k, v in cfg["vision_config"].items() if k != "dtype"}
    assert cfg.get("multimodal_projector_bias", True), "4.46's projector always has biases"
    # The real count of image features; the reference still passes ONE <image>, and 1 < this number is
    # what makes 4.46 take its legacy merge (the count v5 writes, 576, would as well).
    seq_len = (vision["image_size"] // vision["patch_size"]) ** 2
    LlavaConfig(vision_config=vision, text_config=text, image_token_index=cfg["image_token_index"],
                projector_hidden_act=cfg["projector_hidden_act"], vision_feature_layer=cfg["vision_feature_layer"],
                vision_feature_select_strategy=cfg["vision_feature_select_strategy"], image_seq_length=seq_len,
                pad_token_id=cfg["pad_token_id"], tie_word_embeddings=cfg.get("tie_word_embeddings", False),
                architectures=["LlavaForConditionalGeneration"], torch_dtype="float32").save_pretrained(out)

    weights = {legacy_key(k): v for k, v in load_file(ours / "model.safetensors").items()}
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})

    gen = json.loads((ours / "generation_config.json").read_text())
    GenerationConfig(**{k: gen[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k in gen}
                     ).save_pretrained(out)

    tcfg = json.loads((ours / "tokenizer_config.json").read_text())
    template = ours / "chat_template.jinja"
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(ours / "tokenizer.json"), bos_token=tcfg.get("bos_token"), eos_token=tcfg["eos_token"],
        pad_token=tcfg["pad_token"], unk_token=tcfg.get("unk_token"), additional_special_tokens=["<image>"],
        padding_side=tcfg.get("padding_side", "right"),
        # like LlamaTokenizerFast: no token_type_ids in the encodings
        model_input_names=["input_ids", "attention_mask"],
        chat_template=template.read_text() if template.exists() else None)
    tok.save_pretrained(out)

    ip = dict(json.loads((ours / "processor_config.json").read_text())["image_processor"])
    ip.pop("image_processor_type", None)
    CLIPImageProcessor(**ip).save_pretrained(out)
    return weights


def check(out: Path, weights: dict, ours: Path, image: str, ours_python: str) -> dict:
    import torch
    import transformers
    from PIL import Image
    from transformers import AutoTokenizer, CLIPImageProcessor, LlavaForConditionalGeneration

    model, info = LlavaForConditionalGeneration.from_pretrained(out, torch_dtype=torch.float32,
                                                                output_loading_info=True)
    model.eval()
    sd = model.state_dict()
    bad = [k for k, v in weights.items() if k not in sd or not torch.equal(sd[k], v)]
    tok = AutoTokenizer.from_pretrained(out)
    improc = CLIPImageProcessor.from_pretrained(out)
    texts = _probe_texts()
    ids = [tok(t)["input_ids"] for t in texts]
    pixels = improc.preprocess(Image.open(image), return_tensors="pt")["pixel_values"]

    cfg = model.config
    one = tok(texts[-2])["input_ids"]  # the case's conversation, one <image>
    expanded = torch.tensor([_expand(one, cfg.image_token_index, cfg.image_seq_length)])
    with torch.no_grad():
        logits = model(input_ids=expanded, pixel_values=pixels, attention_mask=torch.ones_like(expanded)).logits
        # The reference's own input (one placeholder) goes through 4.46's legacy merge.
        legacy = model(input_ids=torch.tensor([one]), pixel_values=pixels,
                       attention_mask=torch.ones(1, len(one), dtype=torch.long)).logits

    with tempfile.TemporaryDirectory() as tmp:
        req, res = os.path.join(tmp, "req.pt"), os.path.join(tmp, "res.pt")
        torch.save({"texts": texts, "image": image, "ids": expanded, "pixels": pixels}, req)
        subprocess.run([ours_python, __file__, "--probe", str(ours), req, res], check=True)
        theirs = torch.load(res, weights_only=True)

    report = {
        "transformers_legacy": transformers.__version__, "transformers_ours": theirs["transformers"],
        "missing_keys": info["missing_keys"], "unexpected_keys": info["unexpected_keys"],
        "weights_compared": len(weights), "weights_not_identical": bad,
        "state_dict_extra": sorted(set(sd) - set(weights)),
        "image_seq_length": cfg.image_seq_length,
        "token_ids": [{"text": t, "ids": a, "same": a == b} for t, a, b in zip(texts, ids, theirs["ids"])],
        "pixel_shape": list(pixels.shape),
        "pixel_max_abs_diff": (pixels - theirs["pixels"]).abs().max().item(),
        "logits_shape": list(logits.shape),
        "logits_max_abs_diff": (logits - theirs["logits"]).abs().max().item(),
        "legacy_merge_vs_expanded_max_abs_diff": (legacy - logits).abs().max().item(),
    }
    report["ok"] = (not bad and not info["missing_keys"] and not info["unexpected_keys"]
                    and not report["state_dict_extra"] and all(r["same"] for r in report["token_ids"])
                    and report["pixel_max_abs_diff"] <= PIXEL_TOL and report["logits_max_abs_diff"] <= LOGIT_TOL)
    return report


def main() -> int:
    if sys.argv[1:2] == ["--probe"]:
        probe(*sys.argv[2:5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ours", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--image", help="PNG for the pixel/logit check (default: the parity case's image)")
    ap.add_argument("--ours-python", default=str(HERE.parents[1] / ".venv" / "bin" / "python"))
    a = ap.parse_args()
    if "llava" not in str(a.out):
        ap.error("OUT_DIR must contain 'llava': the reference branches on it")
    a.out.mkdir(parents=True, exist_ok=True)
    weights = export(a.ours, a.out)
    with tempfile.TemporaryDirectory() as tmp:
        image = a.image
        if image is None:
            sys.path.insert(0, str(HERE))
            import case

            case.write(tmp)
            image = str(Path(tmp) / "dataset/images" / case.CATEGORY / "img_000.png")
        report = check(a.out, weights, a.ours.resolve(), image, a.ours_python)
    (a.out / "export_check.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "token_ids"}, indent=1))
    print("token ids equal:", [r["same"] for r in report["token_ids"]])
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
