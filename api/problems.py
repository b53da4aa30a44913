"""RFC 9457 problem details for every error the service returns."""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.observability import mask_ids

PROBLEM_TYPE = "https://ansinh.example/problems/"
log = logging.getLogger("ansinh.api")


class Problem(Exception):
    """Raise in a route or dependency to answer with application/problem+json."""

    def __init__(self, status: int, slug: str, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail, self.headers, self.extra = status, slug, detail, headers, extra


def problem_response(status: int, slug: str, detail: str, instance: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> Response:
    # The instance is the request path, which may hold a national id (/v1/households/{id}): masked
    # like a log line, so an error never echoes a raw CCCD (tests/reliability/test_access.py).
    body = {"type": PROBLEM_TYPE + slug, "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, **({"instance": mask_ids(instance)} if instance else {}), **extra}
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json",
                    headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, error: Problem) -> Response:
        return problem_response(error.status, error.slug, error.detail, request.url.path, error.headers,
                                **error.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        slug = HTTPStatus(error.status_code).phrase.lower().replace(" ", "-")
        return problem_response(error.status_code, slug, str(error.detail), request.url.path,
                                getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        errors = [{"loc": [str(part) for part in item.get("loc", ())], "msg": item.get("msg", "")}
                  for item in error.errors()]
        return problem_response(422, "invalid-request", "the request does not match the API", request.url.path,
                                errors=errors)

    @app.exception_handler(ValueError)
    async def _bad_value(request: Request, error: ValueError) -> Response:
        return problem_response(422, "invalid-input", mask_ids(str(error)), request.url.path)

    @app.exception_handler(Exception)
    async def _crash(request: Request, error: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(500, "internal-error", "the service failed; the request id is in the logs",
                                request.url.path)
