"""Prometheus metrics, structured JSON logs with request ids, no raw national ids.

Any run of 12 digits in a log line (a path like /v1/households/079…, an error text)
is masked before it is written: the raw CCCD never reaches a log. A caller's
X-Request-ID is kept only when it is a plain token (`REQUEST_ID`: 1–64 of A-Z a-z 0-9
. _ -) holding no run of 12 digits; any other is replaced by a fresh id before it is
logged or echoed, so a header cannot carry a citizen id (or a forged log line) into the logs.
In demo mode every response says so (`X-Ansinh-Mode: demo`).
"""
from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TWELVE_DIGITS = re.compile(r"(?<!\d)(\d{3})\d{6}(\d{3})(?!\d)")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
DIGIT_RUN = re.compile(r"\d{12}")
MODE_HEADER = b"x-ansinh-mode"
request_id: ContextVar[str] = ContextVar("request_id", default="-")


def accepted_request_id(offered: bytes | None) -> str:
    """The caller's request id if it is a plain token without a 12-digit run, else a fresh one.

    A fresh id is drawn again while its hex holds a 12-digit run (about 7 % of uuid4 hexes
    do): the log masker would otherwise star part of it, and the id in the logs would no
    longer match the one the caller was given.
    """
    text = (offered or b"").decode("latin-1")
    if REQUEST_ID.fullmatch(text) and not DIGIT_RUN.search(text):
        return text
    while DIGIT_RUN.search(fresh := uuid.uuid4().hex):
        pass
    return fresh


def mask_ids(text: str) -> str:
    return TWELVE_DIGITS.sub(r"\1******\2", text)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("ansinh_events_total", "Events by outcome", ["outcome"], registry=self.registry)
        self.batch_seconds = Histogram("ansinh_ingest_batch_seconds", "Time to book one batch",
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
                                       registry=self.registry)
        self.close_seconds = Histogram("ansinh_month_close_seconds", "Time to close a month",
                                       buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300), registry=self.registry)
        self.requests = Counter("ansinh_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("ansinh_http_request_seconds", "HTTP request latency", ["route"],
                                 registry=self.registry)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                 "request_id": mask_ids(request_id.get()), "msg": mask_ids(record.getMessage())}
        for key in ("method", "path", "status", "ms", "platform", "role", "events"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = mask_ids(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["error"] = mask_ids(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("ansinh")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class RequestContext:
    """ASGI middleware: request id, body size limit, access log line, request metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, mode: str = "production") -> None:
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes
        self.extra_headers = [(MODE_HEADER, b"demo")] if mode == "demo" else []
        self.log = logging.getLogger("ansinh.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = accepted_request_id(headers.get(b"x-request-id"))
        token = request_id.set(rid)
        started = time.perf_counter()
        status = {"code": 500}
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send, rid)
            status["code"] = 413
            self._record(scope, status["code"], started)
            request_id.reset(token)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", []).extend([(b"x-request-id", rid.encode("latin-1")),
                                                          *self.extra_headers])
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            status["code"] = 413
            await self._too_large(send, rid)
        finally:
            self._record(scope, status["code"], started)
            request_id.reset(token)

    async def _too_large(self, send: Send, rid: str) -> None:
        body = orjson.dumps({"type": "https://ansinh.example/problems/too-large", "title": "Content Too Large",
                             "status": 413, "detail": f"the request body is over {self.max_body_bytes:,} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"), (b"x-request-id", rid.encode()),
                                *self.extra_headers]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        name = getattr(route, "path", None) or "unmatched"
        self.metrics.requests.labels(scope["method"], name, str(status)).inc()
        self.metrics.latency.labels(name).observe(elapsed)
        self.log.info("request", extra={"method": scope["method"], "path": scope["path"], "status": status,
                                        "ms": round(elapsed * 1000, 2)})


class BodyTooLarge(Exception):
    pass
