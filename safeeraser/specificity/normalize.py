"""The VQA answer normalisation (VQAv2's official evaluation rules), used by VQAv2, VizWiz and GQA:
lower case, punctuation, number words to digits, articles dropped, contractions restored."""
from __future__ import annotations

import re
from itertools import combinations

_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
                "?", "!")
_COMMA_BETWEEN_DIGITS = re.compile(r"\d,\d")
# The official pattern is meant to keep decimal points and, through a typo in its look-behind,
# strips every period not followed by a digit ("3." becomes "3"); this is that behaviour.
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")

_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}

_CONTRACTIONS = (
    "ain't", "aren't", "can't", "could've", "couldn't", "couldn't've", "didn't", "doesn't", "don't", "hadn't",
    "hadn't've", "hasn't", "haven't", "he'd", "he'd've", "he'll", "he's", "how'd", "how'll", "how's", "i'd",
    "i'd've", "i'll", "i'm", "i've", "isn't", "it'd", "it'd've", "it'll", "it's", "let's", "ma'am", "mightn't",
    "mightn't've", "might've", "mustn't", "must've", "needn't", "not've", "o'clock", "oughtn't", "shan't", "she'd",
    "she'd've", "she'll", "she's", "should've", "shouldn't", "shouldn't've", "somebody'd", "somebody'd've",
    "somebody'll", "somebody's", "someone'd", "someone'd've", "someone'll", "someone's", "something'd",
    "something'd've", "something'll", "that's", "there'd", "there'd've", "there're", "there's", "they'd",
    "they'd've", "they'll", "they're", "they've", "wasn't", "we'd", "we'd've", "we'll", "we're", "we've", "weren't",
    "what'll", "what're", "what's", "what've", "when's", "where'd", "where's", "where've", "who'd", "who'd've",
    "who'll", "who's", "who've", "why'll", "why're", "why's", "won't", "would've", "wouldn't", "wouldn't've",
    "y'all", "y'all'll", "y'all'd've", "you'd", "you'd've", "you'll", "you're", "you've",
)
# Dropping the apostrophes of these gives ordinary words ("we'll" -> "well"): never rewrite those.
_ORDINARY_WORDS = {"well", "were", "shell", "hell", "wed", "shed", "id", "ill", "its"}


def _apostrophe_variants(word: str) -> set[str]:
    """'couldn't've' -> {"couldntve", "couldnt've", "couldn'tve"}: each way of leaving apostrophes out."""
    positions = [i for i, ch in enumerate(word) if ch == "'"]
    variants = set()
    for k in range(1, len(positions) + 1):
        for dropped in combinations(positions, k):
            variants.add("".join(ch for i, ch in enumerate(word) if i not in dropped))
    return variants


_RESTORE_APOSTROPHES = {
    variant: word
    for word in _CONTRACTIONS
    for variant in _apostrophe_variants(word)
    if variant not in _ORDINARY_WORDS
}


def _strip_punctuation(text: str) -> str:
    # A mark that touches a space, or any mark in a text with a digit-grouping comma ("2,000"), is
    # deleted; elsewhere it separates words ("black-and-white" -> "black and white").
    delete = bool(_COMMA_BETWEEN_DIGITS.search(text))
    out = text
    for mark in _PUNCTUATION:
        if delete or f"{mark} " in text or f" {mark}" in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out)


def _words_digits_articles(text: str) -> str:
    words = []
    for word in text.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word in _ARTICLES:
            continue
        words.append(_RESTORE_APOSTROPHES.get(word, word))
    return " ".join(words)


def normalize_answer(text: str) -> str:
    """The normalised form under which two VQA answers count as the same."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _words_digits_articles(_strip_punctuation(text))
