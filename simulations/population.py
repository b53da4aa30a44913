"""Populations of worker-months: synthetic (calibrated, seeded) or replayed from a real ledger.

A `Population` is two frames:

- `workers`, one row per person (`worker` = row index 0..n-1): sex, birth_year,
  province, region, worker_type, tier (the latest household status), and for a
  ledger replay `ledger_worker_id`.
- `activity`, one row per (worker, month, platform, kind), sorted by (month, worker, platform, kind):
  `gross_vnd` (net transaction value booked in the month), `events`, `tier` (code
  into `tiers`, the status in force that month). A replay also carries `rec_<scheme>_<party>`:
  the six shares the ledger actually booked for the row, read from its postings.

Why rows are worker-month aggregates and not events: a national population is ~7.5M
workers × 12 months; events would be ~10^10 rows. The engine prices a row's gross
once, so a synthetic row rounds once per month where the ledger rounds once per event
(at most ½ VND per event and share, see `simulations/docs.md`). A replay has the
ledger's own shares, so its baseline is exact to the dong.

Randomness lives here only (PolicyEngine habit): `synthetic(workers, months, seed)`
is a pure function of its arguments, and `content_hash` fingerprints the result.
"""
from __future__ import annotations

import calendar
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rules import BASE_TIER, KINDS, PARTIES, SCHEMES
from simulations import synthetic_events as se

PLATFORM_NAMES: tuple[str, ...] = tuple(se.PLATFORMS)
DEFAULT_TIERS: tuple[str, ...] = ("poor", "near_poor", BASE_TIER)
SHARE_COLUMNS: tuple[str, ...] = tuple(f"{scheme}_{party}" for scheme in SCHEMES for party in PARTIES)
RECORDED_COLUMNS: tuple[str, ...] = tuple(f"rec_{name}" for name in SHARE_COLUMNS)
ACTIVITY_COLUMNS = ("worker", "month", "platform", "kind", "tier", "gross_vnd", "events")
FORMAT_VERSION = 1

# The six socio-economic regions of the General Statistics Office, by the CCCD province code.
REGION_OF_PROVINCE: dict[str, str] = {
    **dict.fromkeys(["001", "022", "026", "027", "030", "031", "033", "034", "035", "036", "037"], "red_river_delta"),
    **dict.fromkeys(["002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020", "024", "025"], "northern_midlands_mountains"),
    **dict.fromkeys(["038", "040", "042", "044", "045", "046", "048", "049", "051", "052", "054", "056", "058", "060"], "north_central_coast"),
    **dict.fromkeys(["062", "064", "066", "067", "068"], "central_highlands"),
    **dict.fromkeys(["070", "072", "074", "075", "077", "079"], "southeast"),
    **dict.fromkeys(["080", "082", "083", "084", "086", "087", "089", "091", "092", "093", "094", "095", "096"], "mekong_delta"),
}
assert set(REGION_OF_PROVINCE) == set(se.PROVINCE_CODES)

# Churn and participation (assumptions, stated in simulations/docs.md): 85 % of the
# population works in the first month, the rest join evenly over the horizon; 2 % of
# those working leave the platforms each month (~22 % a year); in a month they have not
# left, full-timers work with probability 0.95 and part-timers 0.75.
PRESENT_AT_START_SHARE = 0.85
MONTHLY_EXIT_HAZARD = 0.02
MONTHLY_PARTICIPATION = {True: 0.95, False: 0.75}
ACTIVE_DAYS_NOISE_SD = 2.0
AMOUNT_STEP_VND = 1_000
CALIBRATION_DRAWS = 200_000
CALIBRATION_SEED = 0
CHUNK_WORKERS = 1_000_000  # workers per generated block: bounds memory whatever the population
HASH_SLICE_ROWS = 1_000_000  # text values hashed per slice
READ_BATCH_ROWS = 4_000_000  # Parquet rows decoded at a time when loading numeric tables


class PopulationError(ValueError):
    """A population file or database that cannot be used (names the file and reason)."""


@dataclass(frozen=True)
class Churn:
    """Who works on the platforms each month, as seeded probabilities in ppm (scenario key
    `population.synthetic.churn`).

    Month one: each worker is present with probability `start_ppm`. Every later month,
    first each present worker leaves with probability `exit_ppm`, then each worker who was
    absent at the month's start (never joined, or left earlier) enters with probability
    `entry_ppm`. A present worker then works the month with the participation probability
    (0.95 full-timers, 0.75 part-timers). In the long run a share entry / (entry + exit)
    is present.
    """

    start_ppm: int = 850_000
    exit_ppm: int = 20_000
    entry_ppm: int = 0

    def __post_init__(self) -> None:
        for name in ("start_ppm", "exit_ppm", "entry_ppm"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1_000_000:
                raise ValueError(f"churn.{name} must be an integer from 0 to 1,000,000 ppm, got {value!r}")

    def as_document(self) -> dict[str, int]:
        return {"start_ppm": self.start_ppm, "exit_ppm": self.exit_ppm, "entry_ppm": self.entry_ppm}


@dataclass(frozen=True)
class Population:
    workers: pd.DataFrame
    activity: pd.DataFrame
    platforms: tuple[str, ...] = PLATFORM_NAMES
    tiers: tuple[str, ...] = DEFAULT_TIERS
    source: Mapping[str, Any] = field(default_factory=dict)

    @property
    def recorded(self) -> bool:
        """True when the activity carries the ledger's own shares (a replay)."""
        return all(column in self.activity for column in RECORDED_COLUMNS)

    @functools.cached_property
    def months(self) -> tuple[int, ...]:
        """The months with activity, in order (a pass over the sorted column; np.unique sorts it again)."""
        column = self.activity["month"].to_numpy()
        if len(column) == 0:
            return ()
        changes = np.flatnonzero(column[1:] != column[:-1]) + 1
        months = column[np.concatenate(([0], changes))]
        if (np.diff(months) <= 0).any():  # not sorted by month: the general way
            months = np.unique(column)
        return tuple(int(m) for m in months)

    def content_hash(self) -> str:
        """SHA-256 of the frames' values (not of Parquet bytes, which vary with library versions).

        Computed once per population (frames are not changed in place; `dataclasses.replace`
        makes a new population with its own hash)."""
        return self._content_hash

    @functools.cached_property
    def _content_hash(self) -> str:
        digest = hashlib.sha256(f"ansinh-population-v{FORMAT_VERSION}".encode())
        digest.update(json.dumps({"platforms": self.platforms, "tiers": self.tiers}, sort_keys=True).encode())
        for name, frame in (("workers", self.workers), ("activity", self.activity)):
            digest.update(f"\x1e{name}:{len(frame)}".encode())
            for column in sorted(frame.columns):
                values = frame[column].to_numpy()
                digest.update(f"\x1f{column}:{values.dtype.str}".encode())
                if values.dtype.kind in "biuf":
                    # Little-endian bytes, hashed in place (no copy of a 1 GB column).
                    values = np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<"), copy=False)
                    digest.update(values.view(np.uint8) if values.size else b"")
                else:  # "\x00".join of every value, streamed in slices (the same bytes)
                    for start in range(0, len(values), HASH_SLICE_ROWS):
                        if start:
                            digest.update(b"\x00")
                        digest.update("\x00".join(map(str, values[start:start + HASH_SLICE_ROWS].tolist()))
                                      .encode("utf-8"))
        return digest.hexdigest()


# ---------------------------------------------------------------------------
# Synthetic
# ---------------------------------------------------------------------------

def _amount_moments() -> dict[str, tuple[float, float, int]]:
    """Mean, sd and minimum of one event's value per family, from synthetic_events' own draws."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    families = {"bike": se._bike_fares, "car": se._car_fares, "delivery": se._delivery_fees,
                "order": se._order_values}
    moments = {}
    for name, draw in families.items():
        values = draw(rng, CALIBRATION_DRAWS)
        moments[name] = (float(values.mean()), float(values.std()), int(values.min()))
    return moments


def synthetic(workers: int, months: Sequence[int], seed: int, *, churn: Churn | None = None,
              fare_profile=None) -> Population:
    """A calibrated population of `workers` people over `months` (yyyymm ints), from `seed` only.

    `churn`: explicit monthly start / exit / entry probabilities (`Churn`); without it,
    85 % work from month one, the rest join evenly over the horizon and 2 % leave a month.
    `fare_profile` (`simulations.fares.FareProfile`): car rides take the real trips' fare
    mean and spread instead of the car-fare model.

    Workers come from `synthetic_events.make_workers` (types, vehicles, platforms, pace,
    active days, sex, birth year, province) and `household_tiers` (~4 % poor, ~3.5 %
    near-poor, more in high-poverty provinces). Each month: churn and participation,
    active days around the worker's usual, events ~ Poisson(pace × days), split over the
    worker's platforms by preference (bike drivers send ~15 % food deliveries), and gross
    value per row ~ Normal(n·mean, √n·sd) of the same fare / fee / order-value
    distributions the event generator draws from, rounded to 1,000 VND.
    """
    if workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    months = tuple(int(m) for m in months)
    if not months or list(months) != sorted(set(months)):
        raise ValueError("months must be a non-empty increasing sequence of yyyymm")
    rng = np.random.default_rng([seed, 6])
    people = []
    for start in range(0, workers, CHUNK_WORKERS):
        people.append(se.make_workers(rng, min(CHUNK_WORKERS, workers - start)))
    table = pd.concat(people, ignore_index=True) if len(people) > 1 else people[0]
    if not table["national_id"].is_unique:
        # Chunks draw ids independently, so past a million workers two can clash; the ids are
        # then composed again over the whole table (distinct by construction), same seed, same ids.
        table["national_id"] = se._compose_national_ids(
            rng, table["province"].astype(np.int64).to_numpy(), (table["sex"] == "female").to_numpy(),
            table["birth_year"].to_numpy(dtype=np.int64))
    start_label = f"{months[0] // 100:04d}-{months[0] % 100:02d}"
    tier_rows = se.household_tiers(table, rng, valid_from=start_label)
    tier_of = {national_id: tier for national_id, tier, _ in tier_rows}
    tier_code = {tier: code for code, tier in enumerate(DEFAULT_TIERS)}
    tier_index = np.array([tier_code[tier_of.get(nid, BASE_TIER)] for nid in table["national_id"].tolist()],
                          dtype=np.int8)

    worker_frame = pd.DataFrame({
        "worker": np.arange(workers, dtype=np.int64),
        "sex": table["sex"].astype("category"),
        "birth_year": table["birth_year"].astype(np.int16),
        "province": table["province"].astype("category"),
        "region": table["province"].map(REGION_OF_PROVINCE).astype("category"),
        "worker_type": table["worker_type"].astype("category"),
        "full_time": table["full_time"].to_numpy(),
        "tier": pd.Categorical.from_codes(tier_index, categories=list(DEFAULT_TIERS)),
    })
    moments = _amount_moments()
    if fare_profile is not None:
        moments["car"] = fare_profile.moments()
    activity = _synthetic_activity(rng, table, tier_index, months, moments, churn)
    source = {"kind": "synthetic", "workers": workers, "months": list(months), "seed": seed,
              "generator": "simulations.population.synthetic"}
    if churn is not None:
        source["churn"] = churn.as_document()
    if fare_profile is not None:
        source["fare_profile"] = fare_profile.summary()
    return Population(worker_frame, activity, PLATFORM_NAMES, DEFAULT_TIERS, source)


def _synthetic_activity(rng: np.random.Generator, table: pd.DataFrame, tier_index: np.ndarray,
                        months: tuple[int, ...], moments: dict[str, tuple[float, float, int]],
                        churn: Churn | None) -> pd.DataFrame:
    count = len(table)
    type_code = table["worker_type"].map({"ride": 0, "delivery": 1, "seller": 2}).to_numpy()
    is_car = (table["vehicle"] == "car").to_numpy()
    full_time = table["full_time"].to_numpy()
    pace = table["events_per_day"].to_numpy(dtype=np.float64)
    usual_days = table["active_days"].to_numpy(dtype=np.float64)
    platform_index = {name: i for i, name in enumerate(PLATFORM_NAMES)}
    slots = np.full((count, 3), -1, dtype=np.int64)
    preference = np.zeros((count, 3))
    delivery_platform = np.full(count, -1, dtype=np.int64)
    for w, chosen in enumerate(table["platforms"].tolist()):
        slots[w, :len(chosen)] = [platform_index[p] for p in chosen]
        preference[w, :len(chosen)] = se.PLATFORM_PREFERENCE[len(chosen) - 1]
        if type_code[w] == 0 and not is_car[w]:
            for p in chosen:
                if "delivery" in se.PLATFORMS[p].kinds:
                    delivery_platform[w] = platform_index[p]
                    break
    main_kind = np.array([0, 1, 2])[type_code]  # ride, delivery, order: the KINDS order
    family_of_main = np.where(type_code == 0, np.where(is_car, 1, 0), type_code + 1)  # bike car delivery order
    family_moments = np.array([moments[name] for name in ("bike", "car", "delivery", "order")])

    if churn is None:
        joins_at = np.where(rng.random(count) < PRESENT_AT_START_SHARE, 0,
                            rng.integers(0, len(months), size=count))
    present = np.zeros(count, dtype=bool)
    left = np.zeros(count, dtype=bool)
    blocks = []
    for step, month in enumerate(months):
        if churn is None:
            present |= (joins_at == step) & ~left
            leaving = present & (rng.random(count) < MONTHLY_EXIT_HAZARD) & (step > 0)
            left |= leaving
            present &= ~leaving
        elif step == 0:
            present = rng.integers(0, 1_000_000, size=count) < churn.start_ppm
        else:
            absent = ~present
            present &= ~(rng.integers(0, 1_000_000, size=count) < churn.exit_ppm)
            present |= absent & (rng.integers(0, 1_000_000, size=count) < churn.entry_ppm)
        working = present & (rng.random(count) < np.where(full_time, MONTHLY_PARTICIPATION[True],
                                                          MONTHLY_PARTICIPATION[False]))
        days_in_month = calendar.monthrange(month // 100, month % 100)[1]
        days = np.clip(np.rint(usual_days + ACTIVE_DAYS_NOISE_SD * rng.standard_normal(count)), 1, days_in_month)
        events = np.where(working, rng.poisson(pace * days), 0).astype(np.int64)
        delivery_events = np.where(delivery_platform >= 0, rng.binomial(events, se.RIDE_WORKER_DELIVERY_SHARE), 0)
        main_events = events - delivery_events
        # Split the main kind's events over the worker's platforms by preference (binomial chain).
        remaining = main_events.copy()
        mass_left = np.ones(count)
        per_slot = np.zeros((count, 3), dtype=np.int64)
        for j in range(3):
            p = np.where(mass_left > 0, np.clip(preference[:, j] / np.maximum(mass_left, 1e-12), 0, 1), 0)
            take = np.where(j == 2, remaining, rng.binomial(remaining, p)) * (slots[:, j] >= 0)
            per_slot[:, j] = take
            remaining -= take
            mass_left -= preference[:, j]
        per_slot[:, 0] += remaining  # rounding of the preference mass: leftovers to the main platform
        rows_worker = [np.arange(count)] * 3 + [np.arange(count)]
        rows_platform = [slots[:, 0], slots[:, 1], slots[:, 2], delivery_platform]
        rows_kind = [main_kind] * 3 + [np.ones(count, dtype=np.int64)]
        rows_family = [family_of_main] * 3 + [np.full(count, 2)]
        rows_events = [per_slot[:, 0], per_slot[:, 1], per_slot[:, 2], delivery_events]
        worker_ids = np.concatenate(rows_worker)
        platform = np.concatenate(rows_platform)
        kind = np.concatenate(rows_kind)
        family = np.concatenate(rows_family)
        n = np.concatenate(rows_events)
        keep = n > 0
        worker_ids, platform, kind, family, n = worker_ids[keep], platform[keep], kind[keep], family[keep], n[keep]
        mean, sd, low = family_moments[family, 0], family_moments[family, 1], family_moments[family, 2]
        gross = n * mean + np.sqrt(n) * sd * rng.standard_normal(len(n))
        gross = np.maximum(np.floor(gross / AMOUNT_STEP_VND + 0.5) * AMOUNT_STEP_VND, n * low).astype(np.int64)
        block = pd.DataFrame({"worker": worker_ids.astype(np.int64), "month": np.full(len(n), month, np.int32),
                              "platform": platform.astype(np.int16), "kind": kind.astype(np.int8),
                              "tier": tier_index[worker_ids], "gross_vnd": gross, "events": n.astype(np.int32)})
        blocks.append(block.sort_values(["worker", "platform", "kind"], kind="stable"))
    activity = pd.concat(blocks, ignore_index=True)
    assert (activity["gross_vnd"] > 0).all() and (activity["events"] > 0).all()
    return activity


# ---------------------------------------------------------------------------
# Events -> population (completed events only: one row per event, priced exactly as the ledger)
# ---------------------------------------------------------------------------

def from_events(items, workers_table: pd.DataFrame, tiers: Mapping[str, str] | None = None) -> Population:
    """A population whose activity rows are single completed events (booked in their Vietnam month).

    For cross-checks: each row is priced once, exactly as the ledger prices an event.
    Refunds, duplicates and invalid items are refused (use a ledger replay for those).
    """
    from datetime import datetime, timedelta, timezone
    vietnam = timezone(timedelta(hours=7))
    index = {nid: i for i, nid in enumerate(workers_table["national_id"].tolist())}
    platform_index = {name: i for i, name in enumerate(PLATFORM_NAMES)}
    kind_index = {kind: i for i, kind in enumerate(KINDS)}
    tier_code = {tier: code for code, tier in enumerate(DEFAULT_TIERS)}
    tiers = dict(tiers or {})
    rows = []
    for item in items:
        if not isinstance(item, dict) or item.get("action", "complete") != "complete":
            raise PopulationError("from_events takes completed events only")
        moment = datetime.fromisoformat(item["occurred_at"]).astimezone(vietnam)
        worker = index[item["worker_id"]]
        rows.append((worker, moment.year * 100 + moment.month, platform_index[item["platform"]],
                     kind_index[item["kind"]], tier_code[tiers.get(item["worker_id"], BASE_TIER)],
                     int(item["amount"]), 1))
    activity = pd.DataFrame(rows, columns=list(ACTIVITY_COLUMNS)).astype(
        {"worker": np.int64, "month": np.int32, "platform": np.int16, "kind": np.int8, "tier": np.int8,
         "gross_vnd": np.int64, "events": np.int32})
    activity = activity.sort_values(["month", "worker", "platform", "kind"], kind="stable", ignore_index=True)
    worker_tiers = [tiers.get(nid, BASE_TIER) for nid in workers_table["national_id"].tolist()]
    worker_frame = pd.DataFrame({
        "worker": np.arange(len(workers_table), dtype=np.int64),
        "national_id": workers_table["national_id"].to_numpy(),
        "sex": workers_table["sex"].astype("category"),
        "birth_year": workers_table["birth_year"].astype(np.int16),
        "province": workers_table["province"].astype("category"),
        "region": workers_table["province"].map(REGION_OF_PROVINCE).astype("category"),
        "worker_type": workers_table["worker_type"].astype("category"),
        "tier": pd.Categorical(worker_tiers, categories=list(DEFAULT_TIERS)),
    })
    return Population(worker_frame, activity, PLATFORM_NAMES, DEFAULT_TIERS, {"kind": "events"})


# ---------------------------------------------------------------------------
# Ledger replay (--from-db)
# ---------------------------------------------------------------------------

def from_db(url: str) -> Population:
    """The worker-months of a real ledger: gross and event counts from its journal, the six
    shares it booked from its postings, household tiers in force each month from its registry.

    Read-only: no migration, no write, no raw national id (workers are the ledger's row ids).
    """
    from ledger.accounts import PARTY_CODE, SCHEME_CODE, AccountKind, EntryType
    from ledger.store import database_url, make_engine, query

    engine = make_engine(database_url(url))
    try:
        with engine.connect() as conn:
            people = query(conn, "SELECT id, province, birth_year, sex FROM worker ORDER BY id")
            platform_rows = query(conn, "SELECT id, name FROM platform ORDER BY id")
            gross_rows = query(
                conn, f"SELECT worker_id, booking_month, platform_id, kind, "
                      f"sum(CASE WHEN entry_type = {int(EntryType.event)} THEN amount_vnd ELSE -amount_vnd END), "
                      f"sum(CASE WHEN entry_type = {int(EntryType.event)} THEN 1 ELSE 0 END) "
                      f"FROM journal WHERE entry_type IN ({int(EntryType.event)}, {int(EntryType.refund)}) "
                      f"GROUP BY worker_id, booking_month, platform_id, kind")
            share_rows = query(
                conn, f"SELECT j.worker_id, j.booking_month, j.platform_id, j.kind, p.scheme, p.party, "
                      f"-sum(p.amount_vnd) FROM legs p JOIN journal j ON j.id = p.entry_id "
                      f"WHERE p.account_kind = {int(AccountKind.worker)} "
                      f"AND j.entry_type IN ({int(EntryType.event)}, {int(EntryType.refund)}) "
                      f"GROUP BY j.worker_id, j.booking_month, j.platform_id, j.kind, p.scheme, p.party")
            tier_rows = query(conn, "SELECT worker_id, tier, valid_from_month, id FROM household_tier")
            conn.rollback()
    except Exception as error:  # the database is user input here: say which and why
        raise PopulationError(f"cannot read a ledger at {_redacted(url)}: {error}") from error
    finally:
        engine.dispose()

    ledger_ids = np.array([row[0] for row in people], dtype=np.int64)
    position = {int(worker_id): i for i, worker_id in enumerate(ledger_ids.tolist())}
    platforms = tuple(name for _, name in platform_rows)
    platform_position = {pid: i for i, (pid, _) in enumerate(platform_rows)}

    activity = pd.DataFrame(gross_rows, columns=["ledger_worker", "month", "ledger_platform", "kind",
                                                 "gross_vnd", "events"])
    shares = pd.DataFrame(share_rows, columns=["ledger_worker", "month", "ledger_platform", "kind", "scheme",
                                               "party", "amount"])
    scheme_name = {code: scheme for scheme, code in SCHEME_CODE.items()}
    party_name = {code: party for party, code in PARTY_CODE.items()}
    shares["column"] = ["rec_" + scheme_name[s] + "_" + party_name[p]
                        for s, p in zip(shares["scheme"].tolist(), shares["party"].tolist())]
    keys = ["ledger_worker", "month", "ledger_platform", "kind"]
    wide = shares.pivot_table(index=keys, columns="column", values="amount", aggfunc="sum", fill_value=0)
    activity = activity.merge(wide.reset_index(), on=keys, how="outer")
    for column in RECORDED_COLUMNS:
        if column not in activity:
            activity[column] = 0
    activity = activity.fillna(0)

    tiers = list(DEFAULT_TIERS)
    for _, tier, _, _ in tier_rows:
        if tier not in tiers:
            tiers.insert(len(tiers) - 1, tier)
    tier_code = {tier: code for code, tier in enumerate(tiers)}
    activity["tier"] = np.int8(tier_code[BASE_TIER])
    history = sorted(tier_rows, key=lambda row: (row[0], row[2], row[3]))
    for month in sorted(activity["month"].unique().tolist()):
        in_force = {}
        for worker_id, tier, valid_from, _ in history:
            if valid_from <= month:
                in_force[worker_id] = tier_code[tier]  # latest valid_from, newest record winning
        selected = activity["month"] == month
        activity.loc[selected, "tier"] = activity.loc[selected, "ledger_worker"].map(in_force).fillna(
            tier_code[BASE_TIER]).astype(np.int8).to_numpy()

    frame = pd.DataFrame({
        "worker": activity["ledger_worker"].map(position).astype(np.int64),
        "month": activity["month"].astype(np.int32),
        "platform": activity["ledger_platform"].map(platform_position).astype(np.int16),
        "kind": activity["kind"].astype(np.int8),
        "tier": activity["tier"].astype(np.int8),
        "gross_vnd": activity["gross_vnd"].astype(np.int64),
        "events": activity["events"].astype(np.int32),
        **{column: activity[column].astype(np.int64) for column in RECORDED_COLUMNS},
    }).sort_values(["month", "worker", "platform", "kind"], kind="stable", ignore_index=True)

    last_tier = {}
    for worker_id, tier, _, _ in history:
        last_tier[worker_id] = tier
    provinces = [row[1] for row in people]
    dominant = _dominant_type(frame, len(people))
    worker_frame = pd.DataFrame({
        "worker": np.arange(len(people), dtype=np.int64),
        "ledger_worker_id": ledger_ids,
        "sex": pd.Categorical([row[3] for row in people]),
        "birth_year": np.array([row[2] for row in people], dtype=np.int16),
        "province": pd.Categorical(provinces),
        "region": pd.Categorical([REGION_OF_PROVINCE.get(p, "unknown") for p in provinces]),
        "worker_type": pd.Categorical(dominant),
        "tier": pd.Categorical([last_tier.get(int(w), BASE_TIER) for w in ledger_ids.tolist()], categories=tiers),
    })
    return Population(worker_frame, frame, platforms, tuple(tiers),
                      {"kind": "from_db", "database": _redacted(url), "workers": len(people),
                       "months": sorted(int(m) for m in frame["month"].unique())})


def _dominant_type(activity: pd.DataFrame, count: int) -> list[str]:
    by_kind = np.zeros((count, len(KINDS)), dtype=np.int64)
    np.add.at(by_kind, (activity["worker"].to_numpy(), activity["kind"].to_numpy().astype(np.int64)),
              np.maximum(activity["gross_vnd"].to_numpy(), 0))
    names = np.array(["ride", "delivery", "seller"])
    result = names[by_kind.argmax(axis=1)]
    return np.where(by_kind.sum(axis=1) > 0, result, "inactive").tolist()


def _redacted(url: str) -> str:
    """The URL without a password, for records and errors."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


# ---------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------

def save(population: Population, directory: str | Path) -> str:
    """Write workers.parquet, activity.parquet and population.json (with the content hash)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    population.workers.to_parquet(directory / "workers.parquet", index=False)
    population.activity.to_parquet(directory / "activity.parquet", index=False)
    content_hash = population.content_hash()
    meta = {"format_version": FORMAT_VERSION, "content_sha256": content_hash, "platforms": list(population.platforms),
            "tiers": list(population.tiers), "source": dict(population.source)}
    (directory / "population.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return content_hash


def _read_numeric_parquet(path: Path) -> pd.DataFrame:
    """A Parquet table of numeric columns, decoded a batch at a time into preallocated arrays.

    `pd.read_parquet` holds Arrow's decoded buffers and the frame's arrays at once: 6–8 GB
    for a 10M-worker year (3.6 GB of data). Other tables go through `pd.read_parquet`.
    """
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    schema = source.schema_arrow
    def numeric(field) -> bool:
        try:
            return field.type.num_fields == 0 and np.dtype(field.type.to_pandas_dtype()).kind in "biuf"
        except (NotImplementedError, TypeError):  # dictionary (categorical), nested, …
            return False

    if schema.pandas_metadata is None or not all(numeric(field) for field in schema):
        return pd.read_parquet(path)
    rows = source.metadata.num_rows
    columns = {field.name: np.empty(rows, dtype=field.type.to_pandas_dtype()) for field in schema}
    at = 0
    for batch in source.iter_batches(batch_size=READ_BATCH_ROWS):
        size = batch.num_rows
        for name, values in zip(batch.schema.names, batch.columns):
            if values.null_count:
                raise ValueError(f"{path}: column {name} has missing values")
            columns[name][at:at + size] = values.to_numpy(zero_copy_only=False)
        at += size
    assert at == rows, "every row decoded once"
    index_columns = [c for c in schema.pandas_metadata.get("index_columns", []) if isinstance(c, str)]
    for name in index_columns:
        del columns[name]
    return pd.DataFrame(columns, copy=False)


def load(directory: str | Path) -> Population:
    """A saved population; refuses one whose content no longer matches its recorded hash."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "population.json").read_text(encoding="utf-8"))
        workers = pd.read_parquet(directory / "workers.parquet")
        activity = _read_numeric_parquet(directory / "activity.parquet")
    except (OSError, ValueError) as error:
        raise PopulationError(f"{directory}: not a saved population ({error})") from None
    population = Population(workers, activity, tuple(meta["platforms"]), tuple(meta["tiers"]), meta["source"])
    if population.content_hash() != meta["content_sha256"]:
        raise PopulationError(f"{directory}: content does not match its recorded hash {meta['content_sha256']}")
    return population
