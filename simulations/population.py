"""Populations of worker-months: synthetic (calibrated, seeded) or replayed from a real ledger.

A `Population` is two frames:

- `workers`, one row per person (`worker` = row index 0..n-1): sex, birth_year,
  province, region, worker_type, tier (the latest household status), and for a
  ledger replay `ledger_worker_id`. A synthetic population also has vehicle,
  full_time, ethnic_minority, household (poor / near_poor / other), earnings_vnd (usual
  monthly earnings: fares less the platform's commission, or a seller's margin) and
  weight (the national workers the person stands for, `simulations/calibration.py`).
- `activity`, one row per (worker, month, platform, kind), sorted by (month, worker, platform, kind):
  `gross_vnd` (the contribution base booked in the month: the transaction value, or for
  a synthetic population the base its `ContributionBase` says), `events`, `tier` (code
  into `tiers`, the status in force that month). A replay also carries `rec_<scheme>_<party>`:
  the six shares the ledger actually booked for the row, read from its postings.

Why rows are worker-month aggregates and not events: a national population is ~7.5M
workers × 12 months; events would be ~10^10 rows. The engine prices a row's gross
once, so a synthetic row rounds once per month where the ledger rounds once per event
(at most ½ VND per event and share, see `simulations/docs.md`). A replay has the
ledger's own shares, so its baseline is exact to the dong.

Randomness lives here only (PolicyEngine habit): `synthetic(workers, months, seed, …)`
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
from simulations import calibration
from simulations import synthetic_events as se

PLATFORM_NAMES: tuple[str, ...] = tuple(se.PLATFORMS)
DEFAULT_TIERS: tuple[str, ...] = ("poor", "near_poor", BASE_TIER)
ETHNIC_TIER = "ethnic_minority"  # a pack tier (vn-decree-159): below poor and near-poor, above other
HOUSEHOLDS: tuple[str, ...] = ("poor", "near_poor", BASE_TIER)
SHARE_COLUMNS: tuple[str, ...] = tuple(f"{scheme}_{party}" for scheme in SCHEMES for party in PARTIES)
RECORDED_COLUMNS: tuple[str, ...] = tuple(f"rec_{name}" for name in SHARE_COLUMNS)
ACTIVITY_COLUMNS = ("worker", "month", "platform", "kind", "tier", "gross_vnd", "events")
FORMAT_VERSION = 2  # 2: categorical columns hashed by codes and categories (1: by their text, still read)

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
REGIONS: tuple[str, ...] = ("red_river_delta", "northern_midlands_mountains", "north_central_coast",
                            "central_highlands", "southeast", "mekong_delta")

# Churn and participation (assumptions, stated in simulations/docs.md): 85 % of the
# frame is at work in the first month; 2 % of those present leave each month (~22 % a
# year) and as many enter from the rest of the frame, plus the workforce's growth; in a
# month they are present, full-timers work with probability 0.95 and part-timers 0.75.
PRESENT_AT_START_PPM = 850_000
MONTHLY_EXIT_PPM = 20_000
MONTHLY_PARTICIPATION = {True: 0.95, False: 0.75}
ACTIVE_DAYS_NOISE_SD = 2.0
AMOUNT_STEP_VND = 1_000
CALIBRATION_DRAWS = 200_000
CALIBRATION_SEED = 0
CHUNK_WORKERS = 1_000_000  # workers per generated block: bounds memory whatever the population
HASH_SLICE_ROWS = 1_000_000  # text values hashed per slice
READ_BATCH_ROWS = 4_000_000  # Parquet rows decoded at a time when loading numeric tables
PPM = 1_000_000

# What a worker earns from a transaction (for the income model and the calibration's earnings):
# drivers and riders keep the fare less the platform's commission (a 20 % service fee, as
# drivers report it: vietnamfdi.vn, 2020); a seller keeps a margin on the order value
# (assumption: 20 %; Vietnam's presumptive income tax on household businesses, Circular
# 40/2021/TT-BTC, takes 0.5 % of revenue for trading goods against 1.5 % for transport —
# a seller's income is a small part of the order value).
PLATFORM_COMMISSION_PPM = 200_000
SELLER_MARGIN_PPM = 200_000

# Household status given income, region and ethnicity (assumptions, simulations/docs.md): the
# log-odds of being poor (and, separately, near-poor) fall by 1.0 per unit of log earnings
# (half the earnings, twice the odds), rise with the region's rate of poor and near-poor
# households (MOLISA poverty survey 2022, as reported by VnExpress: northern midlands and
# mountains 21.92 %, Central Highlands 15.39 %, north central and central coast 10.04 %,
# Mekong Delta 5.73 %, Red River Delta 2.45 %, Southeast 0.34 %; national 7.52 %), and are
# 3 × higher for an ethnic-minority household; intercepts are solved so the expected shares
# hit the targets file's, and the calibration's weights fit them exactly.
INCOME_LOG_ODDS = -1.0
REGION_POOR_NEAR_POOR_PPM = {"northern_midlands_mountains": 219_200, "central_highlands": 153_900,
                             "north_central_coast": 100_400, "mekong_delta": 57_300, "red_river_delta": 24_500,
                             "southeast": 3_400}
NATIONAL_POOR_NEAR_POOR_PPM = 75_200
ETHNIC_POVERTY_ODDS_RATIO = 3.0
DEFAULT_HOUSEHOLD_SHARES = {"poor": 0.0293, "near_poor": 0.0278}  # without a targets file (MOLISA 2023)
# Ethnic minorities by region (assumption, the 2019 census' pattern in round figures): most in the
# northern mountains and the Central Highlands, few in the deltas; scaled to the national share.
ETHNIC_SHARE_BY_REGION = {"northern_midlands_mountains": 0.56, "central_highlands": 0.38,
                          "north_central_coast": 0.10, "mekong_delta": 0.08, "southeast": 0.07,
                          "red_river_delta": 0.03}
DEFAULT_ETHNIC_SHARE = 0.147
INTERCEPT_SAMPLE = 200_000  # workers the intercepts are solved on (the first ones drawn: deterministic)

BASES = ("amount", "payout", "margin_share")


class PopulationError(ValueError):
    """A population file or database that cannot be used (names the file and reason)."""


@dataclass(frozen=True)
class Churn:
    """Who works on the platforms each month, as seeded probabilities in ppm (scenario keys
    `population.synthetic.churn` and `population.synthetic.growth_ppm`).

    Month one: each person of the frame is present with probability `start_ppm`. Every
    later month each present worker leaves with probability `exit_ppm`; then either
    (`entry_ppm` given) each person absent at the month's start enters with probability
    `entry_ppm`, or (the default) entrants replace the leavers: people absent from the
    frame enter, each with the same probability, so that the number present follows
    the first month's times (1 + growth)^(months / 12) — a steady workforce at growth 0,
    a growing one above (`growth_ppm` a year). A present worker then works the month
    with the participation probability (0.95 full-timers, 0.75 part-timers).
    """

    start_ppm: int | None = None  # None: 850,000, lowered so a growing workforce still fits in the frame
    exit_ppm: int = MONTHLY_EXIT_PPM
    entry_ppm: int | None = None  # None: entries replace exits (and grow the workforce by growth_ppm a year)
    growth_ppm: int = 0

    def __post_init__(self) -> None:
        for name in ("start_ppm", "exit_ppm", "entry_ppm"):
            value = getattr(self, name)
            if value is None and name != "exit_ppm":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= PPM:
                raise ValueError(f"churn.{name} must be an integer from 0 to 1,000,000 ppm, got {value!r}")
        if not isinstance(self.growth_ppm, int) or isinstance(self.growth_ppm, bool) \
                or not -500_000 <= self.growth_ppm <= PPM:
            raise ValueError(f"growth_ppm must be an integer from -500,000 to 1,000,000 ppm a year, "
                             f"got {self.growth_ppm!r}")
        if self.entry_ppm is not None and self.growth_ppm:
            raise ValueError("give churn.entry_ppm (a fixed entry probability) or growth_ppm (entries replace "
                             "exits and grow the workforce), not both")

    @property
    def replaces_exits(self) -> bool:
        return self.entry_ppm is None

    def monthly_growth(self) -> float:
        return (1 + self.growth_ppm / PPM) ** (1 / 12) - 1

    def start_share(self, months: int) -> float:
        """The share of the frame present in month one (lowered so the last month's workforce is ≤ 90 %)."""
        if self.start_ppm is not None:
            return self.start_ppm / PPM
        growth = (1 + self.monthly_growth()) ** max(months - 1, 0)
        return min(PRESENT_AT_START_PPM / PPM, 0.9 / growth) if growth > 1 else PRESENT_AT_START_PPM / PPM

    def as_document(self) -> dict[str, int]:
        if self.replaces_exits:
            document = {"exit_ppm": self.exit_ppm, "growth_ppm": self.growth_ppm}
            if self.start_ppm is not None:
                document["start_ppm"] = self.start_ppm
            return document
        return {"start_ppm": PRESENT_AT_START_PPM if self.start_ppm is None else self.start_ppm,
                "exit_ppm": self.exit_ppm, "entry_ppm": self.entry_ppm}


@dataclass(frozen=True)
class ContributionBase:
    """What the rates apply to, per kind (scenario key `population.synthetic.contribution_base`).

    `amount`: the transaction value (what a platform sends as `amount`, RULES.md §1);
    `payout`: the value less the platform's commission (`ppm` is the share kept);
    `margin_share`: a share `ppm` of the value — a seller's margin, not the goods' price.
    The base is a policy choice: the default takes rides and deliveries at their fare
    and orders at a 20 % margin, so a shop selling 100M VND of goods a month is not taxed
    as if it earned them. In the ledger the same policy is a pack whose order rates are
    the rates × the share (`rates.order.si.worker: 2000` for 1 % of a 20 % margin).
    """

    ride: tuple[str, int] = ("amount", PPM)
    delivery: tuple[str, int] = ("amount", PPM)
    order: tuple[str, int] = ("margin_share", SELLER_MARGIN_PPM)

    def __post_init__(self) -> None:
        for kind in KINDS:
            basis, ppm = getattr(self, kind)
            if basis not in BASES:
                raise ValueError(f"contribution_base.{kind}.basis must be one of {', '.join(BASES)}, got {basis!r}")
            if not isinstance(ppm, int) or isinstance(ppm, bool) or not 0 < ppm <= PPM or \
                    (basis == "amount" and ppm != PPM):
                raise ValueError(f"contribution_base.{kind}.ppm must be an integer from 1 to 1,000,000 "
                                 f"(1,000,000 for amount), got {ppm!r}")

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> ContributionBase:
        """From {kind: basis} or {kind: {basis, ppm}}; unnamed kinds keep the default."""
        defaults = {"amount": PPM, "payout": PPM - PLATFORM_COMMISSION_PPM, "margin_share": SELLER_MARGIN_PPM}
        chosen = {}
        for kind, value in document.items():
            basis, ppm = (value, None) if isinstance(value, str) else (value.get("basis"), value.get("ppm"))
            chosen[kind] = (basis, defaults.get(basis, PPM) if ppm is None else ppm)
        return cls(**chosen)

    def multiplier_ppm(self, kind: str) -> int:
        return getattr(self, kind)[1]

    def as_document(self) -> dict[str, dict[str, Any]]:
        return {kind: {"basis": getattr(self, kind)[0], "ppm": getattr(self, kind)[1]} for kind in KINDS}


@dataclass(frozen=True)
class Population:
    workers: pd.DataFrame
    activity: pd.DataFrame
    platforms: tuple[str, ...] = PLATFORM_NAMES
    tiers: tuple[str, ...] = DEFAULT_TIERS
    source: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    origin: str = field(default="built", compare=False)  # built | loaded | mapped (from the population cache)

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

    @property
    def weights(self) -> np.ndarray:
        """National workers each person stands for (1.0 each without a calibration)."""
        if "weight" in self.workers:
            return self.workers["weight"].to_numpy(dtype=np.float64)
        return np.ones(len(self.workers))

    def content_hash(self) -> str:
        """SHA-256 of the frames' values (not of Parquet bytes, which vary with library versions).

        Computed once per population (frames are not changed in place; `dataclasses.replace`
        makes a new population with its own hash)."""
        return self._content_hash

    @functools.cached_property
    def _content_hash(self) -> str:
        return frames_hash(self.workers, self.activity, self.platforms, self.tiers, self.format_version)


def frames_hash(workers: pd.DataFrame, activity: pd.DataFrame, platforms: Sequence[str], tiers: Sequence[str],
                version: int = FORMAT_VERSION) -> str:
    """The content hash: every column's dtype and values, in a fixed order. Numbers are hashed as
    little-endian bytes in place; a categorical column (version 2) as its categories' text and its codes;
    other values (and categoricals in version 1) as their text joined by NUL, streamed in slices."""
    digest = hashlib.sha256(f"ansinh-population-v{version}".encode())
    digest.update(json.dumps({"platforms": list(platforms), "tiers": list(tiers)}, sort_keys=True).encode()
                  if version >= 2 else json.dumps({"platforms": tuple(platforms), "tiers": tuple(tiers)},
                                                  sort_keys=True).encode())
    for name, frame in (("workers", workers), ("activity", activity)):
        digest.update(f"\x1e{name}:{len(frame)}".encode())
        for column in sorted(frame.columns):
            series = frame[column]
            if version >= 2 and isinstance(series.dtype, pd.CategoricalDtype):
                digest.update(f"\x1f{column}:category".encode())
                digest.update("\x00".join(map(str, series.cat.categories.tolist())).encode("utf-8"))
                _hash_numbers(digest, series.cat.codes.to_numpy())
                continue
            values = series.to_numpy()
            digest.update(f"\x1f{column}:{values.dtype.str}".encode())
            if values.dtype.kind in "biuf":
                _hash_numbers(digest, values)
            else:  # "\x00".join of every value, streamed in slices (the same bytes)
                for start in range(0, len(values), HASH_SLICE_ROWS):
                    if start:
                        digest.update(b"\x00")
                    digest.update("\x00".join(map(str, values[start:start + HASH_SLICE_ROWS].tolist()))
                                  .encode("utf-8"))
    return digest.hexdigest()


def _hash_numbers(digest, values: np.ndarray) -> None:
    """Little-endian bytes, hashed in place (no copy of a 1 GB column)."""
    values = np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<"), copy=False)
    digest.update(values.view(np.uint8) if values.size else b"")


# ---------------------------------------------------------------------------
# Synthetic
# ---------------------------------------------------------------------------

FAMILIES = ("bike", "car", "delivery", "order")
FAMILY_KIND = (0, 0, 1, 2)  # KINDS index of each family


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
              fare_profile=None, targets: calibration.Targets | str | Path | None = calibration.DEFAULT_TARGETS,
              base: ContributionBase | None = None, tiers: Sequence[str] = ()) -> Population:
    """A calibrated population of `workers` people over `months` (yyyymm ints), from `seed` only.

    `churn`: who is present each month (`Churn`; default: 85 % from month one, 2 % leave a
    month and as many enter, a steady workforce). `fare_profile`
    (`simulations.fares.FareProfile`): car rides take the real trips' fare mean and spread
    instead of the car-fare model. `targets`: the national totals to weight the people to
    (a `calibration.Targets`, a file, or None for weight 1 each). `base`: what the rates
    apply to per kind (`ContributionBase`; default: fares, and orders at a 20 % margin).
    `tiers`: the tiers the scenario's packs know; with `ethnic_minority` among them, an
    ethnic-minority worker who is neither poor nor near-poor is in that tier.

    People are drawn as `synthetic_events.make_workers` draws them (types, vehicles,
    platforms, pace, active days, sex, birth year, card province), vectorised and without
    identity numbers; then ethnic minority by region, household status given earnings,
    region and ethnicity, and the weights (`calibration.calibrate`). Each month: churn and
    participation, active days around the worker's usual, events ~ Poisson(pace × days),
    split over the worker's platforms by preference (bike drivers send ~15 % food
    deliveries), and the base per row ~ Normal(n·mean, √n·sd) of the same fare / fee /
    order-value distributions the event generator draws from, times the base's share,
    rounded to 1,000 VND.
    """
    if workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    months = tuple(int(m) for m in months)
    if not months or list(months) != sorted(set(months)):
        raise ValueError("months must be a non-empty increasing sequence of yyyymm")
    churn = churn or Churn()
    base = base or ContributionBase()
    if isinstance(targets, (str, Path)):
        targets = calibration.load_targets(targets)
    people = _draw_people(np.random.default_rng([seed, 6]), workers)
    moments = _amount_moments()
    if fare_profile is not None:
        moments["car"] = fare_profile.moments()
    people["earnings_vnd"] = _usual_earnings(people, moments)
    shares = _target_shares(targets)
    household_rng = np.random.default_rng([seed, 7])
    people["ethnic_minority"] = _draw_ethnic(household_rng, people["region"], shares["ethnic"])
    people["household"] = _draw_households(household_rng, people, shares["households"])
    with_ethnic = ETHNIC_TIER in tiers
    tier_names = ("poor", "near_poor", ETHNIC_TIER, BASE_TIER) if with_ethnic else DEFAULT_TIERS
    tier_index = people["household"].astype(np.int8)  # HOUSEHOLDS order: poor, near_poor, other
    if with_ethnic:
        tier_index = np.where(tier_index == 2, np.where(people["ethnic_minority"], 2, 3), tier_index).astype(np.int8)

    activity, present_at_start, workforce, shortfall = _synthetic_activity(
        np.random.default_rng([seed, 8]), people, tier_index, months, moments, churn, base)
    frame = {
        "worker": np.arange(workers, dtype=np.int64),
        "sex": pd.Categorical.from_codes(people["female"].astype(np.int8), categories=["male", "female"]),
        "birth_year": people["birth_year"].astype(np.int16),
        "province": pd.Categorical.from_codes(people["province"].astype(np.int8), categories=list(se.PROVINCE_CODES)),
        "region": pd.Categorical.from_codes(people["region"].astype(np.int8), categories=list(REGIONS)),
        "worker_type": pd.Categorical.from_codes(people["type"].astype(np.int8), categories=list(se.WORKER_TYPES)),
        "vehicle": pd.Categorical.from_codes(np.where(people["type"] == 2, 2, people["car"].astype(np.int8)),
                                             categories=["bike", "car", "none"]),
        "full_time": people["full_time"],
        "ethnic_minority": people["ethnic_minority"],
        "household": pd.Categorical.from_codes(people["household"].astype(np.int8), categories=list(HOUSEHOLDS)),
        "tier": pd.Categorical.from_codes(tier_index, categories=list(tier_names)),
        "earnings_vnd": people["earnings_vnd"],
    }
    source = {"kind": "synthetic", "workers": workers, "months": list(months), "seed": seed,
              "generator": "simulations.population.synthetic", "churn": churn.as_document(),
              "contribution_base": base.as_document(), "workforce": workforce}
    if shortfall:
        source["growth_shortfall_months"] = shortfall
    if targets is not None:
        columns = {"worker_type": frame["worker_type"], "region": frame["region"], "household": frame["household"],
                   "ethnic_minority": people["ethnic_minority"], "vehicle": frame["vehicle"],
                   "full_time": people["full_time"], "sex": frame["sex"], "earnings_vnd": people["earnings_vnd"]}
        weights, report = calibration.calibrate(columns, targets, present_at_start)
        frame["weight"] = weights
        source["calibration"] = {"targets": targets.summary(), "national_workers": targets.total,
                                 **report.as_document()}
    else:
        frame["weight"] = np.ones(workers)
    if fare_profile is not None:
        source["fare_profile"] = fare_profile.summary()
    worker_frame = pd.DataFrame(frame, copy=False)
    return Population(worker_frame, activity, PLATFORM_NAMES, tier_names, source)


def _target_shares(targets: calibration.Targets | None) -> dict[str, Any]:
    """The household and ethnic shares the draws aim at: the targets file's, or the defaults."""
    households = dict(DEFAULT_HOUSEHOLD_SHARES)
    ethnic = DEFAULT_ETHNIC_SHARE
    for margin in (targets.margins if targets is not None else ()):
        if margin.name == "household":
            households = {name: margin.shares.get(name, 0.0) for name in ("poor", "near_poor")}
        if margin.name == "ethnic_minority":
            ethnic = margin.shares.get("yes", 0.0)
    return {"households": households, "ethnic": ethnic}


def _draw_people(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Workers as `synthetic_events.make_workers` draws them, as arrays (no identity numbers, no strings),
    in blocks of CHUNK_WORKERS so memory stays flat."""
    province_region = np.array([REGIONS.index(REGION_OF_PROVINCE[code]) for code in se.PROVINCE_CODES],
                               dtype=np.int8)
    eligible = np.array([[se.PLATFORMS[p].share if se._TYPE_KIND[t] in se.PLATFORMS[p].kinds else 0.0
                          for p in se._PLATFORM_IDS] for t in range(3)])
    delivers = np.array(["delivery" in se.PLATFORMS[p].kinds for p in se._PLATFORM_IDS] + [False])
    blocks: list[dict[str, np.ndarray]] = []
    for start in range(0, count, CHUNK_WORKERS):
        n = min(CHUNK_WORKERS, count - start)
        type_code = rng.choice(3, size=n, p=se.WORKER_TYPE_WEIGHTS).astype(np.int8)
        female = rng.random(n) >= np.array(se.MALE_SHARE_BY_TYPE)[type_code]
        birth_year = se._draw_birth_years(rng, n)
        province = rng.choice(len(se.PROVINCE_CODES), size=n, p=se._province_weights()).astype(np.int8)
        is_car = (type_code == 0) & (rng.random(n) < se.CAR_SHARE_OF_RIDE_WORKERS)
        wanted = rng.choice(3, size=n, p=se.PLATFORM_COUNT_WEIGHTS) + 1
        chosen_weights = eligible[type_code]
        platform_count = np.minimum(wanted, (chosen_weights > 0).sum(axis=1))
        ranked = se._gumbel_top(rng, chosen_weights)[:, :3]
        slots = np.where(np.arange(3) < platform_count[:, None], ranked, -1).astype(np.int16)
        full_time = rng.random(n) < np.array(se.FULL_TIME_SHARE_BY_TYPE)[type_code]
        full_rate = np.where(type_code == 1, se.FULL_TIME_DELIVERIES_PER_DAY,
                             np.where(is_car, se.FULL_TIME_CAR_TRIPS_PER_DAY, se.FULL_TIME_BIKE_TRIPS_PER_DAY))
        gig_rate = np.where(full_time, full_rate, se.PART_TIME_EVENTS_PER_DAY) * rng.gamma(6.0, 1 / 6.0, size=n)
        seller_pace = se.SELLER_ORDERS_PER_DAY_MEDIAN * np.exp(se.SELLER_ORDERS_PER_DAY_SIGMA * rng.standard_normal(n))
        seller_rate = np.minimum(seller_pace, se.SELLER_ORDERS_PER_DAY_MAX) * np.where(full_time, 2.0, 1.0)
        pace = np.round(np.maximum(np.where(type_code == 2, seller_rate, gig_rate), 0.2), 2)
        days = np.where(full_time, rng.integers(se.FULL_TIME_ACTIVE_DAYS[0], se.FULL_TIME_ACTIVE_DAYS[1] + 1, size=n),
                        rng.integers(se.PART_TIME_ACTIVE_DAYS[0], se.PART_TIME_ACTIVE_DAYS[1] + 1, size=n))
        days = np.where((type_code == 2) & full_time, se.DAYS_IN_MONTH_MAX, days)  # shops never close
        # Bike drivers on a platform that also delivers food send some deliveries there (the first such).
        deliver_slot = delivers[np.where(slots >= 0, slots, len(se._PLATFORM_IDS))]
        first = np.argmax(deliver_slot, axis=1)
        delivery_platform = np.where((type_code == 0) & ~is_car & deliver_slot.any(axis=1),
                                     slots[np.arange(n), first], -1).astype(np.int16)
        blocks.append({"type": type_code, "female": female, "birth_year": birth_year.astype(np.int16),
                       "province": province, "region": province_region[province], "car": is_car,
                       "slots": slots, "count": platform_count.astype(np.int8), "full_time": full_time,
                       "pace": pace.astype(np.float64), "days": days.astype(np.int8),
                       "delivery_platform": delivery_platform})
    return {name: np.concatenate([block[name] for block in blocks]) if len(blocks) > 1 else blocks[0][name]
            for name in blocks[0]}


def _usual_earnings(people: dict[str, np.ndarray], moments: dict[str, tuple[float, float, int]]) -> np.ndarray:
    """Usual monthly earnings in VND: pace × usual active days × the mean value of the worker's events ×
    what the worker keeps of it (fares less the commission, a seller's margin)."""
    mean = {name: moments[name][0] for name in FAMILIES}
    delivery_share = np.where(people["delivery_platform"] >= 0, se.RIDE_WORKER_DELIVERY_SHARE, 0.0)
    ride_value = np.where(people["car"], mean["car"], mean["bike"])
    value = np.select([people["type"] == 0, people["type"] == 1],
                      [(1 - delivery_share) * ride_value + delivery_share * mean["delivery"], mean["delivery"]],
                      mean["order"])
    kept = np.where(people["type"] == 2, SELLER_MARGIN_PPM, PPM - PLATFORM_COMMISSION_PPM) / PPM
    earnings = people["pace"] * people["days"] * value * kept
    return (np.floor(earnings / AMOUNT_STEP_VND + 0.5) * AMOUNT_STEP_VND).astype(np.int64)


def _solve_intercept(offset: np.ndarray, target: float) -> float:
    """a such that mean(sigmoid(a + offset)) = target (bisection: the mean rises with a)."""
    if target <= 0:
        return -60.0
    low, high = -40.0, 40.0
    for _ in range(80):
        middle = (low + high) / 2
        if (1 / (1 + np.exp(-(middle + offset)))).mean() < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _draw_ethnic(rng: np.random.Generator, region: np.ndarray, share: float) -> np.ndarray:
    """Ethnic minority by region (ETHNIC_SHARE_BY_REGION's odds, shifted to the national share)."""
    shares = np.array([ETHNIC_SHARE_BY_REGION[name] for name in REGIONS])
    offset = np.log(shares / (1 - shares))[region]
    intercept = _solve_intercept(offset[:INTERCEPT_SAMPLE], share)
    probability = 1 / (1 + np.exp(-(intercept + offset)))
    return rng.random(len(region)) < probability


def _draw_households(rng: np.random.Generator, people: dict[str, np.ndarray],
                     shares: Mapping[str, float]) -> np.ndarray:
    """Household status (HOUSEHOLDS index) given earnings, region and ethnicity: two logistic models, one draw."""
    earnings = np.maximum(people["earnings_vnd"], AMOUNT_STEP_VND).astype(np.float64)
    regional = np.array([np.log(REGION_POOR_NEAR_POOR_PPM[name] / NATIONAL_POOR_NEAR_POOR_PPM) for name in REGIONS])
    offset = (INCOME_LOG_ODDS * (np.log(earnings) - np.log(np.median(earnings))) + regional[people["region"]]
              + np.log(ETHNIC_POVERTY_ODDS_RATIO) * people["ethnic_minority"])
    sample = offset[:INTERCEPT_SAMPLE]
    poor = 1 / (1 + np.exp(-(_solve_intercept(sample, shares["poor"]) + offset)))
    near = 1 / (1 + np.exp(-(_solve_intercept(sample, shares["near_poor"]) + offset)))
    near = np.minimum(near, 1 - poor)
    draw = rng.random(len(offset))
    return np.where(draw < poor, 0, np.where(draw < poor + near, 1, 2)).astype(np.int8)


def _candidates(people: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each worker's up-to-four activity rows (three platforms of the main kind, food deliveries), ordered
    by (platform, kind) so that a month's rows come out sorted without a sort: (order, platform, kind,
    family), each (workers, 4); unused slots have platform −1 and sort last."""
    count = len(people["type"])
    main_kind = people["type"].astype(np.int8)  # ride, delivery, order: the KINDS order
    main_family = np.where(main_kind == 0, people["car"].astype(np.int8), main_kind + 1).astype(np.int8)
    platform = np.concatenate([people["slots"], people["delivery_platform"][:, None]], axis=1)
    kind = np.concatenate([np.repeat(main_kind[:, None], 3, axis=1), np.ones((count, 1), np.int8)], axis=1)
    family = np.concatenate([np.repeat(main_family[:, None], 3, axis=1), np.full((count, 1), 2, np.int8)], axis=1)
    key = np.where(platform >= 0, platform.astype(np.int16) * 3 + kind, 32_000)
    order = np.argsort(key, axis=1, kind="stable").astype(np.int8)
    return (order, np.take_along_axis(platform, order, axis=1), np.take_along_axis(kind, order, axis=1),
            np.take_along_axis(family, order, axis=1))


def _synthetic_activity(rng: np.random.Generator, people: dict[str, np.ndarray], tier_index: np.ndarray,
                        months: tuple[int, ...], moments: dict[str, tuple[float, float, int]], churn: Churn,
                        base: ContributionBase) -> tuple[pd.DataFrame, np.ndarray, list[int], list[int]]:
    """The activity frame, who was present in month one, the number present each month, and the months
    in which a growing workforce could not be filled from the frame."""
    count = len(people["type"])
    full_time = people["full_time"]
    pace = people["pace"]
    usual_days = people["days"].astype(np.float64)
    count_slots = people["count"].astype(np.int64)
    # The binomial chain of the existing split: slot 0 takes p0 of the main events, slot 1 p1 of the rest.
    p0 = np.select([count_slots == 1, count_slots == 2], [1.0, 0.7], 0.6)
    p1 = np.select([count_slots == 2, count_slots == 3], [1.0, 0.25 / 0.4], 0.0)
    has_delivery = people["delivery_platform"] >= 0
    order, cand_platform, cand_kind, cand_family = _candidates(people)
    scale = np.array([base.multiplier_ppm(KINDS[FAMILY_KIND[f]]) / PPM for f in range(len(FAMILIES))])
    family_moments = np.array([moments[name] for name in FAMILIES], dtype=np.float64)
    family_moments *= scale[:, None]
    participation = np.where(full_time, MONTHLY_PARTICIPATION[True], MONTHLY_PARTICIPATION[False])

    columns: dict[str, list[np.ndarray]] = {name: [] for name in ACTIVITY_COLUMNS}
    present = np.zeros(count, dtype=bool)
    workforce, shortfall = [], []
    start_share = churn.start_share(len(months))
    present_at_start = np.zeros(count, dtype=bool)
    first_count = 0
    for step, month in enumerate(months):
        if step == 0:
            present = rng.random(count) < start_share
            present_at_start = present.copy()
            first_count = int(present.sum())
        else:
            absent = ~present
            present &= ~(rng.random(count) < churn.exit_ppm / PPM)
            if churn.replaces_exits:
                wanted = first_count * (1 + churn.monthly_growth()) ** step
                room = int(absent.sum())
                needed = max(0.0, wanted - float(present.sum()))
                if needed > room:
                    shortfall.append(month)
                probability = min(1.0, needed / room) if room else 0.0
                present |= absent & (rng.random(count) < probability)
            else:
                present |= absent & (rng.random(count) < churn.entry_ppm / PPM)
        workforce.append(int(present.sum()))
        working = np.flatnonzero(present & (rng.random(count) < participation))
        k = len(working)
        days_in_month = calendar.monthrange(month // 100, month % 100)[1]
        days = np.clip(np.rint(usual_days[working] + ACTIVE_DAYS_NOISE_SD * rng.standard_normal(k)), 1, days_in_month)
        events = rng.poisson(pace[working] * days)
        delivery = np.where(has_delivery[working], rng.binomial(events, se.RIDE_WORKER_DELIVERY_SHARE), 0)
        main = events - delivery
        first = rng.binomial(main, p0[working])
        rest = main - first
        second = rng.binomial(rest, p1[working])
        per_candidate = np.stack([first, second, rest - second, delivery], axis=1)
        per_candidate = np.take_along_axis(per_candidate, order[working].astype(np.int64), axis=1)
        flat = np.flatnonzero(per_candidate)
        n = per_candidate.ravel()[flat]
        row_worker = working[flat // 4]
        slot = flat % 4
        platform = cand_platform[row_worker, slot]
        kind = cand_kind[row_worker, slot]
        family = cand_family[row_worker, slot].astype(np.intp)
        mean, sd, low = family_moments[family, 0], family_moments[family, 1], family_moments[family, 2]
        gross = n * mean + np.sqrt(n) * sd * rng.standard_normal(len(n))
        gross = np.maximum(np.floor(gross / AMOUNT_STEP_VND + 0.5) * AMOUNT_STEP_VND,
                           np.maximum(np.floor(n * low / AMOUNT_STEP_VND + 0.5) * AMOUNT_STEP_VND, AMOUNT_STEP_VND))
        columns["worker"].append(row_worker.astype(np.int64))
        columns["month"].append(np.full(len(n), month, dtype=np.int32))
        columns["platform"].append(platform.astype(np.int16))
        columns["kind"].append(kind.astype(np.int8))
        columns["tier"].append(tier_index[row_worker])
        columns["gross_vnd"].append(gross.astype(np.int64))
        columns["events"].append(n.astype(np.int32))
        # Free the month's temporaries now, not when the next month rebinds them (10M workers: ~1.5 GB).
        del working, days, events, delivery, main, first, rest, second, per_candidate, flat, n, row_worker, slot
        del platform, kind, family, mean, sd, low, gross
    joined = {}
    for name in ACTIVITY_COLUMNS:  # one column at a time: the blocks of a column are freed as it is joined
        parts = columns.pop(name)
        joined[name] = np.concatenate(parts) if len(parts) != 1 else parts[0]
        del parts
    activity = pd.DataFrame(joined, copy=False)
    assert (activity["gross_vnd"] > 0).all() and (activity["events"] > 0).all()
    return activity, present_at_start, workforce, shortfall


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
    meta = {"format_version": population.format_version, "content_sha256": content_hash,
            "platforms": list(population.platforms), "tiers": list(population.tiers),
            "source": dict(population.source)}
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
    population = Population(workers, activity, tuple(meta["platforms"]), tuple(meta["tiers"]), meta["source"],
                            int(meta.get("format_version", 1)), origin="loaded")
    if population.content_hash() != meta["content_sha256"]:
        raise PopulationError(f"{directory}: content does not match its recorded hash {meta['content_sha256']}")
    return population


# ---------------------------------------------------------------------------
# The population cache: built once, then mapped from disk
# ---------------------------------------------------------------------------
# A synthetic population is a pure function of its arguments, so a built one can be kept
# under a key that hashes them (with the generator's source, so a code change never
# serves a stale population). The cache stores every column as an uncompressed `.npy`
# file and opens it with `np.load(mmap_mode="r")`: loading is mapping, not decoding, and
# forked engine processes share the pages instead of each holding a copy. Parquet
# (`save` / `load`, `ansinh simulate --save-population`) stays the format to hand to
# analysts; the cache is a private, rebuildable copy (delete the directory at will).

CACHE_VERSION = 1


def cache_key(**arguments: Any) -> str:
    """A key for a synthetic population's arguments: their JSON, this module's source and the
    event generator's (whose draws it reuses), hashed."""
    digest = hashlib.sha256(json.dumps({"cache_version": CACHE_VERSION, **arguments}, sort_keys=True,
                                       default=str).encode())
    for module in (__file__, se.__file__, calibration.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()


def cached(directory: str | Path, key: str, build) -> tuple[Population, bool]:
    """The population stored under `key` in `directory`, mapped; else `build()`'s, stored first.
    Returns (population, whether it came from the cache)."""
    folder = Path(directory) / key[:32]
    if (folder / "population.json").exists():
        try:
            return load_mapped(folder), True
        except PopulationError:
            pass  # a damaged entry is rebuilt
    population = build()
    save_mapped(population, folder)
    return population, False


def save_mapped(population: Population, folder: str | Path) -> str:
    """Every column as `<frame>/<column>.npy` (a categorical as its codes, categories in the metadata),
    written to a temporary folder and renamed into place (a reader never sees half a population)."""
    import shutil
    import tempfile

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        categories: dict[str, dict[str, list]] = {}
        for name, frame in (("workers", population.workers), ("activity", population.activity)):
            (work / name).mkdir()
            categories[name] = {}
            for column in frame.columns:
                series = frame[column]
                if isinstance(series.dtype, pd.CategoricalDtype):
                    categories[name][column] = series.cat.categories.tolist()
                    values = series.cat.codes.to_numpy()
                else:
                    values = series.to_numpy()
                    if values.dtype.kind not in "biuf":
                        raise PopulationError(f"column {name}.{column} ({values.dtype}) cannot be mapped")
                np.save(work / name / f"{column}.npy", np.ascontiguousarray(values), allow_pickle=False)
        content_hash = population.content_hash()
        meta = {"format_version": population.format_version, "content_sha256": content_hash,
                "platforms": list(population.platforms), "tiers": list(population.tiers),
                "source": dict(population.source), "categories": categories,
                "columns": {"workers": list(population.workers.columns),
                            "activity": list(population.activity.columns)}}
        (work / "population.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return content_hash


def load_mapped(folder: str | Path, verify: bool = True) -> Population:
    """A population written by `save_mapped`, its numeric columns memory-mapped read-only.
    `verify`: recompute the content hash (one pass over the pages) and refuse a mismatch."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "population.json").read_text(encoding="utf-8"))
        frames = {}
        for name in ("workers", "activity"):
            columns = {}
            for column in meta["columns"][name]:
                values = np.asarray(np.load(folder / name / f"{column}.npy", mmap_mode="r", allow_pickle=False))
                if column in meta["categories"][name]:
                    values = pd.Categorical.from_codes(np.array(values), categories=meta["categories"][name][column])
                columns[column] = values
            frames[name] = pd.DataFrame(columns, copy=False)
    except (OSError, ValueError, KeyError) as error:
        raise PopulationError(f"{folder}: not a mapped population ({error})") from None
    population = Population(frames["workers"], frames["activity"], tuple(meta["platforms"]), tuple(meta["tiers"]),
                            meta["source"], int(meta["format_version"]), origin="mapped")
    if verify and population.content_hash() != meta["content_sha256"]:
        raise PopulationError(f"{folder}: content does not match its recorded hash {meta['content_sha256']}")
    if not verify:
        population.__dict__["_content_hash"] = meta["content_sha256"]
    return population
