"""Each benchmark's scorer on its fixture, with the answers of conftest.ANSWERS, against scores worked
out by hand (the arithmetic is spelled out next to each expected value)."""
import pytest

from safeeraser.specificity.grader import OfflineGrader
from safeeraser.specificity.options import extract_option
from safeeraser.specificity.registry import get_benchmark
from safeeraser.specificity.score import score_rows


@pytest.fixture
def answered(fixture_root, tmp_path, answers):
    """(benchmark, its fixture questions, the scores of the answers in conftest.ANSWERS)."""
    def run(name, grader=None):
        bench = get_benchmark(name, grader)
        questions = bench.load(bench.find_folder(fixture_root), workdir=tmp_path / name)
        rows = [{**q.reference, "question_id": q.question_id, "answer": answers[name][q.question_id]}
                for q in questions]
        return bench, questions, score_rows(bench, rows)

    return run


def test_gqa_exact_match_after_normalisation(answered):
    _, _, scores = answered("gqa")
    # "Red." = red, "A circle" = circle; "no" != yes, "dogs" != dog.
    assert scores["correct"] == 2
    assert scores["score"] == pytest.approx(100 * 2 / 4)


def test_vqav2_accuracy(answered):
    _, _, scores = answered("vqav2")
    two = (3 * 2 / 3 + 7 * 1) / 10     # "Two": 2, 2, two match, seven humans said 3
    laptop = (2 * 1 / 3 + 8 * 2 / 3) / 10  # "A laptop.": the laptop, laptop match
    shirt = 1.0                         # "T-Shirt" = t-shirt (5) and t shirt (2): seven humans
    raining = 0.0                       # "yes" against ten "no"
    assert scores["score"] == pytest.approx(100 * (two + laptop + shirt + raining) / 4)
    assert scores["per_answer_type"] == pytest.approx(
        {"number": 100 * two, "other": 100 * (laptop + shirt) / 2, "yes/no": 0.0})


def test_vizwiz_accuracy_with_unanswerable(answered):
    bench, questions, scores = answered("vizwiz")
    unanswerable = 1.0                       # "Unanswerable." against six unanswerable
    blue = (2 * 1 / 3 + 8 * 2 / 3) / 10      # two humans said blue
    three = 1.0                              # "three" = 3: seven humans
    rare_unanswerable = (2 * 1 / 3 + 8 * 2 / 3) / 10  # two humans said unanswerable
    assert scores["score"] == pytest.approx(100 * (unanswerable + blue + three + rare_unanswerable) / 4)
    assert scores["per_answer_type"]["unanswerable"] == 100.0
    assert all("respond with 'Unanswerable'" in q.prompt for q in questions)


def test_scienceqa_img_subset_and_option_accuracy(answered):
    _, questions, scores = answered("sqa")
    # Problem 3 has no image and 4 is a train problem: the IMG test subset is 1, 2, 5.
    assert [q.question_id for q in questions] == ["1", "2", "5"]
    # "B" is right for 1; "The answer is A." is right for 2; "frog" is A, the gold is B (whale).
    assert scores["score"] == pytest.approx(100 * 2 / 3)
    assert questions[1].prompt == ("Context: The picture shows one shape.\nWhich shape is shown?\nA. circle\n"
                                   "B. square\nC. triangle\nAnswer with the option's letter from the given "
                                   "choices directly.")
    assert not questions[0].prompt.startswith("Context:")  # no hint, no context line


def test_pope_metrics_per_split(answered):
    _, _, scores = answered("pope")
    random = scores["per_split"]["random"]
    # labels yes, no, yes, no; answers read as yes, no, no, no: TP 1, TN 2, FN 1, FP 0.
    assert (random["tp"], random["tn"], random["fn"], random["fp"]) == (1, 2, 1, 0)
    assert random["accuracy"] == pytest.approx(3 / 4)
    assert random["precision"] == pytest.approx(1.0)
    assert random["recall"] == pytest.approx(1 / 2)
    assert random["f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert random["yes_ratio"] == pytest.approx(1 / 4)
    adversarial = scores["per_split"]["adversarial"]
    # answers read as yes, yes, yes, no ("I do not see one."): TP 2, FP 1, TN 1.
    assert adversarial["precision"] == pytest.approx(2 / 3)
    assert adversarial["recall"] == pytest.approx(1.0)
    assert adversarial["f1"] == pytest.approx(2 * (2 / 3) * 1.0 / (2 / 3 + 1.0))
    assert adversarial["yes_ratio"] == pytest.approx(3 / 4)
    assert set(scores["per_split"]) == {"random", "adversarial"}  # the fixture has no popular split
    assert scores["score"] == pytest.approx(100 * (random["f1"] + adversarial["f1"]) / 2)


def test_mmbench_circular_evaluation_over_rotated_options(answered):
    _, questions, scores = answered("mmbench")
    by_id = {q.question_id: q for q in questions}
    # Question 0 has four options, so four rounds; each round starts one option further.
    assert [by_id[i].reference["choices"] for i in ("0", "1000000", "2000000", "3000000")] == [
        ["red", "blue", "green", "yellow"], ["blue", "green", "yellow", "red"],
        ["green", "yellow", "red", "blue"], ["yellow", "red", "blue", "green"]]
    assert [by_id[i].reference["gold"] for i in ("0", "1000000", "2000000", "3000000")] == ["A", "D", "C", "B"]
    assert "A. blue\nB. green\nC. yellow\nD. red" in by_id["1000000"].prompt
    assert by_id["1"].prompt.startswith("Look at the picture.\nWhat shape is this?")  # the hint line
    # Question 0 ("red" every round) is right in every rotation; question 1 answers B in both
    # rounds, wrong once the options turn; question 2 answers C in round 2, whose gold is A.
    assert scores["score"] == pytest.approx(100 * 1 / 3)
    assert scores["single_round_accuracy"] == pytest.approx(100.0)  # without rotations all three pass
    assert scores["per_category"] == {"color": 100.0, "count": 0.0, "shape": 0.0}


def test_mmvet_offline_grader_gives_no_score(answered):
    _, _, scores = answered("mmvet", OfflineGrader())
    assert scores["score"] is None
    assert "could not grade 2 of 2" in scores["unavailable"]


class ContainsGrader:
    """Grades 1 when the ground truth (or one of its <OR> parts) appears in the prediction."""

    def __init__(self):
        self.items = []

    def grade(self, items):
        self.items.extend(items)
        return [float(any(part.strip() in item["prediction"].lower() for part in item["ground_truth"].split("<OR>")))
                for item in items]


def test_mmvet_score_from_a_grader(answered):
    grader = ContainsGrader()
    _, _, scores = answered("mmvet", grader)
    # v1_0 (rec) "The square is red." contains red: 1; v1_1 (ocr, math) "two dots" has neither 3 nor three: 0.
    assert scores["score"] == pytest.approx(50.0)
    assert scores["per_capability"] == {"math": 0.0, "ocr": 0.0, "rec": 100.0}
    assert {item["ground_truth"] for item in grader.items} == {"red", "3 <OR> three"}
    assert grader.items[0]["question"] == "What color is the square?"


def test_mmvet_rejects_grades_outside_unit_interval(answered):
    class Broken:
        def grade(self, items):
            return [7.0] * len(items)

    with pytest.raises(ValueError, match="outside"):
        answered("mmvet", Broken())


@pytest.mark.parametrize("answer, expected", [
    ("B", "B"), ("B.", "B"), ("(C)", "C"), ("C) dark red", "C"),
    ("The answer is A.", "A"), ("I think the correct option is (B)", "B"),
    ("dark red", "C"),        # the option text, the longer one that contains "red"
    ("It is blue.", "B"),
    ("A blue square", "B"),    # "A" opening a sentence is no letter: the text names blue
    ("red or blue", None),     # two options named
    ("purple", None),
    ("E", None),               # not one of its three letters
])
def test_extract_option(answer, expected):
    assert extract_option(answer, ["red", "blue", "dark red"]) == expected
