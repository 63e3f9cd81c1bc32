"""What the event-loop lag probe costs, on an idle and on a saturated uvloop loop.

`python -m benchmarks.loop_lag_cost [--seconds 10] [--rounds 3]`. Each round, with the probe (as
the gateway starts it: 10 ms interval, Prometheus histogram and gauge) and without it:

- idle: the loop has nothing else to do; the process CPU time of each, the difference per
  second (the share of one core the probe takes) and per wake-up. Each wake-up is a return from
  `epoll_wait`, so this is the probe's cost at its worst.
- busy: the loop never sleeps (a chain of `call_soon` callbacks, as under saturation, when the
  probe's timer is checked in passing); callbacks per CPU second of the process, with and
  without, and the share lost to the probe (per CPU second, so that other work on a shared
  machine, which takes wall time, not this process's CPU time, matters less).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import uvloop

from telemetry.loop_lag import LoopLagProbe


async def idle(seconds: float, with_probe: bool) -> tuple[float, int]:
    """CPU seconds the process used while the loop idled `seconds`, and the probe's wake-ups."""
    probe = LoopLagProbe() if with_probe else None
    started = time.process_time()
    if probe is not None:
        probe.start()
    await asyncio.sleep(seconds)
    if probe is not None:
        await probe.stop()
    return time.process_time() - started, probe.wakeups if probe is not None else 0


async def busy(seconds: float, with_probe: bool) -> float:
    """Callbacks per CPU second of a loop that never sleeps, for `seconds`, with or without."""
    loop = asyncio.get_running_loop()
    done = 0
    deadline = time.perf_counter() + seconds
    finished = loop.create_future()

    def step() -> None:
        nonlocal done
        done += 1
        if done % 1000 == 0 and time.perf_counter() >= deadline:
            finished.set_result(None)
        else:
            loop.call_soon(step)

    probe = LoopLagProbe() if with_probe else None
    if probe is not None:
        probe.start()
    started = time.process_time()
    loop.call_soon(step)
    await finished
    used = time.process_time() - started
    if probe is not None:
        await probe.stop()
    return done / used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop_lag_cost")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    per_second: list[float] = []
    per_wakeup: list[float] = []
    busy_loss: list[float] = []
    for index in range(args.rounds):
        with_cpu, wakeups = uvloop.run(idle(args.seconds, True))
        without_cpu, _ = uvloop.run(idle(args.seconds, False))
        extra = with_cpu - without_cpu
        per_second.append(extra / args.seconds)
        per_wakeup.append(extra / wakeups if wakeups else float("nan"))
        print(
            f"round {index + 1}: with probe {with_cpu * 1000:.1f} ms CPU ({wakeups} wake-ups), "
            f"without {without_cpu * 1000:.1f} ms, over {args.seconds:g} s",
            flush=True,
        )
        with_done = uvloop.run(busy(args.seconds, True))
        without_done = uvloop.run(busy(args.seconds, False))
        busy_loss.append(1 - with_done / without_done)
        print(
            f"round {index + 1}: busy loop {with_done:,.0f} callbacks per CPU second with the "
            f"probe, {without_done:,.0f} without ({busy_loss[-1] * 100:+.2f}% lost)",
            flush=True,
        )
    print(
        f"median: {statistics.median(per_second) * 100:.3f}% of one core, "
        f"{statistics.median(per_wakeup) * 1e6:.1f} µs CPU per wake-up when idle; busy loop: "
        f"{statistics.median(busy_loss) * 100:+.2f}% of callbacks lost (rounds: "
        + ", ".join(f"{loss * 100:+.2f}%" for loss in busy_loss)
        + ")"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
