"""The `ansinh` command line of INTERFACES.md, driven in-process on an SQLite file.

The books are the worked example of RULES.md §10 (worker 079203001234, near-poor
from 2026-01), so every figure below is the one computed by hand there.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.ledger.factories import WORKER_A, WORKER_B, event, refund

runner = CliRunner()

# Items every input format can carry (CSV cells are text, Parquet amounts are int64).
ITEMS = [
    event("g-1", amount=87_500, occurred_at="2026-01-31T18:30:00Z"),                       # accepted
    event("s-1", platform="shopee", kind="order", amount=1_249_000,
          occurred_at="2026-02-03T10:00:00+07:00"),                                         # accepted
    refund("s-1r", "s-1", 400_000, platform="shopee", kind="order",
           occurred_at="2026-02-05T10:00:00+07:00"),                                        # accepted
    refund("s-1r2", "s-1", 849_000, platform="shopee", kind="order",
           occurred_at="2026-02-06T10:00:00+07:00"),                                        # accepted
    event("g-1", amount=87_500, occurred_at="2026-01-31T18:30:00Z"),                       # duplicate
    event("g-1", amount=87_501, occurred_at="2026-01-31T18:30:00Z"),                       # duplicate_conflict
    event("bad-amount", amount=-5),                                                         # invalid_amount
    event("no-worker", worker_id=...),                                                      # missing_field
    event("taxi", kind="taxi"),                                                             # unknown_kind
    event("bad-id", worker_id="999203001234"),                                              # invalid_worker_id
    refund("orphan", "never-sent", 1_000),                                                  # unknown_original
    event("b-1", platform="be", kind="delivery", worker_id=WORKER_B),                      # accepted
]
EXPECTED = ["accepted", "accepted", "accepted", "accepted", "duplicate", "duplicate_conflict", "invalid_amount",
            "missing_field", "unknown_kind", "invalid_worker_id", "unknown_original", "accepted"]
COLUMNS = ["event_id", "platform", "kind", "action", "worker_id", "amount", "occurred_at", "original_event_id"]


def run(*args: str, env: dict | None = None):
    return runner.invoke(app, [str(arg) for arg in args], env=env)


def unwrapped(text: str) -> str:
    """Rich wraps stderr at the console width (80 columns under the test runner)."""
    return text.replace("\n", "")


def ok(*args: str):
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def write_ndjson(path: Path, items: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))
    return path


def write_csv(path: Path, items: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(items)
    return path


def write_parquet(path: Path, items: list[dict]) -> Path:
    schema = pa.schema([(name, pa.int64() if name == "amount" else pa.string()) for name in COLUMNS])
    pq.write_table(pa.Table.from_pylist([{name: item.get(name) for name in COLUMNS} for item in items],
                                        schema=schema), path)
    return path


def read_outcomes(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def worked_example(tmp_path: Path, db: str) -> None:
    """Ingest §10's events (and the noise around them), import the tier, close February."""
    ok("ingest", write_ndjson(tmp_path / "events.ndjson", ITEMS), "--db", db)
    tiers = tmp_path / "tiers.csv"
    tiers.write_text(f"national_id,tier,valid_from\n{WORKER_A},near_poor,2026-01\n", encoding="utf-8")
    ok("tiers", "import", tiers, "--db", db)
    ok("close", "2026-02", "--db", db)


# -- ingest --------------------------------------------------------------------------------------------

def test_ingest_writes_one_outcome_line_per_input_item_in_order(tmp_path, db):
    items = [*ITEMS[:3], "not json at all", [1, 2], *ITEMS[3:]]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"".join((item.encode() if isinstance(item, str) else orjson.dumps(item)) + b"\n"
                              for item in items))
    result = ok("ingest", path, "--outcomes", tmp_path / "out.ndjson", "--db", db)
    lines = read_outcomes(tmp_path / "out.ndjson")
    assert [line["line"] for line in lines] == list(range(1, len(items) + 1))
    assert [line["outcome"] for line in lines] == [*EXPECTED[:3], "malformed", "malformed", *EXPECTED[3:]]
    # INTERFACES.md's four keys, exactly; then the added ones (docs/events.md)
    assert all(set(line) == {"line", "platform", "event_id", "outcome", "booked_month", "occurred_month", "reason"}
               for line in lines)
    interface = [{key: line[key] for key in ("line", "platform", "event_id", "outcome")} for line in lines]
    assert interface[0] == {"line": 1, "platform": "grab", "event_id": "g-1", "outcome": "accepted"}
    assert interface[3] == {"line": 4, "platform": None, "event_id": None, "outcome": "malformed"}
    assert interface[4] == {"line": 5, "platform": None, "event_id": None, "outcome": "malformed"}
    assert interface[-1] == {"line": 14, "platform": "be", "event_id": "b-1", "outcome": "accepted"}
    assert (lines[0]["booked_month"], lines[0]["occurred_month"]) == ("2026-02", None)
    assert lines[0]["reason"] == "Đã ghi sổ vào tháng 2/2026."  # Vietnamese unless --lang en
    assert (lines[3]["booked_month"], lines[3]["reason"]) == (None, "Mục này không phải một đối tượng JSON hợp lệ.")
    assert "accepted" in result.stdout and "malformed" in result.stdout  # the summary counts per outcome


def test_blank_ndjson_lines_are_skipped_but_keep_their_line_numbers(tmp_path, db):
    path = tmp_path / "events.ndjson"
    path.write_bytes(orjson.dumps(ITEMS[0]) + b"\n\n   \n" + orjson.dumps(ITEMS[1]) + b"\n")
    ok("ingest", path, "--outcomes", tmp_path / "out.ndjson", "--db", db)
    assert [(line["line"], line["outcome"]) for line in read_outcomes(tmp_path / "out.ndjson")] == [
        (1, "accepted"), (4, "accepted")]


def test_ingest_exits_0_when_every_item_is_rejected(tmp_path, db):
    ok("ingest", write_ndjson(tmp_path / "bad.ndjson", [event(amount=0), event(kind="x")]),
       "--outcomes", tmp_path / "out.ndjson", "--db", db)
    assert [line["outcome"] for line in read_outcomes(tmp_path / "out.ndjson")] == [
        "invalid_amount", "unknown_kind"]


@pytest.mark.parametrize("writer, suffix", [(write_csv, "csv"), (write_parquet, "parquet")])
def test_csv_and_parquet_inputs_give_the_same_outcomes_as_ndjson(tmp_path, writer, suffix):
    ndjson_db, other_db = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    ok("ingest", write_ndjson(tmp_path / "events.ndjson", ITEMS), "--outcomes", tmp_path / "a.out", "--db", ndjson_db)
    ok("ingest", writer(tmp_path / f"events.{suffix}", ITEMS), "--outcomes", tmp_path / "b.out", "--db", other_db)
    from_ndjson, from_other = read_outcomes(tmp_path / "a.out"), read_outcomes(tmp_path / "b.out")
    assert [line["outcome"] for line in from_ndjson] == EXPECTED
    assert from_other == from_ndjson
    # and the same books: the same provisional settlement
    assert settlement_json(ndjson_db)["platforms"] == settlement_json(other_db)["platforms"]


def test_ingest_reads_ndjson_from_stdin(tmp_path, db):
    payload = b"".join(orjson.dumps(item) + b"\n" for item in ITEMS[:2])
    result = runner.invoke(app, ["ingest", "-", "--outcomes", str(tmp_path / "out.ndjson"), "--db", db],
                           input=payload)
    assert result.exit_code == 0, result.stderr
    assert [line["outcome"] for line in read_outcomes(tmp_path / "out.ndjson")] == ["accepted", "accepted"]


@pytest.mark.parametrize("file_format", ["stdin", "ndjson", "csv", "parquet"])
def test_a_file_read_and_checked_in_a_forked_process_gives_the_outcomes_and_books_of_one_chunk(tmp_path, file_format):
    """`--chunk-size 3` books the twelve items in four chunks, read and checked in a forked child
    (ledger.pipeline) from the second on; `--chunk-size 100` in this process, in one chunk."""
    writer = {"csv": write_csv, "parquet": write_parquet}.get(file_format, write_ndjson)
    path = writer(tmp_path / f"events.{'ndjson' if file_format == 'stdin' else file_format}", ITEMS)
    one_db, forked_db = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'forked.db'}"
    ok("ingest", path, "--chunk-size", 100, "--outcomes", tmp_path / "one.out", "--db", one_db)
    if file_format == "stdin":
        done = subprocess.run([sys.executable, "-m", "api.cli", "ingest", "-", "--chunk-size", "3", "--outcomes",
                               str(tmp_path / "forked.out")], input=path.read_bytes(), capture_output=True,
                              env={**os.environ, "ANSINH_DATABASE_URL": forked_db, "ANSINH_PACK": "vn-pilot",
                                   "PYTHONPATH": str(Path(__file__).resolve().parents[2])}, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    else:
        ok("ingest", path, "--chunk-size", 3, "--outcomes", tmp_path / "forked.out", "--db", forked_db)
    assert [line["outcome"] for line in read_outcomes(tmp_path / "forked.out")] == EXPECTED
    assert read_outcomes(tmp_path / "forked.out") == read_outcomes(tmp_path / "one.out")
    assert settlement_json(forked_db)["platforms"] == settlement_json(one_db)["platforms"]


def test_the_database_can_be_chosen_by_environment_variable(tmp_path):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = run("ingest", write_ndjson(tmp_path / "events.ndjson", ITEMS[:1]), env={"ANSINH_DATABASE_URL": url})
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "env.db").exists()
    assert settlement_json(url)["platforms"] == {"grab": {"si": 875, "oa": 438, "ui": 438}}


# -- statement -------------------------------------------------------------------------------------------

def test_statement_json_has_the_interfaces_shape_and_the_worked_example_figures(tmp_path, db):
    worked_example(tmp_path, db)
    report = orjson.loads(ok("statement", WORKER_A, "2026-02", "--json", "--db", db).stdout)
    assert {"national_id", "month", "closed", "schemes", "to_date"} <= set(report)
    assert (report["national_id"], report["month"], report["closed"]) == (WORKER_A, "2026-02", True)
    assert report["schemes"] == {
        "si": {"worker": 875, "platform": 0, "subsidy": 219, "total": 1_094},
        "oa": {"worker": 0, "platform": 438, "subsidy": 0, "total": 438},
        "ui": {"worker": 438, "platform": 0, "subsidy": 110, "total": 548},
    }
    assert report["to_date"] == {"si": 1_094, "oa": 438, "ui": 548}


def test_statement_json_of_an_open_month_lists_all_three_schemes_with_zero_subsidy(tmp_path, db):
    ok("ingest", write_ndjson(tmp_path / "events.ndjson", ITEMS), "--db", db)
    report = orjson.loads(ok("statement", WORKER_B, "2026-02", "--json", "--db", db).stdout)
    assert report["closed"] is False
    # delivery of 100,000: si 1,000, oa.platform 500, ui 500; no subsidy before the close
    assert report["schemes"] == {
        "si": {"worker": 1_000, "platform": 0, "subsidy": 0, "total": 1_000},
        "oa": {"worker": 0, "platform": 500, "subsidy": 0, "total": 500},
        "ui": {"worker": 500, "platform": 0, "subsidy": 0, "total": 500},
    }


def test_statement_text_is_vietnamese_by_default_with_dong_grouped_by_dots(tmp_path, db):
    worked_example(tmp_path, db)
    text = ok("statement", WORKER_A, "2026-02", "--db", db).stdout
    assert "Sao kê đóng góp tháng 2/2026" in text  # the month as people write it (api/formats.py)
    assert "đã chốt sổ" in text and "2026-02" not in text
    assert "1.094 ₫" in text and "548 ₫" in text and "219 ₫" in text
    assert WORKER_A not in text  # the citizen id is masked in human output


def test_statement_text_is_english_with_lang_en_and_money_the_english_way(tmp_path, db):
    worked_example(tmp_path, db)
    text = ok("statement", WORKER_A, "2026-02", "--lang", "en", "--db", db).stdout
    assert "Contribution statement for February 2026" in text
    assert "Sao kê" not in text and "₫" not in text
    assert "1,094 VND" in text and "548 VND" in text and "Grab" in text
    assert WORKER_A not in text


def test_statement_text_says_what_each_scheme_pays_for_the_credited_months_and_an_estimate(tmp_path, db):
    worked_example(tmp_path, db)
    text = ok("statement", WORKER_A, "2026-02", "--db", db).stdout
    assert "BHXH tự nguyện (hưu trí): khi đủ 180 tháng được tính (15 năm)" in text
    assert "Tai nạn lao động: chi trả khi bạn bị tai nạn" in text
    assert "Bảo hiểm thất nghiệp (thí điểm):" in text
    assert text.count("Số tháng đã được tính: 0/180.") == 1
    assert "Ước tính lương hưu:" in text and "Lương hưu ước tính khi đủ 180 tháng: 675.000 ₫/tháng" in text
    # 1,094 ₫ a month would take thousands of years: no date, the horizon instead
    assert "bạn chưa đủ 180 tháng trong vòng 50 năm tới" in text
    assert "Giả định của ước tính:" in text and "(330.000 ₫)" in text
    english = ok("statement", WORKER_A, "2026-02", "--lang", "en", "--db", db).stdout
    assert "Occupational accident: pays when you are hurt while working" in english
    assert "Months credited so far: 0/180." in english and "Pension estimate:" in english
    assert "Estimated pension at 180 months: 675,000 VND a month (45 % of the income base 1,500,000 VND)" in english


def test_statement_json_adds_the_meaning_block_and_keeps_every_earlier_field(tmp_path, db):
    worked_example(tmp_path, db)
    report = orjson.loads(ok("statement", WORKER_A, "2026-02", "--json", "--db", db).stdout)
    assert {"credited_months_to_date", "pool_vnd", "next_credit_needs_vnd", "pension", "topup_reference",
            "meaning"} <= set(report)
    meaning = report["meaning"]
    assert {scheme: line["sentence"] for scheme, line in meaning["schemes"].items()} == \
        {"si": "meaning_si", "oa": "meaning_oa", "ui": "meaning_ui"}
    assert (meaning["credited_months"], meaning["months_needed"]) == (0, 180)
    projection = meaning["projection"]
    assert (projection["estimate"], projection["pace_vnd"], projection["beyond_horizon"],
            projection["pension_vnd"]) == (True, 1_094, True, 675_000)


def test_statements_prints_one_statement_json_per_worker_of_the_month(tmp_path, db):
    worked_example(tmp_path, db)
    lines = [orjson.loads(line) for line in ok("statements", "2026-02", "--db", db).stdout.splitlines()]
    by_worker = {line["national_id"]: line for line in lines}
    assert sorted(by_worker) == sorted([WORKER_A, WORKER_B])
    single = orjson.loads(ok("statement", WORKER_A, "2026-02", "--json", "--db", db).stdout)
    assert by_worker[WORKER_A] == single


# -- settlement -----------------------------------------------------------------------------------------

def settlement_json(db: str) -> dict:
    return orjson.loads(ok("settlement", "2026-02", "--json", "--db", db).stdout)


def test_settlement_json_has_the_interfaces_shape_and_the_worked_example_figures(tmp_path, db):
    worked_example(tmp_path, db)
    report = settlement_json(db)
    assert {"month", "closed", "platforms", "subsidy"} <= set(report)
    assert (report["month"], report["closed"]) == ("2026-02", True)
    # grab: g-1's shares; shopee: nets to zero and is listed; be: the delivery of 100,000 (1,000 / 500 / 500)
    assert report["platforms"] == {"be": {"si": 1_000, "oa": 500, "ui": 500},
                                   "grab": {"si": 875, "oa": 438, "ui": 438},
                                   "shopee": {"si": 0, "oa": 0, "ui": 0}}
    # near-poor A: 219 / 110 (RULES.md §10); 'other' B: si 1,000 × 10 % = 100, ui 500 × 10 % = 50
    assert report["subsidy"] == {"si": 219 + 100, "oa": 0, "ui": 110 + 50}
    assert report["control_total_vnd"] == 1_000 + 500 + 500 + 875 + 438 + 438 + 319 + 160


@pytest.mark.parametrize("file_format", ["csv", "json", "parquet"])
def test_settlement_files_carry_the_control_total_and_postings_hash_of_the_json(tmp_path, db, file_format):
    worked_example(tmp_path, db)
    report = settlement_json(db)
    output = tmp_path / f"settlement.{file_format}"
    ok("settlement", "2026-02", "--format", file_format, "--output", output, "--db", db)
    if file_format == "json":
        written = orjson.loads(output.read_bytes())
        assert written == report
        return
    if file_format == "csv":
        lines = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8"))))
        amount = lambda line: int(line["amount_vnd"])  # noqa: E731
    else:
        table = pq.read_table(output)
        metadata = {key.decode(): value.decode() for key, value in table.schema.metadata.items()}
        assert metadata["control_total_vnd"] == str(report["control_total_vnd"])
        assert metadata["postings_sha256"] == report["postings_sha256"]
        lines = table.to_pylist()
        amount = lambda line: int(line["amount_vnd"])  # noqa: E731
    control = [line for line in lines if line["payer"] == "control_total"]
    assert len(control) == 1
    assert amount(control[0]) == report["control_total_vnd"]
    assert control[0]["name"] == report["postings_sha256"]
    # the control total is the sum of every other line
    assert sum(amount(line) for line in lines if line["payer"] != "control_total") == report["control_total_vnd"]
    grab = {line["scheme"]: amount(line) for line in lines if line["payer"] == "platform" and line["name"] == "grab"}
    assert grab == {"si": 875, "oa": 438, "ui": 438}


def test_an_unknown_settlement_format_is_a_clear_error(tmp_path, db):
    worked_example(tmp_path, db)
    result = run("settlement", "2026-02", "--format", "xlsx", "--output", tmp_path / "s.xlsx", "--db", db)
    assert result.exit_code != 0
    assert "xlsx" in unwrapped(result.stderr)
    assert "Traceback" not in result.output


# -- close and verify --------------------------------------------------------------------------------------

def test_verify_exits_0_on_good_books_and_names_what_it_checked(tmp_path, db):
    worked_example(tmp_path, db)
    text = ok("verify", "--db", db).stdout
    for name in ("entries_balance", "book_balances", "hash_chain_intact", "subsidy_matches_rules"):
        assert name in text
    assert "FAIL" not in text


def test_verify_exits_non_zero_and_names_the_first_discrepancy_on_tampered_books(tmp_path, db):
    import sqlite3

    worked_example(tmp_path, db)
    with sqlite3.connect(tmp_path / "cli.db") as conn:  # an attacker with file access drops the guard first
        conn.execute("DROP TRIGGER journal_append_only_update")
        conn.execute("UPDATE journal SET receivable_vnd = receivable_vnd + 1 WHERE id = 1")
    result = run("verify", "--db", db)
    assert result.exit_code != 0
    assert "FAIL" in result.stdout and "entry 1" in unwrapped(result.stdout)


@pytest.mark.parametrize("args", [("close", "2026-13"), ("statement", WORKER_A, "2026-13"),
                                  ("settlement", "26-02"), ("statements", "2026-1")])
def test_a_bad_month_is_a_clear_error(tmp_path, db, args):
    assert_clear_failure(run(*args, "--db", db), "YYYY-MM")


def test_closing_a_closed_month_or_out_of_order_is_a_clear_error(tmp_path, db):
    worked_example(tmp_path, db)
    for month in ("2026-02", "2026-04", "2026-01"):
        result = run("close", month, "--db", db)
        assert result.exit_code != 0
        assert "error" in unwrapped(result.stderr)
        assert "Traceback" not in result.output
    ok("close", "2026-03", "--db", db)


def test_a_bad_tiers_file_is_reported_by_line_and_imports_nothing(tmp_path, db):
    tiers = tmp_path / "tiers.csv"
    tiers.write_text(f"national_id,tier,valid_from\n{WORKER_A},poor,2026-01\n999203001234,poor,2026-01\n",
                     encoding="utf-8")
    result = run("tiers", "import", tiers, "--db", db)
    assert result.exit_code != 0
    assert "line 3" in unwrapped(result.stderr)
    assert "999203001234" not in result.output
    ok("ingest", write_ndjson(tmp_path / "events.ndjson", [event()]), "--db", db)
    ok("close", "2026-02", "--db", db)
    report = orjson.loads(ok("statement", WORKER_A, "2026-02", "--json", "--db", db).stdout)
    assert report["schemes"]["si"]["subsidy"] == 100  # 'other' (10 %), line 2 was not applied


# -- bad input paths ---------------------------------------------------------------------------------------

def assert_clear_failure(result, *words: str) -> None:
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught exception
    assert "Traceback" not in result.output
    for word in words:
        assert word in unwrapped(result.stderr)


def test_ingest_of_a_missing_file_is_a_clear_error(tmp_path, db):
    assert_clear_failure(run("ingest", tmp_path / "nope.ndjson", "--db", db), "nope.ndjson")


def test_tiers_import_of_a_missing_file_is_a_clear_error(tmp_path, db):
    assert_clear_failure(run("tiers", "import", tmp_path / "nope.csv", "--db", db), "nope.csv")


def test_ingest_of_a_directory_is_a_clear_error(tmp_path, db):
    folder = tmp_path / "folder"
    folder.mkdir()
    assert_clear_failure(run("ingest", folder, "--db", db), "folder")


def test_tiers_import_of_a_directory_is_a_clear_error(tmp_path, db):
    folder = tmp_path / "folder"
    folder.mkdir()
    assert_clear_failure(run("tiers", "import", folder, "--db", db), "folder")


def test_ingest_of_a_parquet_file_that_is_not_parquet_is_a_clear_error(tmp_path, db):
    path = tmp_path / "events.parquet"
    path.write_bytes(b"this is not parquet\n")
    assert_clear_failure(run("ingest", path, "--db", db), "events.parquet")


def test_ingest_with_an_outcomes_path_in_a_missing_folder_is_a_clear_error(tmp_path, db):
    path = write_ndjson(tmp_path / "events.ndjson", ITEMS[:1])
    assert_clear_failure(run("ingest", path, "--outcomes", tmp_path / "missing" / "out.ndjson", "--db", db),
                         "out.ndjson")
