"""The real books against the reference model (`tests/reference_model.py`), step by random step.

A Hypothesis state machine ingests small random batches (valid events, every kind of
invalid item, exact and conflicting replays, refunds partial/full/excess/mismatched/
unknown), imports household tiers and closes months, on SQLite and on PostgreSQL.
After every step each outcome, every statement and settlement figure must equal the
model's, and every `verify` invariant must hold. Each example gets a database of its
own (a new SQLite file, or a new PostgreSQL schema dropped afterwards).

The default runs do not shrink a failure (that can take minutes): the failing run's
batches are printed as they were sent. The `slow` runs (`pytest -m slow`) shrink.
The plain tests at the end pin what the model found, each as its smallest example.
"""
from __future__ import annotations

import copy
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from ledger.books import Ledger
from ledger.close import CloseError, TierImportError, close_month, import_tiers
from ledger.ingest import ingest_batch
from ledger.reports import settlement, statement, statements
from ledger.verify import verify
from tests.conftest import FixedClock, _drop_schema, _fresh_postgres_url
from tests.ledger.factories import WORKER_A, event, numbered, refund
from tests.reference_model import CloseRefused, ReferenceModel, TierFileRefused, month_after, versions_of_pack

# Made-up ids, valid per RULES.md §2; they identify no one.
WORKERS = (
    "079203001234",  # province 079, born 2003
    "001085004321",  # born 1985
    "048190005555",  # born 1990
    "036326001111",  # born 2026: valid for events from 1 Jan 2026 in *Vietnam* time (even 31 Dec 2025 UTC)
)
PLATFORMS = ("grab", "be", "shopee")
KINDS = ("ride", "delivery", "order")
TIERS = ("poor", "near_poor", "other")
EVENT_IDS = (*(f"e-{n}" for n in range(20)), "a.B_c:D-9", "x" * 128)
REFUND_IDS = tuple(f"r-{n}" for n in range(8))
AMOUNT_EDGES = (1, 50, 100, 150, 250, 300, 750, 87_500, 100_000, 1_249_000, 5_310_000, 10_620_000,
                33_000_000, 40_000_000, 10_000_000_000)
BOUNDARY_TIMESTAMPS = (
    "2025-12-31T17:00:00Z",         # midnight 1 Jan 2026 in Vietnam: January
    "2026-01-31T16:59:59Z",         # 23:59:59 on 31 Jan in Vietnam: January
    "2026-01-31T17:00:00Z",         # midnight 1 Feb in Vietnam: February
    "2026-01-31T18:30:00Z",         # RULES.md §10: February
    "2026-02-01T00:30:00+09:00",    # 22:30 on 31 Jan in Vietnam: January
    "2026-01-31T12:30:00-05:00",    # 00:30 on 1 Feb in Vietnam: February
    "2026-02-28T16:59:59.999999Z",  # February
    "2026-02-28T17:00:00Z",         # March
    "2026-03-31T17:00:00+00:00",    # April
    "2026-04-30T23:59:59+07:00",    # April
    "2026-02-10t09:00:00z",         # RFC 3339 allows lower case t and z
    "2026-03-01 00:00:00+07:00",    # ... and a space for the T: March
    "2026-01-31T23:59:59.999999999+07:00",  # January, to the nanosecond
)
INVALID_TIMESTAMPS = ("2025-12-31T16:59:59Z", "2025-12-31T23:59:59+07:00", "2026-02-10T09:00:00", "2026-02-10",
                      "yesterday", "", 1_770_000_000, "2026-02-30T10:00:00Z", "2026-13-01T00:00:00Z")
OFFSETS = ("Z", "+07:00", "+00:00", "+09:00", "-05:00", "+05:30")
EXTRAS = ({}, {"meta": {"city": "HN"}}, {"tip": 1}, {"tip": True}, {"note": "x"},
          {"tip": 2**70})  # JSON has no integer limit; an extra field is to be ignored (RULES.md §1)
INVALID_VALUES = {
    "event_id": ("", "é-1", "a b", "x" * 129, 17, "a/b", "e-1\n"),
    "kind": ("taxi", "", "Ride", 3),
    "currency": ("USD", "", "vnd", 704),
    "amount": (0, -5, 10_000_000_001, 100_000.0, True, "100000", 87_500.5),
    "occurred_at": INVALID_TIMESTAMPS,
    "worker_id": ("12345", "000192577539", "07920300123x", 79_203_001_234, "096227004242",  # born 2027
                  "０７９２０３００１２３４", "079203001234 ", "079203001234\n"),
    "action": ("cancel", "", "Refund", 1, "COMPLETE"),
}
NOT_OBJECTS = ("<not an object>", [1, 2], 17, None, "text")
UNKNOWN_ORIGINALS = ("no-such", "", 17, ["e-1"], {"id": "e-1"})
MONTHS_LAST = "2026-06"
TIER_MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04")

# A what-if pack written for this test: a second version from the middle of February changes
# every rate, subsidises `oa` instead of `ui`, and allows one subsidised month per worker.
# Events take the version of their own day, a close the version of the month's first day.
TWO_VERSION_PACK = """\
pack: model-two-versions
---
effective_from: 2026-01-01
source: vn-pilot's numbers
rates_ppm:
  ride:     {si: {worker: 10000, platform: 0}, oa: {worker: 0, platform: 5000}, ui: {worker: 5000, platform: 0}}
  delivery: {si: {worker: 10000, platform: 0}, oa: {worker: 0, platform: 5000}, ui: {worker: 5000, platform: 0}}
  order:    {si: {worker: 6000,  platform: 0}, oa: {worker: 0, platform: 2000}, ui: {worker: 2000, platform: 0}}
tier_rate_ppm: {poor: 300000, near_poor: 250000, other: 100000}
subsidised_schemes: [si, ui]
subsidy_base_cap_vnd: {si: 330000, ui: 53100}
---
effective_from: 2026-02-15
source: made up for the stateful test
rates_ppm:
  ride:     {si: {worker: 20000, platform: 3333}, oa: {worker: 1500, platform: 7500}, ui: {worker: 2500, platform: 0}}
  delivery: {si: {worker: 15000, platform: 0}, oa: {worker: 0, platform: 4999}, ui: {worker: 0, platform: 1}}
  order:    {si: {worker: 5000,  platform: 500}, oa: {worker: 2500, platform: 0}, ui: {worker: 2000, platform: 0}}
tier_rate_ppm: {poor: 500000, near_poor: 400000, other: 200000}
subsidised_schemes: [si, oa]
subsidy_base_cap_vnd: {si: 100000, oa: 5000, ui: 53100}
max_subsidised_months: 1
"""

timestamps = st.one_of(
    st.sampled_from(BOUNDARY_TIMESTAMPS),
    st.builds(lambda moment, zone: moment.strftime("%Y-%m-%dT%H:%M:%S") + zone,
              st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 5, 31, 23, 59, 59)),
              st.sampled_from(OFFSETS)))
amounts = st.one_of(st.sampled_from(AMOUNT_EDGES), st.integers(1, 3_000_000), st.integers(1, 10**10))


@st.composite
def complete_events(draw):
    item = {"event_id": draw(st.sampled_from(EVENT_IDS)), "platform": draw(st.sampled_from(PLATFORMS)),
            "kind": draw(st.sampled_from(KINDS)), "worker_id": draw(st.sampled_from(WORKERS)),
            "amount": draw(amounts), "occurred_at": draw(timestamps)}
    if draw(st.booleans()):
        item["currency"] = "VND"
    if draw(st.booleans()):
        item["action"] = "complete"
    item.update(copy.deepcopy(draw(st.sampled_from(EXTRAS))))
    return item


@st.composite
def broken(draw, item):
    """`item` with one to three things wrong (the model decides which code comes first)."""
    item = copy.deepcopy(item)
    for _ in range(draw(st.sampled_from((1, 1, 1, 2, 3)))):
        how = draw(st.sampled_from(("malformed", "missing", "refund_without_original", "event_id", "kind",
                                    "currency", "amount", "occurred_at", "occurred_at", "worker_id", "worker_id",
                                    "action")))
        if how == "malformed":
            return draw(st.sampled_from(NOT_OBJECTS))
        if how == "missing":
            name = draw(st.sampled_from(("event_id", "platform", "kind", "worker_id", "amount", "occurred_at")))
            if draw(st.booleans()):
                item.pop(name, None)
            else:
                item[name] = None  # null counts as absent
        elif how == "refund_without_original":
            item["action"] = "refund"
            if draw(st.booleans()):
                item.pop("original_event_id", None)
            else:
                item["original_event_id"] = None
        else:
            item[how] = draw(st.sampled_from(INVALID_VALUES[how]))
    return item


def well_formed(item: dict) -> bool:
    """Enough of an event to build a refund of it (it may still have been rejected)."""
    return all(type(item.get(name)) is str for name in ("platform", "event_id", "kind", "worker_id")) \
        and type(item.get("amount")) is int and item.get("action", "complete") in ("complete", "refund")


def fresh_database(base_url: str) -> tuple[str, object]:
    """A URL of a new empty database of the same store as `base_url`, and how to remove it."""
    if base_url.startswith("sqlite"):
        folder = Path(tempfile.mkdtemp(prefix="model-", dir=Path(base_url.removeprefix("sqlite:///")).parent))
        return f"sqlite:///{folder / 'ledger.db'}", lambda: shutil.rmtree(folder, ignore_errors=True)
    url, schema = _fresh_postgres_url()
    return url, lambda: _drop_schema(schema)


class BooksAgainstTheModel(RuleBasedStateMachine):
    base_url = ""  # set by the test that runs the machine
    pack = "vn-pilot"

    def __init__(self) -> None:
        super().__init__()
        self.url, self.remove_database = fresh_database(self.base_url)
        self.folder = Path(tempfile.mkdtemp(prefix="tiers-"))
        self.ledger = Ledger.open(self.url, pack=self.pack, clock=FixedClock())
        self.model = ReferenceModel(versions_of_pack(self.pack))
        self.sent: list[dict] = []        # every dict item sent so far
        self.completes: list[dict] = []   # every well-formed `complete` sent (accepted or not)
        self.refunds: list[dict] = []
        self.accepted_completes: list[dict] = []
        self.tier_files = 0

    def teardown(self) -> None:
        self.ledger.close()
        self.remove_database()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- building items --------------------------------------------------------
    def refund_item(self, data) -> dict:
        if self.accepted_completes and data.draw(st.sampled_from((True, True, True, False))):
            choices = self.accepted_completes
        else:
            choices = self.completes + self.refunds  # a refund of a refund is an unknown original
        original = copy.deepcopy(data.draw(st.sampled_from(choices))) if choices else \
            data.draw(complete_events())
        state = self.model.originals.get((original["platform"], original["event_id"]))
        amount = state.amount if state else original["amount"]
        remaining = amount - state.refunded if state else amount
        refund_amount = data.draw(st.one_of(
            st.just(remaining), st.integers(1, max(1, remaining)), st.just(remaining + 1), st.just(amount),
            amounts), label="refund amount")
        item = {"event_id": data.draw(st.sampled_from(REFUND_IDS)), "platform": original["platform"],
                "kind": original["kind"], "action": "refund", "original_event_id": original["event_id"],
                "worker_id": original["worker_id"], "amount": refund_amount,
                "occurred_at": data.draw(timestamps)}
        twist = data.draw(st.sampled_from(("none", "none", "none", "platform", "worker", "kind", "unknown")))
        if twist == "platform":
            item["platform"] = data.draw(st.sampled_from(PLATFORMS))
        elif twist == "worker":
            item["worker_id"] = data.draw(st.sampled_from(WORKERS))
        elif twist == "kind":
            item["kind"] = data.draw(st.sampled_from(KINDS))
        elif twist == "unknown":
            item["original_event_id"] = copy.deepcopy(data.draw(st.sampled_from(UNKNOWN_ORIGINALS)))
        return item

    def replay_item(self, data, conflicting: bool) -> dict:
        item = copy.deepcopy(data.draw(st.sampled_from(self.sent)))
        if not conflicting:
            item = dict(reversed(list(item.items())))  # key order does not matter
            for name, default in (("action", "complete"), ("currency", "VND")):
                if name not in item and data.draw(st.booleans()):
                    item[name] = default  # nor do defaults written out
                elif item.get(name) == default and data.draw(st.booleans()):
                    del item[name]
            return item
        change = data.draw(st.sampled_from(("amount", "extra", "tip", "occurred_at", "kind")))
        if change == "amount" and type(item.get("amount")) is int:
            item["amount"] += 1
        elif change == "tip" and item.get("tip") == 1:
            item["tip"] = True  # JSON true is not the number 1
        elif change == "occurred_at":
            item["occurred_at"] = data.draw(timestamps)
        elif change == "kind":
            item["kind"] = data.draw(st.sampled_from(KINDS))
        else:
            item["note"] = "changed"
        return item

    # -- rules -----------------------------------------------------------------
    @rule(data=st.data())
    def ingest_a_small_batch(self, data) -> None:
        items, expected = [], []
        for _ in range(data.draw(st.integers(1, 6), label="batch size")):
            how = data.draw(st.sampled_from(("fresh", "fresh", "invalid", "refund", "refund", "replay", "conflict")))
            if how in ("replay", "conflict") and not self.sent:
                how = "fresh"
            if how == "fresh":
                item = data.draw(complete_events())
            elif how == "invalid":
                base = data.draw(complete_events()) if data.draw(st.booleans()) or not self.sent else \
                    copy.deepcopy(data.draw(st.sampled_from(self.sent)))
                item = data.draw(broken(base))
            elif how == "refund":
                item = self.refund_item(data)
            else:
                item = self.replay_item(data, conflicting=how == "conflict")
            expected.append(self.model.ingest(copy.deepcopy(item)))
            items.append(item)
            if isinstance(item, dict):
                self.sent.append(copy.deepcopy(item))
                if well_formed(item):
                    is_refund = item.get("action") == "refund"
                    (self.refunds if is_refund else self.completes).append(copy.deepcopy(item))
                    if expected[-1] == "accepted" and not is_refund:
                        self.accepted_completes.append(copy.deepcopy(item))
        note(f"ingest {items!r}")
        note(f"  model outcomes {expected}")
        got = [outcome.outcome for outcome in ingest_batch(self.ledger, list(enumerate(items, start=1)))]
        assert got == expected, f"outcomes differ for batch {items!r}: books {got}, model {expected}"

    def tier_months(self) -> tuple[str, ...]:
        return TIER_MONTHS  # closed months included: a late status must not change a closed month

    @rule(data=st.data())
    def import_household_tiers(self, data) -> None:
        rows = data.draw(st.lists(st.tuples(st.sampled_from(WORKERS), st.sampled_from(TIERS),
                                            st.sampled_from(self.tier_months())),
                                  min_size=1, max_size=4, unique_by=lambda row: (row[0], row[2])))
        if data.draw(st.integers(0, 5)) == 0:  # now and then a file with one bad row: nothing of it applies
            bad = data.draw(st.sampled_from((("12345", "poor", "2026-02"), (WORKERS[0], "rich", "2026-02"),
                                             (WORKERS[0], "poor", "2026-2"), (WORKERS[1], "poor", "Feb 2026"))))
            rows.insert(data.draw(st.integers(0, len(rows))), bad)
        self.tier_files += 1
        path = self.folder / f"tiers-{self.tier_files}.csv"
        path.write_text("national_id,tier,valid_from\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows),
                        encoding="utf-8")
        note(f"tiers import {rows!r}")
        try:
            self.model.import_tiers(rows)
            model_refused = False
        except TierFileRefused:
            model_refused = True
        try:
            import_tiers(self.ledger, path)
            books_refused = False
        except TierImportError:
            books_refused = True
        assert books_refused == model_refused, f"tier file {rows!r}: books refused {books_refused}"

    @precondition(lambda self: self.model.last_closed is None or self.model.last_closed < MONTHS_LAST)
    @rule(data=st.data())
    def close_the_next_month(self, data) -> None:
        month = month_after(self.model.last_closed) if self.model.last_closed else \
            data.draw(st.sampled_from(("2026-01", "2026-02", "2026-03")), label="first month closed")
        note(f"close {month}")
        self.model.close(month)
        close_month(self.ledger, month)

    @rule(data=st.data())
    def try_to_close_a_month_out_of_order(self, data) -> None:
        last = self.model.last_closed
        choices = ("2025-12",) if last is None else (last, month_after(month_after(last)), "2026-01", "2025-12")
        month = data.draw(st.sampled_from(choices), label="month closed out of order")
        note(f"close {month} (must be refused)")
        with pytest.raises(CloseRefused):
            self.model.close(month)
        with pytest.raises(CloseError):
            close_month(self.ledger, month)

    # -- after every step -------------------------------------------------------
    @invariant()
    def every_figure_equals_the_model_and_every_invariant_holds(self) -> None:
        for month in self.model.months_of_interest():
            books = settlement(self.ledger, month)
            want = self.model.settlement(month)
            got = {"month": books["month"], "closed": books["closed"], "platforms": books["platforms"],
                   "subsidy": books["subsidy"]}
            assert got == want, f"settlement {month}: books {got}, model {want}"
            for worker in WORKERS:
                books = statement(self.ledger, worker, month)
                want = self.model.statement(worker, month)
                got = {name: books[name] for name in want}
                assert got == want, f"statement {worker} {month}: books {got}, model {want}"
                split = {(platform, scheme, party): amount
                         for platform, by_scheme in books["platforms"].items()
                         for scheme, parties in by_scheme.items() for party, amount in parties.items() if amount}
                assert split == self.model.platform_split(worker, month), f"platform split {worker} {month}"
            bulk = {line["national_id"]: {name: line[name] for name in ("closed", "schemes", "to_date")}
                    for line in statements(self.ledger, month)}
            want = {worker: {name: self.model.statement(worker, month)[name] for name in ("closed", "schemes",
                                                                                          "to_date")}
                    for worker in self.model.workers_booked_in(month)}
            assert bulk == want, f"statements {month}: books {bulk}, model {want}"
        problems = [(check.name, check.problem) for check in verify(self.ledger) if check.problem]
        assert problems == []


def run_against_the_model(database_url: str, pack: str = "vn-pilot", *, shrink: bool, **limits) -> None:
    """Run the machine; without `shrink` a failure is reported as found (shrinking one can take minutes)."""
    store = database_url.split(":")[0].split("+")[0].title()
    machine = type(f"BooksAgainstTheModelOn{store}", (BooksAgainstTheModel,),
                   {"base_url": database_url, "pack": pack})
    phases = tuple(Phase) if shrink else tuple(phase for phase in Phase if phase not in (Phase.shrink, Phase.explain))
    run_state_machine_as_test(machine, settings=settings(
        deadline=None, phases=phases, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        **limits))


def two_version_pack(folder: Path) -> str:
    path = folder / "model-two-versions.yaml"
    path.write_text(TWO_VERSION_PACK, encoding="utf-8")
    return str(path)


def test_the_books_agree_with_the_reference_model_after_random_steps(database_url):
    run_against_the_model(database_url, max_examples=25, stateful_step_count=8, shrink=False)


def test_the_books_agree_with_the_model_when_the_rules_change_in_mid_month(database_url, tmp_path):
    run_against_the_model(database_url, two_version_pack(tmp_path), max_examples=10, stateful_step_count=8,
                          shrink=False)


@pytest.mark.slow
def test_the_books_agree_with_the_reference_model_over_many_long_random_runs(database_url):
    run_against_the_model(database_url, max_examples=400, stateful_step_count=25, shrink=True)


@pytest.mark.slow
def test_the_books_agree_with_the_model_over_many_long_runs_across_a_rules_change(database_url, tmp_path):
    run_against_the_model(database_url, two_version_pack(tmp_path), max_examples=300, stateful_step_count=25,
                          shrink=True)


# -- What the model found, pinned as plain examples ---------------------------------------

def outcomes_of(ledger, *items) -> list[str]:
    return [outcome.outcome for outcome in ingest_batch(ledger, numbered(list(items)))]


def problems_of(ledger) -> list[tuple[str, str]]:
    return [(check.name, check.problem) for check in verify(ledger) if check.problem]


@pytest.mark.parametrize("original", [["o"], {"id": "o"}])
def test_a_refund_naming_a_json_array_or_object_as_its_original_is_an_unknown_original(ledger, original):
    assert outcomes_of(ledger, event("o")) == ["accepted"]
    assert outcomes_of(ledger, refund("r", original, 5_000), event("beside")) == ["unknown_original", "accepted"]
    assert statement(ledger, WORKER_A, "2026-02")["schemes"]["si"]["worker"] == 2_000
    assert problems_of(ledger) == []


def test_an_extra_field_holding_a_very_large_integer_is_ignored_like_any_other(ledger):
    # JSON sets no limit on integers and RULES.md §1 ignores unknown fields.
    assert outcomes_of(ledger, event("big", tip=2**70), event("beside")) == ["accepted", "accepted"]
    assert outcomes_of(ledger, event("big", tip=2**70), event("big", tip=2**70 + 1)) == [
        "duplicate", "duplicate_conflict"]
    assert statement(ledger, WORKER_A, "2026-02")["schemes"]["si"]["worker"] == 2_000
    assert problems_of(ledger) == []


def test_a_household_status_imported_after_a_close_changes_nothing_and_verify_still_holds(ledger, tmp_path):
    assert outcomes_of(ledger, event("feb")) == ["accepted"]  # si 1,000 and ui 500 withheld in February
    close_month(ledger, "2026-02")  # no status on record: 'other', 10 % → si 100, ui 50
    path = tmp_path / "tiers.csv"
    path.write_text(f"national_id,tier,valid_from\n{WORKER_A},poor,2026-01\n", encoding="utf-8")
    import_tiers(ledger, path)
    february = statement(ledger, WORKER_A, "2026-02")["schemes"]
    assert (february["si"]["subsidy"], february["ui"]["subsidy"]) == (100, 50)  # a closed month is frozen
    assert problems_of(ledger) == []
