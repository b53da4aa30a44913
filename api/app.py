"""The HTTP service: `create_app(settings)` wires the books, keys, tokens and routes.

`ansinh serve` runs it under uvicorn. Routes live in `api/routes/`, are thin, and call
the ledger as a library; identity and signatures are checked in `api/deps.py`.
"""
from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI

from api import contract, problems
from api.deps import Services
from api.keys import PlatformKeys
from api.observability import Metrics, RequestContext, configure_logging
from api.routes import admin, events, households, months, ops, payments, simulations, workers
from api.settings import Settings, SettingsError
from api.tokens import TokenVerifier
from api.web.pages import install as install_pages
from ledger.books import Ledger, utc_now
from simulations.jobs import JobQueue
from ledger.store import StoreError, database_url, load_secret


def build_services(settings: Settings, clock: Callable = utc_now) -> Services:
    settings.check()
    url = database_url(settings.database_url)
    try:  # production: already checked strong; a server database refuses a weak one in any mode
        secret = load_secret(url, explicit=settings.secret, secret_file=settings.secret_file,
                             strict=True if settings.mode == "production" else None)
    except StoreError as error:
        raise SettingsError(str(error)) from None
    ledger = Ledger.open(url, settings.pack, clock=clock, secret=secret)
    tokens = TokenVerifier(server_secret=secret, audience=settings.oidc_audience, issuer=settings.oidc_issuer,
                           jwks_url=settings.oidc_jwks_url, role_claim=settings.role_claim,
                           allow_demo=settings.mode == "demo", token_key_id=settings.token_key_id)
    return Services(settings=settings, ledger=ledger, keys=PlatformKeys(ledger, secret), tokens=tokens,
                    metrics=Metrics())


TAGS = [
    {"name": "platforms", "description": "Signed batches of events; one outcome per event (docs/events.md)."},
    {"name": "workers", "description": "A worker's own statement, history, credited months and booked events."},
    {"name": "insurers", "description": "Months, closes, settlement, payments, bills, accounts, the state claim and "
                                        "the reports to the authorities (docs/payments.md)."},
    {"name": "admin", "description": "Household statuses, platform keys, the rules packs."},
    {"name": "policy", "description": "Small what-if scenarios run inline (docs/simulations.md)."},
    {"name": "operations", "description": "Liveness and Prometheus metrics; no credentials."},
]


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    svc = services or build_services(settings or Settings())

    jobs = job_queue(svc.settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        jobs.shutdown()
        svc.ledger.close()

    app = FastAPI(title="ansinh", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_tags=TAGS,
                  description="Pay-as-you-work social insurance ledger: platforms post signed events, workers "
                              "read their statements, insurers close months and settle. Platforms sign each "
                              "request (HMAC, the `platform*` security schemes); workers and staff send a bearer "
                              "token whose role is in each operation's `x-roles`. Every error is RFC 9457 "
                              "`application/problem+json`; its `type` ends in a slug, and each operation lists "
                              "the slugs it can answer. Signing and examples: docs/http.md; events and outcome "
                              "codes: docs/events.md.")
    app.state.services = svc
    app.state.jobs = jobs  # background simulations (the policy page, /v1/simulations/jobs)
    problems.install(app)
    contract.install(app)  # /openapi.json as the contract; /docs and /redoc served from the package (no CDN)
    for module in (events, workers, months, payments, households, admin, simulations):
        app.include_router(module.router, prefix="/v1")
    app.include_router(ops.router)
    app.add_middleware(RequestContext, metrics=svc.metrics, max_body_bytes=svc.settings.max_body_bytes,
                       mode=svc.settings.mode)
    install_pages(app)  # the pages for workers, insurers, policy, admin (docs/web.md)
    return app


def job_queue(settings: Settings) -> JobQueue:
    """The simulation jobs' queue, kept in ANSINH_JOBS_DIR (or a temporary folder of this process)."""
    directory = settings.jobs_dir or tempfile.mkdtemp(prefix="ansinh-jobs-")
    return JobQueue(directory, simulations.run_job)


def app_from_environment() -> FastAPI:
    """The uvicorn factory (`uvicorn --factory api.app:app_from_environment`)."""
    configure_logging()
    return create_app(Settings())
