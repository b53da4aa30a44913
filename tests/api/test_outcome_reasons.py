"""Outcomes explain themselves (docs/events.md): a reason in vi or en for every code, and the month
an accepted event was booked in — with its own month beside it when it was booked late."""
from __future__ import annotations

import string

import orjson

from api.reasons import CODES, LANGS, REASONS, negotiate, outcome_lines, reason, with_reasons
from ledger.close import close_month
from ledger.ingest import ingest_batch
from tests.ledger.factories import event, numbered, refund

INTERFACE_KEYS = ("line", "platform", "event_id", "outcome")


def test_every_code_has_a_sentence_in_every_language_and_no_two_languages_share_one():
    for lang in LANGS:
        assert set(REASONS[lang]) == {*CODES, "accepted_late", "accepted_no_month"}, lang
        for code in (*CODES, "accepted_late", "accepted_no_month"):
            sentence = REASONS[lang][code]
            assert sentence.strip() and sentence.rstrip().endswith("."), (lang, code)
            fields = {name for _text, name, _spec, _conv in string.Formatter().parse(sentence) if name}
            assert fields <= {"booked", "occurred"}, (lang, code)
    assert all(REASONS["vi"][code] != REASONS["en"][code] for code in CODES)


def test_an_accepted_reason_names_the_booked_month_and_a_late_one_the_closed_month_too():
    assert reason("accepted", "en", "2026-02") == "Booked in February 2026."
    assert reason("accepted", "vi", "2026-02", "2026-01") == \
        "Đã ghi sổ vào tháng 2/2026 vì tháng 1/2026 của sự kiện đã chốt sổ."
    assert reason("refund_mismatch", "fr") == REASONS["vi"]["refund_mismatch"]  # an unknown language: vi
    assert reason("some_future_code", "en") == "some_future_code"


def test_accept_language_picks_vi_or_en_by_q_value_and_vi_when_neither_is_asked_for():
    assert [negotiate(header) for header in (None, "", "en", "en-US,en;q=0.9", "vi-VN", "fr, en;q=0.5",
                                             "vi;q=0.5, en;q=0.8", "en;q=0, vi;q=0.1", "fr-FR", "*")] == \
        ["vi", "vi", "en", "en", "vi", "en", "en", "vi", "vi", "vi"]


def test_a_late_event_is_booked_in_the_next_open_month_and_says_both_months(ledger):
    ingest_batch(ledger, numbered([event("jan", occurred_at="2026-01-20T10:00:00+07:00")]))
    close_month(ledger, "2026-01")
    outcomes = ingest_batch(ledger, numbered([
        event("late", occurred_at="2026-01-25T10:00:00+07:00"),
        event("feb", occurred_at="2026-02-03T10:00:00+07:00"),
        event("late", occurred_at="2026-01-25T10:00:00+07:00"),  # its duplicate in the same batch
        event("bad", amount=0),
        refund("jan-r", "jan", 50_000, occurred_at="2026-01-26T10:00:00+07:00"),
        event("jan", occurred_at="2026-01-20T10:00:00+07:00"),  # a duplicate of the books
    ]))
    assert [(o.outcome, o.booked_month, o.occurred_month) for o in outcomes] == [
        ("accepted", "2026-02", "2026-01"), ("accepted", "2026-02", None), ("duplicate", None, None),
        ("invalid_amount", None, None), ("accepted", "2026-02", "2026-01"), ("duplicate", None, None)]
    said = with_reasons([o.as_json() for o in outcomes], "en")
    assert said[0]["reason"] == "Booked in February 2026 because its month, January 2026, is already closed."
    assert said[1]["reason"] == "Booked in February 2026."


def test_a_batch_of_plain_events_says_each_ones_month_and_no_occurred_month(ledger):
    outcomes = ingest_batch(ledger, numbered([event("a", occurred_at="2026-01-31T20:00:00Z"),  # February in Vietnam
                                              event("b", occurred_at="2026-01-31T16:00:00Z")]))
    assert [(o.booked_month, o.occurred_month) for o in outcomes] == [("2026-02", None), ("2026-01", None)]


def test_over_http_the_reason_follows_accept_language_and_the_interface_keys_stay_as_they_were(caller):
    batch = [event("a"), event("b", amount=0)]
    english = caller.post_events(batch, headers={"Accept-Language": "en-GB,en;q=0.9,vi;q=0.5"})
    vietnamese = caller.post_events([*batch, event("c")])  # another body: a signed request is not replayable
    assert english.status_code == vietnamese.status_code == 200
    assert (english.headers["content-language"], vietnamese.headers["content-language"]) == ("en", "vi")
    first, second = english.json()["outcomes"]
    assert {key: first[key] for key in INTERFACE_KEYS} == {"line": 1, "platform": "grab", "event_id": "a",
                                                         "outcome": "accepted"}
    assert (first["booked_month"], first["occurred_month"], first["reason"]) == ("2026-02", None,
                                                                                "Booked in February 2026.")
    assert (second["outcome"], second["booked_month"], second["reason"]) == (
        "invalid_amount", None, REASONS["en"]["invalid_amount"])
    again = vietnamese.json()["outcomes"]
    assert [o["outcome"] for o in again] == ["duplicate", "invalid_amount", "accepted"]
    assert [o["reason"] for o in again] == [REASONS["vi"]["duplicate"], REASONS["vi"]["invalid_amount"],
                                            "Đã ghi sổ vào tháng 2/2026."]


def test_the_openapi_outcome_declares_the_added_fields(caller):
    outcome = caller.client.get("/openapi.json").json()["components"]["schemas"]["Outcome"]
    assert {"booked_month", "occurred_month", "reason", *INTERFACE_KEYS} <= set(outcome["properties"])


def test_ingest_outcomes_speak_english_with_lang_en_and_refuse_a_language_they_do_not_have(tmp_path):
    import orjson
    from typer.testing import CliRunner

    from api.cli import app

    db, source = f"sqlite:///{tmp_path / 'books.db'}", tmp_path / "events.ndjson"
    source.write_bytes(orjson.dumps(event("a")) + b"\n" + orjson.dumps(event("b", kind="taxi")) + b"\n")
    refused = CliRunner().invoke(app, ["ingest", str(source), "--outcomes", str(tmp_path / "x"), "--lang", "de",
                                       "--db", db])
    assert refused.exit_code == 1 and "--lang must be one of vi, en" in refused.output
    assert not (tmp_path / "x").exists()
    done = CliRunner().invoke(app, ["ingest", str(source), "--outcomes", str(tmp_path / "out"), "--lang", "en",
                                    "--db", db])
    assert done.exit_code == 0, done.output
    lines = [orjson.loads(line) for line in (tmp_path / "out").read_bytes().splitlines()]
    assert [line["reason"] for line in lines] == ["Booked in February 2026.", REASONS["en"]["unknown_kind"]]


def test_ingest_writes_the_outcome_lines_orjson_writes_of_each_reasoned_outcome_for_every_code(ledger):
    from ledger.ingest import Outcome

    ingest_batch(ledger, numbered([event("a"), event("o")]))
    close_month(ledger, "2026-02")
    items = numbered([event("a"), event("a", amount=5), event("n"), event("late", occurred_at="2026-02-11T09:00:00Z"),
                      refund("r", "o", 1_000), refund("q", "zz", 1), refund("m", "o", 1, kind="order"),
                      refund("x", "o", 10**9), "MALFORMED", {"kind": "ride"}, event("é\n\"", platform=7),
                      event("c", kind="taxi"), event("c", currency="USD"), event("c", amount=0),
                      event("c", occurred_at="yesterday"), event("c", worker_id="1"), event("c", action="undo")])
    outcomes = ingest_batch(ledger, items)
    outcomes.append(Outcome(99, "grab", "old", "accepted"))  # a replayed outcome of an old release: no month
    assert {outcome.outcome for outcome in outcomes} >= set(CODES) - {"platform_mismatch"}
    for lang in LANGS:
        expected = b"".join(orjson.dumps(line) + b"\n" for line in with_reasons([o.as_json() for o in outcomes], lang))
        assert outcome_lines(outcomes, lang) == expected
    assert outcome_lines([], "vi") == b""
