"""Synthetic platform traffic: a seeded, vectorised generator of realistic event streams.

What it owns: a made-up worker population (valid CCCD numbers that identify nobody),
a month of ride / delivery / order events as platforms would send them (RULES.md §1),
mixed with refunds, re-sent duplicates and bad events of every rejection code, and a
household-tier file for the same workers. `ansinh demo`, the tests and the ingest
benchmark all read from here.

Why it is built this way:
- Deterministic. All randomness comes from numpy Generators seeded from `seed`; there
  is no wall clock, no hash order and no set iteration, so the same arguments give
  byte-identical NDJSON (PolicyEngine habit: randomness only when building a dataset).
- Flat memory. The month is cut into Vietnam-time hours. Every total that must hold
  over the month (completed events, refunds, duplicates, bad events) is allocated to
  hours up front with exact multinomial / hypergeometric draws; then one hour at a
  time is generated with numpy, turned into dicts, ordered by send time and yielded.
  What stays in memory is the worker table, one hour of events and the refunds not
  yet due, whatever the event count.
- No markers. A bad event looks like what a platform might really send; tests tell
  the categories apart by re-applying RULES.md §1, not by a hidden field.
- Exact counts. With `events=N` the stream has exactly N items:
  round(N·bad_rate) bad, round(N·duplicate_rate) duplicates, the rest completed
  events and their refunds (about 1.2 refund items per refunded original).
"""
from __future__ import annotations

import calendar
import csv
import io
import itertools
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import IO, Any, NamedTuple

import numpy as np
import orjson
import pandas as pd

__all__ = [
    "PLATFORMS", "Platform", "REJECTION_CODES", "generate_events", "household_tiers", "make_national_ids",
    "make_workers", "workers_for_seed", "write_ndjson", "write_tiers_csv",
]

# ---------------------------------------------------------------------------
# Calibration. Figures marked DOMAIN.md come from /work/shared/DOMAIN.md,
# "Calibration for simulations"; the rest are stated assumptions.
# ---------------------------------------------------------------------------

# RULES.md §2: the province codes that may open a CCCD number.
PROVINCE_CODES = tuple(
    """001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031
    033 034 035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064
    066 067 068 070 072 074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095
    096""".split()
)
# Assumption (DOMAIN.md gives no split): most platform workers hold a Hanoi (001) or
# HCMC (079) card, then the other big cities; every other province shares the rest.
PROVINCE_WEIGHT_OVERRIDES = {"079": 18.0, "001": 14.0, "048": 3.0, "031": 3.0, "092": 2.5,
                             "075": 2.5, "074": 2.5, "036": 2.0, "038": 2.0, "040": 2.0}
# Assumption: northern mountain and central-highland provinces, where household poverty
# is most common; household_tiers draws poor / near-poor three times as often there.
HIGH_POVERTY_PROVINCES = frozenset(
    "002 004 006 008 010 011 012 014 015 017 020 062 064 066 067".split())

# Brief / RULES.md §8: the pilot starts in 2026; workers are 18–65 in 2026 (born 1961–2008).
REFERENCE_YEAR = 2026
AGE_MIN_YEARS, AGE_MAX_YEARS = 18, 65
AGE_BETA_SHAPE = (2.0, 4.0)  # assumption: platform workers skew young (mean age ~34)
FIRST_MONTH = 202601  # RULES.md §8: the default pack is in force from 2026-01-01

# Assumption (DOMAIN.md: ~7.5 million platform workers, no split by type).
WORKER_TYPES = ("ride", "delivery", "seller")
WORKER_TYPE_WEIGHTS = (0.40, 0.35, 0.25)
MALE_SHARE_BY_TYPE = (0.92, 0.80, 0.35)  # assumption: drivers mostly men, sellers mostly women
CAR_SHARE_OF_RIDE_WORKERS = 0.25  # assumption: most ride-hailing in Vietnam is by motorbike
RIDE_WORKER_DELIVERY_SHARE = 0.15  # assumption: bike drivers on Grab/Be also take food orders
# Brief: ~25 % of workers use more than one platform (1: 75 %, 2: 19 %, 3: 6 %).
PLATFORM_COUNT_WEIGHTS = (0.75, 0.19, 0.06)
PLATFORM_PREFERENCE = ((1.0,), (0.7, 0.3), (0.6, 0.25, 0.15))  # share of a worker's events per platform
FULL_TIME_SHARE_BY_TYPE = (0.55, 0.50, 0.30)  # assumption

# DOMAIN.md: HCMC drivers earn ~9.3 million VND/month ≈ 14 bike trips/day × 26 days × ~24,000.
FULL_TIME_BIKE_TRIPS_PER_DAY = 14.0
FULL_TIME_CAR_TRIPS_PER_DAY = 9.0  # assumption: longer car trips, fewer of them
# DOMAIN.md: ~10 orders/day for a full-time food-delivery rider.
FULL_TIME_DELIVERIES_PER_DAY = 10.0
PART_TIME_EVENTS_PER_DAY = 4.0  # assumption
# Assumption: shop order counts are heavy-tailed (a few big shops, many small ones).
SELLER_ORDERS_PER_DAY_MEDIAN = 2.5
SELLER_ORDERS_PER_DAY_SIGMA = 1.1
SELLER_ORDERS_PER_DAY_MAX = 300.0
FULL_TIME_ACTIVE_DAYS = (22, 30)  # assumption, inclusive
PART_TIME_ACTIVE_DAYS = (4, 18)  # assumption, inclusive
DAYS_IN_MONTH_MAX = 31

# DOMAIN.md: GrabBike fare 13,000 VND for the first 2 km + ~4,000/km.
BIKE_BASE_FARE_VND = 13_000
BIKE_BASE_DISTANCE_KM = 2.0
BIKE_FARE_PER_KM_VND = 4_000
BIKE_FARE_STEP_VND = 500  # brief: fares are rounded to 500 VND
# Assumption: urban bike trips, median 3.8 km, a long tail to 45 km.
BIKE_DISTANCE_MEDIAN_KM = 3.8
BIKE_DISTANCE_SIGMA = 0.6
BIKE_DISTANCE_RANGE_KM = (0.6, 45.0)
# DOMAIN.md: car trips 44,000–123,000 VND. A lognormal with median 74,000 and sigma 0.30
# puts 90 % of trips between 45,000 and 121,000.
CAR_FARE_MEDIAN_VND = 74_000
CAR_FARE_SIGMA = 0.30
CAR_FARE_MIN_VND = 30_000
CAR_LONG_TRIP_SHARE = 0.03  # assumption: airport and intercity trips, 2–6 × a city fare
CAR_LONG_TRIP_FACTOR = (2.0, 6.0)
# DOMAIN.md: food delivery 12,000–25,000 VND per order (the delivery fee).
DELIVERY_FEE_RANGE_VND = (12_000, 25_000)
DELIVERY_FEE_MEDIAN_VND = 16_000
DELIVERY_FEE_SIGMA = 0.22
# Assumption: 6 % of deliveries are long-distance or bulky parcels, a long tail of fees.
DELIVERY_LONG_TAIL_SHARE = 0.06
DELIVERY_LONG_TAIL_MEDIAN_VND = 45_000
DELIVERY_LONG_TAIL_SIGMA = 0.5
DELIVERY_LONG_TAIL_MAX_VND = 2_000_000
# DOMAIN.md: e-commerce orders ~93,000–109,000 VND per item (2025).
ITEM_PRICE_RANGE_VND = (93_000, 109_000)
ITEMS_PER_ORDER_WEIGHTS = (0.62, 0.26, 0.12)  # brief: 1–3 items; the weights are an assumption
ORDER_LONG_TAIL_SHARE = 0.05  # assumption: electronics, furniture and the like
ORDER_LONG_TAIL_MEDIAN_VND = 600_000
ORDER_LONG_TAIL_SIGMA = 1.0
ORDER_LONG_TAIL_MAX_VND = 50_000_000
MONEY_STEP_VND = 1_000  # assumption: car fares, fees and order totals in whole thousands
AMOUNT_VND_MAX = 10_000_000_000  # RULES.md §1

# Assumption: hourly shape of each worker type's completions, Vietnam time, hour 0..23.
# Rides peak at commute hours, food at meals, shop orders complete through the day and
# evening. Normalised below.
HOURLY_PROFILE = {
    "ride": (0.6, 0.3, 0.2, 0.2, 0.4, 1.2, 3.0, 5.5, 6.5, 4.5, 3.5, 3.8,
             4.0, 3.5, 3.2, 3.5, 4.5, 6.5, 6.8, 5.5, 4.5, 3.8, 2.8, 1.5),
    "delivery": (0.5, 0.3, 0.2, 0.1, 0.1, 0.3, 1.0, 2.5, 3.0, 2.5, 4.5, 7.5,
                 8.0, 5.0, 3.0, 2.8, 3.5, 6.0, 7.5, 6.5, 4.5, 3.5, 2.5, 1.2),
    "seller": (1.5, 1.0, 0.6, 0.4, 0.3, 0.4, 0.8, 1.8, 3.0, 4.0, 4.5, 4.8,
               4.5, 4.2, 4.3, 4.5, 4.6, 4.6, 4.4, 4.8, 5.5, 5.8, 4.5, 2.8),
}
WEEKEND_FACTOR = {"ride": 0.9, "delivery": 1.15, "seller": 1.1}  # assumption
# Assumption: e-commerce "double day" sales (1/1, 2/2, …, 12/12), mid-month and payday sales.
DOUBLE_DAY_SALE_FACTOR = 2.5
MID_MONTH_SALE_FACTOR = 1.4
PAYDAY_SALE_FACTOR = 1.3

# Refunds. Assumption: returns are far more common for shop orders than for rides.
REFUND_WEIGHT_BY_TYPE = (0.4, 1.0, 3.0)
REFUND_TWO_PART_SHARE = 0.2  # of refunded originals; so ~1.2 refund items per refunded original
REFUND_FULL_SHARE = 0.45  # of one-part refunds
REFUND_TWO_PART_FULL_SHARE = 0.6  # of two-part refunds: the parts add up to the whole amount
REFUND_DELAY_MEDIAN_SECONDS = {"ride": 3 * 3600, "delivery": 2 * 3600, "seller": 3 * 86400}
REFUND_DELAY_SIGMA = 1.0
REFUND_SECOND_PART_DELAY_MEDIAN_SECONDS = 86400
DUPLICATE_RESEND_DELAY_SECONDS_MAX = 900  # assumption: a platform retries within 15 minutes
RATE_MAX = 0.5  # an explicit limit: above this the stream is mostly noise

SLICE_SECONDS = 3600
VIETNAM_OFFSET_SECONDS = 7 * 3600  # Asia/Ho_Chi_Minh is UTC+7 with no DST (RULES.md §3)
RESERVOIR_SIZE = 512  # recent good events that bad events may refer to
RESERVOIR_REFRESH = 64  # completes of each hour added to it (more would only cost time)
WRITE_CHUNK_ITEMS = 8192

# RULES.md §1, in the order they are checked.
REJECTION_CODES = (
    "malformed", "missing_field", "invalid_event_id", "unknown_kind", "invalid_currency",
    "invalid_amount", "invalid_timestamp", "invalid_worker_id", "invalid_action",
    "duplicate_conflict", "unknown_original", "refund_mismatch", "refund_exceeds_original",
)
KINDS = ("ride", "delivery", "order")  # RULES.md §1
KIND_LETTER = {"ride": "r", "delivery": "d", "order": "o"}


class Platform(NamedTuple):
    """A reporting platform: the kinds it sends and how it writes its events."""

    id: str
    kinds: tuple[str, ...]
    share: float  # market-share weight among the platforms that report the same kind
    utc_share: float  # share of occurred_at written in UTC ("Z") instead of +07:00
    writes_action: bool  # sends "action": "complete" explicitly
    writes_currency: bool  # sends "currency": "VND"


# Assumption (DOMAIN.md names the platforms, not their shares): rough 2025 market shares,
# used as relative weights within each kind (ride: Grab > Xanh SM > Be; food delivery:
# Grab ≈ ShopeeFood > Be; e-commerce: Shopee ≫ Lazada).
PLATFORMS: dict[str, Platform] = {
    "grab": Platform("grab", ("ride", "delivery"), 0.40, 0.10, False, True),
    "be": Platform("be", ("ride", "delivery"), 0.10, 0.00, True, False),
    "xanhsm": Platform("xanhsm", ("ride",), 0.20, 0.05, False, False),
    "shopeefood": Platform("shopeefood", ("delivery",), 0.32, 0.20, True, True),
    "shopee": Platform("shopee", ("order",), 0.75, 0.30, False, True),
    "lazada": Platform("lazada", ("order",), 0.15, 0.60, True, False),
}
_PLATFORM_IDS = tuple(PLATFORMS)
_TYPE_KIND = ("ride", "delivery", "order")  # the main kind of each worker type


# ---------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------

def _province_weights() -> np.ndarray:
    weights = np.array([PROVINCE_WEIGHT_OVERRIDES.get(code, 1.0) for code in PROVINCE_CODES])
    return weights / weights.sum()


def _compose_national_ids(rng: np.random.Generator, province: np.ndarray, female: np.ndarray,
                          birth_year: np.ndarray) -> list[str]:
    """12-digit CCCD numbers (RULES.md §2), all distinct; the last six digits are random."""
    count = len(province)
    assert len(female) == count and len(birth_year) == count
    assert ((birth_year >= 1900) & (birth_year <= 2099)).all(), "CCCD encodes 1900–2099 here"
    century_digit = 2 * ((birth_year - 1900) // 100) + female.astype(np.int64)
    head = (province.astype(np.int64) * 10 + century_digit) * 100 + birth_year % 100
    serial = rng.integers(0, 1_000_000, size=count)
    for _attempt in range(1_000):  # explicit limit: collisions are rare and vanish fast
        values = head * 1_000_000 + serial
        _, first = np.unique(values, return_index=True)
        repeated = np.ones(count, dtype=bool)
        repeated[first] = False
        if not repeated.any():
            break
        serial[repeated] = rng.integers(0, 1_000_000, size=int(repeated.sum()))
    else:
        raise RuntimeError(f"could not draw {count} distinct national ids; too many for the provinces and years")
    ids = [f"{value:012d}" for value in values.tolist()]
    assert len(set(ids)) == count
    return ids


def _draw_birth_years(rng: np.random.Generator, count: int) -> np.ndarray:
    span = AGE_MAX_YEARS - AGE_MIN_YEARS
    age = AGE_MIN_YEARS + np.floor(rng.beta(*AGE_BETA_SHAPE, size=count) * (span + 1)).astype(np.int64)
    age = np.minimum(age, AGE_MAX_YEARS)
    return REFERENCE_YEAR - age


def make_national_ids(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct valid CCCD numbers of working-age people (born 1961–2008), ~70 % men."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    province = rng.choice(np.array(PROVINCE_CODES, dtype=np.int64), size=n, p=_province_weights())
    female = rng.random(n) >= 0.70
    return _compose_national_ids(rng, province, female, _draw_birth_years(rng, n))


def _gumbel_top(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Order of columns per row for weighted sampling without replacement (zero weight last)."""
    with np.errstate(divide="ignore"):
        keys = np.log(weights) - np.log(-np.log(rng.random(weights.shape)))
    return np.argsort(-keys, axis=1, kind="stable")


def make_workers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """The synthetic population: one row per worker.

    Columns: national_id, sex (male/female, as digit 4 encodes), birth_year, province
    (3-digit code), worker_type (ride/delivery/seller), vehicle (bike/car/none),
    platforms (tuple of 1–3 platform ids, preferred first), full_time, events_per_day
    (on an active day), active_days (in a 31-day month; shorter months clip it).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    type_code = rng.choice(3, size=n, p=WORKER_TYPE_WEIGHTS)
    female = rng.random(n) >= np.array(MALE_SHARE_BY_TYPE)[type_code]
    birth_year = _draw_birth_years(rng, n)
    province = rng.choice(np.array(PROVINCE_CODES, dtype=np.int64), size=n, p=_province_weights())
    national_ids = _compose_national_ids(rng, province, female, birth_year)
    is_car = (type_code == 0) & (rng.random(n) < CAR_SHARE_OF_RIDE_WORKERS)

    # Platforms: how many (capped by how many report the worker's kind), then which, by share.
    eligible = np.array([[PLATFORMS[p].share if _TYPE_KIND[t] in PLATFORMS[p].kinds else 0.0
                          for p in _PLATFORM_IDS] for t in range(3)])[type_code]
    wanted = rng.choice(3, size=n, p=PLATFORM_COUNT_WEIGHTS) + 1
    platform_count = np.minimum(wanted, (eligible > 0).sum(axis=1))
    ranked = _gumbel_top(rng, eligible)
    platforms = [tuple(_PLATFORM_IDS[j] for j in row[:count])
                 for row, count in zip(ranked.tolist(), platform_count.tolist())]

    full_time = rng.random(n) < np.array(FULL_TIME_SHARE_BY_TYPE)[type_code]
    full_time_rate = np.where(type_code == 1, FULL_TIME_DELIVERIES_PER_DAY,
                              np.where(is_car, FULL_TIME_CAR_TRIPS_PER_DAY, FULL_TIME_BIKE_TRIPS_PER_DAY))
    gig_rate = np.where(full_time, full_time_rate, PART_TIME_EVENTS_PER_DAY) * rng.gamma(6.0, 1 / 6.0, size=n)
    seller_pace = SELLER_ORDERS_PER_DAY_MEDIAN * np.exp(SELLER_ORDERS_PER_DAY_SIGMA * rng.standard_normal(n))
    seller_rate = np.minimum(seller_pace, SELLER_ORDERS_PER_DAY_MAX) * np.where(full_time, 2.0, 1.0)
    events_per_day = np.round(np.maximum(np.where(type_code == 2, seller_rate, gig_rate), 0.2), 2)
    active_days = np.where(full_time, rng.integers(FULL_TIME_ACTIVE_DAYS[0], FULL_TIME_ACTIVE_DAYS[1] + 1, size=n),
                           rng.integers(PART_TIME_ACTIVE_DAYS[0], PART_TIME_ACTIVE_DAYS[1] + 1, size=n))
    active_days = np.where((type_code == 2) & full_time, DAYS_IN_MONTH_MAX, active_days)  # shops never close

    frame = pd.DataFrame({
        "national_id": national_ids,
        "sex": np.where(female, "female", "male"),
        "birth_year": birth_year.astype(np.int64),
        "province": [f"{code:03d}" for code in province.tolist()],
        "worker_type": np.array(WORKER_TYPES)[type_code],
        "vehicle": np.where(type_code == 2, "none", np.where(is_car, "car", "bike")),
        "platforms": platforms,
        "full_time": full_time,
        "events_per_day": events_per_day,
        "active_days": active_days.astype(np.int64),
    })
    assert frame["national_id"].is_unique
    return frame


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The population and the traffic generators of one seed.

    The population comes from `np.random.default_rng(seed)`, so callers that build the
    same table by hand (`make_workers(np.random.default_rng(seed), workers)`) get the
    workers the events are about; the traffic has a stream of its own.
    """
    return np.random.default_rng(seed), np.random.default_rng([seed, 1])


def workers_for_seed(seed: int, workers: int = 2000) -> pd.DataFrame:
    """The worker table that `generate_events(seed=seed, workers=workers)` draws from.

    Equal to `make_workers(np.random.default_rng(seed), workers)`; household tiers for
    the people in a generated stream are drawn from it.
    """
    return make_workers(_streams(seed)[0], workers)


# ---------------------------------------------------------------------------
# Amounts
# ---------------------------------------------------------------------------

def _round_to(values: np.ndarray, step_vnd: int) -> np.ndarray:
    """Half-up rounding to a multiple of step_vnd, as int64 (amounts are positive)."""
    return (np.floor(values / step_vnd + 0.5) * step_vnd).astype(np.int64)


def _bike_fares(rng: np.random.Generator, count: int) -> np.ndarray:
    km = np.clip(BIKE_DISTANCE_MEDIAN_KM * np.exp(BIKE_DISTANCE_SIGMA * rng.standard_normal(count)),
                 *BIKE_DISTANCE_RANGE_KM)
    fare = BIKE_BASE_FARE_VND + BIKE_FARE_PER_KM_VND * np.maximum(km - BIKE_BASE_DISTANCE_KM, 0.0)
    return _round_to(fare, BIKE_FARE_STEP_VND)


def _car_fares(rng: np.random.Generator, count: int) -> np.ndarray:
    fare = CAR_FARE_MEDIAN_VND * np.exp(CAR_FARE_SIGMA * rng.standard_normal(count))
    long_trip = rng.random(count) < CAR_LONG_TRIP_SHARE
    fare = np.where(long_trip, fare * rng.uniform(*CAR_LONG_TRIP_FACTOR, size=count), fare)
    return np.maximum(_round_to(fare, MONEY_STEP_VND), CAR_FARE_MIN_VND)


def _delivery_fees(rng: np.random.Generator, count: int) -> np.ndarray:
    fee = np.clip(DELIVERY_FEE_MEDIAN_VND * np.exp(DELIVERY_FEE_SIGMA * rng.standard_normal(count)),
                  *DELIVERY_FEE_RANGE_VND)
    tail = np.clip(DELIVERY_LONG_TAIL_MEDIAN_VND * np.exp(DELIVERY_LONG_TAIL_SIGMA * rng.standard_normal(count)),
                   DELIVERY_FEE_RANGE_VND[1], DELIVERY_LONG_TAIL_MAX_VND)
    fee = np.where(rng.random(count) < DELIVERY_LONG_TAIL_SHARE, tail, fee)
    return _round_to(fee, MONEY_STEP_VND)


def _order_values(rng: np.random.Generator, count: int) -> np.ndarray:
    items = rng.choice(3, size=count, p=ITEMS_PER_ORDER_WEIGHTS) + 1
    prices = rng.uniform(*ITEM_PRICE_RANGE_VND, size=(count, 3))
    value = (prices * (np.arange(3) < items[:, None])).sum(axis=1)
    tail = np.minimum(ORDER_LONG_TAIL_MEDIAN_VND * np.exp(ORDER_LONG_TAIL_SIGMA * rng.standard_normal(count)),
                      ORDER_LONG_TAIL_MAX_VND)
    value = value + np.where(rng.random(count) < ORDER_LONG_TAIL_SHARE, tail, 0.0)
    return _round_to(value, MONEY_STEP_VND)


def _amounts(rng: np.random.Generator, kind_code: np.ndarray, is_car: np.ndarray) -> np.ndarray:
    """Transaction values in VND for events of the given kinds (0 ride, 1 delivery, 2 order)."""
    count = len(kind_code)
    # Draw every family for every event so the draw count does not depend on the mix.
    amount_vnd = np.select(
        [(kind_code == 0) & ~is_car, kind_code == 0, kind_code == 1],
        [_bike_fares(rng, count), _car_fares(rng, count), _delivery_fees(rng, count)],
        _order_values(rng, count),
    ).astype(np.int64)
    assert count == 0 or (amount_vnd.min() >= 1 and amount_vnd.max() <= AMOUNT_VND_MAX)
    return amount_vnd


# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------

def _parse_month(month: str) -> tuple[int, int]:
    if (not isinstance(month, str) or len(month) != 7 or month[4] != "-"
            or not (month[:4] + month[5:]).isdigit() or not 1 <= int(month[5:]) <= 12):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    year, mon = int(month[:4]), int(month[5:])
    if year * 100 + mon < FIRST_MONTH:
        raise ValueError(f"month {month} is before 2026-01, when the first rules pack comes into force")
    return year, mon


def _format_times(utc_seconds: np.ndarray, in_utc: np.ndarray) -> list[str]:
    """RFC 3339 strings: Vietnam local time with +07:00, or UTC with Z."""
    shifted = np.where(in_utc, utc_seconds, utc_seconds + VIETNAM_OFFSET_SECONDS)
    text = np.datetime_as_string(shifted.astype("datetime64[s]"), unit="s").tolist()
    return [t + "Z" if z else t + "+07:00" for t, z in zip(text, in_utc.tolist())]


def _format_time(utc_seconds: int, in_utc: bool) -> str:
    """The scalar form of _format_times (numpy's string conversion is slow for one value)."""
    t = time.gmtime(utc_seconds if in_utc else utc_seconds + VIETNAM_OFFSET_SECONDS)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            + ("Z" if in_utc else "+07:00"))


def _day_factors(year: int, mon: int, days: int) -> np.ndarray:
    """(3, days): relative activity of each worker type on each day of the month."""
    factors = np.ones((3, days))
    for day in range(1, days + 1):
        weekend = calendar.weekday(year, mon, day) >= 5
        for t, name in enumerate(WORKER_TYPES):
            if weekend:
                factors[t, day - 1] *= WEEKEND_FACTOR[name]
        if day == mon:
            factors[2, day - 1] *= DOUBLE_DAY_SALE_FACTOR
        elif day == 15:
            factors[2, day - 1] *= MID_MONTH_SALE_FACTOR
        elif day == 25:
            factors[2, day - 1] *= PAYDAY_SALE_FACTOR
    return factors


# ---------------------------------------------------------------------------
# Allocation helpers (exact totals)
# ---------------------------------------------------------------------------

def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def _multinomial(rng: np.random.Generator, total: int, weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64).ravel()
    if total == 0 or weights.sum() <= 0:
        assert total == 0, "cannot place events where no weight is"
        return np.zeros(len(weights), dtype=np.int64)
    counts = rng.multinomial(total, weights / weights.sum())
    assert counts.sum() == total
    return counts.astype(np.int64)


def _hypergeometric(rng: np.random.Generator, available: np.ndarray, total: int) -> np.ndarray:
    """Exactly `total` picks spread over cells, never more than a cell has."""
    available = np.asarray(available, dtype=np.int64).ravel()
    assert 0 <= total <= available.sum()
    if total == 0:
        return np.zeros(len(available), dtype=np.int64)
    picks = rng.multivariate_hypergeometric(available, total, method="marginals")
    assert picks.sum() == total and (picks <= available).all()
    return picks.astype(np.int64)


def _capped_split(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split total over cells in proportion to weights, never above caps (largest remainder)."""
    caps = np.asarray(caps, dtype=np.int64)
    assert total <= caps.sum()
    result = np.zeros(len(caps), dtype=np.int64)
    for _round in range(len(caps) + 2):  # each round ends the split or fills a cell to its cap
        left = total - int(result.sum())
        open_cells = result < caps
        if left == 0:
            break
        share = np.where(open_cells, weights, 0.0)
        if share.sum() <= 0:
            share = open_cells.astype(np.float64)
        ideal = left * share / share.sum()
        step = np.minimum(np.floor(ideal).astype(np.int64), caps - result)
        remainder = left - int(step.sum())
        order = np.argsort(-(ideal - np.floor(ideal)), kind="stable")
        for cell in order.tolist():
            if remainder == 0:
                break
            if open_cells[cell] and result[cell] + step[cell] < caps[cell]:
                step[cell] += 1
                remainder -= 1
        result += step
    assert result.sum() == total and (result <= caps).all()
    return result


# ---------------------------------------------------------------------------
# Bad events: one builder per rejection code, each breaking exactly that check
# ---------------------------------------------------------------------------

class _BadContext(NamedTuple):
    rng: np.random.Generator
    year: int  # Vietnam year of the month
    bad_id: Callable[[str], str]  # platform -> a fresh id in the bad namespace
    other_worker: Callable[[str], str]  # national id -> a different valid one
    refund_reference: Callable[[], dict[str, Any] | None]  # an earlier good refund
    refund_done: Callable[[], tuple[dict[str, Any], int] | None]  # an original whose refunds were all sent


MALFORMED_LINES = ("oops", "[1, 2]", "42", "null", '"grab-r-000001"', "true",
                   '{"event_id": "grab-r-000001", "amount": ', "{'event_id': 'be-r-1'}")
BAD_EVENT_IDS: tuple[object, ...] = ("", "grab r 12", "grab/r/12", "x" * 129, 12345, "đơn-1", "id\u00a0space")
BAD_KINDS: tuple[object, ...] = ("taxi", "Ride", "", "food", 3)
BAD_CURRENCIES: tuple[object, ...] = ("USD", "vnd", "", "VNĐ", 704)
BAD_AMOUNTS: tuple[object, ...] = (0, -5, 1.5, True, 10**11, "15000")
NOT_PROVINCES = ("000", "003", "013", "099", "097", "050")
BAD_ACTIONS: tuple[object, ...] = ("cancel", "Refund", "", "completed", 1)
REQUIRED_FIELDS = ("event_id", "platform", "kind", "worker_id", "amount", "occurred_at")


def _as_refund_of(original: dict[str, Any], event_id: str, amount_vnd: int, occurred_at: str) -> dict[str, Any]:
    item = {"event_id": event_id, "platform": original["platform"], "kind": original["kind"],
            "action": "refund", "worker_id": original["worker_id"], "amount": amount_vnd}
    if "currency" in original:
        item["currency"] = original["currency"]
    item["occurred_at"] = occurred_at
    item["original_event_id"] = original["event_id"]
    return item


def _bad_event(code: str, variant: int, base: dict[str, Any], reference: dict[str, Any],
               occurred_at: str, context: _BadContext) -> dict[str, Any] | str:
    """A bad item that fails check `code` of RULES.md §1 and passes every check before it.

    `base` is a fresh copy of a good event with a new id in the bad namespace and the
    send time as occurred_at; `reference` is an accepted good complete event sent earlier.
    """
    rng = context.rng
    item = dict(base)
    if code == "malformed":
        return MALFORMED_LINES[variant % len(MALFORMED_LINES)]
    if code == "missing_field":
        choice = variant % (len(REQUIRED_FIELDS) + 2)
        if choice < len(REQUIRED_FIELDS):
            del item[REQUIRED_FIELDS[choice]]
        elif choice == len(REQUIRED_FIELDS):
            item["amount"] = None  # null counts as absent
        else:
            item = _as_refund_of(reference, item["event_id"], reference["amount"], occurred_at)
            del item["original_event_id"]
        return item
    if code == "invalid_event_id":
        item["event_id"] = BAD_EVENT_IDS[variant % len(BAD_EVENT_IDS)]
        return item
    if code == "unknown_kind":
        item["kind"] = BAD_KINDS[variant % len(BAD_KINDS)]
        return item
    if code == "invalid_currency":
        item["currency"] = BAD_CURRENCIES[variant % len(BAD_CURRENCIES)]
        return item
    if code == "invalid_amount":
        item["amount"] = BAD_AMOUNTS[variant % len(BAD_AMOUNTS)]
        return item
    if code == "invalid_timestamp":
        local = occurred_at[:19] if occurred_at.endswith("+07:00") else _shift_to_local(occurred_at)
        item["occurred_at"] = (
            local,  # no offset
            "not-a-timestamp",
            "2025-06-30T16:59:59Z",  # 23:59:59 on 30 June 2025 in Vietnam: before any shipped pack
            f"{context.year}-13-45T25:61:00+07:00",
            "2019-05-01T08:00:00+07:00",
            1767225600,  # epoch seconds, not a string
        )[variant % 6]
        return item
    if code == "invalid_worker_id":
        worker_id = item["worker_id"]
        choice = variant % 6
        if choice == 0:
            worker_id = NOT_PROVINCES[int(rng.integers(len(NOT_PROVINCES)))] + worker_id[3:]
        elif choice == 1:  # born after the event's year: 20yy with yy in the future, or the 22nd century
            future_year = context.year + 1 + int(rng.integers(3))
            if future_year <= 2099:
                century_digit = 2 + int(worker_id[3]) % 2
                worker_id = f"{worker_id[:3]}{century_digit}{future_year % 100:02d}{worker_id[6:]}"
            else:
                worker_id = f"{worker_id[:3]}{4 + int(worker_id[3]) % 2}{worker_id[4:]}"
        elif choice == 2:
            worker_id = worker_id[:11]
        elif choice == 3:
            worker_id = worker_id[:11] + "X"
        elif choice == 4:
            worker_id = int(worker_id)  # a JSON number, not a string
        else:
            worker_id = worker_id + str(int(rng.integers(10)))
        item["worker_id"] = worker_id
        return item
    if code == "invalid_action":
        item["action"] = BAD_ACTIONS[variant % len(BAD_ACTIONS)]
        return item
    if code == "duplicate_conflict":
        item = dict(reference)
        choice = variant % 4
        if choice == 0:
            item["amount"] = reference["amount"] + MONEY_STEP_VND * (1 + int(rng.integers(20)))
        elif choice == 1:
            item["amount"] = max(1, reference["amount"] - BIKE_FARE_STEP_VND)
            if item["amount"] == reference["amount"]:
                item["amount"] += 1
        elif choice == 2:
            item["occurred_at"] = _format_time(_parse_seconds(reference["occurred_at"]) + 60,
                                               reference["occurred_at"].endswith("Z"))
        else:
            item["tip_vnd"] = 5_000  # an extra field counts too (RULES.md §1 "identical")
        return item
    if code == "unknown_original":
        choice = variant % 3
        refund = context.refund_reference() if choice == 2 else None
        if refund is not None:  # names an accepted refund of the same platform: not a completed event
            item = _as_refund_of(refund, context.bad_id(refund["platform"]), refund["amount"], occurred_at)
            item["original_event_id"] = refund["event_id"]
            return item
        item = _as_refund_of(base, base["event_id"], base["amount"], occurred_at)
        if choice == 1 and reference["platform"] != base["platform"]:
            item["original_event_id"] = reference["event_id"]  # exists, but on another platform
        else:
            item["original_event_id"] = (f"{base['platform']}-{KIND_LETTER[base['kind']]}-missing-"
                                         f"{int(rng.integers(10**6)):06d}")
        return item
    if code == "refund_mismatch":
        item = _as_refund_of(reference, item["event_id"], max(1, reference["amount"] // 2), occurred_at)
        if variant % 2 == 0:
            item["worker_id"] = context.other_worker(reference["worker_id"])
        else:
            supported = PLATFORMS[reference["platform"]].kinds
            others = [k for k in supported if k != reference["kind"]] or [k for k in KINDS if k != reference["kind"]]
            item["kind"] = others[0]
        return item
    if code == "refund_exceeds_original":
        done = context.refund_done() if variant % 3 == 2 else None
        if done is not None:
            original, refunded_vnd = done
            amount_vnd = original["amount"] - refunded_vnd + BIKE_FARE_STEP_VND
            return _as_refund_of(original, context.bad_id(original["platform"]), amount_vnd, occurred_at)
        factor_extra = reference["amount"] if variant % 3 == 1 else MONEY_STEP_VND
        return _as_refund_of(reference, item["event_id"], reference["amount"] + factor_extra, occurred_at)
    raise AssertionError(f"no builder for rejection code {code!r}")


def _parse_seconds(occurred_at: str) -> int:
    text = occurred_at[:-1] + "+00:00" if occurred_at.endswith("Z") else occurred_at
    return int(datetime.fromisoformat(text).timestamp())


def _shift_to_local(occurred_at: str) -> str:
    moment = datetime.fromtimestamp(_parse_seconds(occurred_at), timezone(timedelta(hours=7)))
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------------------
# The stream
# ---------------------------------------------------------------------------

def _check_rates(**rates: float) -> None:
    for name, value in rates.items():
        if not isinstance(value, (int, float)) or not 0.0 <= value <= RATE_MAX:
            raise ValueError(f"{name} must be within 0..{RATE_MAX}, got {value!r}")
    if rates["duplicate_rate"] + rates["bad_rate"] > RATE_MAX:
        raise ValueError(f"duplicate_rate + bad_rate must not exceed {RATE_MAX}")


def generate_events(*, seed: int, month: str = "2026-01", workers: int = 2000, events: int | None = None,
                    refund_rate: float = 0.02, duplicate_rate: float = 0.01,
                    bad_rate: float = 0.005) -> Iterator[dict | str]:
    """A month of platform traffic, in send order (see the module docstring).

    Yields event dicts, and for malformed input already-serialised `str` lines.
    `events`: exact number of items; None derives it from the workers' activity.
    `refund_rate`: share of completed events that get refunded (in one or two parts).
    `duplicate_rate`, `bad_rate`: shares of all items that are exact re-sends / invalid.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0 (numpy seeds are non-negative), got {seed!r}")
    year, mon = _parse_month(month)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if events is not None and (not isinstance(events, int) or events < 0):
        raise ValueError(f"events must be None or an int >= 0, got {events!r}")
    _check_rates(refund_rate=refund_rate, duplicate_rate=duplicate_rate, bad_rate=bad_rate)
    return _generate(seed, year, mon, workers, events, refund_rate, duplicate_rate, bad_rate)


def _generate(seed: int, year: int, mon: int, worker_count: int, events: int | None, refund_rate: float,
              duplicate_rate: float, bad_rate: float) -> Iterator[dict | str]:
    population_rng, rng = _streams(seed)
    table = make_workers(population_rng, worker_count)
    days = calendar.monthrange(year, mon)[1]
    month_start = int(datetime(year, mon, 1, tzinfo=timezone(timedelta(hours=7))).timestamp())
    month_end = month_start + days * 86400  # exclusive
    slice_count = days * 24

    national_ids = np.array(table["national_id"].tolist(), dtype=object)
    type_code = table["worker_type"].map({name: i for i, name in enumerate(WORKER_TYPES)}).to_numpy()
    is_car = (table["vehicle"] == "car").to_numpy()
    events_per_day = table["events_per_day"].to_numpy(dtype=np.float64)
    active_days = np.minimum(table["active_days"].to_numpy(), days)
    platform_index = {p: i for i, p in enumerate(_PLATFORM_IDS)}
    worker_platform = np.zeros((worker_count, 3), dtype=np.int64)
    worker_platform_cum = np.ones((worker_count, 3))
    for w, chosen in enumerate(table["platforms"].tolist()):
        worker_platform[w, :len(chosen)] = [platform_index[p] for p in chosen]
        worker_platform_cum[w, :len(chosen)] = np.cumsum(PLATFORM_PREFERENCE[len(chosen) - 1])
    worker_platform_cum[:, -1] = 1.0  # guard against float drift in the cumulative shares

    # Which days each worker works: a random subset of size active_days, weekends less likely
    # for ride and more likely for delivery and sellers (the day factors carry that shape).
    day_factors = _day_factors(year, mon, days)
    day_keys = rng.random((worker_count, days)) ** (1.0 / day_factors[type_code])
    day_rank = np.argsort(np.argsort(-day_keys, axis=1, kind="stable"), axis=1, kind="stable")
    active = day_rank < active_days[:, None]

    hourly = np.array([HOURLY_PROFILE[name] for name in WORKER_TYPES])
    hourly = hourly / hourly.sum(axis=1, keepdims=True)
    # mass[d, h, t]: expected completions of type-t workers in hour h of day d.
    type_day_rate = np.stack([(events_per_day[:, None] * active * (type_code == t)[:, None]).sum(axis=0)
                              for t in range(3)])  # (3, days)
    mass = (type_day_rate * day_factors).T[:, None, :] * hourly.T[None, :, :]  # (days, 24, 3)
    expected_completes = float(mass.sum())

    refund_items_per_refunded = 1.0 + REFUND_TWO_PART_SHARE
    if events is None:
        growth = 1.0 + refund_rate * refund_items_per_refunded
        events = _round_half_up(expected_completes * growth / (1.0 - duplicate_rate - bad_rate))
    bad_total = _round_half_up(events * bad_rate)
    duplicate_total = _round_half_up(events * duplicate_rate)
    good_total = events - bad_total - duplicate_total
    q = refund_rate * refund_items_per_refunded
    refund_item_total = _round_half_up(good_total * q / (1.0 + q))
    complete_total = good_total - refund_item_total
    refunded_total = _round_half_up(refund_item_total / refund_items_per_refunded)
    two_part_total = refund_item_total - refunded_total
    assert complete_total >= refunded_total >= two_part_total >= 0
    assert complete_total + refund_item_total + duplicate_total + bad_total == events
    if complete_total == 0:  # nothing to duplicate or refer to: an all-malformed stream
        for number in range(events):
            yield MALFORMED_LINES[number % len(MALFORMED_LINES)]
        return

    completes = _multinomial(rng, complete_total, mass).reshape(slice_count, 3)
    per_type = completes.sum(axis=0)
    refunded_by_type = _capped_split(refunded_total, np.array(REFUND_WEIGHT_BY_TYPE) * per_type, per_type)
    refunded = np.stack([_hypergeometric(rng, completes[:, t], int(refunded_by_type[t])) for t in range(3)], axis=1)
    two_part = _hypergeometric(rng, refunded, two_part_total).reshape(slice_count, 3)
    slice_completes = completes.sum(axis=1)
    duplicates = _multinomial(rng, duplicate_total, slice_completes)
    bads = _multinomial(rng, bad_total, slice_completes)

    counters = np.zeros(len(_PLATFORM_IDS) * 3, dtype=np.int64)  # event numbers per (platform, kind)
    prefixes = [f"{p}-{KIND_LETTER[k]}-" for p in _PLATFORM_IDS for k in KINDS]
    styles = [PLATFORMS[p] for p in _PLATFORM_IDS]
    utc_share = np.array([s.utc_share for s in styles])
    supports_delivery = np.array(["delivery" in s.kinds for s in styles])
    bad_counters = {p: 0 for p in _PLATFORM_IDS}
    pending_refunds: dict[int, list[tuple[int, int, dict[str, Any], tuple[dict[str, Any], int] | None]]] = {}
    deferred_bad: list[int] = []  # bad-event numbers still waiting for a good event to refer to
    recent: deque[dict[str, Any]] = deque(maxlen=RESERVOIR_SIZE)
    recent_refunds: deque[dict[str, Any]] = deque(maxlen=RESERVOIR_SIZE)
    refunds_done: deque[tuple[dict[str, Any], int]] = deque(maxlen=RESERVOIR_SIZE)
    bad_number = 0
    emitted = 0

    def bad_id(platform: str) -> str:
        bad_counters[platform] += 1
        return f"{platform}-x-{bad_counters[platform]:06d}"

    def other_worker(national_id: str) -> str:
        for _attempt in range(8):  # explicit limit; with one worker there is no other
            candidate = national_ids[int(rng.integers(worker_count))]
            if candidate != national_id:
                return candidate
        # Still a valid CCCD (same province, century and year), just not this worker's.
        return national_id[:6] + f"{(int(national_id[6:]) + 1) % 1_000_000:06d}"

    def pick(pool: deque) -> Any:
        return pool[int(rng.integers(len(pool)))] if pool else None

    context = _BadContext(rng, year, bad_id, other_worker,
                          lambda: pick(recent_refunds), lambda: pick(refunds_done))

    day_pick: list[tuple[np.ndarray, np.ndarray]] = []
    for s in range(slice_count):
        day, hour = divmod(s, 24)
        slice_start = month_start + s * SLICE_SECONDS
        slice_end = slice_start + SLICE_SECONDS  # exclusive
        if hour == 0:  # per day and worker type: who works today, weighted by their pace
            day_pick = []
            for t in range(3):
                members = np.flatnonzero((type_code == t) & active[:, day])
                day_pick.append((members, np.cumsum(events_per_day[members])))

        # 1. Completed events of this hour, in time order, numbered per (platform, kind).
        counts = completes[s]
        worker_parts, type_parts = [], []
        for t in range(3):
            if counts[t]:
                members, cumulative = day_pick[t]
                assert len(members), "mass was placed on a worker type with nobody at work"
                chosen = np.searchsorted(cumulative, rng.random(counts[t]) * cumulative[-1], side="right")
                worker_parts.append(members[np.minimum(chosen, len(members) - 1)])
                type_parts.append(np.full(counts[t], t))
        n = int(counts.sum())
        worker = np.concatenate(worker_parts) if n else np.zeros(0, dtype=np.int64)
        group = np.concatenate(type_parts) if n else np.zeros(0, dtype=np.int64)
        seconds = slice_start + rng.integers(0, SLICE_SECONDS, size=n)
        column = (rng.random(n)[:, None] > worker_platform_cum[worker]).sum(axis=1)
        platform = worker_platform[worker, np.minimum(column, 2)]
        kind = group.copy()  # worker type 0/1/2 -> kind ride/delivery/order
        side_delivery = (group == 0) & ~is_car[worker] & supports_delivery[platform]
        kind[side_delivery & (rng.random(n) < RIDE_WORKER_DELIVERY_SHARE)] = 1
        amount_vnd = _amounts(rng, kind, is_car[worker])
        in_utc = rng.random(n) < utc_share[platform]
        order = np.argsort(seconds, kind="stable")
        worker, group, seconds, platform, kind, amount_vnd, in_utc = (
            a[order] for a in (worker, group, seconds, platform, kind, amount_vnd, in_utc))
        cell = platform * 3 + kind
        numbers = np.empty(n, dtype=np.int64)
        for c in np.unique(cell).tolist():
            where = np.flatnonzero(cell == c)
            numbers[where] = counters[c] + 1 + np.arange(len(where))
            counters[c] += len(where)
        items = _complete_items(cell, numbers, national_ids[worker].tolist(), amount_vnd.tolist(),
                                _format_times(seconds, in_utc), prefixes, styles)
        send = [seconds]
        phase = [np.zeros(n, dtype=np.int64)]
        info: list[tuple[dict[str, Any], int] | None] = [None] * n

        # 2. Refunds of some of them, due now or later in the month (never after it).
        for t in range(3):
            chosen = np.flatnonzero(group == t)
            if not refunded[s, t]:
                continue
            picked = rng.choice(chosen, size=int(refunded[s, t]), replace=False)
            parts = np.ones(len(picked), dtype=np.int64)
            parts[rng.choice(len(picked), size=int(two_part[s, t]), replace=False)] = 2
            _schedule_refunds(rng, picked, parts, items, seconds, in_utc, amount_vnd, WORKER_TYPES[t],
                              month_end, pending_refunds, month_start)
        for due_send, due_phase, refund, done in pending_refunds.pop(s, []):
            items.append(refund)
            send.append(np.array([due_send]))
            phase.append(np.array([due_phase]))
            info.append(done)
        good = len(items)
        send_times = np.concatenate(send)
        phases = np.concatenate(phase)

        # 3. Exact re-sends of good items of this hour, a little later, sometimes with keys reordered.
        extra_items: list[dict[str, Any] | str] = []
        extra_send: list[int] = []
        extra_phase: list[int] = []
        if duplicates[s]:
            sources = rng.choice(good, size=int(duplicates[s]), replace=int(duplicates[s]) > good)
            delays = rng.integers(1, DUPLICATE_RESEND_DELAY_SECONDS_MAX + 1, size=len(sources))
            flips = rng.random(len(sources)) < 0.5
            for source, delay, flip in zip(sources.tolist(), delays.tolist(), flips.tolist()):
                original = items[source]
                copy = dict(reversed(original.items())) if flip else dict(original)
                extra_items.append(copy)
                extra_send.append(max(int(send_times[source]), min(int(send_times[source]) + delay, slice_end - 1)))
                extra_phase.append(3)

        # 4. Bad events, each referring only to good events sent before it.
        waiting = deferred_bad + list(range(bad_number, bad_number + int(bads[s])))
        bad_number += int(bads[s])
        deferred_bad = []
        completes_here = np.flatnonzero(phases[:good] == 0)
        last_slice = s == slice_count - 1
        for number in waiting:
            code = REJECTION_CODES[number % len(REJECTION_CODES)]
            variant = number // len(REJECTION_CODES)
            from_recent = bool(recent) and (not len(completes_here) or rng.random() < 0.7)
            if from_recent:
                reference = pick(recent)
                bad_send = slice_start + int(rng.integers(SLICE_SECONDS))
            elif len(completes_here):
                source = int(completes_here[int(rng.integers(len(completes_here)))])
                reference = items[source]
                earliest = int(send_times[source])
                bad_send = earliest + int(rng.integers(slice_end - earliest))
            else:
                if not last_slice:
                    deferred_bad.append(number)
                    continue
                raise AssertionError("no good completed event in the whole month to build bad events on")
            base_platform = reference["platform"]
            if code == "unknown_original" and variant % 3 == 1:
                # A refund on another platform that names this reference's id.
                others = [p for p in _PLATFORM_IDS if p != base_platform and reference["kind"] in PLATFORMS[p].kinds]
                others = others or [p for p in _PLATFORM_IDS if p != base_platform]
                base_platform = others[int(rng.integers(len(others)))]
            occurred_at = _format_time(bad_send, reference["occurred_at"].endswith("Z"))
            base = dict(reference)
            base["platform"] = base_platform
            base["event_id"] = bad_id(base_platform)
            base["occurred_at"] = occurred_at
            if code == "unknown_original" and base_platform != reference["platform"] \
                    and base["kind"] not in PLATFORMS[base_platform].kinds:
                base["kind"] = PLATFORMS[base_platform].kinds[0]
            extra_items.append(_bad_event(code, variant, base, reference, occurred_at, context))
            extra_send.append(bad_send)
            extra_phase.append(4)

        # 5. Everything of this hour in send order; ties: completes, refunds, re-sends, bad.
        all_send = np.concatenate([send_times, np.array(extra_send, dtype=np.int64)])
        all_phase = np.concatenate([phases, np.array(extra_phase, dtype=np.int64)])
        all_items = items + extra_items
        order = np.lexsort((np.arange(len(all_items)), all_phase, all_send))
        for index in order.tolist():
            yield all_items[index]
        emitted += len(all_items)

        recent.extend(items[index] for index in completes_here[-RESERVOIR_REFRESH:].tolist())
        for index in range(n, good):
            recent_refunds.append(items[index])
            if info[index] is not None:
                refunds_done.append(info[index])

    assert not pending_refunds, "a refund was scheduled after the month"
    assert not deferred_bad
    assert emitted == events, (emitted, events)


def _complete_items(cell: np.ndarray, numbers: np.ndarray, worker_ids: list[str], amount_vnd: list[int],
                    occurred: list[str], prefixes: list[str], styles: list[Platform]) -> list[dict[str, Any]]:
    """Event dicts for completed events, keyed in each platform's own field order."""
    items: list[Any] = [None] * len(worker_ids)
    for c in np.unique(cell).tolist():
        where = np.flatnonzero(cell == c).tolist()
        prefix, style, kind = prefixes[c], styles[c // 3], KINDS[c % 3]
        platform = style.id
        rows = zip(where, numbers[where].tolist())
        # One comprehension per field layout: the per-item branches would double the cost.
        if style.writes_action and style.writes_currency:
            built = [{"event_id": f"{prefix}{number:06d}", "platform": platform, "kind": kind, "action": "complete",
                      "worker_id": worker_ids[i], "amount": amount_vnd[i], "currency": "VND",
                      "occurred_at": occurred[i]} for i, number in rows]
        elif style.writes_action:
            built = [{"event_id": f"{prefix}{number:06d}", "platform": platform, "kind": kind, "action": "complete",
                      "worker_id": worker_ids[i], "amount": amount_vnd[i],
                      "occurred_at": occurred[i]} for i, number in rows]
        elif style.writes_currency:
            built = [{"event_id": f"{prefix}{number:06d}", "platform": platform, "kind": kind,
                      "worker_id": worker_ids[i], "amount": amount_vnd[i], "currency": "VND",
                      "occurred_at": occurred[i]} for i, number in rows]
        else:
            built = [{"event_id": f"{prefix}{number:06d}", "platform": platform, "kind": kind,
                      "worker_id": worker_ids[i], "amount": amount_vnd[i],
                      "occurred_at": occurred[i]} for i, number in rows]
        for i, item in zip(where, built):
            items[i] = item
    return items


def _schedule_refunds(rng: np.random.Generator, picked: np.ndarray, parts: np.ndarray,
                      items: list, seconds: np.ndarray, in_utc: np.ndarray, amount_vnd: np.ndarray,
                      worker_type: str, month_end: int, pending: dict, month_start: int) -> None:
    """Refund items for the picked completes, filed under the hour they are due in."""
    count = len(picked)
    last_second = month_end - 1
    original_seconds = seconds[picked]
    amounts = amount_vnd[picked]

    def later(start: np.ndarray, median_seconds: float) -> np.ndarray:
        delay = np.maximum(60.0, median_seconds * np.exp(REFUND_DELAY_SIGMA * rng.standard_normal(count)))
        room = last_second - start
        fallback = np.floor(rng.random(count) * (room + 1))  # squeezed into what is left of the month
        return start + np.where(delay <= room, delay, fallback).astype(np.int64)

    first = later(original_seconds, REFUND_DELAY_MEDIAN_SECONDS[worker_type])
    second = later(first, REFUND_SECOND_PART_DELAY_MEDIAN_SECONDS)
    full = rng.random(count) < np.where(parts == 1, REFUND_FULL_SHARE, REFUND_TWO_PART_FULL_SHARE)
    total = np.where(full, amounts, _round_to(amounts * rng.uniform(0.3, 0.95, size=count), BIKE_FARE_STEP_VND))
    total = np.clip(total, 1, amounts)
    part_one = np.where(parts == 1, total,
                        np.clip(_round_to(total * rng.uniform(0.2, 0.8, size=count), BIKE_FARE_STEP_VND),
                                1, np.maximum(total - 1, 1)))
    assert ((parts == 1) | (total >= 2)).all(), "a two-part refund needs an amount of at least 2 VND"
    for i, index in enumerate(picked.tolist()):
        original = items[index]
        z = bool(in_utc[index])
        pieces = [(int(first[i]), int(part_one[i]))]
        if parts[i] == 2:
            pieces.append((int(second[i]), int(total[i] - part_one[i])))
        assert sum(a for _, a in pieces) <= original["amount"] and all(a >= 1 for _, a in pieces)
        for part, (due, amount) in enumerate(pieces, start=1):
            assert month_start <= original_seconds[i] <= due <= last_second
            refund = _as_refund_of(original, f"{original['event_id']}-rf{part}", amount, _format_time(due, z))
            done = (original, int(total[i])) if part == len(pieces) else None
            pending.setdefault((due - month_start) // SLICE_SECONDS, []).append((due, part, refund, done))


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def write_ndjson(path_or_file: str | os.PathLike | IO, items: Iterable[dict | str], *,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write items as NDJSON (dicts via orjson, str lines as they are); return how many.

    `progress(count_so_far)` is called after every chunk of WRITE_CHUNK_ITEMS items.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "wb") as handle:
            return _write_lines(handle, items, progress, binary=True)
    binary = not isinstance(path_or_file, io.TextIOBase)
    return _write_lines(path_or_file, items, progress, binary=binary)


def _write_lines(handle: IO, items: Iterable[dict | str], progress: Callable[[int], None] | None,
                 *, binary: bool) -> int:
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    count = 0
    stream = iter(items)
    while True:
        batch = list(itertools.islice(stream, WRITE_CHUNK_ITEMS))
        if not batch:
            break
        data = b"".join([_str_line(item) if item.__class__ is str else dumps(item, option=newline)
                         for item in batch])
        handle.write(data if binary else data.decode("utf-8"))
        count += len(batch)
        if progress is not None:
            progress(count)
    return count


def _str_line(item: str) -> bytes:
    if "\n" in item:
        raise ValueError("a str item must be a single NDJSON line")
    return item.encode("utf-8") + b"\n"


# ---------------------------------------------------------------------------
# Household tiers
# ---------------------------------------------------------------------------

# Assumption (DOMAIN.md gives no shares): national poor / near-poor household rates of the
# mid-2020s, about 4 % and 3.5 %; a few workers are listed explicitly as `other`.
POOR_SHARE = 0.04
NEAR_POOR_SHARE = 0.035
EXPLICIT_OTHER_SHARE = 0.005
HIGH_POVERTY_WEIGHT = 3.0
TIERS_CSV_HEADER = ("national_id", "tier", "valid_from")


def household_tiers(workers_df: pd.DataFrame, rng: np.random.Generator, *,
                    valid_from: str) -> list[tuple[str, str, str]]:
    """Rows (national_id, tier, valid_from): round(4 %) poor, round(3.5 %) near_poor, a few other.

    Workers not listed are `other` by default (RULES.md §6). Poor and near-poor are drawn
    three times as often from high-poverty provinces. Rows are sorted by national id.
    """
    _parse_valid_from(valid_from)
    count = len(workers_df)
    ids = workers_df["national_id"].tolist()
    provinces = workers_df["province"].tolist() if "province" in workers_df else [nid[:3] for nid in ids]
    weights = np.array([HIGH_POVERTY_WEIGHT if p in HIGH_POVERTY_PROVINCES else 1.0 for p in provinces])
    poor = _round_half_up(count * POOR_SHARE)
    near_poor = _round_half_up(count * NEAR_POOR_SHARE)
    other = min(count - poor - near_poor, max(1, _round_half_up(count * EXPLICIT_OTHER_SHARE))) if count else 0
    with np.errstate(divide="ignore"):
        keys = np.log(weights) - np.log(-np.log(rng.random(count)))
    ranked = np.argsort(-keys, kind="stable").tolist()
    tiers = ["poor"] * poor + ["near_poor"] * near_poor
    rows = [(ids[w], tier, valid_from) for w, tier in zip(ranked, tiers)]
    rest = ranked[poor + near_poor:]
    for w in sorted(rng.choice(len(rest), size=other, replace=False).tolist()) if other else []:
        rows.append((ids[rest[w]], "other", valid_from))
    rows.sort()
    assert len({row[0] for row in rows}) == len(rows)
    return rows


def _parse_valid_from(valid_from: str) -> None:
    if (not isinstance(valid_from, str) or len(valid_from) != 7 or valid_from[4] != "-"
            or not (valid_from[:4] + valid_from[5:]).isdigit() or not 1 <= int(valid_from[5:]) <= 12):
        raise ValueError(f"valid_from must be YYYY-MM, got {valid_from!r}")


def write_tiers_csv(path: str | os.PathLike, rows: Iterable[tuple[str, str, str]]) -> int:
    """Write `national_id,tier,valid_from` with a header; return the number of data rows."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TIERS_CSV_HEADER)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count
