"""The platform registry: platform ids and their display names (`ledger/platforms.yaml`).

The books store a platform by its id (`platform.name`, the `platform` of an event and of a
key); that id is a code, right for files and APIs and wrong on a page ("xanhsm"). The
registry is reviewed data beside the code, like a rules pack: adding a platform, or
renaming one, is a one-line change, and no row of the books changes (the `platform` table
is append-only and sealed since revision 0006, so a name kept there could never be
corrected). `api/formats.py` shows the names; the admin page offers the registered ids.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

REGISTRY_FILE = Path(__file__).with_name("platforms.yaml")
PLATFORM_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what api/keys.py accepts for a key's platform
UNKNOWN_PLATFORM = "?"  # an entry whose platform the books no longer name (never for a known id)


class RegistryError(ValueError):
    """platforms.yaml cannot be used: names the entry and the reason."""


@lru_cache(maxsize=1)
def platform_registry() -> dict[str, str]:
    """id -> display name, in the file's order; RegistryError for a bad id or name."""
    data = yaml.safe_load(REGISTRY_FILE.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise RegistryError(f"{REGISTRY_FILE}: must map platform ids to {{name: …}}")
    registry = {}
    for platform_id, entry in data.items():
        if not isinstance(platform_id, str) or not PLATFORM_ID.fullmatch(platform_id):
            raise RegistryError(f"{REGISTRY_FILE}: {platform_id!r} is no platform id (A-Z a-z 0-9 . _ : -)")
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise RegistryError(f"{REGISTRY_FILE}: {platform_id}.name must be text")
        registry[platform_id] = name.strip()
    return registry


def registered(platform_id: str) -> bool:
    return platform_id in platform_registry()


def platform_name(platform_id: str | None) -> str:
    """'xanhsm' -> 'Xanh SM'; an id the registry lacks reads as itself (the books may hold
    platforms booked before they were registered); None -> '?'."""
    if platform_id is None:
        return UNKNOWN_PLATFORM
    return platform_registry().get(platform_id, platform_id)
