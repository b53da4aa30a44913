"""Response and request bodies of the HTTP API (what /openapi.json documents)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field


class Outcome(BaseModel):
    line: int
    platform: Optional[str]
    event_id: Optional[str]
    outcome: str


class IngestResult(BaseModel):
    outcomes: list[Outcome]
    counts: dict[str, int]


class SchemeLine(BaseModel):
    worker: int
    platform: int
    subsidy: int
    total: int


class Pension(BaseModel):
    floor_contribution_vnd: Optional[int]
    own_si_vnd: int
    month_counts: bool
    shortfall_vnd: int
    months_counted: int
    months_needed: int


class Statement(BaseModel):
    national_id: str
    month: str
    closed: bool
    schemes: dict[str, SchemeLine]
    to_date: dict[str, int]
    platforms: dict[str, dict[str, dict[str, int]]]
    pension: Pension


class MonthTotals(BaseModel):
    month: str
    closed: bool
    schemes: dict[str, SchemeLine]


class History(BaseModel):
    months: list[MonthTotals]
    to_date: dict[str, int]


class Settlement(BaseModel):
    month: str
    closed: bool
    status: Literal["final", "provisional"]
    platforms: dict[str, dict[str, int]]
    subsidy: dict[str, int]
    control_total_vnd: int
    postings: int
    postings_sha256: str


class MonthStatus(BaseModel):
    month: str
    status: Literal["open", "closed"]
    entries: int
    closed_at: Optional[str] = None
    subsidy_total_vnd: Optional[int] = None
    rules_version: Optional[str] = None


class CloseResult(BaseModel):
    month: str
    anchor_hash: str
    rules_version: str
    workers_subsidised: int
    subsidy_vnd: dict[str, int]


class Household(BaseModel):
    tier: str = Field(description="a tier of the rules pack in force, e.g. poor, near_poor, other")
    valid_from: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")


class ImportResult(BaseModel):
    imported: int


class PlatformKeyOut(BaseModel):
    key_id: str
    platform: str
    created_at: str
    retires_at: Optional[str] = None
    revoked_at: Optional[str] = None


class IssuedKeyOut(BaseModel):
    key_id: str
    platform: str
    secret: str = Field(description="shown once; store it in the platform's secret manager")
