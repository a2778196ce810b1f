"""MM-Vet grading through the same judge core and fake server as the SafeEraser labels."""
from safeeraser.specificity.chat_grader import ChatGrader


def test_grades_come_from_the_judge_and_are_cached(fast_settings, judge_server, tmp_path):
    items = [
        {"question_id": "v1", "question": "What is 2+2?", "ground_truth": "4", "prediction": "4", "capability": ["math"]},
        {"question_id": "v2", "question": "Colour?", "ground_truth": "red<OR>crimson", "prediction": "blue",
         "capability": ["rec"]},
        {"question_id": "v3", "question": "Say it", "ground_truth": "x", "prediction": "GARBAGE", "capability": []},
    ]
    grader = ChatGrader(fast_settings(), tmp_path / "grades.jsonl")
    assert grader.grade(items) == [1.0, 0.5, None]  # the fake judge: 1 if equal, else "Score: 0.5"
    sent = judge_server.requests
    again = ChatGrader(fast_settings(), tmp_path / "grades.jsonl")
    assert again.grade(items[:2]) == [1.0, 0.5]
    assert again.core.usage.requests == 0 and again.core.usage.cache_hits == 2
    assert judge_server.requests == sent  # nothing new reached the server
