"""A Lambda Runtime API on loopback, for running handlers under the real runtime client.

``awslambdaric`` (the runtime interface client of AWS's Python base images) polls
``GET /2018-06-01/runtime/invocation/next`` for an event and posts the handler's response or
error back. :class:`RuntimeAPI` serves those endpoints on 127.0.0.1 (a free port) and lets a
test hand out events and wait for what comes back; :class:`Runtime` starts
``python -m awslambdaric module.handler`` against it as a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:anybatch-test"


@dataclass
class Outcome:
    """What the runtime client posted for one invocation."""

    request_id: str
    kind: str  # "response" or "error"
    body: Any
    headers: dict[str, str]
    elapsed: float  # seconds from handing out the event to the post


@dataclass
class _Invocation:
    request_id: str
    event: Any
    timeout: float
    handed_out: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class RuntimeAPI:
    """The Runtime API endpoints a runtime client uses, served on loopback."""

    def __init__(self) -> None:
        self._pending: queue.Queue[_Invocation | None] = queue.Queue()
        self._invocations: dict[str, _Invocation] = {}
        self.init_errors: list[Any] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404, b"{}")
                    return
                invocation = api._pending.get()
                if invocation is None:  # shutting down: hand the sentinel on to the others
                    api._pending.put(None)
                    self.close_connection = True
                    return
                invocation.handed_out = time.monotonic()
                deadline_ms = int((time.time() + invocation.timeout) * 1000)
                self._reply(
                    200,
                    json.dumps(invocation.event).encode(),
                    {
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append(json.loads(body or b"null"))
                    self._reply(202, b'{"status":"OK"}')
                    return
                if (
                    len(parts) != 3
                    or parts[0] != "invocation"
                    or parts[2]
                    not in (
                        "response",
                        "error",
                    )
                ):
                    self._reply(404, b"{}")
                    return
                invocation = api._invocations.get(parts[1])
                if invocation is None:
                    self._reply(400, b'{"errorType":"InvalidRequestID"}')
                    return
                invocation.outcome = Outcome(
                    parts[1],
                    parts[2],
                    json.loads(body) if body else None,
                    dict(self.headers.items()),
                    time.monotonic() - invocation.handed_out,
                )
                self._reply(202, b'{"status":"OK"}')
                invocation.done.set()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        port = self._server.server_address[1]
        return f"127.0.0.1:{port}"

    def submit(self, event: Any, *, timeout: float = 30.0) -> str:
        """Queue one invocation with a *timeout* (seconds) deadline; return its request id."""
        invocation = _Invocation(str(uuid.uuid4()), event, timeout)
        self._invocations[invocation.request_id] = invocation
        self._pending.put(invocation)
        return invocation.request_id

    def wait(self, request_id: str, *, within: float = 30.0) -> Outcome:
        """Wait for the response or error of *request_id*."""
        invocation = self._invocations[request_id]
        if not invocation.done.wait(within):
            raise TimeoutError(f"no response to invocation {request_id} within {within} s")
        assert invocation.outcome is not None
        return invocation.outcome

    def invoke(self, event: Any, *, timeout: float = 30.0, within: float = 30.0) -> Outcome:
        """Hand out one event and wait for what comes back."""
        return self.wait(self.submit(event, timeout=timeout), within=within)

    def close(self) -> None:
        self._pending.put(None)
        self._server.shutdown()
        self._server.server_close()


class Runtime:
    """``python -m awslambdaric HANDLER`` running against a :class:`RuntimeAPI`."""

    def __init__(self, api: RuntimeAPI, handler: str, *, cwd: Path = ROOT, **env: str) -> None:
        environ = dict(os.environ)
        environ.update(
            AWS_LAMBDA_RUNTIME_API=api.address,
            AWS_LAMBDA_FUNCTION_NAME="anybatch-test",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/anybatch-test",
            AWS_LAMBDA_LOG_STREAM_NAME="test",
            LAMBDA_TASK_ROOT=str(cwd),
            PYTHONPATH=os.pathsep.join(
                [str(cwd), str(ROOT / "src"), environ.get("PYTHONPATH", "")]
            ),
        )
        environ.update(env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", handler],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: forked workers included
        )

    def stop(self) -> str:
        """End the runtime and every worker it forked; return everything it printed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        output, _ = self.process.communicate(timeout=30)
        return output
