"""Replica-selection strategies: every order is a permutation, each strategy spreads as it says."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmanager.core.chunks.selection import (
    FASTEST,
    RANDOM,
    RANKED,
    ROUND_ROBIN,
    STRATEGIES,
    WEIGHTED,
    Selector,
)
from modelmanager.errors import UserError


@dataclass(frozen=True)
class Dev:
    id: str


DEVICES = [Dev("a"), Dev("b"), Dev("c")]


@given(st.sampled_from(STRATEGIES), st.lists(st.sampled_from("abcdef"), unique=True, max_size=6))
def test_every_order_tries_every_holder_once(strategy: str, ids: list[str]) -> None:
    holders = [Dev(i) for i in ids]
    order = Selector(strategy, {"a": 5.0, "b": 1.0}, seed=1).order(holders)
    assert sorted(d.id for d in order) == sorted(ids)


def test_ranked_keeps_placement_order() -> None:
    assert Selector(RANKED).order(DEVICES) == DEVICES


def test_round_robin_rotates_chunk_after_chunk() -> None:
    s = Selector(ROUND_ROBIN)
    firsts = [s.order(DEVICES)[0].id for _ in range(6)]
    assert firsts == ["a", "b", "c", "a", "b", "c"]


def test_fastest_puts_the_best_measured_first_and_keeps_the_rest_as_fallback() -> None:
    s = Selector(FASTEST, {"a": 1e8, "b": 9e8, "c": 3e8})
    assert [d.id for d in s.order(DEVICES)] == ["b", "c", "a"]


def test_weighted_reads_in_proportion_to_measured_speed() -> None:
    s = Selector(WEIGHTED, {"a": 3e9, "b": 1e9}, seed=7)
    firsts = Counter(s.order(DEVICES[:2])[0].id for _ in range(20_000))
    assert firsts["a"] / 20_000 == pytest.approx(0.75, abs=0.02)


def test_an_unmeasured_device_counts_as_the_median_of_the_measured() -> None:
    s = Selector(WEIGHTED, {"a": 1.0, "b": 3.0, "c": 5.0})
    assert s.speed("new") == 3.0
    assert Selector(WEIGHTED).speed("anything") == 1.0  # nothing measured: all equal


def test_random_uses_every_holder() -> None:
    s = Selector(RANDOM, seed=3)
    assert {s.order(DEVICES)[0].id for _ in range(200)} == {"a", "b", "c"}


def test_an_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(UserError, match=r"unknown read strategy 'quickest'.*round-robin"):
        Selector("quickest")


def test_round_robin_is_even_whatever_order_each_chunk_lists_its_holders() -> None:
    import random

    s, rng = Selector(ROUND_ROBIN), random.Random(5)
    firsts: Counter[str] = Counter()
    for _ in range(3000):
        holders = DEVICES[:]
        rng.shuffle(holders)  # placement ranks differ chunk by chunk
        firsts[s.order(holders)[0].id] += 1
    assert firsts == {"a": 1000, "b": 1000, "c": 1000}
