"""The OTLP export benchmark's rounds write every bundle and, with the exporter, export it."""

from __future__ import annotations

from tests.otlp_receiver import OtlpReceiver


async def test_a_round_with_and_without_the_exporter(migrated_database_url: str) -> None:
    from benchmarks.otlp_export import _encoding_us, _round

    with OtlpReceiver() as receiver:
        per_call, rate = await _round(migrated_database_url, 40, None)
        assert per_call > 0 and rate > 0
        assert receiver.received == []
        per_call, rate = await _round(migrated_database_url, 40, receiver)
        assert per_call > 0 and rate > 0
        assert len(receiver.spans()) == 40 * 2
    assert _encoding_us(8) > 0
