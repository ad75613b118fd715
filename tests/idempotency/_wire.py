"""A scripted wire between aiobotocore and moto: faults injected with respx.

aiobotocore's httpx backend, answered by respx: each request goes on to moto's server (so the
table is real) unless the script says otherwise for its action. ``throttle`` and ``error``
answer without reaching DynamoDB; ``lost`` lets the write happen and loses its answer;
``drop`` breaks the connection. The ``wire`` fixture (conftest) routes a table's endpoint
through one; a store made with ``config=CONFIG`` uses it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import httpx
from aiobotocore.config import AioConfig
from aiobotocore.httpxsession import HttpxSession

#: Two attempts per call: a fault scripted twice outlasts botocore's retries.
CONFIG = AioConfig(
    http_session_cls=HttpxSession, retries={"mode": "standard", "total_max_attempts": 2}
)


@dataclass
class Wire:
    """Forwards each request to moto, after the next fault scripted for its action."""

    endpoint: str
    script: dict[str, list[str]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        action = request.headers["X-Amz-Target"].split(".")[-1]
        self.seen.append(action)
        faults = self.script.get(action) or []
        fault = faults.pop(0) if faults else None
        if fault == "throttle":
            return _error(400, "ProvisionedThroughputExceededException")
        if fault == "error":
            return _error(500, "InternalServerError")
        if fault == "drop":
            raise httpx.ConnectError("connection reset", request=request)
        answer = self.forward(request)
        if fault == "lost":
            return _error(500, "InternalServerError")
        return answer

    def forward(self, request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        outgoing = urllib.request.Request(
            self.endpoint + "/", data=request.content, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(outgoing, timeout=10) as reply:
                return httpx.Response(
                    reply.status, headers=dict(reply.headers), content=reply.read()
                )
        except urllib.error.HTTPError as reply:
            return httpx.Response(reply.code, headers=dict(reply.headers), content=reply.read())


def _error(status: int, code: str) -> httpx.Response:
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code}
    return httpx.Response(
        status, content=json.dumps(body), headers={"Content-Type": "application/x-amz-json-1.0"}
    )
