"""Hostile inputs of the headers slice for the bad-input catalogue (tests/support/hostile.py)."""

from __future__ import annotations

from tests.support.hostile import Case, Legal

CASES: list[Case] = []
LEGAL: list[Legal] = []
