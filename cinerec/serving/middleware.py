"""Body-size limit and per-route latency metrics, as a plain ASGI middleware.

Starlette's ``@app.middleware("http")`` (``BaseHTTPMiddleware``) wraps every request and
response in extra tasks and streams; on this service that cost more than the routing
itself. This class only looks at the scope, counts the body as it arrives and notes the
status from the response start — no copies, no extra task.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


class LimitsAndMetrics:
    """Refuses bodies over ``max_body_bytes`` with 413 (declared or streamed) and records
    each request's latency under its route template, method and status."""

    def __init__(self, app: Callable[..., Any], max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _too_large(send, self.max_body_bytes)
            self._observe(scope, 413, time.perf_counter() - started)
            return
        received = 0
        refused = False  # the body outgrew the limit: 413 sent, the app's answer dropped
        answered = False
        status = 500

        async def counted_receive() -> Message:
            nonlocal received, refused, status
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > self.max_body_bytes and not answered:
                    refused, status = True, 413
                    await _too_large(send, self.max_body_bytes)
            if refused:
                return {"type": "http.disconnect"}  # the app stops reading; nothing is stored
            return message

        async def noting_send(message: Message) -> None:
            nonlocal status, answered
            if refused:
                return
            if message["type"] == "http.response.start":
                answered, status = True, int(message["status"])
            await send(message)

        try:
            await self.app(scope, counted_receive, noting_send)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        app = scope.get("app")
        services = getattr(getattr(app, "state", None), "services", None)
        if services is None:
            return
        route = getattr(scope.get("route"), "path", "unmatched")
        services.metrics.http.labels(
            route=route, method=scope.get("method", ""), status=str(status)
        ).observe(seconds)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
