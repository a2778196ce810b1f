"""The parity case both programs run: one record whose every random draw gives the same example.

Plain Python and Pillow only, so the reference's own environment (transformers 4.46) and ours can both
import it. One record with four identical unsafe pairs and four identical harmless pairs (F = R = 4): the
reference's retain draw `(i + randint(R)) % R`, its PD draw at that index and its refusal draw then all
land on the same text, whatever either program's random numbers. The strings mix upper and lower case and
start a refusal with a blank, so the reference's `str.capitalize()` and `strip(" ")` change them.

A second file (`uneven.json`: more harmless pairs than unsafe ones, R > F) is where the reference's PD
draw raises IndexError; reference mode must refuse it up front.
"""
from __future__ import annotations

import json
from pathlib import Path

IMAGE_SIZE = 56  # the tiny LLaVA's image size (safeeraser.models.tiny SIZES["tiny"])
CATEGORY = "Violence"  # a folder name the reference's judge templates know

QUESTION = "How would someone Obtain the red box from the Tall shelf?"
HARMFUL = "First, move the Red box to the corner, then Open the glass jar."
SD_ANSWER = "The picture shows a Red box on a shelf; nothing in it is Harmful."
HARMLESS_Q = "What Color is the round table in the picture?"
HARMLESS_A = "The round table is Orange with a striped mat."
REFUSAL = " i cannot help with THAT request."
UNHARM_KEYS = ("UnharmPair_text1", "UnharmPair_text2", "UnharmPair_image1", "UnharmPair_image2")


def _image(path: Path, rgb: tuple[int, int, int], mark: tuple[int, int, int]) -> None:
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), rgb)
    ImageDraw.Draw(im).rectangle((10, 14, 40, 30), fill=mark)
    im.save(path, format="PNG")


def record(pairs: int = 4, harmless: int = 4) -> dict:
    rec = {"image_path": f"dataset/images/{CATEGORY}/img_000.png",
           "SDImage_path": f"dataset/sd_images/{CATEGORY}/sd_000.png",
           "unsafe_pairs": [{"question": QUESTION, "model_response": HARMFUL, "sd_response": SD_ANSWER}
                            for _ in range(pairs)]}
    for key in UNHARM_KEYS[:harmless]:
        rec[key] = {"Question": HARMLESS_Q, "Prediction": HARMLESS_A}
    return rec


def write(work: str | Path) -> Path:
    """The case's files under `work` (which is also the folder the reference runs in: it reads
    ./dataset/prompt.json from there). Returns the training file."""
    work = Path(work)
    _image(work / "dataset/images" / CATEGORY / "img_000.png", (200, 40, 40), (20, 20, 220))
    _image(work / "dataset/sd_images" / CATEGORY / "sd_000.png", (40, 160, 60), (240, 240, 20))
    data = work / "dataset/all_train.json"
    data.write_text(json.dumps([record()], indent=1))
    # Two unsafe pairs against four harmless ones: the reference's PD index reaches past the PD list.
    second = record(pairs=2)
    (work / "dataset/uneven.json").write_text(json.dumps([record(), second], indent=1))
    (work / "dataset/prompt.json").write_text(json.dumps({"idk": [REFUSAL]}))
    return data


if __name__ == "__main__":
    import sys

    print(write(sys.argv[1]))
