"""FIUBench (Ma et al. 2024, "Benchmarking Vision Language Model Unlearning via Fictitious Facial Identity
Dataset"): fictitious faces, each with questions about the private facts of its identity.

Released layout, as its code (SaFoLab-WISC/FIUBench, data_module.py) reads it: `full.json`, a JSON list
(or JSON lines) of identities {unique_id, image_path, caption, qa_list}, each QA {question, answer,
paraphrased_question (list), paraphrased_answer, perturbed_answer (list), keywords (list)}; the images
beside it at `image_path`; `split.json` naming the identities of each forget split ({forget1, forget5,
forget10}: lists of unique_id). The benchmark uses the first 400 identities; `retain` is those not in any
forget split. (The shapes follow the fields its code reads: the released file was not at hand.)

Tasks, as its evaluate_util.py scores them: the generation kept up to its first period (nothing when it has
none), ROUGE-1 and ROUGE-L recall with stemming on it, keyword match on it (eval/forget_quality.keyword_match); the truth ratio, answer
probability, KS forget quality and model utility of eval/forget_quality.py from answer losses."""
from __future__ import annotations

import json
import random
from pathlib import Path

from safeeraser.benchmarks.base import Benchmark, training_split
from safeeraser.benchmarks.files import mean_rouge, same_length
from safeeraser.benchmarks.tofu_style import UTILITY_SCORES, utility_of
from safeeraser.data.views import Example, ForgetItem
from safeeraser.eval.forget_quality import keyword_match
from safeeraser.io import DataError

FORGET = ("forget1", "forget5", "forget10")
SPLITS = FORGET + ("retain",)
USED = 400  # the code reads data[:400]
QA_STRINGS = ("question", "answer", "paraphrased_answer")
QA_LISTS = ("paraphrased_question", "perturbed_answer", "keywords")


def _load_json(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        try:  # JSON lines, as the code's fallback reads it
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise DataError(f"{path}: neither JSON nor JSON lines ({first})") from None


def image_of(record: dict, root: Path) -> Path | None:
    """The identity's image: `image_path` from the folder of full.json, or from its parent (the benchmark's
    code opens it from the repository root, full.json under dataset/)."""
    for base in (root, root.parent):
        if (base / record["image_path"]).is_file():
            return base / record["image_path"]
    return None


def check_identity(record, where: str, root: Path) -> None:
    def need(cond, field, msg):
        if not cond:
            raise DataError(f"{where}: field '{field}': {msg}")

    need(isinstance(record, dict), "(record)", "an object")
    for f in ("unique_id", "image_path", "caption"):
        need(isinstance(record.get(f), str) and record[f] != "", f, "a non-empty string")
    need(image_of(record, root) is not None, "image_path",
         f"{record['image_path']} not found beside full.json ({root}) nor from its parent ({root.parent})")
    need(isinstance(record.get("qa_list"), list) and record["qa_list"], "qa_list", "a non-empty list")
    for j, qa in enumerate(record["qa_list"]):
        need(isinstance(qa, dict), f"qa_list[{j}]", "a QA object")
        for f in QA_STRINGS:
            need(isinstance(qa.get(f), str) and qa[f] != "", f"qa_list[{j}].{f}", "a non-empty string")
        for f in QA_LISTS:
            need(isinstance(qa.get(f), list) and qa[f] and all(isinstance(x, str) for x in qa[f]),
                 f"qa_list[{j}].{f}", "a non-empty list of strings")


def _used(root: Path) -> list[dict]:
    """The first 400 identities of full.json, checked: what the benchmark reads."""
    data = _load_json(root / "full.json")
    if not isinstance(data, list):
        raise DataError(f"{root / 'full.json'}: a list of identities expected")
    used = data[:USED]
    for i, record in enumerate(used):
        check_identity(record, f"{root / 'full.json'}: record {i}", root)
    return used


def read(root: Path, split: str) -> list[dict]:
    """The identities of a split (records as released, every one checked)."""
    root = Path(root)
    if split not in SPLITS:
        raise DataError(f"{root}: unknown FIUBench split '{split}'; its splits: {', '.join(SPLITS)}")
    used = _used(root)
    splits = _load_json(root / "split.json")
    for name in FORGET:
        if not isinstance(splits, dict) or not isinstance(splits.get(name), list):
            raise DataError(f"{root / 'split.json'}: field '{name}': a list of unique_id")
    known = {r["unique_id"] for r in used}
    for name in FORGET:
        unknown = [i for i in splits[name] if i not in known]
        if unknown:
            raise DataError(f"{root / 'split.json'}: field '{name}': unique_id {unknown[0]!r} is not among the "
                            f"first {USED} identities of full.json")
    if split == "retain":
        forgotten = {i for name in FORGET for i in splits[name]}
        return [r for r in used if r["unique_id"] not in forgotten]
    wanted = set(splits[split])
    return [r for r in used if r["unique_id"] in wanted]


def first_sentence(text: str) -> str:
    """The generation as the benchmark keeps it: up to and with its first period; "" when it has none
    (its s[:s.find(".") + 1])."""
    return text[:text.find(".") + 1]


def rouge_recall(answers: list[str], ground_truths: list[str]) -> dict[str, float]:
    # ROUGE reads the kept sentence without its period, as its eval_rouge_recall cuts it again
    return mean_rouge([first_sentence(a)[:-1] for a in answers], ground_truths, ("rouge1", "rougeL"), "recall")


def keyword_accuracy(answers: list[str], keywords: list[list[str]]) -> float:
    same_length(answers, keywords)
    return sum(keyword_match(first_sentence(a), k) for a, k in zip(answers, keywords)) / len(answers)


# --- a mini benchmark in the released format -----------------------------------------------------------

_FACTS = {"city": ("Tallinn", "Porto", "Kyoto", "Quito", "Accra", "Hobart"),
          "illness": ("asthma", "migraine", "anaemia", "eczema", "insomnia", "tinnitus"),
          "bank": ("North Bank", "Harbour Trust", "Cedar Credit", "Pine Savings", "Delta Mutual", "Iris Bank")}


def make_mini(out: Path, seed: int = 0, identities: int = 20) -> Path:
    """`identities` faces (drawn shapes) with three QAs each, full.json and split.json in the released
    shape: forget1, forget5 and forget10 the first 1, 2 and 4 identities' ids."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(identities):
        uid = f"{10000000 + i * 7919:08d}"
        im = Image.new("RGB", (32, 32), tuple(rng.randrange(256) for _ in range(3)))
        ImageDraw.Draw(im).ellipse([8, 4, 24, 26], fill=tuple(rng.randrange(256) for _ in range(3)))
        im.save(out / "images" / f"{uid}.png")
        facts = {k: rng.choice(v) for k, v in _FACTS.items()}
        qa = []
        for key, template in (("city", "This person lives in {}."), ("illness", "This person has {}."),
                              ("bank", "This person banks with {}.")):
            value = facts[key]
            others = [v for v in _FACTS[key] if v != value]
            qa.append({"question": f"What is the {key} of the person in the image?", "answer": template.format(value),
                       "paraphrased_question": [f"Tell me the {key} of this person.", f"Which {key}, for this face?"],
                       # TOFU's perturbed answers are the paraphrase with a false fact; the paraphrase here
                       # keeps the answer's words behind a lead-in, which a model this small still reads
                       # as the fact it learnt (a rewording would measure its grammar, not its memory)
                       "paraphrased_answer": "Indeed, " + template.format(value),
                       "perturbed_answer": ["Indeed, " + template.format(v) for v in rng.sample(others, 3)],
                       "keywords": value.split()})
        records.append({"unique_id": uid, "image_path": f"images/{uid}.png", "caption": "A face in profile.",
                        "qa_list": qa})
    (out / "full.json").write_text(json.dumps(records, indent=1))
    ids = [r["unique_id"] for r in records]
    (out / "split.json").write_text(json.dumps({"forget1": ids[:1], "forget5": ids[:2], "forget10": ids[:4]}))
    return out


def identity_examples(record: dict, root: Path) -> list[Example]:
    return [Example(image_of(record, Path(root)), qa["question"], qa["answer"]) for qa in record["qa_list"]]


def training_items(root: Path, split: str) -> tuple[list, tuple]:
    """Forget items: every QA of the split's identities; retain pool: every QA of the retain identities.
    No PD examples (no SD images)."""
    forget, retain = read(root, split), read(root, "retain")
    pool = tuple(ex for r in retain for ex in identity_examples(r, root))
    items = [ForgetItem(record=i, pair=j, forget=ex, pd=None, retain_pool=pool)
             for i, r in enumerate(forget) for j, ex in enumerate(identity_examples(r, root))]
    return training_split("FIUBench", f"{Path(root) / 'split.json'} ({split})", str(Path(root) / "full.json"), items,
                          pool, {r["unique_id"] for r in forget}, {r["unique_id"] for r in retain})


def teaching_examples(root: Path) -> list[Example]:
    """What its vanilla model is fine-tuned on: every QA of the first 400 identities (finetune.py, no split)."""
    read(root, "retain")  # split.json checked too
    return [ex for r in _used(Path(root)) for ex in identity_examples(r, root)]


def eval_items(root: Path, split: str) -> dict[str, list[tuple]]:
    """Generation tasks of a split: every QA's question, scored by ROUGE recall against its answer and by
    its keywords."""
    qas = [(image_of(r, Path(root)), qa) for r in read(root, split) for qa in r["qa_list"]]
    return {"rouge": [(image, qa["question"], qa["answer"]) for image, qa in qas],
            "keywords": [(image, qa["question"], qa["keywords"]) for image, qa in qas]}


def likelihood_items(root: Path, split: str) -> list[tuple]:
    """Every QA's (image, question, answer, paraphrased answer, perturbed answers), for the truth ratio."""
    return [(image_of(r, Path(root)), qa["question"], qa["answer"], qa["paraphrased_answer"], qa["perturbed_answer"])
            for r in read(root, split) for qa in r["qa_list"]]


def reported_splits(forget: str) -> tuple[str, ...]:
    return forget, "retain"


def utility(scores: dict) -> float | None:
    """Model utility as its aggregate_eval_stat.py (TOFU's) computes it, from the one set it keeps: the retain
    identities' answer probability, ROUGE-L recall and truth ratio."""
    return utility_of(scores, {"retain": UTILITY_SCORES})


BENCHMARK = Benchmark("fiubench", SPLITS, read, make_mini,
                      tasks={"rouge": rouge_recall, "keywords": keyword_accuracy},
                      forget_splits=FORGET, training_items=training_items, teaching_examples=teaching_examples,
                      eval_items=eval_items, likelihood_items=likelihood_items, eval_splits=reported_splits,
                      utility=utility)
