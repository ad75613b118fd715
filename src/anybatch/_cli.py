"""The ``anybatch`` command: run a Lambda handler on an event file, as Lambda would."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

__all__ = ["load_handler", "main"]


def load_handler(spec: str) -> Any:
    """Import ``module:function`` (or Lambda's ``module.function``) and return the function.

    The current directory is importable, as the task root is in Lambda.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise SystemExit(f"anybatch: handler must look like module:function, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"anybatch: cannot import {module_name!r}: {exc}") from exc
    try:
        handler = getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"anybatch: module {module_name!r} has no {attr!r}") from None
    if not callable(handler):
        raise SystemExit(f"anybatch: {spec} is not callable")
    return handler


def _run(args: argparse.Namespace) -> int:
    from ._portal import run_blocking
    from .testing import fake_lambda_context

    try:
        with open(args.event, encoding="utf-8") as file:
            event = json.load(file)
    except OSError as exc:
        print(f"anybatch: cannot read {args.event}: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"anybatch: {args.event} is not JSON: {exc}", file=sys.stderr)
        return 2
    handler = load_handler(args.handler)
    context = fake_lambda_context(args.timeout, function_name=args.function_name)
    try:
        result = handler(event, context)
        if hasattr(result, "__await__"):

            async def _await() -> Any:
                return await result

            result = run_blocking(args.backend, _await)
    except Exception:
        traceback.print_exc()
        return 1
    print(json.dumps(result, indent=args.indent or None, default=str))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``anybatch`` command."""
    parser = argparse.ArgumentParser(
        prog="anybatch", description="Partial batch processing for AWS Lambda."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="invoke a Lambda handler on an event file and print its response",
        description="Invoke HANDLER(event, context) with the event in EVENT and a fake Lambda "
        "context, then print what it returns as JSON. Async handlers are awaited.",
    )
    run.add_argument("event", metavar="EVENT", help="a JSON file holding the event")
    run.add_argument("handler", metavar="HANDLER", help="module:function, e.g. app:lambda_handler")
    run.add_argument(
        "--timeout", type=float, default=30.0, help="the invocation's timeout in seconds (30)"
    )
    run.add_argument("--function-name", default="anybatch-function")
    run.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    run.add_argument(
        "--indent", type=int, default=2, help="JSON indentation (0: one line); default 2"
    )
    args = parser.parse_args(argv)
    return _run(args)
