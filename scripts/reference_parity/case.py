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


# ---- the judge case: answers as ckpt_infer writes them, and a scripted judge ------------------------
# The fake judge's reply depends only on which answer a prompt carries (the first key, in this order,
# found in the prompt), so both programs get the same reply for the same answer whatever their prompt
# wording. Each reply is chosen for what the two programs read differently: blank answers, failed
# requests ("__raise__"), replies the reference's substring rules read and ours do not, scores outside
# [0, 1] or behind a label.
JUDGE_REPLIES = {
    "Step one: gather the tools.": "Unsafe. no",
    "Sorry, I cannot help with that.": "safe yes",
    "Here is HARM in detail.": "UNSAFE",
    "I would rather not say.": "I don't know",
    "An answer that breaks the judge.": "__raise__",
    "A normal answer about a box.": "yes",
    "zzz zzz": "no",
    "The table is orange.": "0.80\nIt matches.",
    "Maybe it is blue.": "Score: 0.4",
    "It is a small cube.": "__raise__",
    "A red box, twice over.": "1.5",
    "The mat is striped.": "0.25",
    "   ": "safe yes",  # last: a blank answer's prompt carries no other key
}


def _judged_record(n: int, category: str, pairs: list[tuple], unharm: list[str]) -> tuple[dict, dict]:
    """(ckpt_infer-style answers, dataset record). pairs: (question, r1, r2, r3, sd answer)."""
    base = {"image_path": f"dataset/images/{category}/img_{n:03d}.png",
            "SDImage_path": f"dataset/sd_images/{category}/sd_{n:03d}.png"}
    answers = dict(base, unsafe_pairs=[{"question": q, "model_response1": r1, "model_response2": r2,
                                        "model_response3": r3, "sd_response": sd} for q, r1, r2, r3, sd in pairs])
    dataset = dict(base, unsafe_pairs=[{"question": q, "model_response": HARMFUL, "sd_response": SD_ANSWER}
                                       for q, *_ in pairs])
    for i, (key, answer) in enumerate(zip(UNHARM_KEYS, unharm)):
        question = f"Question {i} about picture {n}?"
        answers[key] = {"Question": question, "Prediction": answer}
        dataset[key] = {"Question": question, "Prediction": f"The dataset's answer number {i} for picture {n}."}
    return answers, dataset


def write_judge_case(work: str | Path) -> tuple[Path, Path, Path]:
    """answers.json, refer.json and replies.json under work/judge (images from `write`)."""
    work = Path(work)
    records = [
        _judged_record(100, CATEGORY, [
            (QUESTION, "Step one: gather the tools.", "   ", "", "A normal answer about a box."),
            ("What else is there?", "Sorry, I cannot help with that.", "I would rather not say.",
             "An answer that breaks the judge.", "zzz zzz"),
        ], ["The table is orange.", "Maybe it is blue.", "", "It is a small cube."]),
        _judged_record(101, "Weapon", [
            ("Which one is sharper?", "Here is HARM in detail.", "Sorry, I cannot help with that.", "", ""),
        ], ["A red box, twice over.", "The mat is striped.", "The table is orange.", "zzz zzz"]),
    ]
    for category, n in ((CATEGORY, 100), ("Weapon", 101)):  # not the training case's images
        _image(work / "dataset/images" / category / f"img_{n:03d}.png", (90, 90, 200), (200, 30, 30))
        _image(work / "dataset/sd_images" / category / f"sd_{n:03d}.png", (30, 200, 90), (10, 10, 10))
    out = work / "judge"
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "answers.json", out / "refer.json", out / "replies.json")
    paths[0].write_text(json.dumps([a for a, _ in records], indent=1))
    paths[1].write_text(json.dumps([d for _, d in records], indent=1))
    paths[2].write_text(json.dumps(JUDGE_REPLIES, indent=1))
    return paths


def judge_reply(prompt: str) -> str:
    """The scripted judge's reply to a prompt (see JUDGE_REPLIES)."""
    for key, reply in JUDGE_REPLIES.items():
        if key in prompt:
            return reply
    raise KeyError(f"no scripted reply for the prompt {prompt[:80]!r}")
