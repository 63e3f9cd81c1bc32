"""The served app's garbage-collector settings hold for its lifespan and are undone after."""

from __future__ import annotations

import gc

from server.gc_tuning import YOUNG_THRESHOLD, serving_gc


async def test_start_up_is_frozen_and_young_scans_spaced_until_the_app_stops() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    async with serving_gc():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
