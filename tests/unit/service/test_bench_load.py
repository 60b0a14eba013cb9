"""The bench's paired comparison: who goes first alternates, and the ratio is taken pair by pair."""

from __future__ import annotations

import pytest

from service.bench.load import Round, paired_ratio, turn_order


def rounds(*fps: float) -> list[Round]:
    return [Round(f, ok=10, failed=0, seconds=10 / f) for f in fps]


def test_first_server_alternates_round_by_round() -> None:
    assert [turn_order(["on", "off"], i) for i in range(4)] == [
        ["on", "off"],
        ["off", "on"],
        ["on", "off"],
        ["off", "on"],
    ]


def test_drift_common_to_a_pair_cancels() -> None:
    """The machine's speed halves and recovers during the run; A is 10% slower than B within every
    pair, so every round, its median and its range say 0.9."""
    a = rounds(9.0, 4.5, 9.0, 4.5, 4.5)
    b = rounds(10.0, 5.0, 10.0, 5.0, 5.0)
    paired = paired_ratio(a, b)
    assert (paired.median, paired.low, paired.high, paired.rounds) == (0.9, 0.9, 0.9, 5)


def test_range_shows_what_one_round_could_have_said() -> None:
    paired = paired_ratio(rounds(10.0, 11.0, 9.0), rounds(10.0, 10.0, 10.0))
    assert (paired.median, paired.low, paired.high) == (1.0, 0.9, 1.1)


def test_unpaired_rounds_are_an_error() -> None:
    with pytest.raises(ValueError, match="same, non-zero number"):
        paired_ratio(rounds(1.0), rounds(1.0, 2.0))
    with pytest.raises(ValueError, match="same, non-zero number"):
        paired_ratio([], [])
