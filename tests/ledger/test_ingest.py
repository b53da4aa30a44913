"""Ingest on both stores: outcomes, replay, refunds, booking months (RULES.md §1, §3–5)."""
from __future__ import annotations

from ledger.close import close_month
from ledger.ingest import ingest_batch
from ledger.reports import settlement, statement
from ledger.verify import verify
from tests.ledger.factories import WORKER_A, WORKER_B, event, numbered, refund


def book(ledger, *items) -> list[str]:
    return [outcome.outcome for outcome in ingest_batch(ledger, numbered(list(items)))]


def holds(ledger) -> None:
    problems = [(check.name, check.problem) for check in verify(ledger) if check.problem]
    assert problems == []


def scheme(ledger, national_id, month, name):
    return statement(ledger, national_id, month)["schemes"][name]


def test_one_bad_item_beside_good_ones_blocks_nothing(ledger):
    outcomes = book(ledger, event("a"), event("b", amount=-5), "<not an object>", event("c"))
    assert outcomes == ["accepted", "invalid_amount", "malformed", "accepted"]
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == 2_000
    holds(ledger)


def test_a_ride_of_100000_withholds_1000_si_and_500_ui_and_the_platform_owes_500_oa(ledger):
    assert book(ledger, event()) == ["accepted"]
    line = statement(ledger, WORKER_A, "2026-02")["schemes"]
    assert (line["si"]["worker"], line["oa"]["platform"], line["ui"]["worker"]) == (1_000, 500, 500)
    assert settlement(ledger, "2026-02")["platforms"] == {"grab": {"si": 1_000, "oa": 500, "ui": 500}}
    holds(ledger)


def test_re_sending_an_accepted_event_is_a_duplicate_and_changes_nothing(ledger):
    book(ledger, event())
    reordered = dict(reversed(list(event().items())))
    assert book(ledger, event(), reordered, {**event(), "action": "complete", "currency": "VND"}) == [
        "duplicate", "duplicate", "duplicate"]
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == 1_000
    holds(ledger)


def test_the_same_key_with_another_payload_is_a_duplicate_conflict(ledger):
    book(ledger, event())
    assert book(ledger, event(amount=100_001), event(meta={"note": "x"})) == [
        "duplicate_conflict", "duplicate_conflict"]
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == 1_000


def test_a_duplicate_inside_one_batch_is_caught_in_batch_order(ledger):
    assert book(ledger, event(), event(), event(amount=5)) == ["accepted", "duplicate", "duplicate_conflict"]


def test_the_same_event_id_on_two_platforms_is_two_events(ledger):
    assert book(ledger, event(), event(platform="be")) == ["accepted", "accepted"]


def test_a_rejected_event_can_be_sent_again_corrected(ledger):
    assert book(ledger, event(amount=0)) == ["invalid_amount"]
    assert book(ledger, event()) == ["accepted"]


def test_a_full_refund_in_three_parts_reverses_every_share_exactly(ledger):
    book(ledger, event("s-1", platform="shopee", kind="order", amount=1_249_000))
    outcomes = book(ledger, refund("r-1", "s-1", 400_000, platform="shopee", kind="order"),
                    refund("r-2", "s-1", 333_333, platform="shopee", kind="order"))
    outcomes += book(ledger, refund("r-3", "s-1", 515_667, platform="shopee", kind="order"))
    assert outcomes == ["accepted"] * 3
    line = statement(ledger, WORKER_A, "2026-02")["schemes"]
    assert [line[s]["total"] for s in ("si", "oa", "ui")] == [0, 0, 0]
    assert settlement(ledger, "2026-02")["platforms"] == {"shopee": {"si": 0, "oa": 0, "ui": 0}}
    holds(ledger)


def test_the_worked_example_refunds_reverse_2400_then_5094_of_si(ledger):
    book(ledger, event("s-1", platform="shopee", kind="order", amount=1_249_000))
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == 7_494
    book(ledger, refund("s-1r", "s-1", 400_000, platform="shopee", kind="order"))
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == 7_494 - 2_400
    assert scheme(ledger, WORKER_A, "2026-02", "oa")["platform"] == 2_498 - 800
    book(ledger, refund("s-1r2", "s-1", 849_000, platform="shopee", kind="order"))
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == 0


def test_a_refund_may_follow_its_original_in_the_same_batch(ledger):
    assert book(ledger, event("o"), refund("r", "o", 50_000), refund("r2", "o", 50_001)) == [
        "accepted", "accepted", "refund_exceeds_original"]
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == 500
    holds(ledger)


def test_refund_rejections_follow_rules_order(ledger):
    book(ledger, event("o"))
    assert book(ledger,
                refund("r1", "missing", 10),
                refund("r2", "o", 10, platform="be"),
                refund("r3", "o", 10, worker_id=WORKER_B),
                refund("r4", "o", 10, kind="delivery"),
                refund("r5", "o", 100_001),
                refund("r6", "o", 100_000)) == [
        "unknown_original", "unknown_original", "refund_mismatch", "refund_mismatch",
        "refund_exceeds_original", "accepted"]


def test_a_refund_of_a_refund_is_an_unknown_original(ledger):
    book(ledger, event("o"), refund("r", "o", 10))
    assert book(ledger, refund("rr", "r", 5)) == ["unknown_original"]


def test_an_event_of_1_vnd_is_accepted_and_posts_nothing(ledger):
    assert book(ledger, event(amount=1)) == ["accepted"]
    assert settlement(ledger, "2026-02")["platforms"] == {}
    assert book(ledger, event(amount=1)) == ["duplicate"]
    holds(ledger)


def test_a_late_event_after_close_is_booked_in_the_first_open_month(ledger):
    book(ledger, event("jan", occurred_at="2026-01-20T10:00:00+07:00"))
    close_month(ledger, "2026-01")
    assert book(ledger, event("late", occurred_at="2026-01-25T10:00:00+07:00")) == ["accepted"]
    assert scheme(ledger, WORKER_A, "2026-01", "si")["worker"] == 1_000
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == 1_000
    holds(ledger)


def test_a_refund_of_an_event_from_a_closed_month_is_booked_in_the_open_month(ledger):
    book(ledger, event("jan", occurred_at="2026-01-20T10:00:00+07:00"))
    close_month(ledger, "2026-01")
    assert book(ledger, refund("r", "jan", 100_000, occurred_at="2026-01-21T10:00:00+07:00")) == ["accepted"]
    assert scheme(ledger, WORKER_A, "2026-01", "si")["worker"] == 1_000
    assert scheme(ledger, WORKER_A, "2026-02", "si")["worker"] == -1_000
    assert settlement(ledger, "2026-02")["platforms"]["grab"] == {"si": -1_000, "oa": -500, "ui": -500}
    holds(ledger)


def test_one_person_on_three_platforms_has_one_set_of_accounts(ledger):
    book(ledger, event("g"), event("b", platform="be", kind="delivery"),
         event("s", platform="shopee", kind="order", amount=200_000))
    report = statement(ledger, WORKER_A, "2026-02")
    assert report["schemes"]["si"]["worker"] == 1_000 + 1_000 + 1_200
    assert sorted(report["platforms"]) == ["be", "grab", "shopee"]
    assert report["platforms"]["shopee"]["oa"]["platform"] == 400
