"""The recorder's writer as `telemetry.writer` asks: in the serving process (None: the recorder
builds its own `BatchWriter`) or in a child process of each worker."""

from __future__ import annotations

import functools

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.file import GatewayConfig
from gateway.jobs.evaluation import recorded_evaluation_picker
from server.gc_tuning import tune_for_serving
from telemetry.evaluation.picking import EvaluationPicker
from telemetry.trace_sampling import TraceSampling
from telemetry.writer_process import ProcessWriter, WriterSpec
from telemetry.writers import BatchWriter


def recorder_writer(
    database_url: str, config: GatewayConfig, picker: EvaluationPicker
) -> ProcessWriter | None:
    """`picker`: the serving process's, for the recorder's marking before redaction."""
    if config.telemetry.writer != "process":
        return None
    make_writer = functools.partial(
        child_batch_writer,
        sampling=config.telemetry.sampling.policy(),
        refresh_interval=config.evaluation.refresh_interval,
    )
    return ProcessWriter(WriterSpec(database_url, make_writer), picker=picker)


def child_batch_writer(
    engine: AsyncEngine, *, sampling: TraceSampling | None, refresh_interval: float
) -> BatchWriter:
    """The writer process's `BatchWriter`, on the child's own engine, as the recorder would
    build it in the serving process. The child's collector is set as a served worker's
    (`server.gc_tuning`): each batch it decodes is thousands of short-lived objects."""
    tune_for_serving()
    picker = recorded_evaluation_picker(engine, refresh_interval)
    return BatchWriter(engine, sampling=sampling, picker=picker)
