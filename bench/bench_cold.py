"""Cold starts: a whole fresh process that imports the library and runs one 100-record batch.

A Lambda cold start pays the interpreter, the imports and the first invocation. Each sample
here is one new ``python`` process, timed from outside, running one of:

* ``async``: anybatch's ``@as_lambda_handler`` ``async def`` awaiting
  ``async_process_partial_response`` with ``AsyncBatchProcessor(EventType.SQS)``;
  Powertools' ``async_process_partial_response`` with its ``AsyncBatchProcessor`` (with
  ``LAMBDA_TASK_ROOT`` set, as on Lambda);
* ``sync``: ``process_partial_response`` with ``BatchProcessor(EventType.SQS)``, both;
* ``bare``: the same script with no library: read the event, call a no-op handler per record.

Every script reads the same 100-record SQS event from a JSON file. The figure is the median
*excess over bare* (the interpreter's own start is not the library's), in alternating runs,
with bytecode cached as a pip install leaves it (see ``bench_import``). Goal: async ≤ 0.8x.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, fmt_time, info_row, main, ratio_row, say
from bench_import import bytecode_env

from anybatch.testing import sqs_event

RUNS = 15
RECORDS = 100
GOAL = 0.8

PROLOGUE = """
import json, sys
event = json.load(open(sys.argv[1]))
"""

SCRIPTS = {
    ("bare", "-"): PROLOGUE
    + """
def handler(record):
    pass
for record in event["Records"]:
    handler(record)
""",
    ("async", "anybatch"): PROLOGUE
    + """
from anybatch import (
    AsyncBatchProcessor, EventType, as_lambda_handler, async_process_partial_response
)
processor = AsyncBatchProcessor(EventType.SQS)
async def record_handler(record):
    pass
@as_lambda_handler
async def lambda_handler(event, context):
    return await async_process_partial_response(event, record_handler, processor, context)
assert lambda_handler(event, None) == {"batchItemFailures": []}
""",
    ("async", "Powertools"): PROLOGUE
    + """
import os
os.environ["LAMBDA_TASK_ROOT"] = "/var/task"
import warnings
warnings.simplefilter("ignore", DeprecationWarning)
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor, EventType, async_process_partial_response
)
processor = AsyncBatchProcessor(event_type=EventType.SQS)
async def record_handler(record):
    pass
def lambda_handler(event, context):
    return async_process_partial_response(event, record_handler, processor, context)
assert lambda_handler(event, None) == {"batchItemFailures": []}
""",
    ("sync", "anybatch"): PROLOGUE
    + """
from anybatch import BatchProcessor, EventType, process_partial_response
processor = BatchProcessor(EventType.SQS)
def record_handler(record):
    pass
def lambda_handler(event, context):
    return process_partial_response(event, record_handler, processor, context)
assert lambda_handler(event, None) == {"batchItemFailures": []}
""",
    ("sync", "Powertools"): PROLOGUE
    + """
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor, EventType, process_partial_response
)
processor = BatchProcessor(event_type=EventType.SQS)
def record_handler(record):
    pass
def lambda_handler(event, context):
    return process_partial_response(event, record_handler, processor, context)
assert lambda_handler(event, None) == {"batchItemFailures": []}
""",
}


def time_process(script: Path, event: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(event)], env=env, check=True)
    return time.perf_counter() - start


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        event = folder / "event.json"
        event.write_text(json.dumps(sqs_event(f"message {i}" for i in range(RECORDS))))
        scripts: dict[tuple[str, str], Path] = {}
        for (path, library), code in SCRIPTS.items():
            script = scripts[path, library] = folder / f"{path}_{library}.py".replace("-", "x")
            script.write_text(code)
        env = bytecode_env(str(folder / "pycache"))
        env.pop("ANYBATCH_EVENT_LOOP", None)
        for script in scripts.values():  # untimed: fills the bytecode cache
            time_process(script, event, env)
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in scripts}
        keys = list(scripts)
        for round_ in range(RUNS):
            for key in keys[round_ % len(keys) :] + keys[: round_ % len(keys)]:
                samples[key].append(time_process(scripts[key], event, env))
    bare = statistics.median(samples["bare", "-"])
    say(
        f"fresh processes: import + one {RECORDS}-record batch; median of {RUNS} alternating "
        f"runs; bare interpreter {fmt_time(bare)}"
    )
    rows: list[Row] = [
        info_row("cold: bare interpreter (reads the event)", bare, None, fmt_time(bare))
    ]
    for path in ("async", "sync"):
        ab = statistics.median(samples[path, "anybatch"]) - bare
        pt = statistics.median(samples[path, "Powertools"]) - bare
        say(
            f"  {path:<6} anybatch +{fmt_time(ab)}   Powertools +{fmt_time(pt)}   "
            f"ratio {ab / pt:.3f}x   (whole process: "
            f"{fmt_time(ab + bare)} vs {fmt_time(pt + bare)})"
        )
        rows.append(
            ratio_row(
                f"cold start, {path} path: excess over bare python",
                ab,
                pt,
                goal_max=GOAL if path == "async" else None,
                note=f"fresh process: import + one {RECORDS}-record batch; bare python "
                f"{fmt_time(bare)} subtracted",
            )
        )
    return rows


if __name__ == "__main__":
    os.environ.pop("LAMBDA_TASK_ROOT", None)
    main("bench_cold: cold starts as whole fresh processes", run)
