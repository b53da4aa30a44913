"""Column mappings (`ledger.mapping`, `ansinh ingest --map`): a platform's own export, booked as events."""
from __future__ import annotations

import csv
import itertools
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from ledger.identity import is_valid_national_id
from ledger.mapping import MappingError, apply_mapping, convert_amount, load_mapping, parse_mapping, \
    synthetic_national_id
from ledger.readers import read_events

runner = CliRunner()
CHICAGO_MAPPING = Path(__file__).resolve().parents[2] / "docs" / "mappings" / "chicago-taxi.yaml"

GRAB_EXPORT = """trip_ref,driver_cccd,fare_k,finished_local,service
T-1,079203001234,87.5,2026-02-10 09:00:00,bike
T-2,079203001234,120,2026-02-11 23:30:00,car
T-3,001085004321,45,2026-02-12 08:15:00,food
T-4,001085004321,-3,2026-02-12 08:15:00,bike
T-5,001085004321,30,yesterday,bike
"""
GRAB_MAPPING = {
    "mapping": 1,
    "columns": {"trip_ref": "event_id", "driver_cccd": "worker_id", "fare_k": "amount",
                "finished_local": "occurred_at", "service": "kind"},
    "constants": {"platform": "grab"},
    "kinds": {"bike": "ride", "car": "ride", "food": "delivery"},
    "amount": {"multiplier": "1000", "rounding": "half_up"},
    "occurred_at": {"format": "%Y-%m-%d %H:%M:%S", "time_zone": "Asia/Ho_Chi_Minh"},
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_mapping_with_several_mistakes_reports_every_one_naming_its_key():
    document = {"mapping": 1, "colums": {}, "kinds": {"bike": "scooter"}, "amount": {"multiplier": "-2"},
                "occurred_at": {"format": "epoch", "time_zone": "Mars/Olympus"},
                "event_id": {"template": "x-{row.attr}"}, "worker_id": {"generate_from": "company",
                                                                        "birth_years": [2000, 1990]}}
    with pytest.raises(MappingError) as refused:
        parse_mapping(document, "bad.yaml")
    keys = [problem.split(":")[0] for problem in refused.value.errors]
    assert keys == ["colums", "kinds.bike", "amount.multiplier", "occurred_at.format", "occurred_at.time_zone",
                    "event_id.template", "worker_id.generate_from", "worker_id.birth_years"]
    assert "unknown key" in refused.value.errors[0]


def test_a_mapping_without_its_format_version_is_refused():
    with pytest.raises(MappingError, match=r"mapping: must be 1 \(the format version\)"):
        parse_mapping({"columns": {"a": "amount"}})


@pytest.mark.parametrize(("value", "multiplier", "rounding", "expected"), [
    ("12.45", "8000", "half_up", 99_600),
    (12.45, "8000", "half_up", 99_600),  # the float 12.45 is read as its shortest text, not 12.4499999…
    ("0.00005", "10000", "half_up", 1),
    ("0.00005", "10000", "half_even", 0),
    ("0.00015", "10000", "half_even", 2),
    ("7.99", "1", "down", 7),
    ("1.5", "1", "exact", "1.5"),  # not a whole number of dong: left for the ledger to reject
    ("3", "1000", "exact", 3_000),
    ("abc", "1000", "half_up", "abc"),
    (True, "1000", "half_up", True),
])
def test_an_amount_is_scaled_exactly_and_rounded_to_whole_dong(value, multiplier, rounding, expected):
    assert convert_amount(value, Decimal(multiplier), rounding) == expected


def test_a_platform_export_in_its_own_columns_loads_with_a_mapping(tmp_path):
    export = write(tmp_path, "grab.csv", GRAB_EXPORT)
    mapping = write(tmp_path, "grab.yaml", yaml.safe_dump(GRAB_MAPPING))
    result = runner.invoke(app, ["ingest", str(export), "--map", str(mapping), "--outcomes",
                                 str(tmp_path / "out.ndjson"), "--db", f"sqlite:///{tmp_path / 'books.db'}"])
    assert result.exit_code == 0, result.output
    outcomes = [orjson.loads(line) for line in (tmp_path / "out.ndjson").read_bytes().splitlines()]
    assert [(o["event_id"], o["outcome"]) for o in outcomes] == [
        ("T-1", "accepted"), ("T-2", "accepted"), ("T-3", "accepted"), ("T-4", "invalid_amount"),
        ("T-5", "invalid_timestamp")]
    settlement = runner.invoke(app, ["settlement", "2026-02", "--json", "--db", f"sqlite:///{tmp_path / 'books.db'}"])
    # si 1 %: 875 + 1,200 + 450; oa and ui 0.5 %: 437.5 → 438, 600, 225 (half up per event)
    assert orjson.loads(settlement.stdout)["platforms"]["grab"] == {"si": 2_525, "oa": 1_263, "ui": 1_263}


def test_naive_times_take_the_offset_in_force_in_the_mappings_zone():
    mapping = parse_mapping({"mapping": 1, "occurred_at": {"time_zone": "America/Chicago"}})
    rows = [(1, {"occurred_at": "2026-01-15T10:00:00"}), (2, {"occurred_at": "2026-07-15T10:00:00"}),
            (3, {"occurred_at": "2026-07-15T10:00:00Z"}), (4, {"occurred_at": "not a time"})]
    mapped = [item["occurred_at"] for _line, item in apply_mapping(mapping, rows)]
    assert mapped == ["2026-01-15T10:00:00-06:00", "2026-07-15T10:00:00-05:00", "2026-07-15T05:00:00-05:00",
                      "not a time"]


def test_epoch_wall_clock_times_are_read_in_the_zone_and_shifted_by_whole_weeks():
    mapping = parse_mapping({"mapping": 1, "occurred_at": {"format": "unix_seconds_local",
                                                          "time_zone": "America/Chicago", "shift_days": 4753}})
    # 1357000200 = 2013-01-01 00:30 on the wall clock (a Tuesday); 679 weeks later: Tuesday 2026-01-06 00:30
    [(_line, item)] = apply_mapping(mapping, [(1, {"occurred_at": "1357000200"})])
    assert item["occurred_at"] == "2026-01-06T00:30:00-06:00"


def test_rows_that_are_not_objects_pass_through_for_the_ledger_to_call_malformed():
    from ledger.ingest import MALFORMED

    mapping = parse_mapping({"mapping": 1, "constants": {"platform": "grab"}})
    assert list(apply_mapping(mapping, [(1, MALFORMED), (2, [1, 2])])) == [(1, MALFORMED), (2, [1, 2])]


def test_a_made_up_worker_id_is_valid_and_the_same_for_the_same_key():
    numbers = [synthetic_national_id(f"Company {n % 40}\x1f{n % 7}", "salt", (1965, 2000)) for n in range(500)]
    assert all(is_valid_national_id(number, 2026) for number in numbers)
    assert numbers[:40] == numbers[280:320]  # n and n + 280 name the same (company, area)
    assert len(set(numbers)) == 280  # 40 × 7 keys, no two sharing a number
    assert synthetic_national_id("a", "salt", (1965, 2000)) != synthetic_national_id("a", "other", (1965, 2000))


def test_a_broken_mapping_file_stops_ingest_before_anything_is_booked(tmp_path):
    export = write(tmp_path, "grab.csv", GRAB_EXPORT)
    mapping = write(tmp_path, "bad.yaml", "mapping: 1\namount: {multiplier: lots}\n")
    result = runner.invoke(app, ["ingest", str(export), "--map", str(mapping),
                                 "--db", f"sqlite:///{tmp_path / 'books.db'}"])
    assert result.exit_code == 1
    printed = " ".join(result.output.split())  # rich wraps long lines
    assert "amount.multiplier: must be a positive decimal number, got 'lots'" in printed
    assert "nothing was ingested" in printed


def test_the_real_chicago_trips_load_with_the_documented_mapping(shared_dir, tmp_path):
    """The first 400 trips of the real file: 13 000 USD of fares → VND, two of them zero fares (rejected)."""
    source = shared_dir / "data" / "real" / "chicago_taxi_trips_tfx.csv"
    with source.open(newline="") as whole, (tmp_path / "slice.csv").open("w", newline="") as part:
        part.writelines(itertools.islice(whole, 401))
    mapping = load_mapping(CHICAGO_MAPPING)
    items = list(read_events(str(tmp_path / "slice.csv"), mapping))
    assert items[0] == (1, {"amount": 99_600, "occurred_at": "2027-05-21T19:45:00-05:00", "platform": "chicago-taxi",
                            "kind": "ride", "currency": "VND", "event_id": "chi-1400269500-1",
                            "worker_id": items[0][1]["worker_id"]})
    assert is_valid_national_id(items[0][1]["worker_id"], 2027)

    books = f"sqlite:///{tmp_path / 'books.db'}"
    result = runner.invoke(app, ["ingest", str(tmp_path / "slice.csv"), "--map", str(CHICAGO_MAPPING),
                                 "--outcomes", str(tmp_path / "out.ndjson"), "--db", books])
    assert result.exit_code == 0, result.output
    outcomes = [orjson.loads(line) for line in (tmp_path / "out.ndjson").read_bytes().splitlines()]
    with (tmp_path / "slice.csv").open(newline="") as rows:
        zero_fares = sum(float(row["fare"]) == 0 for row in csv.DictReader(rows))
    assert Counter(o["outcome"] for o in outcomes) == {"accepted": 400 - zero_fares, "invalid_amount": zero_fares}
    assert {key: outcomes[1][key] for key in ("line", "platform", "event_id", "outcome")} == {
        "line": 2, "platform": "chicago-taxi", "event_id": "chi-1362683700-2", "outcome": "invalid_amount"}
    worker = items[0][1]["worker_id"]
    statement = runner.invoke(app, ["statement", worker, "2027-05", "--json", "--db", books])
    vietnam = timezone(timedelta(hours=7))
    in_may = [item["amount"] for _line, item in items if item["worker_id"] == worker and item["amount"] > 0
              and datetime.fromisoformat(item["occurred_at"]).astimezone(vietnam).strftime("%Y-%m") == "2027-05"]
    # RULES.md §4: si.worker = round_half_up(amount × 10,000 / 1,000,000) per ride, summed over the month
    assert orjson.loads(statement.stdout)["schemes"]["si"]["worker"] == sum(
        (2 * amount * 10_000 + 1_000_000) // 2_000_000 for amount in in_may)
    assert 99_600 in in_may
