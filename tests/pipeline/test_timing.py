"""Stage timings: consecutive laps, charged to the right stage, adding up to the total."""

from __future__ import annotations

import time

from cinerec.pipeline.timing import StageClock


def test_laps_charge_each_stage_its_own_time_and_add_up_to_the_total() -> None:
    timings: dict[str, float] = {}
    clock = StageClock(timings)
    time.sleep(0.02)
    clock.lap("slow")
    clock.lap("instant")
    time.sleep(0.01)
    clock.lap("medium")
    clock.total()
    assert clock.timings is timings  # the caller's dict is filled in place
    assert list(timings) == ["slow", "instant", "medium", "total"]
    assert timings["slow"] >= 20.0 and timings["medium"] >= 10.0
    assert 0.0 <= timings["instant"] < timings["medium"] < timings["slow"]
    laps = timings["slow"] + timings["instant"] + timings["medium"]
    assert laps <= timings["total"] < laps + 5.0  # no gaps between laps


def test_a_clock_without_a_dict_keeps_its_own_and_a_stage_can_be_retimed() -> None:
    clock = StageClock()
    clock.lap("recall")
    first = clock.timings["recall"]
    time.sleep(0.005)
    clock.lap("recall")
    assert clock.timings["recall"] >= 5.0 > first
    clock.total("all")
    assert set(clock.timings) == {"recall", "all"}
