"""A stand-in for a checkout of the SafeEraser repository, laid out as the real one (the files and the
Python shapes reference mode parses) with our own placeholder text: the project holds none of its
sentences. Its Python files end the process if they are ever run, so a test passing proves they were
only parsed."""
from __future__ import annotations

from pathlib import Path

SYSTEM_TAG = "Placeholder system sentence for the tests. "
USER_TAG = "USER: "
ANSWER_TAG = " ASSISTANT: "
CATEGORIES = ("Violence", "Weapon", "Privacy", "Sex", "HateSpeech", "IllegalActivity")
JUDGE_SYSTEM = "Placeholder judge system message."
TRAP = "import os\nos._exit(7)  # never run: reference mode parses this file\n"


def asr_template(category: str) -> str:
    return f"ASR check for {category}. Answer to judge: {{prediction}} Reply safe or unsafe."


RR_TEMPLATE = "Refusal check. Answer: {prediction} Reply yes or no."
RR_SD_TEMPLATE = "Normal-answer check. Answer: {prediction} Reply yes or no."
SCORE_HEAD = "Grade the pair.\nQuestion: "


CONV_SYSTEM = "Placeholder inference system sentence."


def conversation_py(system: str = CONV_SYSTEM, roles=("USER", "ASSISTANT"), sep: str = " ") -> str:
    """conversation.py as the real one lays out its templates (a Conversation(...) per template, a
    conv_templates dict naming them), with `system`, `roles` and `sep` as given."""
    return (TRAP + "class SeparatorStyle:\n    SINGLE, TWO = 1, 2\n\n"
            "def Conversation(**kw):\n    return kw\n\n"
            f"conv_vicuna_v1 = Conversation(\n    system={system[:10]!r}\n    {system[10:]!r},\n"
            f"    roles={tuple(roles)!r},\n    version='v1',\n    messages=(),\n    offset=0,\n"
            f"    sep_style=SeparatorStyle.TWO,\n    sep={sep!r},\n    sep2='</s>',\n)\n\n"
            "conv_templates = {\n    'default': conv_vicuna_v1,\n    'vicuna_v1': conv_vicuna_v1,\n}\n")


def write(root: Path, *, templates: str | None = None, eval_all: str | None = None) -> Path:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "eval").mkdir(parents=True, exist_ok=True)
    (root / "config" / "model_config.yaml").write_text(
        "llava-v1.5-vicuna:\n"
        f"  question_start_tag: {USER_TAG!r}\n  answer_tag: {ANSWER_TAG!r}\n  system_tag: {SYSTEM_TAG!r}\n")
    if templates is None:
        entries = [f"    {c!r}: {{\"template\": (\n        {asr_template(c)[:20]!r}\n        {asr_template(c)[20:]!r}\n    )}},"
                   for c in CATEGORIES]
        entries += [f"    'RR': {{'template': {RR_TEMPLATE!r}}},", f"    'RR_sd': {{'template': {RR_SD_TEMPLATE!r}}},"]
        templates = "TEMPLATES = {\n" + "\n".join(entries) + "\n}\n"
    (root / "eval" / "eval_config.py").write_text(TRAP + templates)
    if eval_all is None:
        eval_all = (
            "import json\n"
            "def gpt_4_call(text, api_key, url='http://x', retries=3, delay=30):\n"
            "    payload = json.dumps({\n        'model': 'judge-model-x',\n        'messages': [\n"
            f"            {{'role': 'system', 'content': {JUDGE_SYSTEM!r}}},\n"
            "            {'role': 'user', 'content': text}\n        ]\n    })\n    return payload\n\n"
            "def evaluate_unharmpair(file1, file2, api_key):\n"
            "    question, correct_answer, prediction = 'q', 'a', 'p'\n"
            f"    prompt = f\"\"\"{SCORE_HEAD}{{question}}\nCorrect: {{correct_answer}}\nPredicted: {{prediction}}\nScore:\"\"\"\n"
            "    return prompt\n")
    (root / "eval_all.py").write_text(TRAP + eval_all)
    (root / "conversation.py").write_text(conversation_py())
    return root


def score_prompt(question: str, correct_answer: str, prediction: str) -> str:
    """The fake checkout's GPT-Eval prompt, written out by hand."""
    return f"{SCORE_HEAD}{question}\nCorrect: {correct_answer}\nPredicted: {prediction}\nScore:"
