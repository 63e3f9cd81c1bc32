"""Queued records released from the cyclic garbage collector's watch.

A bundle waits in the recorder's queue for up to a few seconds, and at saturation the queue
holds thousands of them. The record structs are not tracked (`gc=False`), but the lists, tuples
and dicts inside them were: about 29 per chat request, and every collection walks each one
again. Measured at saturation on one worker, young collections took 10-20 ms with the event
loop stopped, and nearly everything they walked was queued records.

Records hold plain data: strings, numbers, and lists, tuples and dicts of those. A container
whose items are all untracked can never be part of a cycle the collector could find, so there
is nothing to watch. CPython reaches the same conclusion for tuples and dicts, but only once a
collection has walked them; `release_bundle` draws it as the bundle is queued, and for lists
too. A queued bundle is finished: nothing adds to it, which is what makes releasing a list
safe (CPython tracks a dict again as soon as something trackable is put in it; a list it does
not).

Anything else (an object of a class of its own, a set, a container nested deeper than
`MAX_DEPTH`, which is also how a container that holds itself ends) stays tracked, and so does
every container above it.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable
from typing import Any, Final

from telemetry.records import TraceBundle

MAX_DEPTH: Final = 32


def _untracker() -> Callable[[object], None] | None:
    if sys.implementation.name != "cpython":
        return None
    untrack = ctypes.pythonapi.PyObject_GC_UnTrack
    untrack.argtypes = [ctypes.py_object]
    untrack.restype = None
    return untrack


_untrack: Final = _untracker()
_is_tracked: Final = gc.is_tracked
_PLAIN: Final = (dict, list, tuple)


def release(value: Any, depth: int = 0) -> bool:
    """Stop tracking `value` and the plain containers under it; True when nothing in it is
    left for the collector to watch."""
    if not _is_tracked(value):
        return True
    kind = type(value)
    if depth >= MAX_DEPTH or kind not in _PLAIN or _untrack is None:
        return False
    inner = depth + 1
    if kind is dict:
        for key, item in value.items():
            if _is_tracked(item) and not release(item, inner):
                return False
            if _is_tracked(key) and not release(key, inner):
                return False
    else:
        for item in value:
            if _is_tracked(item) and not release(item, inner):
                return False
    _untrack(value)
    return True


def release_bundle(bundle: TraceBundle) -> None:
    """Release a finished bundle's containers; the caller hands it over and changes nothing
    in it afterwards."""
    if _untrack is None:
        return
    trace = bundle.trace
    release(trace.tags)
    release(trace.metadata)
    release(trace.features)
    release(bundle.spans)
    for span in bundle.spans:
        release(span.attributes)
        release(span.events)
    release(bundle.decisions)
    for decision in bundle.decisions:
        release(decision.input)
        release(decision.output)
    release(bundle.interactions)
    for interaction in bundle.interactions:
        release(interaction.prompt)
        release(interaction.response)
    release(bundle.violations)
    for violation in bundle.violations:
        release(violation.entities)
