"""CLI manners (issue 17): a light start-up, and one clear line for a worker the books cannot show.

The books are test_cli.py's worked example (RULES.md §10); other ids are generated per run.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.api.test_cli import WORKER_A, ok, run, unwrapped, worked_example

ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("sqlalchemy", "sqlmodel", "alembic", "numpy", "pandas", "pyarrow", "fastapi", "nats")


def loaded_after(code: str, env: dict | None = None) -> list[str]:
    """The heavy modules a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **(env or {})})
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_database_numeric_or_web_library():
    assert loaded_after("import api.cli") == []


@pytest.mark.parametrize("argv", [["--help"], ["statement", "--help"], ["payments", "import", "--help"],
                                  ["consume", "--help"], ["witness", "publish", "--help"], ["simulate", "--help"]])
def test_help_of_the_cli_and_of_a_command_loads_no_database_numeric_or_web_library(argv):
    code = ("import sys\nfrom api.cli import app\n"
            f"try:\n    app({argv!r})\nexcept SystemExit as done:\n    assert done.code == 0, done.code")
    assert loaded_after(code) == []


@pytest.fixture(scope="module")
def current_books(tmp_path_factory) -> str:
    """The worked example's books, created (and so migrated to the head) by earlier commands."""
    folder = tmp_path_factory.mktemp("current")
    db = f"sqlite:///{folder / 'cli.db'}"
    worked_example(folder, db)
    return db


@pytest.mark.parametrize("argv", [["statement", WORKER_A, "2026-02", "--json"], ["statements", "2026-02"],
                                  ["settlement", "2026-02", "--json"], ["verify"]])
def test_a_read_command_on_current_books_loads_neither_alembic_nor_the_table_classes(current_books, argv):
    # Books at ledger.store.HEAD_REVISION need no migration: alembic (~0.2 s) and the SQLModel
    # classes of ledger.schema (~0.3 s) stay unloaded (docs/performance.md).
    code = ("from api.cli import app\n"
            f"try:\n    app({[*argv, '--db', current_books]!r})\nexcept SystemExit as done:\n    assert done.code == 0, done.code")
    loaded = loaded_after(code, {"ANSINH_SECRET": os.environ["ANSINH_SECRET"]})
    assert "sqlalchemy" in loaded  # the books were read
    assert "alembic" not in loaded and "sqlmodel" not in loaded


def test_listing_the_rules_packs_loads_no_database_or_numeric_library():
    code = ("from api.cli import app\n"
            "try:\n    app(['packs', 'list'])\nexcept SystemExit as done:\n    assert done.code == 0, done.code")
    assert loaded_after(code) == []  # rules' array forms import NumPy where they run


def an_unknown_valid_id() -> str:
    """A valid CCCD (province 079, born 2003) that the worked example never booked."""
    while (national_id := f"079203{secrets.randbelow(10**6):06d}") == WORKER_A:
        pass
    return national_id


INVALID_ID = "999203" + "".join(str(secrets.randbelow(10)) for _ in range(6))  # no province 999


@pytest.mark.parametrize("command", [["statement", "{id}", "2026-02"], ["statement", "{id}", "2026-02", "--json"],
                                     ["statement", "{id}", "2026-02", "--events"], ["credits", "{id}"]])
def test_an_invalid_national_id_is_one_masked_error_line_and_exit_1(tmp_path, command):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    worked_example(tmp_path, db)
    result = run(*[part.format(id=INVALID_ID) for part in command], "--db", db)
    assert result.exit_code == 1
    assert result.stdout == ""
    error = unwrapped(result.stderr)
    assert error.startswith(f"error: {INVALID_ID[:3]}*******{INVALID_ID[-2:]} is not a valid national id")
    assert INVALID_ID not in error and INVALID_ID[3:10] not in error


@pytest.mark.parametrize("command", [["statement", "{id}", "2026-02"], ["statement", "{id}", "2026-02", "--json"],
                                     ["statement", "{id}", "2026-02", "--events", "--format", "csv"],
                                     ["credits", "{id}", "--json"]])
def test_a_valid_id_unknown_to_the_books_says_no_contributions_are_booked_and_exits_1(tmp_path, command):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    worked_example(tmp_path, db)
    unknown = an_unknown_valid_id()
    result = run(*[part.format(id=unknown) for part in command], "--db", db)
    assert result.exit_code == 1
    assert result.stdout == ""
    error = unwrapped(result.stderr)
    assert error.startswith("error: no contributions booked for this worker")
    assert unknown not in error


def test_a_booked_worker_still_gets_the_statement_and_credits(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    worked_example(tmp_path, db)
    assert orjson.loads(ok("statement", WORKER_A, "2026-02", "--json", "--db", db).stdout)["national_id"] == WORKER_A
    assert orjson.loads(ok("credits", WORKER_A, "--json", "--db", db).stdout)["national_id"] == WORKER_A


def test_a_bad_month_is_reported_before_the_worker_is_looked_up(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    worked_example(tmp_path, db)
    result = run("statement", an_unknown_valid_id(), "2026-13", "--db", db)
    assert result.exit_code == 1
    assert "YYYY-MM" in unwrapped(result.stderr)


def test_serve_first_prints_where_it_listens_and_answers_there(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANSINH_SECRET": secrets.token_hex(32),
           "ANSINH_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}"}
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--demo", "--port", str(port)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        assert first == f"listening on {base} (API docs: {base}/docs; pages: {base}/signin)\n"
        for _attempt in range(300):  # the line comes before uvicorn binds: wait for it to answer
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.1)
        else:
            raise AssertionError("the server never answered where it said it listens")
    finally:
        server.terminate()
        server.wait(timeout=20)
        server.stdout.close()
        server.stderr.close()


def test_bill_tables_fit_80_columns_and_show_every_reference_and_amount_whole(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    worked_example(tmp_path, db)
    bills = orjson.loads(ok("bills", "2026-02", "--format", "json", "--db", db).stdout)
    assert len(bills) >= 2
    shown = ok("bills", "2026-02", "--db", db).stdout  # the runner's console: 80 columns, not a terminal
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert "…" not in shown
    for bill in bills:
        assert bill["reference"] in shown and f"{bill['amount_vnd']:,}" in shown
    bank = tmp_path / "bank.csv"
    bank_ref = "VCB-2026-03-15-" + secrets.token_hex(8).upper()  # 31 characters, as banks write them
    bank.write_text("date,amount_vnd,payer,reference,bank_ref\n"
                    f"2026-03-10,{bills[0]['amount_vnd']},{bills[0]['payer']},{bills[0]['reference']},{bank_ref}\n",
                    encoding="utf-8")
    paid = ok("payments", "import", bank, "--db", db).stdout
    assert bank_ref in paid and bills[0]["reference"] in paid and "…" not in paid, paid
    assert max(len(line) for line in paid.splitlines()) <= 80, paid
    account = ok("account", bills[0]["payer"], "--db", db).stdout
    assert bank_ref in account and bills[0]["reference"] in account and "…" not in account
    assert max(len(line) for line in account.splitlines()) <= 80


PAYMENT_HEADERS = ("bank_ref", "payer", "amount", "settled", "credit")


def test_a_payments_import_table_keeps_every_column_as_wide_as_its_identifiers_in_80_columns(tmp_path):
    # Before: a 32-character bank reference beside `shopeefood` squeezed `credit` to one column (its
    # header printed a letter a line) and folded bill references inside `settled` (AS202602P00 / 0121).
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    worked_example(tmp_path, db)
    bills = orjson.loads(ok("bills", "2026-02", "--format", "json", "--db", db).stdout)
    bank = tmp_path / "bank.csv"
    refs = ["VCB-2026-03-15-" + secrets.token_hex(8).upper(), "VCB-2026-03-16-" + secrets.token_hex(8).upper() + "X"]
    bank.write_text("date,amount_vnd,payer,reference,bank_ref\n"
                    f"2026-03-10,{bills[0]['amount_vnd']},{bills[0]['payer']},{bills[0]['reference']},{refs[0]}\n"
                    f"2026-03-11,{bills[1]['amount_vnd'] + 12_345},{bills[1]['payer']},,{refs[1]}\n",
                    encoding="utf-8")
    lines = ok("payments", "import", bank, "--db", db).stdout.splitlines()  # the runner: not a terminal
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("bank_ref"))
    assert header.split() == list(PAYMENT_HEADERS)  # every header whole, on one line
    rows = {ref: next(line for line in lines if line.startswith(ref + " ")) for ref in refs}
    for ref, bill, credit in zip(refs, bills, (0, 12_345)):
        row = rows[ref].split()
        assert (row[0], row[1], row[2], row[-1]) == (ref, bill["payer"], f"{bill['amount_vnd'] + credit:,}",
                                                     f"{credit:,}")
    assert bills[0]["reference"] in rows[refs[0]].split()  # whole, in the row of the payment it settled
    assert any(bills[1]["reference"] in line.split() for line in lines)


def test_a_table_whose_identifiers_cannot_share_80_columns_is_printed_as_records_with_every_value_whole():
    from rich.console import Console

    from api.cli_tables import ID, NUMBER, TEXT, cli_table, column_widths

    columns = [("bank_ref", ID), ("payer", ID), ("amount", NUMBER), ("settled", TEXT), ("credit", NUMBER)]
    long_ref = "VCB-" + "7" * 60  # bank_ref takes up to 64 characters
    row = (long_ref, "shopeefood", "1,400,096", "(no reference matched) AS202602P000218 1,400,096", "0")
    assert column_widths(columns, [row]) is None  # 64 + 10 + 9 + 15 + 6 + 8 of gaps > 80
    console = Console(width=80, record=True, highlight=False, soft_wrap=True, file=io.StringIO())
    console.print(cli_table("Payments", columns, [row, row]))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    values = (long_ref, "shopeefood", "1,400,096", "(no", "0")  # `settled` wraps between its words
    assert [line.split()[:2] for line in lines if line.split() and line.split()[0] in PAYMENT_HEADERS] == \
        [[header, value] for header, value in zip(PAYMENT_HEADERS, values)] * 2


def test_every_column_of_a_squeezed_table_keeps_its_longest_identifier_and_header_word():
    from api.cli_tables import GAP, ID, NUMBER, TEXT, WIDTH, column_widths

    columns = [("bank_ref", ID), ("payer", ID), ("amount", NUMBER), ("settled", TEXT), ("credit", NUMBER)]
    rows = [("VCB-2026-03-15-15002DE971FD5E33X", "shopeefood", "1,400,096",
             "(no reference matched) AS202602P000218 1,400,096", "0")]
    widths = column_widths(columns, rows)
    assert widths == [32, 10, 9, 15, 6] and sum(widths) + GAP * 4 == WIDTH  # `settled` wraps between words


def test_a_key_for_a_platform_outside_the_registry_is_issued_with_a_warning_naming_the_registry(tmp_path):
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    env = {"ANSINH_SECRET": secrets.token_hex(32)}
    unknown = run("platforms", "add", "acme-rides", "--db", db, env=env)
    assert unknown.exit_code == 0, unknown.stderr
    assert orjson.loads(unknown.stdout)["platform"] == "acme-rides"  # stdout stays the key's JSON
    warning = unwrapped(unknown.stderr)
    assert warning.startswith("warning: 'acme-rides' is not in the platform registry")
    assert "grab" in warning and "xanhsm" in warning
    known = run("platforms", "add", "grab", "--db", db, env=env)
    assert known.exit_code == 0 and known.stderr == ""
