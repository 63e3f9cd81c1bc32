"""The live feed across workers: summaries shared through Redis pub/sub.

Two channels under a configured prefix:

- `<prefix>:watching`: each worker with viewers says so when its first viewer arrives, every
  `presence_interval` seconds while it has any, and when its last one leaves. Every worker
  listens, and publishes its summaries only while some other worker has said it is watching
  (an announcement counts for `presence_ttl` seconds). With nobody watching anywhere, no
  worker summarises or publishes anything.
- `<prefix>:traces`: batches of summaries (`{"worker": ..., "traces": [...]}`, JSON). A worker
  subscribes only while it has viewers, and hands what other workers publish to its hub.

Publishing happens in a task of its own from a bounded outbox, one message in flight at a time
carrying whatever gathered meanwhile: the request path never waits for
Redis, and a Redis that is slow or away loses feed events, never requests. Errors reconnect with
exponential backoff and are logged once per outage; meanwhile viewers see this worker's requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import msgspec
import redis.asyncio as redis
from redis.exceptions import RedisError

from telemetry import metrics
from telemetry.live import LiveHub
from telemetry.live_summary import LiveTrace

logger = logging.getLogger("steerway.telemetry.live")

DEFAULT_CHANNEL_PREFIX: Final = "steerway:live"
PRESENCE_INTERVAL: Final = 5.0
PRESENCE_TTL: Final = 15.0
OUTBOX_LIMIT: Final = 2048
"""Summaries waiting to be published; past it the oldest are dropped."""
BATCH_LIMIT: Final = 256
"""Summaries in one published message at most."""
POLL_SECONDS: Final = 0.25
"""How long the listener waits for a message before looking at its own viewers again."""
BACKOFF_INITIAL: Final = 0.5
BACKOFF_MAX: Final = 30.0

_sent = metrics.live_relay_messages_total.labels("sent")
_received = metrics.live_relay_messages_total.labels("received")


class RelayedTraces(msgspec.Struct, kw_only=True):
    worker: str
    traces: list[LiveTrace]


class Presence(msgspec.Struct, kw_only=True):
    worker: str
    watching: bool


_decode_traces = msgspec.json.Decoder(RelayedTraces).decode
_decode_presence = msgspec.json.Decoder(Presence).decode


class LiveRelay:
    def __init__(
        self,
        hub: LiveHub,
        redis_url: str,
        *,
        channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
        timeout: float = 2.0,
        presence_interval: float = PRESENCE_INTERVAL,
        presence_ttl: float = PRESENCE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._url = redis_url
        self._timeout = timeout
        self._traces_channel = f"{channel_prefix}:traces"
        self._watching_channel = f"{channel_prefix}:watching"
        self._presence_interval = presence_interval
        self._presence_ttl = presence_ttl
        self._clock = clock
        self._client: redis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: deque[LiveTrace] = deque()
        self._outbox_ready = asyncio.Event()
        self._local = False
        self._watchers: dict[str, float] = {}
        """Other workers watching, with when their last announcement lapses."""
        self._connected = False
        self._subscribed = False
        self._outage = False
        self._unreadable = False
        hub.attach_relay(self)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def subscribed(self) -> bool:
        """True while this worker receives other workers' summaries."""
        return self._subscribed

    async def start(self) -> None:
        self._client = redis.Redis.from_url(
            self._url, socket_connect_timeout=self._timeout, socket_timeout=self._timeout
        )
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="steerway-live-listen"),
            asyncio.create_task(self._publish_forever(), name="steerway-live-publish"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                if self._local and self._connected:
                    await self._announce(False)
            await self._client.aclose()
            self._client = None
        self._connected = False

    # -- called by the hub, on the event loop, never waiting -------------------------------

    def send(self, traces: list[LiveTrace]) -> None:
        if not self._connected:
            return
        outbox = self._outbox
        outbox.extend(traces)
        while len(outbox) > OUTBOX_LIMIT:
            outbox.popleft()
        self._outbox_ready.set()

    def local_viewers_changed(self, present: bool) -> None:
        self._local = present

    # -- the listener ----------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        delay = BACKOFF_INITIAL
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # whatever it is, the feed must not take the worker down
                if self._connected:
                    delay = BACKOFF_INITIAL
                self._went_away(error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _listen(self) -> None:
        assert self._client is not None
        async with self._client.pubsub() as pubsub:
            await pubsub.subscribe(self._watching_channel)
            self._came_back()
            announce_at = 0.0
            try:
                while True:
                    if self._local != self._subscribed:
                        if self._local:
                            await pubsub.subscribe(self._traces_channel)
                        else:
                            await pubsub.unsubscribe(self._traces_channel)
                            await self._announce(False)
                        self._subscribed = self._local
                        announce_at = 0.0
                    now = self._clock()
                    if self._subscribed and now >= announce_at:
                        await self._announce(True)
                        announce_at = now + self._presence_interval
                    self._forget_lapsed(now)
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=POLL_SECONDS
                    )
                    if message is not None:
                        self._handle(message)
            finally:
                self._subscribed = False

    async def _announce(self, watching: bool) -> None:
        assert self._client is not None
        presence = Presence(worker=self._hub.worker, watching=watching)
        await self._client.publish(self._watching_channel, msgspec.json.encode(presence))

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            self._read(message.get("channel"), message.get("data"))
        except msgspec.MsgspecError:
            if not self._unreadable:
                logger.warning(
                    "live feed: ignoring a message on %s that is not a live summary",
                    message.get("channel"),
                )
                self._unreadable = True

    def _read(self, channel: Any, data: Any) -> None:
        if not isinstance(data, bytes):
            return
        if channel == self._watching_channel.encode():
            presence = _decode_presence(data)
            if presence.worker == self._hub.worker:
                return
            if presence.watching:
                self._watchers[presence.worker] = self._clock() + self._presence_ttl
            else:
                self._watchers.pop(presence.worker, None)
            self._hub.remote_watching(bool(self._watchers))
        elif channel == self._traces_channel.encode() and self._subscribed:
            relayed = _decode_traces(data)
            if relayed.worker != self._hub.worker:
                _received.inc()
                self._hub.deliver(relayed.traces)

    def _forget_lapsed(self, now: float) -> None:
        if not self._watchers:
            return
        lapsed = [worker for worker, until in self._watchers.items() if until <= now]
        for worker in lapsed:
            del self._watchers[worker]
        if lapsed:
            self._hub.remote_watching(bool(self._watchers))

    # -- the publisher ---------------------------------------------------------------------

    async def _publish_forever(self) -> None:
        """One message at a time, with whatever arrived while the last one was on its way: the
        busier the worker, the more summaries each message carries."""
        outbox = self._outbox
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while outbox and self._client is not None:
                batch = [outbox.popleft() for _ in range(min(len(outbox), BATCH_LIMIT))]
                data = msgspec.json.encode(RelayedTraces(worker=self._hub.worker, traces=batch))
                try:
                    await self._client.publish(self._traces_channel, data)
                except (RedisError, OSError) as error:
                    self._went_away(error)
                    break
                _sent.inc()

    # -- outages ---------------------------------------------------------------------------

    def _went_away(self, error: BaseException) -> None:
        self._connected = False
        self._outbox.clear()
        if self._watchers:
            self._watchers.clear()
            self._hub.remote_watching(False)
        if not self._outage:
            logger.warning(
                "live feed: Redis is unavailable (%s); until it answers, live viewers see the "
                "requests of the worker they are connected to only",
                type(error).__name__,
            )
            self._outage = True

    def _came_back(self) -> None:
        self._connected = True
        if self._outage:
            logger.warning("live feed: Redis answers again; live viewers see every worker")
            self._outage = False
