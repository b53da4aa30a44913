"""`ansinh statement NATIONAL_ID YYYY-MM --events`: the month's booked events, as text, NDJSON, JSON and CSV.

The books are test_cli.py's worked example of RULES.md §10 (a ride of 87,500 ₫ on 1 February
in Vietnam, an order of 1,249,000 ₫ refunded in two pieces, February closed).
"""
from __future__ import annotations

import csv
import io

import orjson
import pytest

from api.i18n import EVENTS_CSV_HEADER, events_csv_header
from tests.api.test_cli import ok, run, unwrapped, worked_example, write_ndjson
from tests.ledger.factories import WORKER_A, event


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_events_text_lists_each_booked_event_with_its_note_and_totals_equal_to_the_statement(tmp_path, db):
    worked_example(tmp_path, db)
    text = ok("statement", WORKER_A, "2026-02", "--events", "--db", db).stdout
    assert text.startswith("Các giao dịch được ghi sổ tháng 2/2026 — 4 giao dịch")
    assert WORKER_A not in text and "079******234" in text
    ride = next(line for line in text.splitlines() if " g-1 " in line)
    # 18:30 UTC on 31 January is 01:30 on 1 February in Vietnam
    assert ride.startswith("01/02/2026 01:30    Grab ") and "Chuyến xe" in ride and "87.500 ₫" in ride
    refund = next(line for line in text.splitlines() if " s-1r2 " in line)
    assert "Hoàn tiền – Đơn hàng" in refund and "-849.000 ₫" in refund
    assert refund.endswith("hoàn tiền cho s-1 (tháng 2/2026)")
    # the order and its refunds cancel: the month's contributions are the ride's, as the statement says
    assert "BHXH tự nguyện (hưu trí)                Bạn đóng          875 ₫" in text
    english = ok("statement", WORKER_A, "2026-02", "--events", "--lang", "en", "--db", db).stdout
    assert english.startswith("Events booked in February 2026 — 4 events") and "refund of s-1 (February 2026)" in english
    assert "1 Feb 2026 01:30" in english and "87,500 VND" in english and "₫" not in english


def test_events_ndjson_and_json_carry_the_shares_whose_sums_are_the_statements_figures(tmp_path, db):
    worked_example(tmp_path, db)
    lines = ok("statement", WORKER_A, "2026-02", "--events", "--json", "--db", db).stdout.splitlines()
    items = [orjson.loads(line) for line in lines]
    assert [(item["event_id"], item["type"], item["amount_vnd"]) for item in items] == [
        ("g-1", "event", 87_500), ("s-1", "event", 1_249_000), ("s-1r", "refund", -400_000),
        ("s-1r2", "refund", -849_000)]
    report = orjson.loads(ok("statement", WORKER_A, "2026-02", "--json", "--db", db).stdout)
    for scheme, line in report["schemes"].items():
        for party in ("worker", "platform"):
            assert sum(item["shares"][scheme][party] for item in items) == line[party], (scheme, party)
    whole = orjson.loads(ok("statement", WORKER_A, "2026-02", "--events", "--format", "json", "--db", db).stdout)
    assert whole["events"] == items
    assert whole["totals"]["shares"]["si"] == {"worker": 875, "platform": 0} and whole["totals"]["count"] == 4


def test_events_csv_has_vietnamese_headers_and_escapes_text_a_spreadsheet_would_run(tmp_path, db):
    worked_example(tmp_path, db)
    ok("ingest", write_ndjson(tmp_path / "more.ndjson", [event("-12", occurred_at="2026-03-02T09:00:00+07:00")]),
       "--db", db)
    raw = ok("statement", WORKER_A, "2026-03", "--events", "--format", "csv", "--db", db).stdout_bytes
    assert raw.startswith("\ufeffNgày giờ,Nền tảng,Mã giao dịch,Loại,Số tiền (₫),".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == EVENTS_CSV_HEADER
    assert rows[1] == ["2026-03-02 09:00:00", "Grab", "'-12", "Chuyến xe", "100000", "1000", "0", "0", "500", "500",
                       "0", "2000", "2026-03", "2026-03", "", ""]
    raw = ok("statement", WORKER_A, "2026-02", "--events", "--format", "csv", "--db", db).stdout_bytes
    february = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    refund = next(row for row in february if row["Mã giao dịch"] == "s-1r")
    assert (refund["Loại"], refund["Số tiền (₫)"], refund["Hoàn tiền cho mã giao dịch"],
            refund["Tháng của giao dịch gốc"]) == ("Hoàn tiền – Đơn hàng", "-400000", "s-1", "2026-02")
    assert sum(int(row["BHXH – người lao động (₫)"]) for row in february) == 875


def test_events_csv_with_lang_en_has_english_headers_and_words_and_the_same_integers(tmp_path, db):
    worked_example(tmp_path, db)
    raw = ok("statement", WORKER_A, "2026-02", "--events", "--format", "csv", "--lang", "en", "--db", db).stdout_bytes
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == events_csv_header("en")
    assert list(rows[0])[:6] == ["Date and time", "Platform", "Event id", "Kind", "Amount (VND)",
                                 "Pension – worker (VND)"]
    refund = next(row for row in rows if row["Event id"] == "s-1r")
    assert (refund["Kind"], refund["Platform"], refund["Amount (VND)"], refund["Month of the original event"]) == (
        "Refund – Order", "Shopee", "-400000", "2026-02")
    assert sum(int(row["Pension – worker (VND)"]) for row in rows) == 875


def test_an_unknown_events_format_or_a_bad_month_is_one_clear_error_line(tmp_path, db):
    worked_example(tmp_path, db)
    wrong = run("statement", WORKER_A, "2026-02", "--events", "--format", "xml", "--db", db)
    assert wrong.exit_code == 1 and "unknown format 'xml': use csv, json, ndjson" in unwrapped(wrong.stderr)
    both = run("statement", WORKER_A, "2026-02", "--events", "--json", "--format", "csv", "--db", db)
    assert both.exit_code == 1 and "give either --json or --format" in unwrapped(both.stderr)
    month = run("statement", WORKER_A, "2026-13", "--events", "--db", db)
    assert month.exit_code == 1 and "not a month" in unwrapped(month.stderr) and "Traceback" not in month.stderr
