"""Requests held back while the telemetry writer is far behind, let go at the writer's pace.

Past the high-water mark the recorder's queue grows faster than its writer empties it, and new
requests must wait. They used to wait for the writer's next take: every request that arrived
during a batch write waited for all of it, hundreds of milliseconds on SQLite, while the rest
did not wait at all, so under saturation the p99 was 30 to 40 times the p50.

Here the held requests wait in one line and go first come, first served, at the rate the writer
has been writing over the last half second, a few every couple of milliseconds. Each waits
about as long as the others, whatever the writer is doing at that moment (converting rows,
committing, between batches). The bundles a writer has taken count against the mark until it
reports them written, chunk by chunk (`BatchProgress`), so the backlog the mark bounds is the
queue plus the batch in hand. The further the backlog is past the mark, the slower the line
moves, and it stops at half the mark again past it; once the backlog is back under the mark,
everyone waiting goes. A writer that writes nothing (a database outage) lets nobody go: held
requests wait out the recorder's limit, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sized
from typing import Final

PACE_TICK: Final = 0.002
"""Seconds between two goes of the line while requests are held."""
RATE_WINDOW: Final = 0.5
"""Seconds of the writer's reports its rate is measured over: long enough to span a batch's
phases that report nothing (roll-ups, commit), short enough to follow a slower database."""
STOP_PAST_MARK: Final = 0.5
"""The line stops once the backlog is this share of the mark past it."""


class Backpressure:
    """The recorder's high-water mark over the queue and the batch in hand, and its line."""

    def __init__(
        self,
        high_water: int,
        queue: Sized,
        *,
        open_again_at: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`open_again_at`: the share of the mark the backlog must be down to before every held
        request goes at once."""
        self._mark = high_water
        self._queue = queue
        self._open_again_at = high_water * open_again_at
        self._clock = clock
        self._owed = 0
        self._written = 0
        self._reports: deque[tuple[float, int]] = deque()
        """(when, bundles written so far) for the last `RATE_WINDOW` seconds, and one before."""
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._pacer: asyncio.TimerHandle | None = None
        self._allowance = 0.0
        self._paced_at = 0.0
        self.congested = False
        """True while the backlog is past the mark: new requests wait in `room`."""

    @property
    def owed(self) -> int:
        """Bundles the writer has taken and not yet reported written."""
        return self._owed

    @property
    def waiting(self) -> bool:
        """Whether anyone is held (those who stopped waiting are let go of first)."""
        waiting = self._waiting
        while waiting and waiting[0].done():
            waiting.popleft()
        return bool(waiting)

    def filled(self) -> None:
        """A bundle joined the queue."""
        if len(self._queue) + self._owed > self._mark:
            self.congested = True

    def taken(self, bundles: int) -> None:
        """The writer took `bundles` off the queue: they count until it reports them."""
        self._owed += bundles

    def retired(self, bundles: int) -> None:
        """The writer is done with `bundles` of those it took (written, spilled or given up
        on); everyone waiting goes once the backlog is down to the mark."""
        bundles = min(bundles, self._owed)
        self._owed -= bundles
        self._written += bundles
        now = self._clock()
        reports = self._reports
        reports.append((now, self._written))
        while len(reports) > 2 and reports[1][0] <= now - RATE_WINDOW:
            reports.popleft()
        if len(self._queue) + self._owed <= self._open_again_at:
            self.open()

    def open(self) -> None:
        """Let every held request go and hold no more (the writer caught up, or stopped)."""
        self.congested = False
        self._let_go(len(self._waiting))

    async def room(self, limit: float) -> None:
        """While congested, wait for a turn in line, at most `limit` seconds: a stuck writer
        cannot stall requests for good."""
        if not self.congested:
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiting.append(waiter)
        if self._pacer is None:
            self._allowance = 0.0  # turns are not saved up while nobody waits
            self._paced_at = self._clock()
            self._pacer = loop.call_later(PACE_TICK, self._pace)
        with contextlib.suppress(TimeoutError):  # the timeout cancels it: the next goes
            await asyncio.wait_for(waiter, limit)

    def writing_rate(self, now: float) -> float:
        """Bundles a second the writer reported over the last `RATE_WINDOW` seconds."""
        reports = self._reports
        while len(reports) > 1 and reports[1][0] <= now - RATE_WINDOW:
            reports.popleft()
        if not reports:
            return 0.0
        # The first report kept is the last one at or before the window's start (if any): the
        # bundles written since then were written within the window.
        return (self._written - reports[0][1]) / RATE_WINDOW

    def _pace(self) -> None:
        self._pacer = None
        if not self.congested or not self.waiting:
            return
        now = self._clock()
        past_mark = len(self._queue) + self._owed - self._mark
        pace = 1.0 - max(0, past_mark) / (self._mark * STOP_PAST_MARK)
        self._allowance += self.writing_rate(now) * max(0.0, pace) * (now - self._paced_at)
        self._paced_at = now
        turns = int(self._allowance)
        if turns:
            self._allowance -= self._let_go(turns)
        if self.waiting:
            self._pacer = asyncio.get_running_loop().call_later(PACE_TICK, self._pace)

    def _let_go(self, count: int) -> int:
        waiting = self._waiting
        gone = 0
        while gone < count and waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                gone += 1
        return gone


class BatchProgress:
    """One batch's share of the backlog, retired as the writer reports its progress."""

    __slots__ = ("_backpressure", "_bundles", "_retired")

    def __init__(self, backpressure: Backpressure, bundles: int) -> None:
        self._backpressure = backpressure
        self._bundles = bundles
        self._retired = 0

    def __call__(self, done: float) -> None:
        """The writer has done this share (0 to 1) of the batch's work."""
        due = min(self._bundles, int(self._bundles * done))
        if due > self._retired:
            self._backpressure.retired(due - self._retired)
            self._retired = due

    def finish(self) -> None:
        """The batch is settled, or its attempt is over: whatever is left counts as done."""
        self(1.0)
