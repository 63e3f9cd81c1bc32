"""A loopback TCP forwarder a test or benchmark can cut, stall, slow down and restore: a database
or Redis outage without touching the server.

It listens on 127.0.0.1 and relays every connection to a target address.

- `cut()` closes the listener and every relayed connection: clients see their connections drop
  and new ones refused, as when the server goes away.
- `stall()` keeps every connection open and relays nothing, either way, until `restore()`: new
  connections are accepted and wait too. Clients see a server that stopped answering (a network
  partition, a frozen host), the case only a timeout ends. Nothing is lost: what waits is
  relayed once the stall ends, as TCP would deliver it once a partition heals.
- `slow(delay)` relays everything, each chunk `delay` seconds after it arrived, in both
  directions (a round trip takes twice that); chunks keep their order and the delay does not add
  up across them (a link with latency, not a slow pipe).
- `restore()` listens again (after a cut) and relays at full speed (after a stall or slow).

`TcpForwarder` runs its own event loop in a thread, so synchronous tests (driving a gateway in
a subprocess) and async tests (on their own loop) use it alike. `ForwarderProcess` is the same
forwarder in a process of its own (`python -m benchmarks.forwarder`), driven through its
standard input: a harness busy with a load of its own would otherwise slow the relaying down
(threads share one interpreter lock) and make faults of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")
_CHUNK = 65536


def target_of(url: str, default_port: int) -> tuple[str, int]:
    """The host and port of a URL such as `postgresql://user@host:5432/db`."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def through(port: int, url: str) -> str:
    """`url` with its host and port replaced by 127.0.0.1 and `port`."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{port}"))


class TcpForwarder:
    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or _free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()
        self._closing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.delay = 0.0
        self.connections = 0

    @classmethod
    def for_url(cls, url: str, default_port: int = 5432) -> TcpForwarder:
        """A forwarder to the host and port of a URL such as `postgresql://user@host:5432/db`."""
        return cls(*target_of(url, default_port))

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the forwarder's."""
        return through(self.port, url)

    def start(self) -> TcpForwarder:
        self._thread.start()
        self.restore()
        return self

    def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        self._run(self._cut())

    def stall(self) -> None:
        """Accept connections but relay nothing on any of them until `restore()`."""
        self._run(self._set_flow(flowing=False, delay=self.delay))

    def slow(self, delay: float) -> None:
        """Relay each chunk `delay` seconds after it arrived, in both directions."""
        self._run(self._set_flow(flowing=True, delay=max(0.0, delay)))

    def restore(self) -> None:
        """Listen again and relay at full speed."""
        self._run(self._restore())

    def close(self) -> None:
        if self._thread.is_alive():
            self._run(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> TcpForwarder:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _restore(self) -> None:
        await self._set_flow(flowing=True, delay=0.0)
        if self._server is None:
            self._server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.port, reuse_address=True
            )

    async def _set_flow(self, *, flowing: bool, delay: float) -> None:
        self.delay = delay
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _close(self) -> None:
        """Drop everything and let every relay end (a stalled one too) before the loop stops."""
        self._closing = True
        self._flowing.set()
        await self._cut()
        relays = [task for task in self._relays if not task.done()]
        if relays:
            _, stragglers = await asyncio.wait(relays, timeout=5)
            for task in stragglers:
                task.cancel()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection (a task of the stream server's own: it must not raise)."""
        task = asyncio.current_task()
        if task is not None:
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)
        self.connections += 1
        self._writers.add(writer)
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay_to_target(reader, writer)
        writer.transport.abort()
        self._writers.discard(writer)

    async def _relay_to_target(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._flowing.wait()
        if self._closing:
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            return
        self._writers.add(upstream_writer)
        try:
            await asyncio.gather(
                self._pump(reader, upstream_writer), self._pump(upstream_reader, writer)
            )
        finally:
            upstream_writer.transport.abort()
            self._writers.discard(upstream_writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Relay one direction. Chunks wait out their delay in a queue, so reading goes on while
        earlier chunks are held back; during a stall nothing is read or written."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await pending.get()
                if not data:
                    return
                await self._flowing.wait()
                wait = due + self.delay - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()

        delivering = loop.create_task(deliver())
        with contextlib.suppress(OSError, asyncio.CancelledError):
            try:
                while True:
                    await self._flowing.wait()  # stalled: the sender's buffers fill, as they would
                    data = await reader.read(_CHUNK)
                    if not data:
                        break
                    pending.put_nowait((loop.time(), data))
                    if delivering.done():
                        break
                pending.put_nowait((loop.time(), b""))
                await delivering
            finally:
                delivering.cancel()
        writer.transport.abort()


class ForwarderProcess:
    """A `TcpForwarder` in a child process, with the same methods. The child exits when its
    standard input closes, so it never outlives the process that started it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        argv = [sys.executable, "-m", "benchmarks.forwarder"]
        self._process = subprocess.Popen(
            [*argv, target_host, str(target_port), str(self.port)],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self._expect("ready")

    @classmethod
    def for_url(cls, url: str, default_port: int = 5432) -> ForwarderProcess:
        return cls(*target_of(url, default_port))

    def url(self, url: str) -> str:
        return through(self.port, url)

    def cut(self) -> None:
        self._command("cut")

    def stall(self) -> None:
        self._command("stall")

    def slow(self, delay: float) -> None:
        self._command(f"slow {delay}")

    def restore(self) -> None:
        self._command("restore")

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                self._command("close")
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()

    def _command(self, line: str) -> None:
        assert self._process.stdin is not None
        with self._lock:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
            self._expect("ok")

    def _expect(self, word: str) -> None:
        assert self._process.stdout is not None
        answer = self._process.stdout.readline().strip()
        if answer != word:
            raise RuntimeError(f"forwarder process answered {answer!r}, not {word!r}")


def serve_commands(target_host: str, target_port: int, port: int) -> None:
    """The child's side: a forwarder on `port`, one command a line on standard input."""
    with TcpForwarder(target_host, target_port, port) as forwarder:
        print("ready", flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "close":
                print("ok", flush=True)
                return
            if command == "slow":
                forwarder.slow(float(argument))
            else:
                {"cut": forwarder.cut, "stall": forwarder.stall, "restore": forwarder.restore}[
                    command
                ]()
            print("ok", flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    serve_commands(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
