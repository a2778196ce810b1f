"""MLLMU-Bench (Liu et al. 2024, "Protecting Privacy in Multimodal Large Language Models with MLLMU-Bench"):
fictitious profiles to forget, the rest of them and real celebrities to keep.

Released layout (the Hugging Face dataset MLLMMU/MLLMU-Bench): one folder per config, each holding
parquet shards `train-NNNNN-of-NNNNN.parquet`:
- `forget_5`, `forget_10`, `forget_15` and `retain_95`, `retain_90`, `retain_85`: fictitious profiles,
  columns image, ID, biography, question, answer, Classification_Task, Generation_Task, Mask_Task;
- `Full_Set` (every fictitious profile) and `Retain_Set` (real celebrities): the same columns and Directory;
- `Test_Set`: the fictitious profiles again with other images (`images`, a list) and other questions:
  ID, images, Classification_Task, Generation_Task, Mask_Task.
An image is a struct {bytes, path}. Classification_Task holds Image_Textual_Questions and
Pure_Text_Questions, each a list of {Question, Options {A, B, C, D}, Correct_Answer}; Generation_Task
and Mask_Task are lists of {Question, Ground_Truth, Type} with Type Image_Textual or Pure_Text; a cloze
question marks its blank with `__`. (Shapes from the dataset card and the fields its eval.py reads: a
released record was not at hand.)

Tasks, scored as the benchmark's eval.py scores them: classification (one letter: the first character of
the answer, upper-cased, counted only when it is an option's key; accuracy in percent), cloze (correct
when the ground truth, lower-cased, is in the answer, lower-cased) and generation (ROUGE-1, ROUGE-2 and
ROUGE-L F-measures with stemming, averaged)."""
from __future__ import annotations

import random
from pathlib import Path

from safeeraser.benchmarks.base import Benchmark, training_split
from safeeraser.benchmarks.files import (blank_image, check_image, image_bytes, image_cache, image_file, mean_rouge,
                                         need,
                                         read_parquet_split, same_length, write_parquet_split)
from safeeraser.data.views import Example, ForgetItem
from safeeraser.io import DataError

FICTITIOUS = ("forget_5", "forget_10", "forget_15", "retain_95", "retain_90", "retain_85", "Full_Set")
SPLITS = FICTITIOUS + ("Retain_Set", "Test_Set")
FORGET_SHARES = {"forget_5": 0.05, "forget_10": 0.10, "forget_15": 0.15}
TYPES = ("Image_Textual", "Pure_Text")
OPTION_KEYS = ("A", "B", "C", "D")
PROFILE_COLUMNS = ("image", "ID", "biography", "question", "answer", "Classification_Task", "Generation_Task",
                   "Mask_Task")
TEST_COLUMNS = ("ID", "images", "Classification_Task", "Generation_Task", "Mask_Task")


def columns_of(split: str) -> tuple[str, ...]:
    if split == "Test_Set":
        return TEST_COLUMNS
    return PROFILE_COLUMNS + (("Directory",) if split in ("Full_Set", "Retain_Set") else ())


# --- reading and checking ------------------------------------------------------------------------------

def _check_items(items, where: str, field: str, keys: tuple[str, ...]) -> None:
    need(isinstance(items, list), where, field, "a list")
    for j, item in enumerate(items):
        for k in keys:
            need(isinstance(item, dict) and isinstance(item.get(k), str) and item[k] != "", where,
                  f"{field}[{j}].{k}", "a non-empty string")


def check_record(record: dict, split: str, where: str) -> None:
    """One DataError naming the file and row (`where`) and the field, for the first thing wrong."""
    for c in columns_of(split):
        need(c in record and record[c] is not None, where, c, "missing")
    if split == "Test_Set":
        need(isinstance(record["images"], list) and record["images"], where, "images", "a non-empty list of images")
        for j, image in enumerate(record["images"]):
            check_image(image, where, f"images[{j}]")
    else:
        check_image(record["image"], where, "image")
        for c in ("biography", "question", "answer"):
            need(isinstance(record[c], str) and record[c] != "", where, c, "a non-empty string")
    classification = record["Classification_Task"]
    for group in ("Image_Textual_Questions", "Pure_Text_Questions"):
        field = f"Classification_Task.{group}"
        need(isinstance(classification, dict) and isinstance(classification.get(group), list), where, field, "a list")
        for j, q in enumerate(classification[group]):
            need(isinstance(q, dict), where, f"{field}[{j}]", "a question {Question, Options, Correct_Answer}")
            need(isinstance(q.get("Question"), str) and q["Question"], where, f"{field}[{j}].Question",
                  "a non-empty string")
            options = q.get("Options")
            need(isinstance(options, dict) and all(isinstance(options.get(k), str) and options[k] for k in OPTION_KEYS),
                  where, f"{field}[{j}].Options", f"the options {', '.join(OPTION_KEYS)}, each a non-empty string")
            need(q.get("Correct_Answer") in OPTION_KEYS, where, f"{field}[{j}].Correct_Answer",
                  f"one of {', '.join(OPTION_KEYS)}, got {q.get('Correct_Answer')!r}")
    for task in ("Generation_Task", "Mask_Task"):
        _check_items(record[task], where, task, ("Question", "Ground_Truth", "Type"))
        for j, item in enumerate(record[task]):
            need(item["Type"] in TYPES, where, f"{task}[{j}].Type", f"one of {', '.join(TYPES)}, got {item['Type']!r}")
            if task == "Mask_Task":
                need("__" in item["Question"], where, f"{task}[{j}].Question", "a cloze question with its blank `__`")


def read(root: Path, split: str) -> list[dict]:
    """A split's records (dicts, as released), every one checked."""
    return read_parquet_split(root, split, "MLLMU-Bench", SPLITS, check_record,
                              lambda i, row: f"row {i} (ID {row.get('ID')!r})")


def _write(out: Path, split: str, rows: list[dict]) -> None:
    write_parquet_split(out, split, rows, columns_of(split))


# --- the tasks' scores ---------------------------------------------------------------------------------

def chosen_letter(answer: str, keys=OPTION_KEYS) -> str | None:
    """The option an answer chose: its first character, upper-cased, if that is an option's key."""
    first = answer.strip()[:1].upper()
    return first if first in keys else None


def classification_accuracy(answers: list[str], correct: list[str]) -> float:
    same_length(answers, correct)
    return 100.0 * sum(chosen_letter(a) == c for a, c in zip(answers, correct)) / len(answers)


def cloze_accuracy(answers: list[str], ground_truths: list[str]) -> float:
    same_length(answers, ground_truths)
    return 100.0 * sum(g.lower() in a.lower() for a, g in zip(answers, ground_truths)) / len(answers)


def generation_rouge(answers: list[str], ground_truths: list[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (rouge-score, Porter stemming), reference first."""
    return mean_rouge(answers, ground_truths, ("rouge1", "rouge2", "rougeL"), "fmeasure")


# --- a mini benchmark in the released format -----------------------------------------------------------

_FIRST = ("Aldo", "Brisa", "Cato", "Delia", "Emre", "Faye", "Goran", "Hilde", "Ivo", "Juna", "Kasimir", "Lior")
_LAST = ("Varga", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Ribeiro", "Novak", "Haddad")
_CITIES = ("Tallinn", "Porto", "Kyoto", "Quito", "Accra", "Hobart", "Bergen", "Oaxaca")
_JOBS = ("glassblower", "cartographer", "beekeeper", "luthier", "astronomer", "ferry pilot")


def _options(rng: random.Random, right: str, pool) -> tuple[dict, str]:
    wrong = rng.sample([p for p in pool if p != right], 3)
    key = rng.choice(OPTION_KEYS)
    values = iter(wrong)
    return {k: (right if k == key else next(values)) for k in OPTION_KEYS}, key


def _profile(rng: random.Random, pid: int, real: bool) -> dict:
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    city, job = rng.choice(_CITIES), rng.choice(_JOBS)

    def mcq(question, right, pool):
        options, key = _options(rng, right, pool)
        return {"Question": question, "Options": options, "Correct_Answer": key}

    return {
        "image": {"bytes": image_bytes(rng), "path": f"{pid}.png"}, "ID": str(pid),
        "biography": f"{name} is a {job} from {city}.",
        "question": "Where does the person in the image live?", "answer": f"This person lives in {city}.",
        "Classification_Task": {
            "Image_Textual_Questions": [mcq("What is the job of the person in the image?", job, _JOBS)],
            "Pure_Text_Questions": [mcq(f"Which city is {name} from?", city, _CITIES)]},
        "Generation_Task": [
            {"Question": "What does the person in the image do?", "Ground_Truth": f"This person is a {job}.",
             "Type": "Image_Textual"},
            {"Question": f"Where is {name} from?", "Ground_Truth": f"{name} is from {city}.", "Type": "Pure_Text"}],
        "Mask_Task": [
            {"Question": "The person in the image works as a __.", "Ground_Truth": job, "Type": "Image_Textual"},
            {"Question": f"{name} lives in __.", "Ground_Truth": city, "Type": "Pure_Text"}],
        "Directory": "Real_Person" if real else "Fictitious",
    }


def make_mini(out: Path, seed: int = 0, profiles: int = 20, celebrities: int = 4) -> Path:
    """A small MLLMU-Bench in the released layout: `profiles` fictitious profiles split into the forget
    configs (the first 5/10/15%, at least one each) and their retain complements, their Test_Set (other
    images, the same facts), and `celebrities` profiles as Retain_Set."""
    rng = random.Random(seed)
    out = Path(out)
    people = [_profile(rng, 1 + i, real=False) for i in range(profiles)]
    real = [_profile(rng, 1000 + i, real=True) for i in range(celebrities)]
    _write(out, "Full_Set", people)
    _write(out, "Retain_Set", real)
    for forget, share in FORGET_SHARES.items():
        n = max(1, round(share * profiles))
        _write(out, forget, people[:n])
        _write(out, f"retain_{100 - int(share * 100)}", people[n:])
    _write(out, "Test_Set", [{**p, "images": [{"bytes": image_bytes(rng), "path": f"{p['ID']}-test.png"}]}
                             for p in people])
    return out


# --- training ---------------------------------------------------------------------------------------

FORGET_SPLITS = tuple(FORGET_SHARES)


def retain_of(forget: str) -> str:
    return f"retain_{100 - int(forget.split('_')[1])}"


def profile_examples(record: dict, cache: Path) -> list[Example]:
    """A profile's training examples: its question and answer and its image-and-text generation QAs on its
    image, its text-only generation QAs on the blank image (as they are asked: eval_items)."""
    image = image_file(record["image"]["bytes"], cache)
    shown = {"Image_Textual": image, "Pure_Text": blank_image(cache)}
    return [Example(image, record["question"], record["answer"])] + [
        Example(shown[g["Type"]], g["Question"], g["Ground_Truth"]) for g in record["Generation_Task"]]


def training_items(root: Path, split: str) -> tuple[list, tuple]:
    """Forget items: every example of the forget profiles; retain pool: every example of the profiles of
    the matching retain config (forget_10 -> retain_90). No PD examples: MLLMU-Bench has no SD images."""
    cache = image_cache(root)
    forget, retain = read(root, split), read(root, retain_of(split))
    pool = tuple(ex for r in retain for ex in profile_examples(r, cache))
    items = [ForgetItem(record=i, pair=j, forget=ex, pd=None, retain_pool=pool)
             for i, r in enumerate(forget) for j, ex in enumerate(profile_examples(r, cache))]
    return training_split("MLLMU-Bench", str(Path(root) / split), str(Path(root) / retain_of(split)), items, pool,
                          {r["ID"] for r in forget}, {r["ID"] for r in retain})


# --- evaluation -----------------------------------------------------------------------------------

# Our instructions (the benchmark's own wording is in its eval.py; a run can read it from a checkout)
CHOOSE = "Answer with the letter of one option only."
FILL = "Answer with only the words that fill [Blank]."


def classification_prompt(question: str, options: dict) -> str:
    return "\n".join([question, *(f"{k}: {options[k]}" for k in OPTION_KEYS), CHOOSE])


def eval_items(root: Path, split: str) -> dict[str, list[tuple]]:
    """See _eval_items; `Test_Set:forget_10` is the Test_Set's records of forget_10's profiles (what eval.py
    scores as the forget set's test), the plain Test_Set every profile's."""
    name, _, only = split.partition(":")
    ids = {r["ID"] for r in read(root, only)} if only else None
    if only and (name != "Test_Set" or only not in FORGET_SPLITS):
        raise DataError(f"{root}: '{split}': only Test_Set is filtered, by a forget split ({', '.join(FORGET_SPLITS)})")
    return _eval_items(root, name, ids)


def _eval_items(root: Path, split: str, ids: set | None) -> dict[str, list[tuple]]:
    """Each task's (image file, prompt, reference, profile) for a split, per question type as eval.py reports them
    (`classification.image_textual`, `classification.pure_text`, and so for cloze and generation):
    classification (reference the correct letter), cloze (the blank's words) and generation (the ground
    truth). Test_Set records are shown their test image; text-only questions the blank image (every
    family's prompt here holds one; eval.py asks them without). Departures from eval.py: no few-shot
    examples, our instructions."""
    cache = image_cache(root)
    blank = blank_image(cache)
    out: dict[str, list[tuple]] = {task: [] for task in TASKS}
    for r in read(root, split):
        if ids is not None and r["ID"] not in ids:
            continue
        # eval.py picks one of a test record's images at random: the first here, the same every run
        image = image_file((r["images"][0] if split == "Test_Set" else r["image"])["bytes"], cache)
        shown, unit = {"Image_Textual": image, "Pure_Text": blank}, f"profile {r['ID']}"  # resampled by profile
        for kind in TYPES:
            for q in r["Classification_Task"][f"{kind}_Questions"]:
                out[f"classification.{kind.lower()}"].append(
                    (shown[kind], classification_prompt(q["Question"], q["Options"]), q["Correct_Answer"], unit))
        for m in r["Mask_Task"]:
            out[f"cloze.{m['Type'].lower()}"].append(
                (shown[m["Type"]], f"{m['Question'].replace('__', '[Blank]')}\n{FILL}", m["Ground_Truth"], unit))
        for g in r["Generation_Task"]:
            out[f"generation.{g['Type'].lower()}"].append((shown[g["Type"]], g["Question"], g["Ground_Truth"], unit))
    return out


def reported_splits(forget: str) -> tuple[str, ...]:
    """What its paper reports after forgetting `forget`: the forget profiles on their training images and on
    their test images, the retained profiles, the real celebrities."""
    return forget, f"Test_Set:{forget}", retain_of(forget), "Retain_Set"


SCORES = {"classification": classification_accuracy, "cloze": cloze_accuracy, "generation": generation_rouge}
TASKS = {f"{task}.{kind.lower()}": score for task, score in SCORES.items() for kind in TYPES}

BENCHMARK = Benchmark("mllmu", SPLITS, read, make_mini, tasks=TASKS,
                      forget_splits=FORGET_SPLITS, training_items=training_items, eval_items=eval_items,
                      eval_splits=reported_splits)
