"""Tests of the synthetic traffic generator.

The stream is judged by an independent replay of RULES.md §1–3 written here from the
spec (not imported from the ledger), so a generated "bad" event counts as the category
it really is, not the one the generator meant.
"""
from __future__ import annotations

import inspect
import io
import itertools
import re
import tracemalloc
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone

import numpy as np
import orjson
import pytest

from simulations import synthetic_events as se

VIETNAM = timezone(timedelta(hours=7))
FIRST_DAY = date(2026, 1, 1)  # RULES.md §8: the default pack is in force from 2026-01-01
# RULES.md §2, copied from the spec (not from the module under test).
PROVINCES = frozenset(
    """001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031
    033 034 035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064
    066 067 068 070 072 074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095
    096""".split()
)
EVENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
REQUIRED = ("event_id", "platform", "kind", "worker_id", "amount", "occurred_at")
CODES = ("malformed", "missing_field", "invalid_event_id", "unknown_kind", "invalid_currency",
         "invalid_amount", "invalid_timestamp", "invalid_worker_id", "invalid_action",
         "duplicate_conflict", "unknown_original", "refund_mismatch", "refund_exceeds_original")


def cccd_birth_year(value: str) -> int:
    return 1900 + 100 * (int(value[3]) // 2) + int(value[4:6])


def cccd_is_valid(value: object, year: int) -> bool:
    """RULES.md §2: 12 ASCII digits, a listed province, born no later than `year`."""
    if not isinstance(value, str) or len(value) != 12 or not all("0" <= ch <= "9" for ch in value):
        return False
    return value[:3] in PROVINCES and cccd_birth_year(value) <= year


def parse_instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def replay(items: list[dict | str]) -> list[str]:
    """The outcome of each item under RULES.md §1, in stream order."""
    accepted: dict[tuple[str, str], dict] = {}
    refunded: dict[tuple[str, str], int] = defaultdict(int)
    outcomes = []
    for raw in items:
        try:
            item = orjson.loads(raw if isinstance(raw, str) else orjson.dumps(raw))
        except orjson.JSONDecodeError:
            item = None
        outcomes.append(_outcome(item, accepted, refunded))
    return outcomes


def _outcome(item: object, accepted: dict, refunded: dict) -> str:
    if not isinstance(item, dict):
        return "malformed"
    action = item.get("action")
    if any(item.get(field) is None for field in REQUIRED) or (
            action == "refund" and item.get("original_event_id") is None):
        return "missing_field"
    if not isinstance(item["event_id"], str) or not item["event_id"].isascii() \
            or not EVENT_ID.fullmatch(item["event_id"]):
        return "invalid_event_id"
    if item["kind"] not in ("ride", "delivery", "order"):
        return "unknown_kind"
    if item.get("currency") is not None and item["currency"] != "VND":
        return "invalid_currency"
    amount = item["amount"]
    if type(amount) is not int or not 1 <= amount <= 10**10:
        return "invalid_amount"
    moment = parse_instant(item["occurred_at"])
    if moment is None or moment.astimezone(VIETNAM).date() < FIRST_DAY:
        return "invalid_timestamp"
    if not cccd_is_valid(item["worker_id"], moment.astimezone(VIETNAM).year):
        return "invalid_worker_id"
    if action not in (None, "complete", "refund"):
        return "invalid_action"
    key = (item["platform"], item["event_id"])
    canonical = {**item, "action": action or "complete", "currency": item.get("currency") or "VND"}
    if key in accepted:
        return "duplicate" if accepted[key] == canonical else "duplicate_conflict"
    if action == "refund":
        original = accepted.get((item["platform"], item["original_event_id"]))
        if original is None or original["action"] != "complete":
            return "unknown_original"
        if original["worker_id"] != item["worker_id"] or original["kind"] != item["kind"]:
            return "refund_mismatch"
        original_key = (original["platform"], original["event_id"])
        if refunded[original_key] + amount > original["amount"]:
            return "refund_exceeds_original"
        refunded[original_key] += amount
    accepted[key] = canonical
    return "accepted"


@pytest.fixture(scope="module")
def february() -> tuple[list[dict | str], list[str]]:
    """5,000 events of February 2026 and their outcomes."""
    items = list(se.generate_events(seed=20260201, month="2026-02", events=5_000))
    return items, replay(items)


def good_events(stream: tuple[list[dict | str], list[str]]) -> list[dict]:
    items, outcomes = stream
    return [item for item, outcome in zip(items, outcomes) if outcome == "accepted"]


def test_every_generated_national_id_passes_the_cccd_rules_and_is_of_working_age():
    ids = se.make_national_ids(np.random.default_rng(7), 20_000)

    assert len(ids) == 20_000 and len(set(ids)) == 20_000
    assert all(cccd_is_valid(value, 2026) for value in ids)
    assert all(1961 <= cccd_birth_year(value) <= 2008 for value in ids)
    assert {value[3] for value in ids} == {"0", "1", "2", "3"}  # both sexes, both centuries


def test_the_worker_table_agrees_with_the_digits_of_each_national_id():
    workers = se.make_workers(np.random.default_rng(11), 10_000)

    assert list(workers.columns[:8]) == ["national_id", "sex", "birth_year", "province", "worker_type",
                                         "vehicle", "platforms", "full_time"]
    assert {"events_per_day", "active_days"} <= set(workers.columns)
    assert workers["national_id"].is_unique
    for row in workers.itertuples():
        assert cccd_is_valid(row.national_id, 2026)
        assert cccd_birth_year(row.national_id) == row.birth_year
        assert row.sex == ("female" if int(row.national_id[3]) % 2 else "male")
        assert row.province == row.national_id[:3]
        assert 1 <= len(row.platforms) <= 3 and len(set(row.platforms)) == len(row.platforms)
        main_kind = {"ride": "ride", "delivery": "delivery", "seller": "order"}[row.worker_type]
        assert all(main_kind in se.PLATFORMS[p].kinds for p in row.platforms)
        assert 1 <= row.active_days <= 31 and row.events_per_day > 0
    multi_platform_share = (workers["platforms"].map(len) > 1).mean()
    assert 0.20 <= multi_platform_share <= 0.30


def test_platforms_are_the_six_named_with_their_kinds_and_share_weights():
    assert {p: se.PLATFORMS[p].kinds for p in se.PLATFORMS} == {
        "grab": ("ride", "delivery"), "be": ("ride", "delivery"), "xanhsm": ("ride",),
        "shopeefood": ("delivery",), "shopee": ("order",), "lazada": ("order",)}
    assert all(se.PLATFORMS[p].share > 0 for p in se.PLATFORMS)


def test_the_same_seed_gives_byte_identical_ndjson():
    first, second = io.BytesIO(), io.BytesIO()
    se.write_ndjson(first, se.generate_events(seed=42, events=3_000))
    se.write_ndjson(second, se.generate_events(seed=42, events=3_000))

    assert first.getvalue() == second.getvalue()
    assert first.getvalue().count(b"\n") == 3_000


def test_different_seeds_give_different_streams():
    one = list(se.generate_events(seed=1, events=2_000))
    two = list(se.generate_events(seed=2, events=2_000))

    assert len(one) == len(two) == 2_000
    assert one != two
    assert [e["worker_id"] for e in one[:50] if isinstance(e, dict)] != \
           [e["worker_id"] for e in two[:50] if isinstance(e, dict)]


def test_a_5000_event_run_has_exactly_the_requested_counts(february):
    items, outcomes = february
    counts = Counter(outcomes)

    assert len(items) == 5_000
    assert counts["duplicate"] == 50  # round(5,000 × 1 %)
    assert sum(counts[code] for code in CODES) == 25  # round(5,000 × 0.5 %)
    assert counts["accepted"] == 4_925
    refunds = sum(1 for item in good_events(february) if item.get("action") == "refund")
    assert 60 <= refunds <= 160  # ~2 % of completed events, 1.2 parts each (exactly 117 allocated)


def test_every_rejection_code_appears_at_least_once_in_a_5000_event_run(february):
    counts = Counter(february[1])

    assert {code: counts[code] for code in CODES if counts[code] == 0} == {}
    assert any(isinstance(item, str) for item in february[0])  # malformed lines come as raw text


def test_every_rejection_code_appears_in_a_january_run_too():
    counts = Counter(replay(list(se.generate_events(seed=3, events=5_000))))

    assert all(counts[code] >= 1 for code in CODES)
    assert sum(counts[code] for code in CODES) == 25


def test_good_refunds_never_exceed_their_originals(february):
    good = good_events(february)
    originals = {(e["platform"], e["event_id"]): e for e in good if e.get("action", "complete") == "complete"}
    refunded = defaultdict(int)
    parts = Counter()
    for event in good:
        if event.get("action") == "refund":
            original = originals[(event["platform"], event["original_event_id"])]
            refunded[(event["platform"], event["original_event_id"])] += event["amount"]
            parts[(event["platform"], event["original_event_id"])] += 1
            assert (event["worker_id"], event["kind"]) == (original["worker_id"], original["kind"])
            assert parse_instant(event["occurred_at"]) >= parse_instant(original["occurred_at"])
    assert refunded and all(total <= originals[key]["amount"] for key, total in refunded.items())
    assert any(total == originals[key]["amount"] for key, total in refunded.items())  # full refunds
    assert any(total < originals[key]["amount"] for key, total in refunded.items())  # partial ones
    assert any(count == 2 for count in parts.values())  # refunds in two parts


def test_a_refund_is_sent_after_its_original(february):
    seen = set()
    for event in good_events(february):
        if event.get("action") == "refund":
            assert (event["platform"], event["original_event_id"]) in seen
        seen.add((event["platform"], event["event_id"]))


def test_good_amounts_are_integers_between_1_and_10_to_the_10(february):
    amounts = [event["amount"] for event in good_events(february)]

    assert len(amounts) == 4_925
    assert all(type(amount) is int and 1 <= amount <= 10**10 for amount in amounts)


def test_good_occurred_at_values_fall_in_the_requested_vietnam_month(february):
    for event in good_events(february):
        text = event["occurred_at"]
        assert text.endswith(("+07:00", "Z"))
        local = parse_instant(text).astimezone(VIETNAM)
        assert (local.year, local.month) == (2026, 2)
        if text.endswith("Z"):  # a UTC stamp names the previous day from 17:00 UTC on
            assert (text[:10] != local.date().isoformat()) == (parse_instant(text).hour >= 17)


def test_an_early_morning_event_on_the_first_shows_the_previous_month_in_utc():
    stream = list(se.generate_events(seed=9, month="2026-01", events=50_000))
    good = [item for item, outcome in zip(stream, replay(stream)) if outcome == "accepted"]
    early = [e["occurred_at"] for e in good if e["occurred_at"].startswith("2025-12-31T")]

    assert early and all(e.endswith("Z") and e[11:13] >= "17" for e in early)
    assert sum(e["occurred_at"].endswith("Z") for e in good) / len(good) < 0.5  # mostly +07:00


def test_completed_events_are_sent_in_time_order(february):
    moments = [parse_instant(e["occurred_at"]) for e in good_events(february) if e.get("action") != "refund"]

    assert moments == sorted(moments)


def test_duplicates_resend_an_identical_payload_after_the_original(february):
    items, outcomes = february
    first_seen = {}
    duplicates = 0
    for index, (item, outcome) in enumerate(zip(items, outcomes)):
        if outcome == "accepted":
            first_seen[(item["platform"], item["event_id"])] = item
        elif outcome == "duplicate":
            duplicates += 1
            assert item == first_seen[(item["platform"], item["event_id"])]
    assert duplicates == 50
    assert any(list(item) != list(first_seen[(item["platform"], item["event_id"])])
               for item, outcome in zip(items, outcomes) if outcome == "duplicate")  # key order varies


def test_event_ids_are_unique_per_platform_and_carry_platform_and_kind(february):
    good = [e for e in good_events(february) if e.get("action") != "refund"]
    keys = [(e["platform"], e["event_id"]) for e in good]

    assert len(keys) == len(set(keys))
    letter = {"ride": "r", "delivery": "d", "order": "o"}
    assert all(re.fullmatch(rf"{e['platform']}-{letter[e['kind']]}-[0-9]{{6,}}", e["event_id"]) for e in good)
    assert all(e["kind"] in se.PLATFORMS[e["platform"]].kinds for e in good)
    items, outcomes = february
    rejected_ids = [(item["platform"], item["event_id"]) for item, outcome in zip(items, outcomes)
                    if outcome in CODES and isinstance(item, dict) and "platform" in item
                    and "-x-" in str(item.get("event_id"))]
    assert rejected_ids and all(event_id.startswith(f"{platform}-x-") for platform, event_id in rejected_ids)


def test_amounts_follow_the_domain_calibration():
    good = [e for e in se.generate_events(seed=17, events=40_000, refund_rate=0, duplicate_rate=0, bad_rate=0)]
    rides = np.array([e["amount"] for e in good if e["kind"] == "ride"])
    deliveries = np.array([e["amount"] for e in good if e["kind"] == "delivery"])
    orders = np.array([e["amount"] for e in good if e["kind"] == "order"])

    assert len(good) == 40_000 and min(len(rides), len(deliveries), len(orders)) > 3_000
    assert rides.min() >= 13_000 and (rides % 500 == 0).all()  # GrabBike: 13,000 first 2 km, 500 steps
    bike_like = rides[rides < 44_000]
    assert 18_000 <= np.median(bike_like) <= 23_000  # 13,000 + 4,000 × (3.8 km median − 2) = 20,200
    car_like = rides[rides >= 44_000]
    assert 0.6 <= np.mean(car_like <= 123_000) <= 0.95  # cars 44,000–123,000 with a long tail
    assert np.mean((deliveries >= 12_000) & (deliveries <= 25_000)) >= 0.9
    assert np.mean((orders >= 93_000) & (orders <= 327_000)) >= 0.9  # 1–3 items of 93,000–109,000
    assert orders.max() > 1_000_000  # the long tail


def test_without_events_the_count_follows_the_workers_activity():
    workers = se.workers_for_seed(5, workers=60)
    stream = list(se.generate_events(seed=5, workers=60))
    good = good_events((stream, replay(stream)))
    expected = float((workers["events_per_day"] * workers["active_days"]).sum())

    assert 0.85 * expected <= len(stream) <= 1.25 * expected
    assert workers.equals(se.make_workers(np.random.default_rng(5), 60))
    platforms_of = dict(zip(workers["national_id"], workers["platforms"]))
    assert all(e["platform"] in platforms_of[e["worker_id"]] for e in good)


def test_generating_200000_events_is_lazy_and_needs_bounded_memory():
    stream = se.generate_events(seed=8, events=200_000)
    assert inspect.isgenerator(stream)

    tracemalloc.start()
    try:
        head = list(itertools.islice(stream, 2_000))
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # 200,000 materialised events would take well over 100 MB; one hour of them a few MB.
    assert len(head) == 2_000 and peak_bytes < 20_000_000
    assert sum(1 for _ in stream) == 198_000


def test_write_ndjson_writes_dicts_with_orjson_and_str_lines_as_they_are(tmp_path):
    items = [{"event_id": "e-1", "amount": 5}, "oops", "[1, 2]", {"b": True, "a": None}]
    progress = []

    assert se.write_ndjson(tmp_path / "out.ndjson", items, progress=progress.append) == 4
    assert (tmp_path / "out.ndjson").read_bytes() == \
        b'{"event_id":"e-1","amount":5}\noops\n[1, 2]\n{"b":true,"a":null}\n'
    assert progress == [4]
    text = io.StringIO()
    assert se.write_ndjson(text, items) == 4
    assert text.getvalue().splitlines()[1] == "oops"


def test_write_ndjson_reports_progress_per_chunk():
    progress = []
    count = se.write_ndjson(io.BytesIO(), se.generate_events(seed=4, events=20_000), progress=progress.append)

    assert count == 20_000
    assert progress == [8192, 16384, 20000]


def test_household_tiers_list_4_percent_poor_and_3_5_percent_near_poor(tmp_path):
    workers = se.workers_for_seed(1, workers=2_000)
    rows = se.household_tiers(workers, np.random.default_rng(1), valid_from="2026-01")
    tiers = Counter(tier for _, tier, _ in rows)

    assert tiers == {"poor": 80, "near_poor": 70, "other": 10}
    assert len({national_id for national_id, _, _ in rows}) == len(rows)
    assert {national_id for national_id, _, _ in rows} <= set(workers["national_id"])
    assert {valid_from for _, _, valid_from in rows} == {"2026-01"}
    assert se.write_tiers_csv(tmp_path / "tiers.csv", rows) == 160
    lines = (tmp_path / "tiers.csv").read_text().splitlines()
    assert lines[0] == "national_id,tier,valid_from"
    assert lines[1] == ",".join(rows[0]) and len(lines) == 161


def test_household_tiers_are_deterministic_for_a_seed():
    workers = se.workers_for_seed(2, workers=500)

    assert se.household_tiers(workers, np.random.default_rng(3), valid_from="2026-02") == \
        se.household_tiers(workers, np.random.default_rng(3), valid_from="2026-02")


@pytest.mark.parametrize("arguments", [
    {"seed": -1}, {"month": "2025-12"}, {"month": "2026-13"}, {"month": "26-01"}, {"workers": 0}, {"events": -1},
    {"refund_rate": 0.6}, {"bad_rate": -0.1}, {"duplicate_rate": 0.3, "bad_rate": 0.3},
])
def test_impossible_arguments_are_refused_before_anything_is_generated(arguments):
    with pytest.raises(ValueError):
        se.generate_events(**{"seed": 1, **arguments})
