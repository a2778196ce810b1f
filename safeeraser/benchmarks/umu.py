"""UMU-Bench ("UMU-Bench: Closing the Modality Gap in Multimodal Unlearning Evaluation", NeurIPS 2025 D&B):
MLLMU-Bench's fictitious profiles asked the same facts twice, with the image (multimodal) and by name in
text alone (unimodal), so that forgetting in one modality and not the other shows.

Released layout (the Hugging Face dataset linbojunzi/UMU-bench, as its code QDRhhhh/UMU-bench reads it):
one folder per config, `forget_5`, `forget_10`, `forget_15`, `retain_95`, `retain_90`, `retain_85` and
`real_person` (real people, kept), each holding parquet shards `train-NNNNN-of-NNNNN.parquet`; one row per
person with columns ID, image ({bytes, path}), Biography, MM_QA, UM_QA, Classify, Cloze and Generation. The
last five are strings holding Python literals (its code parses them with ast.literal_eval, as here):
MM_QA / UM_QA `{'question': {k: q}, 'answer': {k: a}}` (asked with the image / in text alone); Classify,
Cloze, Generation `{'unimodal': {k: item}, 'muitimodal': {k: item}}` (the key spelt as released), a
classification item {question, options {A..D}, answer ("B." or "B")}, a cloze or generation item
{question, answer}. (From the fields its code reads: a released record was not at hand; the dataset card
names the real people's config Real_Person_Set where the code reads real_person: both are read.)

Tasks, as its eval.py scores them, each over the multimodal and the unimodal question of every item in pairs:
classification (correct when the answer, stripped, is the question's option at the unimodal item's letter: its
eval.py reads that letter for both questions of a pair; on real_person the option closest to the answer, by
difflib's ratio, is taken first), cloze (correct when the answer holds the gold text before its first period,
case-insensitively) and generation (ROUGE-1/2/L F with stemming); per task the accuracy (or ROUGE) of each
modality, the share of items right in both ("all modal" accuracy) and wrong in both, and the two per-item
means of the modalities' ROUGE-L its code takes: (a² + b²)/(a + b) on forget sets, 2ab/(a + b) elsewhere.

Departures: our instructions after the multiple-choice and cloze questions, none after a generation question
(its own wording can be read from a checkout); its generation stops at 200 new tokens, a grid at
benchmark.max_new_tokens; its NLTK BLEU is not computed (no other benchmark here reports BLEU, and NLTK is
rouge-score's dependency, not ours); a text-only question is asked with a blank grey image, as every family's
prompt here holds an image (the person is named in the text, the image shows nothing of them)."""
from __future__ import annotations

import ast
import difflib
import random
from pathlib import Path

from safeeraser.benchmarks.base import Benchmark, training_split
from safeeraser.benchmarks.files import (blank_image, check_image, image_bytes, image_cache, image_file, need,
                                         pair_rouge, read_parquet_split, same_length, write_parquet_split)
from safeeraser.data.views import Example, ForgetItem
from safeeraser.io import DataError

FORGET_SPLITS = ("forget_5", "forget_10", "forget_15")
RETAIN = {f: f"retain_{100 - int(f.split('_')[1])}" for f in FORGET_SPLITS}
REAL = "real_person"
SPLITS = FORGET_SPLITS + tuple(RETAIN.values()) + (REAL,)
REAL_ALIASES = (REAL, "Real_Person_Set")  # the folder its code reads, the config its card names
COLUMNS = ("ID", "image", "Biography", "MM_QA", "UM_QA", "Classify", "Cloze", "Generation")
LITERALS = ("MM_QA", "UM_QA", "Classify", "Cloze", "Generation")
MODALITIES = ("muitimodal", "unimodal")  # with the image, in text alone (the first key spelt as released)
OPTION_KEYS = ("A", "B", "C", "D")


# --- reading and checking ------------------------------------------------------------------------------

def parse_literal(text, where: str, field: str) -> dict:
    need(isinstance(text, str), where, field, "a string holding a Python dict literal")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise DataError(f"{where}: field '{field}': not a Python literal ({type(exc).__name__})") from None
    need(isinstance(value, dict), where, field, "a dict literal")
    return value


def _strings(block, where: str, field: str) -> dict:
    need(isinstance(block, dict) and block and all(isinstance(v, str) and v for v in block.values()), where, field,
         "a non-empty dict of non-empty strings")
    return block


def check_record(record: dict, split: str, where: str) -> None:
    """One DataError naming the file and row (`where`) and the field, for the first thing wrong; the literal
    columns parsed in place."""
    for c in COLUMNS:
        need(record.get(c) is not None, where, c, "missing")
    check_image(record["image"], where, "image")
    for c in LITERALS:
        record[c] = parse_literal(record[c], where, c)
    for c in ("MM_QA", "UM_QA"):
        qs = _strings(record[c].get("question"), where, f"{c}.question")
        answers = _strings(record[c].get("answer"), where, f"{c}.answer")
        need(set(qs) == set(answers), where, f"{c}.answer", "the same keys as its questions")
    for task in ("Classify", "Cloze", "Generation"):
        groups = record[task]
        for m in MODALITIES:
            need(isinstance(groups.get(m), dict) and groups[m], where, f"{task}.{m}", "a non-empty dict of items")
        need(set(groups["unimodal"]) == set(groups["muitimodal"]), where, f"{task}.muitimodal",
             "the same keys as unimodal (each item asked in both modalities)")
        for m in MODALITIES:
            for k, item in groups[m].items():
                field = f"{task}.{m}[{k!r}]"
                need(isinstance(item, dict), where, field, "an item {question, answer, ...}")
                for key in ("question", "answer"):
                    need(isinstance(item.get(key), str) and item[key].strip(), where, f"{field}.{key}",
                         "a non-empty string")
                if task == "Classify":
                    options = item.get("options")
                    need(isinstance(options, dict) and all(isinstance(options.get(o), str) and options[o]
                                                           for o in OPTION_KEYS), where, f"{field}.options",
                         f"the options {', '.join(OPTION_KEYS)}, each a non-empty string")
                    need(gold_letter(item) in OPTION_KEYS, where, f"{field}.answer",
                         f"an option's letter (\"B.\" or \"B\"), got {item['answer']!r}")


def read(root: Path, split: str) -> list[dict]:
    """A split's records, every one checked, its literal columns parsed into dicts."""
    root = Path(root)
    if split == REAL:  # the folder its code reads, else the config its dataset card names
        found = next((a for a in REAL_ALIASES if (root / a).is_dir()), REAL)
        return read_parquet_split(root, found, "UMU-Bench", (*SPLITS, *REAL_ALIASES), check_record, _label)
    return read_parquet_split(root, split, "UMU-Bench", SPLITS, check_record, _label)


def _label(i: int, row: dict) -> str:
    return f"row {i} (ID {row.get('ID')!r})"


# --- the tasks' scores ---------------------------------------------------------------------------------

def gold_letter(item: dict) -> str:
    return item["answer"].split(".")[0].strip()


def chosen_option(answer: str, options: list[str], closest: bool) -> str:
    """The answer as eval.py compares it: stripped; with `closest` (real_person), the option most like it."""
    text = answer.strip()
    if not closest:
        return text
    return max(options, key=lambda o: difflib.SequenceMatcher(None, text, o).ratio())


def _pairs(values: list) -> list[tuple]:
    """[(multimodal, unimodal)] from the items' values in the order the eval items list them."""
    if len(values) % 2:
        raise ValueError(f"{len(values)} answers: the items come in pairs (with the image, in text alone)")
    return list(zip(values[0::2], values[1::2]))


def modal_accuracy(right: list[bool]) -> dict[str, float]:
    """Per modality the accuracy (%), and the share of items right in both and wrong in both (%)."""
    pairs = _pairs(right)
    n = len(pairs)
    return {"multimodal": 100 * sum(a for a, _ in pairs) / n, "unimodal": 100 * sum(b for _, b in pairs) / n,
            "both_right": 100 * sum(a and b for a, b in pairs) / n,
            "both_wrong": 100 * sum(not a and not b for a, b in pairs) / n}


def classification_scores(answers: list[str], references: list[dict]) -> dict[str, float]:
    same_length(answers, references)
    return modal_accuracy([chosen_option(a, r["options"], r["closest"]) == r["gold"]
                           for a, r in zip(answers, references)])


def cloze_scores(answers: list[str], references: list[str]) -> dict[str, float]:
    same_length(answers, references)
    return modal_accuracy([r.split(".")[0].strip().lower() in a.lower() for a, r in zip(answers, references)])


def generation_scores(answers: list[str], references: list[str]) -> dict[str, float]:
    """Each modality's mean ROUGE-1/2/L F, and the per-item means of the two ROUGE-L: contraharmonic
    (a² + b²)/(a + b) (its forget score) and harmonic 2ab/(a + b) (its retain score), 0 where a + b = 0."""
    same_length(answers, references)
    pairs = _pairs(list(zip(answers, references)))
    keys, sides = ("rouge1", "rouge2", "rougeL"), {}
    for name, side in (("multimodal", [p[0] for p in pairs]), ("unimodal", [p[1] for p in pairs])):
        sides[name] = pair_rouge([a for a, _ in side], [r for _, r in side], keys, "fmeasure")
    out = {f"{name}.{k}": sum(s[k] for s in scores) / len(scores) for name, scores in sides.items() for k in keys}
    both = [(m["rougeL"], u["rougeL"]) for m, u in zip(sides["multimodal"], sides["unimodal"])]
    out["rougeL.contraharmonic"] = sum((a * a + b * b) / (a + b) if a + b else 0.0 for a, b in both) / len(both)
    out["rougeL.harmonic"] = sum(2 * a * b / (a + b) if a + b else 0.0 for a, b in both) / len(both)
    return out


# --- a mini benchmark in the released format -----------------------------------------------------------

_FIRST = ("Arlo", "Bettina", "Caspar", "Dunya", "Eero", "Freya", "Gideon", "Hana", "Ilse", "Jorge", "Kaia", "Lenz")
_LAST = ("Abara", "Brandt", "Castell", "Duarte", "Eklund", "Fontaine", "Grieg", "Hollis")
_JOBS = ("potter", "surveyor", "falconer", "bookbinder", "organist", "ship pilot", "tailor", "welder")
_CITIES = ("Lisbon", "Tromso", "Cusco", "Nagoya", "Dakar", "Perth", "Ghent", "Mendoza")


def _literal(value: dict) -> str:
    return repr(value)  # a Python literal, as released (ast.literal_eval reads it back)


def _profile(rng: random.Random, pid: int) -> dict:
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    job, city = rng.choice(_JOBS), rng.choice(_CITIES)

    def classify(question: str, right: str, pool) -> dict:
        wrong = iter(rng.sample([p for p in pool if p != right], 3))
        key = rng.choice(OPTION_KEYS)
        return {"question": question, "options": {k: right if k == key else next(wrong) for k in OPTION_KEYS},
                "answer": f"{key}."}

    return {
        "ID": pid, "image": {"bytes": image_bytes(rng), "path": f"{pid}.png"},
        "Biography": f"{name} is a {job} who lives in {city}.",
        "MM_QA": _literal({"question": {"0": "What does the person in the image do?",
                                        "1": "Where does the person in the image live?"},
                           "answer": {"0": f"This person is a {job}.", "1": f"This person lives in {city}."}}),
        "UM_QA": _literal({"question": {"0": f"What does {name} do?", "1": f"Where does {name} live?"},
                           "answer": {"0": f"{name} is a {job}.", "1": f"{name} lives in {city}."}}),
        # the two questions of a pair share their options (its eval.py reads the unimodal item's letter for both)
        "Classify": _literal({"unimodal": {"0": (uni := classify(f"What is {name}'s job?", job, _JOBS))},
                              "muitimodal": {"0": {**uni,
                                                   "question": "What is the job of the person in the image?"}}}),
        "Cloze": _literal({"unimodal": {"0": {"question": f"{name} lives in __.", "answer": f"{city}."}},
                           "muitimodal": {"0": {"question": "The person in the image lives in __.",
                                                "answer": f"{city}."}}}),
        # the generation items ask the QA pairs' first question again: a toy that cannot paraphrase still
        # shows what it learnt (the released ones are other wordings of the same facts)
        "Generation": _literal({"unimodal": {"0": {"question": f"What does {name} do?", "answer": f"{name} is a {job}."}},
                                "muitimodal": {"0": {"question": "What does the person in the image do?",
                                                     "answer": f"This person is a {job}."}}}),
    }


def make_mini(out: Path, seed: int = 0, profiles: int = 20, real: int = 4) -> Path:
    """A small UMU-Bench in the released layout: `profiles` fictitious people split into the forget configs
    (the first 5/10/15%, at least one each) and their retain complements, and `real` people in real_person."""
    rng = random.Random(seed)
    out = Path(out)
    people = [_profile(rng, 1 + i) for i in range(profiles)]
    for forget, retain in RETAIN.items():
        n = max(1, round(int(forget.split("_")[1]) / 100 * profiles))
        write_parquet_split(out, forget, people[:n], COLUMNS)
        write_parquet_split(out, retain, people[n:], COLUMNS)
    write_parquet_split(out, REAL, [_profile(rng, 1000 + i) for i in range(real)], COLUMNS)
    return out


# --- training and evaluation ---------------------------------------------------------------------------

def person_examples(record: dict, cache: Path) -> list[Example]:
    """A person's training examples: MM_QA with their image, UM_QA in text (with the blank image)."""
    image, blank = image_file(record["image"]["bytes"], cache), blank_image(cache)
    out = []
    for column, shown in (("MM_QA", image), ("UM_QA", blank)):
        qa = record[column]
        out += [Example(shown, qa["question"][k], qa["answer"][k]) for k in qa["question"]]
    return out


def training_items(root: Path, split: str) -> tuple[list, tuple]:
    """Forget items: each forget person's MM_QA and UM_QA pairs; retain pool: those of the matching retain
    config's people (its code draws as many retain pairs as forget pairs; the loop draws one per item)."""
    cache = image_cache(root)
    forget, retain = read(root, split), read(root, RETAIN[split])
    pool = tuple(ex for r in retain for ex in person_examples(r, cache))
    items = [ForgetItem(record=i, pair=j, forget=ex, pd=None, retain_pool=pool)
             for i, r in enumerate(forget) for j, ex in enumerate(person_examples(r, cache))]
    return training_split("UMU-Bench", str(Path(root) / split), str(Path(root) / RETAIN[split]), items, pool,
                          {r["ID"] for r in forget}, {r["ID"] for r in retain})


# Our instructions (its eval.py's own are in a checkout of its code); a generation question is asked as
# written, as the QA pairs are trained
CHOOSE = "Answer with one of these options, word for word: {}"
FILL = "Answer with only the words that fill the blank."


def eval_items(root: Path, split: str) -> dict[str, list[tuple]]:
    """Each task's items as (image file, prompt, reference, person), every item twice in a row: with the person's
    image (multimodal), then in text alone (unimodal, the blank image); the scores pair them back."""
    cache = image_cache(root)
    blank = blank_image(cache)
    out: dict[str, list[tuple]] = {"classification": [], "cloze": [], "generation": []}
    for r in read(root, split):
        # resampled by person: a person's items, both modalities of each, stay together
        image, unit = image_file(r["image"]["bytes"], cache), f"person {r['ID']}"
        for k, uni in r["Classify"]["unimodal"].items():
            for m, shown in zip(MODALITIES, (image, blank)):
                item = r["Classify"][m][k]
                options = [item["options"][o] for o in OPTION_KEYS]
                # each question's own options at the unimodal item's letter, as its eval.py reads the gold answer
                out["classification"].append((shown, f"{item['question']}\n{CHOOSE.format(options)}",
                                              {"gold": item["options"][gold_letter(uni)], "options": options,
                                               "closest": split == REAL}, unit))
        for task, suffix in (("Cloze", f"\n{FILL}"), ("Generation", "")):
            for k in r[task]["unimodal"]:
                for m, shown in zip(MODALITIES, (image, blank)):
                    item = r[task][m][k]
                    out[task.lower()].append((shown, item["question"] + suffix, item["answer"], unit))
    return out


def reported_splits(forget: str) -> tuple[str, ...]:
    return forget, RETAIN[forget], REAL


BENCHMARK = Benchmark("umu", SPLITS, read, make_mini,
                      tasks={"classification": classification_scores, "cloze": cloze_scores,
                             "generation": generation_scores},
                      forget_splits=FORGET_SPLITS, training_items=training_items, eval_items=eval_items,
                      eval_splits=reported_splits)
