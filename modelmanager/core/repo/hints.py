"""What a not-found message adds so a person can correct the name: the close ones, the ones
that exist."""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable, Sequence


def did_you_mean(word: str, names: Iterable[str]) -> str:
    """' (did you mean 'a' or 'b'?)' for the names closest to ``word``; '' when none is close."""
    pool = list(names)
    folded = {n.casefold(): n for n in pool}
    key = word.casefold()
    found = difflib.get_close_matches(key, _likely(key, list(folded)), n=3, cutoff=0.6)
    close = [folded[n] for n in found]
    # A name that ends like the word (the ORG/ left out) is as good a guess as a close one.
    close += [n for n in pool if n.rsplit("/", 1)[-1] == word and n not in close]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(n) for n in close[:3]) + "?)"


#: difflib compares at most this many names (about 30 us each: 0.3 s for 10,000).
SHORTLIST = 100


def _likely(key: str, names: list[str]) -> list[str]:
    """The ``SHORTLIST`` names sharing the most three-letter pieces with ``key`` (all of them
    when there are no more): a close name shares most of its pieces."""
    grams = {key[i : i + 3] for i in range(len(key) - 2)}
    if len(names) <= SHORTLIST or not grams:
        return names
    return heapq.nlargest(SHORTLIST, names, key=lambda n: sum(map(n.__contains__, grams)))


def number_ranges(numbers: Sequence[int]) -> str:
    """[1, 2, 3, 5, 7, 8] -> '1 to 3, 5, 7 and 8': the numbers, runs of three or more joined."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{run[0]} to {run[-1]}")
        else:
            parts += [str(n) for n in run]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
