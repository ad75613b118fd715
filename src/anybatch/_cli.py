"""The ``anybatch`` command: Lambda handlers on event files, record handlers on SQS queues.

``anybatch run`` invokes a Lambda handler on an event file, as Lambda would; ``anybatch
worker`` runs a record handler on an SQS queue, outside Lambda.

Exit status: 0 the response was printed; 1 the handler (or the module it lives in) raised;
2 a usage error (arguments, the event file, the handler's name). Mistakes get one line that
says what to do, never a traceback of anybatch's own frames.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, cast

__all__ = ["UsageError", "load_handler", "load_object", "main"]

EXAMPLE = "examples.sqs_handler:lambda_handler"

EPILOG = """\
example:
  anybatch run examples/events/sqs.json examples.sqs_handler:lambda_handler

exit status: 0 the response was printed, 1 the handler raised or returned what Lambda
cannot send (a coroutine, a value JSON cannot hold), 2 a usage error.
"""


WORKER_EPILOG = """\
example:
  anybatch worker https://sqs.us-east-1.amazonaws.com/123456789012/orders \\
      examples.worker_handler:record_handler --concurrency 50

exit status: 0 stopped by a signal after draining, 1 the worker failed (the queue does not
exist, access is denied...), 2 a usage error, 128 + N stopped at once by a second signal N.
"""


class UsageError(Exception):
    """A mistake in how the command was called: printed as one line, exit status 2."""


def _not_found(module_name: str, exc: ImportError) -> UsageError | None:
    """A :class:`UsageError` when *module_name* itself (not one of its imports) is missing."""
    missing = getattr(exc, "name", None)
    if not missing or module_name.split(".")[0] != str(missing).split(".")[0]:
        return None
    return UsageError(
        f"cannot import {module_name!r} from the current directory ({os.getcwd()}): run "
        "anybatch from the directory that holds the module (the task root), or add it to "
        "PYTHONPATH"
    )


def _user_traceback(exc: BaseException) -> str:
    """The traceback of *exc* without the frames of anybatch and of the import machinery."""
    te = traceback.TracebackException.from_exception(exc)
    hidden = (
        os.path.dirname(os.path.abspath(__file__)) + os.sep,
        os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep,
    )
    te.stack = traceback.StackSummary.from_list(
        [
            frame
            for frame in te.stack
            if not os.path.abspath(frame.filename).startswith(hidden)
            and not frame.filename.startswith("<frozen importlib")
        ]
    )
    return "".join(te.format())


class _ModuleFailed(Exception):
    """Importing the handler's module raised: the user's traceback, exit status 1."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def load_handler(spec: str) -> Any:
    """Import ``module:function`` (or Lambda's ``module.function``) and return the function.

    The current directory is importable, as the task root is in Lambda. Raises
    :class:`UsageError` for a name that cannot be a handler.
    """
    handler, module_name = _load(spec)
    if not callable(handler):
        raise UsageError(f"{spec} is not a function (it is a {type(handler).__name__})")
    _refuse_record_handler(spec, handler, module_name)
    return handler


def load_object(spec: str, what: str = "a record handler") -> Any:
    """Import ``module:name`` and return what it names (a record handler, a processor)."""
    found, _ = _load(spec, default=None, what=what)
    return found


def _load(spec: str, default: str | None = "lambda_handler", what: str = "HANDLER") -> Any:
    path = spec.partition(":")[0]
    if path.endswith(".py") or "/" in path or os.sep in path:
        dotted = path.removesuffix(".py").replace(os.sep, ".").replace("/", ".").strip(".")
        attr = spec.partition(":")[2] or default or "record_handler"
        shape = "module:function" if default else "module:name"
        raise UsageError(f"{what} is {shape}, not a file path: use {dotted}:{attr}")
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        like = EXAMPLE if default else "examples.worker_handler:record_handler"
        shape = "module:function" if default else "module:name"
        raise UsageError(f"{what} must look like {shape} (like {like}), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        usage = _not_found(module_name, exc)
        if usage is not None:
            raise usage from None
        raise _ModuleFailed(_user_traceback(exc)) from None
    except Exception as exc:  # a syntax error, or the module's own code raised
        raise _ModuleFailed(_user_traceback(exc)) from None
    try:
        handler = getattr(module, attr)
    except AttributeError:
        names = [n for n, v in vars(module).items() if callable(v) and "handler" in n.lower()]
        hint = f"; it has {', '.join(sorted(names))}" if names else ""
        raise UsageError(f"module {module_name!r} has no {attr!r}{hint}") from None
    return handler, module_name


def _refuse_record_handler(spec: str, handler: Any, module_name: str) -> None:
    """A Lambda handler takes (event, context): one that takes one argument is a record's."""
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters) or len(positional) != 1:
        return
    raise UsageError(
        f"{spec} takes one argument: it looks like a record handler; give the Lambda "
        f"handler, which takes (event, context), like {module_name}:lambda_handler"
    )


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def _read_event(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        raise UsageError(
            f"{path} is empty: an event is a JSON object, like examples/events/sqs.json"
        )
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise UsageError(
            f"the event in {path} must be a JSON object with a 'Records' list, "
            f"got {type(event).__name__}"
        )
    return cast("dict[str, Any]", event)


_LABELS = {
    "success": "succeeded",
    "failed": "failed",
    "timed_out": "timed out",
    "deadline": "stopped by the deadline",
    "skipped": "skipped",
}


class _Tally:
    """Counts the outcomes of every batch the handler processes, for the summary line."""

    def __init__(self) -> None:
        self.batches = 0
        self.records = 0
        self.statuses: dict[str, int] = {}

    def __call__(self, result: Any) -> None:
        self.batches += 1
        for outcome in result:
            self.records += 1
            name = outcome.status.value
            self.statuses[name] = self.statuses.get(name, 0) + 1

    def line(self, seconds: float) -> str:
        took = f"{seconds * 1000:.1f} ms"
        if not self.batches:
            return f"anybatch: the handler returned without processing a batch ({took})"
        counts = ", ".join(
            f"{self.statuses[name]} {label}"
            for name, label in _LABELS.items()
            if self.statuses.get(name)
        )
        records = "1 record" if self.records == 1 else f"{self.records} records"
        batches = "" if self.batches == 1 else f" in {self.batches} batches"
        return f"anybatch: {records}{batches}: {counts or 'none'} ({took})"


class _Stderr:
    """Stands for stdout while the handler's code runs: writes go to the stderr of the moment.

    A stream bound at import (Powertools' ``Logger`` keeps ``sys.stdout``) then follows
    ``sys.stderr`` wherever it is later pointed, as in a test that calls :func:`main` twice.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def writelines(self, lines: Any) -> None:
        sys.stderr.writelines(lines)

    def flush(self) -> None:
        sys.stderr.flush()

    def __getattr__(self, name: str) -> Any:  # buffer, fileno, isatty, encoding...
        return getattr(sys.stderr, name)


def _lambda_default(value: Any) -> Any:
    # What Lambda's own encoder adds to JSON: Decimal numbers (it writes them as numbers).
    from decimal import Decimal

    if isinstance(value, Decimal):
        whole = value.is_finite() and value == value.to_integral_value()
        return int(value) if whole else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _marshal_error(handler: Any, spec: str, result: Any, exc: Exception) -> str:
    """The line for a result Lambda's runtime cannot send back: what Lambda says, and the fix."""
    said = f"on Lambda this fails: Runtime.MarshalError: Unable to marshal response: {exc}"
    if inspect.iscoroutinefunction(handler):
        return f"{said}; Lambda never awaits a handler: decorate {spec} with @as_lambda_handler"
    if inspect.isawaitable(result):
        return (
            f"{said}; Lambda does not await what {spec} returns: make it an async def that awaits "
            "it, decorated with @as_lambda_handler, or call the blocking process_partial_response"
        )
    return f"{said}; return only JSON values: dict, list, str, int, float, bool, None"


def _run(args: argparse.Namespace) -> int:
    from contextlib import redirect_stdout

    from ._exceptions import InvalidEventError
    from ._invocation import observing_results
    from .testing import fake_lambda_context

    # What the module and the handler print goes to stderr: on Lambda it goes to the logs,
    # never into the response, which alone is written to stdout.
    try:
        event = _read_event(args.event)
        with redirect_stdout(_Stderr()):
            handler = load_handler(args.handler)
    except UsageError as exc:
        print(f"anybatch: {exc}", file=sys.stderr)
        return 2
    except _ModuleFailed as exc:
        print(exc.text, end="", file=sys.stderr)
        return 1
    context = fake_lambda_context(args.timeout, function_name=args.function_name)
    tally = _Tally()
    started = time.perf_counter()
    try:
        # observing_results counts the outcomes of the batches the handler runs.
        with redirect_stdout(_Stderr()), observing_results(tally):
            result = handler(event, context)
    except InvalidEventError as exc:
        print(f"anybatch: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(_user_traceback(exc), end="", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    # Lambda's runtime never awaits a result: it serializes it, and a coroutine fails there.
    if isinstance(result, bytes):  # sent as it is, as Lambda's runtime sends bytes
        sys.stdout.flush()
        sys.stdout.buffer.write(result + b"\n")
        sys.stdout.flush()
    else:
        try:
            text = json.dumps(result, indent=args.indent or None, default=_lambda_default)
        except (TypeError, ValueError) as exc:
            line = _marshal_error(handler, args.handler, result, exc)
            print(f"anybatch: {line}", file=sys.stderr)
            if inspect.iscoroutine(result):
                result.close()  # never awaited, as on Lambda: no "never awaited" warning
            return 1
        print(text)
    if not args.quiet:
        print(tally.line(elapsed), file=sys.stderr)
    return 0


def _worker(args: argparse.Namespace) -> int:
    """``anybatch worker``: consume a queue until SIGTERM or SIGINT."""
    from ._exceptions import MissingDependencyError

    single = args.processes == 1
    try:
        try:
            from .sqs._command import make_worker
            from .sqs._serve import log_to_stderr, serve
        except MissingDependencyError as exc:
            raise UsageError(str(exc)) from None
        if not args.quiet:
            log_to_stderr()
        # Every setting checked, and the handler loaded, before any process starts.
        worker = make_worker(args, load_object, metrics_host="0.0.0.0" if single else None)
    except (UsageError, TypeError, ValueError) as exc:  # the worker's settings say what is wrong
        print(f"anybatch: {exc}", file=sys.stderr)
        return 2
    except _ModuleFailed as exc:
        print(exc.text, end="", file=sys.stderr)
        return 1
    if single:
        return serve(worker)
    from .sqs._supervisor import Supervisor

    supervisor = Supervisor(_worker_process, (args,), args.processes, health_file=args.health_file)
    if args.metrics_port is not None:
        from .sqs._metrics import ChildrenCollector, serve_collector

        serve_collector(ChildrenCollector(supervisor.metrics_ports), args.metrics_port)
    code = supervisor.run()
    if supervisor.failure is not None:
        print(f"anybatch: {supervisor.failure}", file=sys.stderr)
    return code


def _worker_process(number: int, conn: Any, args: argparse.Namespace) -> int:
    """One worker process of ``--processes N``: its own health file and loopback metrics."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor forwards the terminal's
    from .sqs._command import make_worker
    from .sqs._serve import log_to_stderr, serve

    if not args.quiet:
        log_to_stderr(f"anybatch worker {number}")
    if args.health_file is not None:
        args.health_file = f"{args.health_file}.{number}"

    def report(kind: str, value: object) -> None:
        conn.send((kind, value))

    worker = make_worker(args, load_object, metrics_host="127.0.0.1", report=report)
    raise SystemExit(serve(worker, signals=(signal.SIGTERM,), report=report, watch_parent=True))


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _processes(text: str) -> int:
    if text == "auto":
        affinity = getattr(os, "sched_getaffinity", None)  # the CPUs this process may use
        return len(affinity(0)) if affinity else os.cpu_count() or 1
    try:
        return _count(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a number >= 1 or auto, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (exit status 2)."""

    def error(self, message: str) -> Any:
        self.exit(2, f"anybatch: {message} (see: {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="anybatch",
        description="Partial batch processing for AWS Lambda.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"anybatch {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    run = commands.add_parser(
        "run",
        help="invoke a Lambda handler on an event file and print its response",
        description="Invoke HANDLER(event, context) with the event in EVENT and a fake Lambda\n"
        "context, then print what it returns as JSON on stdout, and a summary line on\n"
        "stderr. As on Lambda, a result is never awaited: it must serialize as JSON.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("event", metavar="EVENT", help="a JSON file holding the event")
    run.add_argument(
        "handler",
        metavar="HANDLER",
        help=f"the Lambda handler, as module:function (or module.function), e.g. {EXAMPLE}",
    )
    run.add_argument(
        "--timeout",
        type=_timeout,
        default=30.0,
        metavar="SECONDS",
        help="the invocation's timeout, > 0 (default 30): it sets the deadline",
    )
    run.add_argument(
        "--function-name",
        default="anybatch-function",
        metavar="NAME",
        help="the context's function_name (default anybatch-function)",
    )
    run.add_argument(
        "--indent",
        type=int,
        default=2,
        metavar="N",
        help="JSON indentation of the response, 0 for one line (default 2)",
    )
    run.add_argument(
        "--quiet", "-q", action="store_true", help="print only the response: no summary line"
    )
    worker = commands.add_parser(
        "worker",
        help="consume an SQS queue with a record handler, outside Lambda, until stopped",
        description="Long-poll QUEUE_URL and run each message through HANDLER, the record\n"
        "handler of a Lambda function, under the same processor rules. Successes are\n"
        "deleted; failures come back. SIGTERM or SIGINT stops receiving and lets the\n"
        "messages in flight finish (--drain-timeout); a second signal stops at once.",
        epilog=WORKER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument("queue_url", metavar="QUEUE_URL", help="the queue's URL")
    worker.add_argument(
        "handler",
        metavar="HANDLER",
        help="the record handler, as module:function, e.g. examples.worker_handler:record_handler",
    )
    worker.add_argument(
        "--processor",
        metavar="MODULE:NAME",
        help="a processor of the module (AsyncBatchProcessor(EventType.SQS, ...) or "
        "BatchProcessor(...)); by default one is made for the handler",
    )
    worker.add_argument(
        "--concurrency",
        type=_count,
        metavar="N",
        help="records handled at once per batch (default: 100 async, 10 threads for sync)",
    )
    worker.add_argument(
        "--record-timeout", type=_timeout, metavar="SECONDS", help="each record's time limit"
    )
    worker.add_argument(
        "--max-in-flight",
        type=_count,
        metavar="N",
        help="messages received and not yet settled, at most (default: the concurrency)",
    )
    worker.add_argument(
        "--pollers", type=_count, metavar="N", help="receives at once (default: enough to fill)"
    )
    worker.add_argument(
        "--wait-time",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="long polling, 0 to 20 seconds (default 20)",
    )
    worker.add_argument(
        "--visibility-timeout",
        type=_count,
        metavar="SECONDS",
        help="asked for on each receive and extended while a message runs (default: the "
        "queue's, read at start)",
    )
    worker.add_argument(
        "--failed-visibility-timeout",
        metavar="SECONDS|exponential[:BASE[:CAP]]",
        help="how long a failed message stays hidden (default: the queue's visibility)",
    )
    worker.add_argument(
        "--dead-letter-queue",
        metavar="own|URL|ARN",
        help="where a permanent failure goes, then deleted (own: the queue's RedrivePolicy)",
    )
    worker.add_argument(
        "--drain-timeout",
        type=_timeout,
        default=30.0,
        metavar="SECONDS",
        help="after a stop signal, how long messages in flight may finish (default 30)",
    )
    worker.add_argument("--region", metavar="REGION", help="default: the queue URL's")
    worker.add_argument(
        "--endpoint-url", metavar="URL", help="an SQS endpoint (default: botocore's)"
    )
    worker.add_argument(
        "--processes",
        type=_processes,
        default=1,
        metavar="N|auto",
        help="worker processes under one supervisor (auto: one per CPU; default 1)",
    )
    worker.add_argument(
        "--health-file",
        metavar="PATH",
        help="touched every 5 s while the worker's event loop runs, removed when it stops",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve metrics for Prometheus on this port (needs anybatch[prometheus])",
    )
    worker.add_argument("--quiet", "-q", action="store_true", help="no log lines, no summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``anybatch`` command."""
    args = _parser().parse_args(argv)
    if args.command == "worker":
        return _worker(args)
    return _run(args)
