"""Response and request bodies of the HTTP API (what /openapi.json documents)."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from api.reasons import CODES

IDENTIFIER = r"^[A-Za-z0-9._:-]{1,128}$"
# The event of the docs' examples; its worker id is made up but valid in form (served in /openapi.json).
EVENT_EXAMPLE = {"event_id": "g-1001", "platform": "grab", "kind": "ride", "action": "complete",
                 "worker_id": "001203000042", "amount": 100000, "currency": "VND",
                 "occurred_at": "2026-02-10T09:00:00+07:00"}


class ProblemDetails(BaseModel):
    """RFC 9457 problem details: the body of every error answer (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"type": "https://ansinh.example/problems/bad-signature", "title": "Unauthorized", "status": 401,
         "detail": "the signature does not match a usable key for this request", "instance": "/v1/events"}]})

    type: str = Field(description="`https://ansinh.example/problems/` and a slug naming the problem: match on it")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(description="the HTTP status, repeated")
    detail: str = Field(description="what went wrong, for a person (may change wording; never holds a raw CCCD)")
    instance: Optional[str] = Field(None, description="the request path, any 12-digit run masked `079******234`")
    errors: Optional[list[Any]] = Field(None, description="every problem found, where the slug says so: "
                                                          "`invalid-request` {loc, msg}; `bad-payments`, "
                                                          "`bad-households` sentences; `invalid-scenario` "
                                                          "{key, reason}")
    items: Optional[list[int]] = Field(None, description="`platform-mismatch`: the items (from 1) whose platform "
                                                         "is not the key's")
    problems: Optional[list[dict[str, Any]]] = Field(
        None, description="`bad-payments`, `bad-households`: the same problems as `errors`, as data: `code` (a stable "
                          "name, ledger/file_errors.py), `line` of the file or `item` of the batch, `field`, `ref` "
                          "(the payment's bank reference) and `params`; a cell is `{\"shown\": …}`, or `{\"kind\", "
                          "\"length\"}` when it could be a citizen id")


class Event(BaseModel):
    """One completed ride, delivery or order, or a refund of one (docs/events.md: every field, every outcome).

    The service answers every item with an outcome rather than refusing the request: an item that
    breaks a rule below is rejected with its code and books nothing; the items beside it are booked.
    Other fields are kept as part of the payload (re-sending with a different one is `duplicate_conflict`).
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EVENT_EXAMPLE]})

    event_id: str = Field(pattern=IDENTIFIER, description="unique per platform; with `platform`, the event's "
                                                          "identity (`invalid_event_id`)")
    platform: str = Field(pattern=IDENTIFIER, description="the signing key's platform (else the whole request is "
                                                          "`403 platform-mismatch`)")
    kind: Literal["ride", "delivery", "order"] = Field(description="`unknown_kind` otherwise")
    action: Literal["complete", "refund"] = Field("complete", description="`invalid_action` otherwise")
    worker_id: str = Field(pattern=r"^\d{12}$", description="the worker's 12-digit citizen id (CCCD): a valid "
                                                            "province code and a birth year not after the year of "
                                                            "`occurred_at` (`invalid_worker_id`); stored as a keyed "
                                                            "pseudonym, never logged")
    amount: int = Field(ge=1, le=10_000_000_000, description="an integer number of VND, not 1.0, \"100000\" or true "
                                                            "(`invalid_amount`)")
    currency: Literal["VND"] = Field("VND", description="when present, VND (`invalid_currency`)")
    occurred_at: str = Field(json_schema_extra={"format": "date-time"},
                             description="RFC 3339 with a UTC offset, not before the pack's first rules version; "
                                         "its month in Vietnam time (UTC+7) is the event's month "
                                         "(`invalid_timestamp`)")
    original_event_id: Optional[str] = Field(None, pattern=IDENTIFIER,
                                             description="a refund: the completed event refunded (same platform)")


class Outcome(BaseModel):
    """One item's outcome (docs/events.md lists every code with an example)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"line": 1, "platform": "grab", "event_id": "g-1001", "outcome": "accepted", "booked_month": "2026-02",
         "occurred_month": None, "reason": "Booked in February 2026."}]})

    line: int = Field(description="the item's position in a JSON array, or its line in an NDJSON body (from 1)")
    platform: Optional[str] = Field(description="as sent; null when the item has no readable one")
    event_id: Optional[str] = Field(description="as sent; null when the item has no readable one")
    outcome: str = Field(description="accepted, duplicate or a rejection code of RULES.md §1",
                         json_schema_extra={"enum": list(CODES)})
    booked_month: Optional[str] = Field(None, description="YYYY-MM the event was booked in; null unless accepted",
                                        examples=["2026-02"])
    occurred_month: Optional[str] = Field(None, description="YYYY-MM of occurred_at (Vietnam time) when it differs "
                                                            "from booked_month (a late booking: that month was "
                                                            "closed); null otherwise", examples=["2026-01"])
    reason: str = Field(description="one sentence saying why, in the language of Accept-Language (vi or en; "
                                    "vi by default)")


class IngestResult(BaseModel):
    outcomes: list[Outcome] = Field(description="one per item, in order")
    counts: dict[str, int] = Field(description="items by outcome code")


class Health(BaseModel):
    status: Literal["ok"]
    pack: str = Field(description="the rules pack the service books with")


class RulesVersionDocument(BaseModel):
    """One dated version of a rules pack, as stored beside the entries it priced (rules/model.py)."""

    version_id: str
    effective_from: str = Field(description="YYYY-MM-DD")
    source: str
    rates_ppm: dict[str, int] = Field(description="kind.scheme.party: rate in ppm (1 % = 10,000)")
    tier_rate_ppm: dict[str, int] = Field(description="household tier: the state's top-up rate in ppm")
    subsidised_schemes: list[str]
    subsidy_base_cap_vnd: dict[str, int]
    max_subsidised_months: Optional[int] = Field(description="null: no limit")
    pension_floor_contribution_vnd: int
    crediting: str = Field(description="pooled or per_month")
    payment_due_day: int
    late_interest_ppm_per_month: int


class Packs(BaseModel):
    pack: str
    description: str
    in_force: Optional[str] = Field(description="the version in force today; null before the first one")
    versions: list[RulesVersionDocument]


SCENARIO_EXAMPLE = {"name": "inline", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 2, "seed": 9,
                    "population": {"synthetic": {"workers": 400}},
                    "reforms": {"poor-50": {"changes": {"tiers.poor": 500000}}}}


class SimulationRun(BaseModel):
    scenario: str = Field(description="the scenario's name")
    tables: dict[str, list[dict[str, Any]]] = Field(description="summary, budget_by_year_scheme, budget_periods, "
                                                                "coverage, deciles, inequality, "
                                                                "revenue_by_scheme_party_kind, pension_projection: "
                                                                "rows as in `ansinh simulate --out` "
                                                                "(docs/simulations.md)")
    record: dict[str, Any] = Field(description="the run record: scenario, seed, population hash, packs, results "
                                               "hash — enough to repeat the run bit for bit")


class SimulationJob(BaseModel):
    id: str = Field(description="the job's id: GET /v1/simulations/jobs/{id} reads it back",
                    examples=["3f2a9c0e5d7b1a44"])
    status: Literal["queued", "population", "engine", "report", "done", "failed", "cancelled"] = Field(
        description="queued; then the stage it runs (drawing the population, the engine's months, the results "
                    "and report); then done, failed or cancelled")
    percent: int = Field(ge=0, le=100, description="how far it has come: never goes down; 100 when done")
    position: Optional[int] = Field(description="its place in the queue (1: next), while queued; one job runs "
                                                "at a time")
    created: float = Field(description="when it was started (unix seconds)")
    started: Optional[float] = Field(description="when it began to run (unix seconds)")
    finished: Optional[float] = Field(description="when it finished (unix seconds)")
    error: Optional[str] = Field(description="why it failed, in words (failed only)")
    scenario: str = Field(description="the scenario's name")
    workers: int = Field(description="synthetic workers simulated")
    horizon_months: int = Field(description="months simulated")
    start: str = Field(description="the first month simulated (YYYY-MM)")
    reforms: list[str] = Field(description="the reforms' names, compared with the baseline")


class SchemeLine(BaseModel):
    worker: int
    platform: int
    subsidy: int
    total: int


class Pension(BaseModel):
    """Pooled crediting (RULES.md §11) for the pages: the statement's three fields, and more."""

    provisional: bool = False
    floor_contribution_vnd: Optional[int] = Field(description="floor of the next month to credit")
    own_si_vnd: int
    pool_vnd: int = 0
    month_counts: bool = Field(description="this month's close credited (or, while open, would credit) a month")
    credited_this_month: list[str] = []
    next_month: Optional[str] = Field(default=None, description="the next month to credit (YYYY-MM)")
    shortfall_vnd: int = Field(description="= next_credit_needs_vnd")
    months_counted: int = Field(description="= credited_months_to_date")
    months_needed: int


class SchemeMeaning(BaseModel):
    sentence: str = Field(description="key of the one sentence saying what the scheme pays for "
                                      "(meaning_si, meaning_oa, meaning_ui; texts in vi and en)")


class PensionProjection(BaseModel):
    """An estimate (rules/pension.py), never a promise: see `assumptions`."""
    estimate: bool = True
    pace_vnd: int = Field(description="average si accrued per month over the last pace_months months")
    pace_months: int
    floor_vnd: int = Field(description="today's floor (pension_floor_contribution_vnd)")
    credited_months: int
    months_needed: int
    credited_months_per_year: int = Field(description="whole floors a year at this pace pays (at most 12)")
    reached: bool
    months_to_go: Optional[int] = Field(description="months after this statement's month to the 180th credited "
                                                    "month; null: not at this pace")
    beyond_horizon: bool = Field(default=False, description="180 months would take more than 50 years at this pace")
    reach_month: Optional[str] = Field(description="YYYY-MM of the 180th credited month; null: reached or not at "
                                                   "this pace")
    income_base_vnd: int = Field(description="floor / 22 %")
    pension_rate_ppm: int = Field(description="45 % at 180 credited months")
    pension_vnd: int = Field(description="a month's pension at 180 credited months")
    assumptions: list[str]


class Meaning(BaseModel):
    """What the balance means: per scheme one sentence, credited months against 180, the projection."""
    schemes: dict[str, SchemeMeaning]
    credited_months: int
    months_needed: int
    estimate: bool = True
    projection: Optional[PensionProjection] = None


class Statement(BaseModel):
    national_id: str
    month: str
    closed: bool
    schemes: dict[str, SchemeLine]
    to_date: dict[str, int]
    credited_months_to_date: int = Field(description="months credited by the closes of months up to this one")
    pool_vnd: int = Field(description="pooled si balance after this month's crediting (may be negative)")
    next_credit_needs_vnd: int = Field(description="max(0, floor(next month to credit) − pool_vnd)")
    platforms: dict[str, dict[str, dict[str, int]]]
    pension: Pension
    topup_reference: Optional[str] = Field(default=None, description="the worker's own payment reference for a "
                                                                    "top-up (RULES.md §11; never the CCCD)")
    topups_vnd: int = Field(default=0, description="top-ups booked in the month (inside schemes.si.worker)")
    meaning: Optional[Meaning] = Field(default=None, description="what the balance means (rules/pension.py)")


class CreditedMonth(BaseModel):
    month: str
    credited_by_close_of: str
    floor_vnd: int
    closed_at: Optional[str]
    close_anchor: Optional[str]


class Credits(BaseModel):
    national_id: str
    credited_months: int
    months_needed: int
    months: list[CreditedMonth]


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


class PaymentIn(BaseModel):
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="value date of the transfer, YYYY-MM-DD")
    amount_vnd: int = Field(gt=0, le=10**15)
    payer: str = Field(min_length=1, max_length=64,
                       description="a platform id, 'state' for the state budget, or 'worker' for a worker's top-up")
    reference: str = Field(default="", max_length=512,
                           description="the transfer's memo; may name a bill reference (a top-up: must hold the "
                                       "worker's `topup_reference`)")
    bank_ref: str = Field(pattern=r"^[\x21-\x7e]{1,64}$", description="the bank's transaction id (idempotency key)")


class PaymentsIn(BaseModel):
    payments: list[PaymentIn] = Field(min_length=1, max_length=10_000)


class PaymentOutcome(BaseModel):
    bank_ref: str
    status: Literal["booked", "duplicate"]
    payer: str
    amount_vnd: int
    matched_reference: Optional[str]
    settled: dict[str, int]
    credit_vnd: int
    booked_month: Optional[str] = Field(default=None, description="YYYY-MM the payment is booked in (the first "
                                                                    "open month on or after its date); null: duplicate")


class PaymentsResult(BaseModel):
    outcomes: list[PaymentOutcome]


class BillLine(BaseModel):
    payer: str
    kind: str
    reference: str
    month: str
    issued_on: str
    due_on: Optional[str]
    amount_vnd: int
    outstanding_vnd: int


class AccountLine(BaseModel):
    date: str
    kind: str
    month: Optional[str]
    reference: Optional[str]
    bank_ref: Optional[str]
    debit_vnd: int
    credit_vnd: int
    balance_vnd: int


class OpenItem(BaseModel):
    reference: str
    kind: str
    month: str
    due_on: Optional[str]
    amount_vnd: int
    outstanding_vnd: int
    days_overdue: int


class Account(BaseModel):
    payer: str
    as_of: str
    lines: list[AccountLine]
    open_items: list[OpenItem]
    bills_vnd: int
    interest_vnd: int
    payments_vnd: int
    balance_vnd: int
    credit_vnd: int
    arrears_vnd: int
    unmatched_payments: list[str]
    unbilled_vnd: int


class Claim(BaseModel):
    month: str
    status: Literal["final", "provisional"]
    reference: str
    due_on: Optional[str]
    schemes: dict[str, int]
    by_tier: dict[str, dict[str, int]]
    by_province: dict[str, dict[str, int]]
    workers: int
    control_total_vnd: int
    claimed_vnd: int
    paid_vnd: int
    outstanding_vnd: int


class CreditsByProvinceLine(BaseModel):
    """Months credited towards a pension (RULES.md §11) in one province."""

    month: str
    province: str
    workers_credited: int = Field(description="workers with a month credited by this month's close")
    months_credited: int = Field(description="months credited by this month's close")
    workers_with_credits: int = Field(description="workers with any month credited by closes up to this month")
    credited_months_to_date: int


class AuthorityLine(BaseModel):
    month: str
    province: str
    platform: str
    kind: str
    tier: str
    workers: int
    worker_vnd: int
    platform_vnd: int
    subsidy_vnd: int
    total_vnd: int


class SharesByParty(BaseModel):
    worker: int
    platform: int


class OriginalEvent(BaseModel):
    event_id: Optional[str]
    month: Optional[str]


class BookedEvent(BaseModel):
    """One booked event or refund of the worker (ledger/trips.py); a refund's figures are negative."""

    platform: Optional[str]
    event_id: Optional[str]
    type: Literal["event", "refund"]
    kind: str
    occurred_at: str = Field(description="UTC, as booked")
    local_time: str = Field(description="Vietnam time (UTC+7), YYYY-MM-DD HH:MM:SS")
    month: str = Field(description="the booking month")
    occurred_month: str
    late: bool = Field(description="booked in a later month than it occurred (its month was closed)")
    amount_vnd: int
    shares: dict[str, SharesByParty]
    total_vnd: int
    original: Optional[OriginalEvent] = Field(description="a refund's original: its event id and booking month")


class BookedEvents(BaseModel):
    month: str
    items: list[BookedEvent]
    next_cursor: Optional[str] = Field(description="pass as `cursor` for the next page; null on the last page")
    prev_cursor: Optional[str] = Field(description="pass as `cursor` for the page before; null on the first page")
