"""Import cost (a Lambda cold start pays it): anybatch vs Powertools' batch utility.

Each measurement is a fresh interpreter running one of these under ``-X importtime``
(the same two names from each library)::

    from anybatch import AsyncBatchProcessor, async_process_partial_response
    from aws_lambda_powertools.utilities.batch import (
        AsyncBatchProcessor, async_process_partial_response)

The figure is the sum of the *cumulative* microseconds of the top-level entries (one space of
indent after the ``|``), leaving out the modules the interpreter imports at startup anyway
(those that ``python -X importtime -c pass`` lists: ``site``, ``encodings``...), so that only
what the statement itself costs is counted. Runs alternate between the two statements; the
median is kept (a cold start is one sample, not the best case), the best is printed too.

Bytecode: both libraries are loaded from cached bytecode, as they are once pip-installed
(pip compiles ``.pyc`` files; a Lambda package built with pip ships them). The subprocesses use
a private ``PYTHONPYCACHEPREFIX`` (a temporary directory) with bytecode writing allowed, filled
by one untimed run of each statement. Without that, an environment with
``PYTHONDONTWRITEBYTECODE=1`` and an editable install compiles anybatch from source on every
run while Powertools' site-packages ``.pyc`` files are used: an unfair comparison. Nothing is
written next to the sources.

A second check imports anybatch in a fresh interpreter and lists the heavy packages it must not
import (pydantic, botocore, aiobotocore, httpx, trio).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping

from _common import Row, Samples, fmt_ratio, fmt_time, info_row, main, ratio_row, say

RUNS = 15
GOAL = 1 / 3
ANYBATCH = "from anybatch import AsyncBatchProcessor, async_process_partial_response"
POWERTOOLS = (
    "from aws_lambda_powertools.utilities.batch import "
    "AsyncBatchProcessor, async_process_partial_response"
)
FORBIDDEN = ("pydantic", "botocore", "aiobotocore", "httpx", "trio")
#: Not forbidden, but worth knowing about: the design keeps them lazy too.
WATCHED = ("anyio", "typing_extensions", "boto3", "aiohttp", "asyncio", "inspect")

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)\s*$")


def bytecode_env(cache_dir: str) -> dict[str, str]:
    """The environment of the subprocesses: bytecode cached in *cache_dir*, for everyone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def importtime(statement: str, env: Mapping[str, str]) -> list[tuple[int, int, str]]:
    """``(cumulative µs, depth, module)`` of each import made by a fresh ``python -c``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    entries = []
    for line in proc.stderr.splitlines():
        match = _LINE.match(line)
        if match:
            entries.append((int(match[2]), len(match[3]) // 2, match[4]))
    return entries


def top_level_cost(statement: str, startup: frozenset[str], env: Mapping[str, str]) -> float:
    """Seconds: cumulative import time of the top-level imports *statement* makes."""
    micros = sum(
        cumulative
        for cumulative, depth, name in importtime(statement, env)
        if depth == 0 and name not in startup
    )
    return micros / 1e6


def imported_modules(statement: str) -> set[str]:
    """The names in ``sys.modules`` after running *statement* in a fresh interpreter."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(proc.stdout))


def _has(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache_dir:
        env = bytecode_env(cache_dir)
        startup = frozenset(name for _, depth, name in importtime("pass", env) if depth == 0)
        # One untimed run each: bytecode is cached, the OS file cache is warm.
        importtime(ANYBATCH, env)
        importtime(POWERTOOLS, env)
        costs: dict[str, list[float]] = {"anybatch": [], "Powertools": []}
        for i in range(RUNS):
            order = [("anybatch", ANYBATCH), ("Powertools", POWERTOOLS)]
            for name, statement in order if i % 2 == 0 else order[::-1]:
                costs[name].append(top_level_cost(statement, startup, env))
    ab = Samples("anybatch", tuple(costs["anybatch"]))
    pt = Samples("Powertools", tuple(costs["Powertools"]))
    say(
        f"-X importtime, top-level cumulative, startup modules excluded; {RUNS} fresh "
        "interpreters each, alternating; bytecode cached for both"
    )
    say(f"  anybatch   median {fmt_time(ab.median)}  best {fmt_time(ab.best)}")
    say(f"  Powertools median {fmt_time(pt.median)}  best {fmt_time(pt.best)}")
    say(
        f"  ratio (median) {fmt_ratio(ab.median / pt.median)}  "
        f"(best) {fmt_ratio(ab.best / pt.best)}"
    )

    modules = imported_modules(ANYBATCH + "\nimport anybatch")
    pt_modules = imported_modules(POWERTOOLS)
    new = {m for m in modules if not m.startswith("anybatch")}
    found = [p for p in FORBIDDEN if _has(modules, p)]
    say(
        f"  modules after importing anybatch: {len(modules)} "
        f"(Powertools' batch utility: {len(pt_modules)})"
    )
    for package in FORBIDDEN:
        say(f"    {package:<18} {'IMPORTED (forbidden)' if _has(modules, package) else 'no'}")
    for package in WATCHED:
        say(f"    {package:<18} {'imported' if _has(new, package) else 'no'}  (watched)")

    return [
        ratio_row(
            "import: the two public names",
            ab.median,
            pt.median,
            goal_max=GOAL,
            note=f"median of {RUNS} fresh interpreters, -X importtime top-level cumulative, "
            "cached bytecode for both",
        ),
        Row(
            "import: heavy deps not imported",
            None,
            None,
            measured="none" if not found else ",".join(found),
            goal=f"none of {len(FORBIDDEN)}",
            ok=not found,
        ),
        info_row(
            "import: modules in sys.modules",
            None,
            None,
            f"{len(modules)} vs {len(pt_modules)}",
        ),
    ]


if __name__ == "__main__":
    main("bench_import: import cost", run)
