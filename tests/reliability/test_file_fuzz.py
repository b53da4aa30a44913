"""Fuzzing every file reader (issue 14): events CSV/NDJSON/Parquet, mappings, tiers, bank statements,
rules packs and scenarios, with random bytes and with good files made hostile — a byte-order mark,
a cell of 200 KiB, Latin-1 bytes, formula cells, full-width digits, a lost header.

Property for each reader: it gives a correct result or its own refusal whose every message is one
line (file, line, field) — never another exception, never a traceback. Events that are read are
checked by the ledger (`check_event`), which returns an outcome for every one of them. Derandomised
like tests/reliability/test_fuzz.py; the whole file runs in well under 30 s.
"""
from __future__ import annotations

import itertools
import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ledger.books import Ledger
from ledger.close import TierImportError, import_tiers
from ledger.events import Rejection, ValidEvent, check_event
from ledger.files import FileFormatError
from ledger.ingest import MALFORMED
from ledger.mapping import Mapping, MappingError, load_mapping
from ledger.money import PaymentError, read_payments_csv, record_payments
from ledger.readers import read_events
from rules import PackError, RulesPack, load_pack
from simulations.scenario import Scenario, ScenarioError, load_scenario
from tests.ledger.factories import WORKER_A, WORKER_B

NO_SHRINK = tuple(phase for phase in Phase if phase not in (Phase.shrink, Phase.explain))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK,
                derandomize=True, database=None)
FIRST_DAY = date(2026, 1, 1)  # the shipped pack's first effective day
ROOT = Path(__file__).resolve().parents[2]
_names = itertools.count()

GOOD = {
    "events.csv": "event_id,platform,kind,worker_id,amount,occurred_at\n"
                  f"e-1,grab,ride,{WORKER_A},100000,2026-01-10T09:00:00+07:00\n"
                  f"e-2,be,delivery,{WORKER_B},25000,2026-01-11T09:00:00+07:00\n",
    "events.ndjson": f'{{"event_id":"e-1","platform":"grab","kind":"ride","worker_id":"{WORKER_A}",'
                     '"amount":100000,"occurred_at":"2026-01-10T09:00:00+07:00"}\n',
    "tiers.csv": f"national_id,tier,valid_from\n{WORKER_A},near_poor,2026-01\n{WORKER_B},poor,2026-02\n",
    "bank.csv": "date,amount_vnd,payer,reference,bank_ref\n2026-02-14,200000,grab,CK bill,VCB-1\n",
    "mapping.yaml": (ROOT / "docs" / "mappings" / "chicago-taxi.yaml").read_text(encoding="utf-8"),
    "pack.yaml": (ROOT / "rules" / "packs" / "vn-pilot.yaml").read_text(encoding="utf-8"),
    "scenario.yaml": "name: fuzz\nbaseline: vn-pilot\nstart: 2026-01\nhorizon_months: 2\nseed: 1\n"
                     "population: {source: synthetic, workers: 50}\n",
}
HOSTILE_CELLS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "１０００", "٣",
                 "x" * 200_000, "\"", "a\"b", "\x00", "\ufeff", "e-1,e-2", "\n", "1e309", "-0", ""]


@st.composite
def hostile_bytes(draw, good: str) -> bytes:
    """The good file, or random bytes, made hostile in one to three ways."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.binary(max_size=300))
    text = good
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["cell", "cell", "drop_header", "truncate", "line", "nothing"]))
        lines = text.split("\n")
        if how == "cell":
            at = draw(st.integers(0, len(lines) - 1))
            cells = lines[at].split(",")
            cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(HOSTILE_CELLS) | st.text(max_size=8))
            lines[at] = ",".join(cells)
        elif how == "drop_header":
            lines = lines[1:]
        elif how == "truncate":
            lines = lines[: draw(st.integers(0, len(lines)))]
        elif how == "line":
            lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=40)))
        text = "\n".join(lines)
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"])), errors="replace")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.booleans()) and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\x00", b"\r"])) + data[at:]
    return data


def written(folder: Path, name: str, data: bytes) -> Path:
    path = folder / f"{next(_names)}-{name}"  # a new name each time: packs are cached by path and mtime
    path.write_bytes(data)
    return path


def one_line(*messages: str) -> None:
    for message in messages:
        assert message and "\n" not in message and "Traceback" not in message, message


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@pytest.mark.parametrize("name", ["events.csv", "events.ndjson", "events.parquet"])
def test_an_events_file_of_any_bytes_gives_an_outcome_per_item_or_one_error_line(folder, name):
    @FAST
    @given(data=hostile_bytes(GOOD.get(name, GOOD["events.csv"])))
    def run(data: bytes) -> None:
        path = written(folder, name, data)
        try:
            items = list(read_events(str(path)))
        except FileFormatError as error:
            one_line(str(error))
            assert str(error).startswith(str(path))
            return
        for line, item in items:
            assert line >= 1
            outcome = MALFORMED if item is MALFORMED else check_event(item, FIRST_DAY)
            assert outcome is MALFORMED or isinstance(outcome, (ValidEvent, Rejection))
            if isinstance(outcome, ValidEvent):
                assert outcome.amount_vnd in (100_000, 25_000)  # never a full-width or guessed amount
    run()


def test_a_mapped_events_csv_of_any_bytes_maps_or_gives_one_error_line(folder):
    mapping = load_mapping(ROOT / "docs" / "mappings" / "chicago-taxi.yaml")
    header = "trip_start_timestamp,fare,taxi_id,pickup_community_area,trip_start_hour\n"

    @FAST
    @given(data=hostile_bytes(header + "1400269500,12.45,7,8,19\n1400269600,１２,7,8,19\n"))
    def run(data: bytes) -> None:
        path = written(folder, "mapped.csv", data)
        try:
            items = list(read_events(str(path), mapping))
        except FileFormatError as error:
            one_line(str(error))
            return
        for _line, item in items:
            assert item is MALFORMED or isinstance(check_event(item, FIRST_DAY), (ValidEvent, Rejection))
    run()


@pytest.mark.parametrize("name, load, result, refusal", [
    ("mapping.yaml", load_mapping, Mapping, MappingError),
    ("pack.yaml", load_pack, RulesPack, PackError),
    ("scenario.yaml", load_scenario, Scenario, ScenarioError),
])
def test_a_yaml_file_of_any_bytes_loads_or_is_refused_in_lines_naming_the_file(folder, name, load, result, refusal):
    @FAST
    @given(data=hostile_bytes(GOOD[name]))
    def run(data: bytes) -> None:
        path = written(folder, name, data)
        try:
            loaded = load(path)
        except refusal as error:
            one_line(str(error))
            assert str(path.name) in str(error)
            return
        assert isinstance(loaded, result)
    run()


def test_a_tiers_or_bank_csv_of_any_bytes_is_applied_or_refused_in_lines(folder):
    ledger = Ledger.open(f"sqlite:///{folder / 'books.db'}")
    try:
        @FAST
        @given(tiers=hostile_bytes(GOOD["tiers.csv"]), bank=hostile_bytes(GOOD["bank.csv"]))
        def run(tiers: bytes, bank: bytes) -> None:
            try:
                assert import_tiers(ledger, written(folder, "tiers.csv", tiers)) in (0, 1, 2)
            except TierImportError as error:
                one_line(*error.errors, *error.texts("vi"))  # every problem says itself in both languages
            try:
                payments = [payment for _line, payment in read_payments_csv(written(folder, "bank.csv", bank))]
                for payment in payments:
                    assert payment.amount_vnd == 200_000 or str(payment.amount_vnd) in bank.decode("latin-1")
                record_payments(ledger, payments)
            except PaymentError as error:
                one_line(*error.errors, *error.texts("vi"))
        run()
    finally:
        ledger.close()
