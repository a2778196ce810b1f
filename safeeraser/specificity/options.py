"""Multiple-choice questions (ScienceQA, MMBench): the option list in LLaVA-1.5's layout and the
extraction of the chosen letter from a free-form answer."""
from __future__ import annotations

import re

LETTERS = "ABCDEFGHIJ"

# "B", "B.", "(B)", "B)", "B: the cat"; a bare capital at the start of a sentence ("A dog ...") is not
# an option letter, hence the required mark or end after it.
_LEADING_LETTER = re.compile(r"^\(?([A-J])(?:[.:)]|\s*$)")
_STATED_LETTER = re.compile(r"(?i:answer|option|choice)(?:\s+is)?\s*:?\s*\(?([A-J])\b")


def format_options(choices: list[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def extract_option(answer: str, choices: list[str]) -> str | None:
    """The option letter an answer picks, or None when it picks none or several.

    Tried in order: a leading letter, a stated letter ("The answer is C"), then the option texts: the
    answer picks an option when that option's text is the only one it contains (an option whose
    text is part of another contained option's text does not count: "red" inside "dark red")."""
    letters = LETTERS[: len(choices)]
    text = answer.strip()
    for pattern in (_LEADING_LETTER, _STATED_LETTER):
        match = pattern.search(text)
        if match and match.group(1) in letters:
            return match.group(1)
    said = f" {_words(text)} "
    contained = [i for i, c in enumerate(choices) if _words(c) and f" {_words(c)} " in said]
    maximal = [i for i in contained
               if not any(j != i and _words(choices[i]) in _words(choices[j]) for j in contained)]
    if len(maximal) == 1:
        return letters[maximal[0]]
    return None
