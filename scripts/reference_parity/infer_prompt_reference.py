"""The reference's inference prompt for the parity case's question, made by its own code.

    $REFERENCE_PYTHON infer_prompt_reference.py --ref REF --model LEGACY_LLAVA_DIR --out OUT.json

Builds the prompt as the reference's ckpt_infer does (its conversation module's vicuna_v1 template, the
question after the image placeholder and a newline) and tokenizes it with the model's tokenizer as it
does. OUT.json: the prompt's sha256 and its token ids (one image placeholder, before the model expands it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    sys.dont_write_bytecode = True  # leave the checkout as it is
    sys.path[:0] = [str(a.ref.resolve()), str(HERE)]
    import case
    from conversation import conv_templates  # the reference's own module
    from transformers import AutoTokenizer

    conv = conv_templates["vicuna_v1"].copy()
    conv.append_message(conv.roles[0], f"<image>\n{case.QUESTION}")
    conv.append_message(conv.roles[1], None)
    prompt = conv.get_prompt()
    ids = AutoTokenizer.from_pretrained(str(a.model))(prompt)["input_ids"]
    a.out.write_text(json.dumps({"prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(), "input_ids": ids}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
