"""`check_events` (a batch as columns) gives exactly what `check_event` gives item by item."""
from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings, strategies as st

from ledger.events import Rejection, ValidEvent, check_event, check_events
from tests.ledger.factories import WORKER_A, WORKER_B, WORKER_C, event, refund

FIRST_DAY = date(2026, 1, 1)

TIMESTAMPS = st.one_of(
    st.builds(lambda y, mo, d, h, mi, s, frac, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{off}",
              st.sampled_from([1, 999, 1000, 1969, 2025, 2026, 2027, 9998, 9999]), st.integers(0, 13),
              st.integers(0, 32), st.integers(0, 25), st.integers(0, 61), st.integers(0, 61),
              st.sampled_from(["", ".", ".5", ".123456", ".1234567", ",5"]),
              st.sampled_from(["Z", "z", "+07:00", "-00:00", "+00:00", "-23:59", "+24:00", "+07:60", "+0700",
                               "+07", "+07:00:00", "", " "])),
    st.sampled_from(["2025-12-31T16:59:59Z", "2025-12-31T17:00:00Z", "2026-01-31T20:00:00Z",
                     "2026-02-29T10:00:00+07:00", "2028-02-29T10:00:00+07:00", "2026-02-10 09:00:00+07:00",
                     "2026-02-10t09:00:00+07:00", "2026-W06-2T09:00:00+07:00", "20260210T090000+0700",
                     "２０２６-02-10T09:00:00+07:00", "2026-02-10T09:00:00+07:00\n", "2026-02-10T09:00:00\x00Z",
                     "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                     "2026-02-10T09:00:00.12345678901Z", "2026-02-10T09:00:00.1234567+07:00"]),
    st.text(max_size=40), st.integers(), st.none())
NATIONAL_IDS = st.one_of(
    st.sampled_from([WORKER_A, WORKER_B, WORKER_C, "079230001234", "079330001234", "000192577539",
                     "003300656115", "07920300123x", "０７９２０３００１２３４", "079203001234\n", "07920300123",
                     "0792030012345", "096299991234", "079227001234"]),
    st.from_regex(r"0[0-9]{2}[0-3][0-9]{8}", fullmatch=True), st.integers(), st.none(), st.text(max_size=14))
IDS = st.one_of(st.from_regex(r"[A-Za-z0-9._:\-]{1,12}", fullmatch=True), st.just("x" * 128), st.just("x" * 129),
                st.just(""), st.just("é-1"), st.just("a\nb"), st.just("a b"), st.integers(), st.none(),
                st.lists(st.text(max_size=2), max_size=2), st.text(max_size=10))
AMOUNTS = st.one_of(st.integers(-3, 10_000_000_002), st.sampled_from([1, 10_000_000_000, 2 ** 63, 2 ** 64 + 1,
                                                                      -2 ** 70, True, False, 1.0, 100000.0]),
                    st.text(max_size=3), st.none())
KINDS = st.one_of(st.sampled_from(["ride", "delivery", "order", "taxi", "Ride", ""]), st.none(),
                  st.lists(st.just("ride"), max_size=1), st.integers())
CURRENCIES = st.one_of(st.sampled_from(["VND", "USD", "", "vnd"]), st.none(), st.integers(), st.just(["VND"]))
ACTIONS = st.one_of(st.sampled_from(["complete", "refund", "cancel", ""]), st.none(), st.integers(),
                    st.just({"a": 1}))
EXTRA = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70),
                               st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5)),
                     lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children,
                                                                                      max_size=3), max_leaves=6)
FIELDS = {"event_id": IDS, "platform": IDS, "kind": KINDS, "worker_id": NATIONAL_IDS, "amount": AMOUNTS,
          "occurred_at": TIMESTAMPS, "currency": CURRENCIES, "action": ACTIONS, "original_event_id": IDS,
          "meta": EXTRA}
ABSENT = object()


@st.composite
def hostile_items(draw) -> object:
    """A valid event with a few fields replaced, removed or added, or something that is not an object."""
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2)))
    if shape <= 3:
        return draw(st.sampled_from([event("a-1"), event("a-2", currency="VND", action="complete"),
                                     event("a-3", occurred_at="2026-01-31T20:00:00.25Z", worker_id=WORKER_B),
                                     refund("r-1", "a-1", 5_000), refund("r-2", "a-1", 5_000, currency="VND"),
                                     event("a-4", action=None, currency=None, kind="order", worker_id=WORKER_C)]))
    item = dict(draw(st.sampled_from([event("h-1"), refund("h-2", "h-1", 100)])))
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=3, unique=True)):
        value = draw(st.one_of(FIELDS[name], st.just(ABSENT)))
        if value is ABSENT:
            item.pop(name, None)
        else:
            item[name] = value
    return item


def same(batch: list) -> None:
    expected = [check_event(item, FIRST_DAY) for item in batch]
    got = check_events(batch, FIRST_DAY)
    assert got == expected
    for mine, theirs in zip(got, expected):
        assert type(mine) is type(theirs)
        if type(mine) is ValidEvent:  # equal instants are not enough: the same offset and the same kinds of values
            assert mine.occurred_at.utcoffset() == theirs.occurred_at.utcoffset()
            assert [type(value) for value in mine] == [type(value) for value in theirs]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(hostile_items(), max_size=40))
def test_a_hostile_batch_gets_the_codes_check_event_gives_item_by_item(batch):
    same(batch)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.builds(lambda n, at, worker, kind, amount: event(f"e-{n}", occurred_at=at, worker_id=worker,
                                                                      kind=kind, amount=amount),
                          st.integers(0, 10 ** 6), TIMESTAMPS, NATIONAL_IDS, KINDS, AMOUNTS), max_size=60))
def test_timestamps_and_worker_ids_of_every_shape_are_judged_as_check_event_judges_them(batch):
    same(batch)


def test_a_batch_of_good_events_is_all_valid_with_the_hashes_check_event_gives():
    batch = [event(f"g-{n}", occurred_at=f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:30:00{offset}",
                   worker_id=(WORKER_A, WORKER_B, WORKER_C)[n % 3], amount=1 + n * 997)
             for n, offset in zip(range(300), ["Z", "+07:00", "-05:30", ".5+07:00", ".123456Z"] * 60)]
    got = check_events(batch, FIRST_DAY)
    assert all(type(result) is ValidEvent for result in got)
    assert [result.payload_hash for result in got] == [check_event(item, FIRST_DAY).payload_hash for item in batch]
    same(batch)


def test_one_bad_row_in_each_column_is_refused_with_its_own_code_and_the_rest_pass():
    batch = [event("ok-1"), event("", kind="taxi"), event("ok-2", kind="taxi"), event("ok-3", currency="USD"),
             event("ok-4", amount=2 ** 64), event("ok-5", occurred_at="2026-02-10T24:00:00+07:00"),
             event("ok-6", worker_id="000192577539"), event("ok-7", action="cancel"), [1], event("ok-8", meta=2 ** 80)]
    got = check_events(batch, FIRST_DAY)
    assert [result if type(result) is Rejection else "valid" for result in got] == [
        "valid", Rejection.invalid_event_id, Rejection.unknown_kind, Rejection.invalid_currency,
        Rejection.invalid_amount, Rejection.invalid_timestamp, Rejection.invalid_worker_id, Rejection.invalid_action,
        Rejection.malformed, "valid"]
    same(batch)
