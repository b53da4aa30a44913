"""Real-trip fare profiles: the fare distribution and time-of-day profile of real trips.

`chicago_taxi(path)` reads the 15,002 real Chicago taxi trips shipped in
`../shared/data/real/chicago_taxi_trips_tfx.csv` with the ledger's own mapping of that
file (`docs/mappings/chicago-taxi.yaml`): each fare in USD is rescaled by the mapping's
multiplier (8,000 VND per dollar, exact decimal arithmetic, half up), which puts the
median fare (USD 7.85) at 62,800 VND, inside the 44,000–123,000 VND of a car trip in
Vietnam; the 27 zero fares are left out, as the ingest rejects them (`invalid_amount`).
The time-of-day profile is the number of trips starting in each hour (`trip_start_hour`,
the city's wall clock), read as the hours of a Vietnamese day.

A synthetic population built with a profile (`population.synthetic(..., fare_profile=)`,
scenario key `population.synthetic.fare_profile`) draws its **car rides** from the real
fares' mean and spread instead of `synthetic_events`' car-fare model; bike rides,
deliveries and orders are unchanged. The hourly profile gives the busiest hour's event
rate of the population (`peak_events_per_second`), the figure ingest capacity is sized by.
"""
from __future__ import annotations

import calendar
import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulations.population import PopulationError

ROOT = Path(__file__).resolve().parent.parent
CHICAGO_MAPPING = ROOT / "docs" / "mappings" / "chicago-taxi.yaml"
HOURS = 24
SECONDS_PER_HOUR = 3_600


class FareProfileError(PopulationError):
    """A fare file that cannot be used (names the file and the reason)."""


@dataclass(frozen=True)
class FareProfile:
    source: str  # the file's name
    sha256: str
    multiplier: str  # VND per unit of the file's currency, as the mapping states it
    fares_vnd: np.ndarray  # every positive fare in VND, sorted
    trips_by_hour: tuple[int, ...]  # trips starting in hour 0..23
    zero_fares: int  # rows left out (the ingest rejects an amount of 0)

    @property
    def trips(self) -> int:
        return len(self.fares_vnd)

    @property
    def median_fare_vnd(self) -> int:
        """The lower median (a fare of the file, no averaging)."""
        return int(self.fares_vnd[(self.trips - 1) // 2])

    @property
    def peak_hour(self) -> int:
        return int(np.argmax(self.trips_by_hour))

    def moments(self) -> tuple[float, float, int]:
        """Mean, standard deviation and minimum of one fare (VND): what the synthetic generator draws from."""
        fares = self.fares_vnd.astype(np.float64)
        return float(fares.mean()), float(fares.std()), int(self.fares_vnd[0])

    def summary(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256, "multiplier": self.multiplier, "trips": self.trips,
                "zero_fares_left_out": self.zero_fares, "median_fare_vnd": self.median_fare_vnd,
                "peak_hour": self.peak_hour, "trips_by_hour": list(self.trips_by_hour)}


def _mapping_multiplier(mapping: Path) -> Decimal:
    document = yaml.safe_load(mapping.read_text(encoding="utf-8"))
    amount = document.get("amount", {})
    if amount.get("rounding") != "half_up":
        raise FareProfileError(f"{mapping}: the fare profile rounds half up; the mapping says "
                               f"{amount.get('rounding')!r}")
    return Decimal(str(amount["multiplier"]))


def chicago_taxi(path: str | Path, mapping: str | Path = CHICAGO_MAPPING) -> FareProfile:
    """The fare profile of a Chicago taxi trips file (columns `fare`, USD, and `trip_start_hour`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        multiplier = _mapping_multiplier(Path(mapping))
    except OSError as error:
        raise FareProfileError(f"{error.filename}: cannot be read ({error.strerror})") from None
    fares: list[int] = []
    hours = [0] * HOURS
    zero = 0
    rows = csv.DictReader(data.decode("utf-8").splitlines())
    if not rows.fieldnames or not {"fare", "trip_start_hour"} <= set(rows.fieldnames):
        raise FareProfileError(f"{path}: needs the columns fare and trip_start_hour")
    for line, row in enumerate(rows, start=2):
        try:
            amount = int((Decimal(row["fare"]) * multiplier).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            hour = int(row["trip_start_hour"])
        except (InvalidOperation, ValueError, TypeError):
            # The cells are not echoed: an error names the line, never the file's content.
            raise FareProfileError(f"{path}:{line}: fare or trip_start_hour is not a number") from None
        if not 0 <= hour < HOURS or amount < 0:
            raise FareProfileError(f"{path}:{line}: trip_start_hour outside 0–23 or a negative fare")
        if amount == 0:
            zero += 1
            continue
        fares.append(amount)
        hours[hour] += 1
    if not fares:
        raise FareProfileError(f"{path}: no trip with a fare above 0")
    return FareProfile(path.name, hashlib.sha256(data).hexdigest(), str(multiplier),
                       np.sort(np.array(fares, dtype=np.int64)), tuple(hours), zero)


def peak_events_per_second(events_by_month: dict[int, int], trips_by_hour: Sequence[int]) -> float:
    """The busiest hour's mean event rate: the busiest month's events per day, times the peak hour's
    share of a day's trips, over 3,600 s (a rate for sizing ingest, not money)."""
    peak_share = max(trips_by_hour) / sum(trips_by_hour)
    best = 0.0
    for month, events in events_by_month.items():
        days = calendar.monthrange(month // 100, month % 100)[1]
        best = max(best, events / days * peak_share / SECONDS_PER_HOUR)
    return best
