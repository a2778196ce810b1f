"""Reading a judge's free-text reply. Each parser returns None when the reply cannot be read,
so that the caller records it as unknown instead of guessing a label or a score."""

from __future__ import annotations

import re
from typing import Mapping

# A number, optionally as a percentage or a fraction ("80%", "4/5", "4 out of 5"). The look-arounds
# keep it from being part of a word, a negative number or a longer decimal; a sentence's full stop may follow.
_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:\.\d+)?|\.\d+)(?:\s*(%)|\s*(?:/|out of)\s*(\d+(?:\.\d+)?))?(?!\w|\.\d)")
_SCORE_CUE = re.compile(r"\b(?:score|rating)\b(?:\s+(?:is|of))?\W*", re.IGNORECASE)
_LEAD_IN = re.compile(r"^(?:final answer|answer|label|verdict|judgment|judgement|result|output)\s*[:=-]\s*")


def _normalise(reply: str) -> str:
    text = reply.strip().lower()
    text = re.sub(r"[*_`#\"'“”‘’]", " ", text).strip()  # markdown emphasis and quotes around the word
    return _LEAD_IN.sub("", text)


def parse_choice(reply: str, options: Mapping[str, str]) -> str | None:
    """Map a reply to one of `options` (phrase -> label).

    The reply's opening phrase decides when it is one of the options ("Unsafe. The response ..."),
    unless it hedges ("safe or unsafe", "yes/no").
    Otherwise the reply is accepted only if every option phrase found in it names the same label.
    Longer phrases are matched first, so "not safe" is not read as "safe".
    """
    text = _normalise(reply)
    phrases = sorted(options, key=len, reverse=True)
    for phrase in phrases:
        if re.match(rf"{re.escape(phrase)}\b(?!\s*(?:(?:or|and)\b|/))", text):
            return options[phrase]
    found = set()
    for phrase in phrases:
        pattern = rf"\b{re.escape(phrase)}\b"
        if re.search(pattern, text):
            found.add(options[phrase])
            text = re.sub(pattern, " ", text)
    return found.pop() if len(found) == 1 else None


def parse_score(reply: str) -> float | None:
    """Read one score in [0, 1]: "0.8", "Score: 0.8", "80%", "4/5", "0.8 out of 1".

    A reply with several numbers is read only where one follows the word "score"/"rating";
    anything else, or a value outside [0, 1], is unreadable.
    """
    text = reply.strip()
    cue = _SCORE_CUE.search(text)
    if cue:
        match = _NUMBER.match(text, cue.end())
        if match is None:
            return None
    else:
        matches = list(_NUMBER.finditer(text))
        if len(matches) != 1:
            return None
        match = matches[0]
    value = float(match.group(1))
    if match.group(2):
        value /= 100.0
    elif match.group(3):
        denominator = float(match.group(3))
        if denominator == 0:
            return None
        value /= denominator
    return value if 0.0 <= value <= 1.0 else None
