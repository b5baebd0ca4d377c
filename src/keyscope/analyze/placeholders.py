"""Words that mark a token's random part as a stand-in ("your", "xxxxx", "example" …).

A word counts only as a person types it: lower case, UPPER CASE or Capitalized. A
random token of a mixed-case alphabet holds ``yoUr`` or ``XxXx`` by chance (about 3
in 10,000 tokens of the dense benchmark, ``benchmarks/dense_tokens.py``), and such a
token is a real credential, not a placeholder."""

from __future__ import annotations

import re


def word_pattern(*words: str) -> re.Pattern[str]:
    """A pattern matching each of ``words`` in its lower, UPPER and Capitalized forms
    (a word may itself be a regular expression of lower-case letters and digits)."""
    forms: list[str] = []
    for word in words:
        for form in (word, word.upper(), word[:1].upper() + word[1:]):
            if form not in forms:
                forms.append(form)
    return re.compile("|".join(forms))


def stands_in(text: str, words: re.Pattern[str]) -> bool:
    """``text`` starts with one of ``words`` or holds two of them: a placeholder. One
    word inside a random part is left to chance."""
    return words.match(text) is not None or len(words.findall(text)) >= 2
