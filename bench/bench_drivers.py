"""Why two async drivers: the native asyncio pool against anyio's pool, on the same loop.

    python bench/bench_drivers.py

A warm 10- and 100-record invocation with no-op async handlers, awaited on one asyncio loop,
once with the native driver and once with anyio's (forced); interleaved rounds, best of each.
Also the cold cost the native path avoids: importing anyio's asyncio backend in a fresh
interpreter.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import anybatch._engine as engine
from anybatch import AsyncBatchProcessor, EventType, async_process_partial_response
from anybatch.testing import sqs_event


async def handler(record: Any) -> None:
    return None


def timed(event: dict[str, Any], processor: Any, loop: asyncio.AbstractEventLoop) -> float:
    n = 2000 if len(event["Records"]) <= 10 else 300
    started = time.perf_counter()
    for _ in range(n):
        loop.run_until_complete(async_process_partial_response(event, handler, processor))
    return (time.perf_counter() - started) / n


def main() -> None:
    loop = asyncio.new_event_loop()
    native = engine.asyncio_running
    rows = []
    for size in (10, 100):
        event = sqs_event([str(i) for i in range(size)])
        processor = AsyncBatchProcessor(EventType.SQS)
        best = {"native asyncio": float("inf"), "anyio on asyncio": float("inf")}
        for _ in range(5):  # interleaved rounds
            engine.asyncio_running = native  # type: ignore[assignment]
            best["native asyncio"] = min(best["native asyncio"], timed(event, processor, loop))
            engine.asyncio_running = lambda: False  # type: ignore[assignment]
            best["anyio on asyncio"] = min(best["anyio on asyncio"], timed(event, processor, loop))
        engine.asyncio_running = native  # type: ignore[assignment]
        ratio = best["anyio on asyncio"] / best["native asyncio"]
        rows.append((size, best["native asyncio"], best["anyio on asyncio"], ratio))
    loop.close()
    code = "import time; t=time.perf_counter(); import anyio._backends._asyncio; "
    code += "print(time.perf_counter()-t)"
    imports = sorted(
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(5)
    )
    print("records  native asyncio  anyio on asyncio  anyio / native")
    for size, fast, slow, ratio in rows:
        print(f"{size:>7}  {fast * 1e6:>11.1f} µs  {slow * 1e6:>13.1f} µs  {ratio:>13.2f}x")
    print(f"cold: importing anyio's asyncio backend costs {imports[2] * 1e3:.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
