"""Administration: platform API keys, and a read-only view of the rules packs.

A key is issued only to a platform of the registry (`ledger/platforms.yaml`), as on the admin
page: a typo in the path would otherwise start a platform nobody meant (`unregistered-platform`).
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import Services, role, services
from api.keys import UnknownKey
from api.problems import Problem
from api.schemas import IssuedKeyOut, Packs, PlatformKeyOut
from api.tokens import Principal
from ledger.platforms import platform_registry

router = APIRouter(tags=["admin"])


def _registered(platform: str) -> str:
    """`platform` if the registry has it, else the 422 `unregistered-platform` (the id is not echoed:
    a path segment may be anything, a citizen id included)."""
    registry = platform_registry()
    if platform not in registry:
        raise Problem(422, "unregistered-platform", "the platform is not in the platform registry "
                      f"(ledger/platforms.yaml; registered: {', '.join(registry)}); add it there first")
    return platform


@router.get("/platform-keys", response_model=list[PlatformKeyOut], summary="Every platform key (no secrets)")
async def list_keys(_: Principal = Depends(role("admin")), svc: Services = Depends(services)) -> list:
    return [record.__dict__ for record in await run_in_threadpool(svc.keys.list)]


@router.post("/platforms/{platform}/keys", response_model=IssuedKeyOut, status_code=201,
             summary="Issue a key for a platform of the registry (the secret is shown once)",
             responses=problems("invalid-request", "unregistered-platform"))
async def add_key(platform: str = Path(pattern=r"^[A-Za-z0-9._:-]{1,128}$"),
                  _: Principal = Depends(role("admin")), svc: Services = Depends(services)) -> dict:
    return (await run_in_threadpool(svc.keys.add, _registered(platform))).__dict__


@router.post("/platforms/{platform}/keys:rotate", response_model=IssuedKeyOut, status_code=201,
             summary="Issue a new key; the platform's older keys retire after 24 hours",
             responses=problems("invalid-request", "unregistered-platform", "unknown-platform"))
async def rotate_key(platform: str = Path(pattern=r"^[A-Za-z0-9._:-]{1,128}$"),
                     _: Principal = Depends(role("admin")), svc: Services = Depends(services)) -> dict:
    try:
        return (await run_in_threadpool(svc.keys.rotate, _registered(platform))).__dict__
    except UnknownKey as error:
        raise Problem(404, "unknown-platform", str(error)) from None


@router.delete("/platform-keys/{key_id}", response_model=PlatformKeyOut, summary="Revoke a key now",
               responses=problems("unknown-key"))
async def revoke_key(key_id: str = Path(max_length=64), _: Principal = Depends(role("admin")),
                     svc: Services = Depends(services)) -> dict:
    try:
        return (await run_in_threadpool(svc.keys.revoke, key_id)).__dict__
    except UnknownKey as error:
        raise Problem(404, "unknown-key", str(error)) from None


@router.get("/packs", response_model=Packs, summary="The rules pack in use, every version with its source")
async def packs(_: Principal = Depends(role("insurer", "policy", "admin")), svc: Services = Depends(services)) -> dict:
    pack = svc.ledger.pack
    in_force = pack.version_on(svc.ledger.clock().date()).version_id \
        if svc.ledger.clock().date() >= pack.first_effective_from else None
    return {"pack": pack.name, "description": pack.description, "in_force": in_force,
            "versions": [version.as_document() for version in pack.versions]}
