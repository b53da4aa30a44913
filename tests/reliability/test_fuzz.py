"""Fuzzing the three ways in (the ingest function, `ansinh ingest`, `POST /v1/events`) with hostile events.

Property everywhere: no crash, no 5xx, no traceback, and every item gets exactly one
of the 15 outcomes (accepted, duplicate, or one of the 13 rejection codes). Through the
ingest function and the CLI the outcome must also be the reference model's, and
`verify` must hold afterwards. Deep nesting and bodies of megabytes are pinned as
plain examples below the properties. The slow suite runs the same properties longer.
"""
from __future__ import annotations

import json
import time

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from api.cli import app
from api.signing import signed_headers
from ledger.ingest import MALFORMED, ingest_batch
from tests.ledger.factories import event
from tests.reference_model import ReferenceModel
from tests.reliability.crash import open_books
from tests.reliability.fuzz_strategies import OUTCOMES, expected, items
from tests.reliability.oracle import verify_problems

runner = CliRunner()
# The default runs are derandomised (the same examples on every CI run, so a red build is a code
# change, not luck) and report a failure as found (shrinking can take minutes); the slow runs
# explore new examples each time and shrink what they find.
NO_SHRINK = tuple(phase for phase in Phase if phase not in (Phase.shrink, Phase.explain))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), phases=NO_SHRINK,
                derandomize=True, database=None)
LONG = settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck))
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _ingest_property(database_url, examples: settings):
    ledger = open_books(database_url)
    model = ReferenceModel()

    @examples
    @given(st.lists(items(), min_size=1, max_size=12))
    def property_(batch):
        want = [expected(model, item) for item in batch]
        got = [o.outcome for o in ingest_batch(ledger, list(enumerate(batch, start=1)))]
        assert len(got) == len(batch) and set(got) <= OUTCOMES
        assert got == want

    try:
        property_()
        assert verify_problems(ledger) == []
    finally:
        ledger.close()


def test_hostile_batches_through_the_ingest_function_get_the_models_outcome_each(database_url):
    _ingest_property(database_url, FAST)


@pytest.mark.slow
def test_hostile_batches_through_the_ingest_function_over_many_examples(database_url):
    _ingest_property(database_url, LONG)


def dumps(value: object) -> bytes:
    """JSON text of any JSON value, integers past 64 bits included (orjson refuses to write those)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _ndjson(batch: list[object], garbage: list[bytes]) -> bytes:
    lines = [dumps(item) for item in batch]
    for at, junk in enumerate(garbage):
        lines.insert(at * 2 % (len(lines) + 1), junk)
    return b"\n".join(lines) + b"\n"


def _cli_property(database_url, tmp_path, examples: settings):
    model = ReferenceModel()
    counter = iter(range(10**9))

    @examples
    @given(st.lists(items(), min_size=1, max_size=10),
           st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b), max_size=3))
    def property_(batch, garbage):
        body = _ndjson(batch, garbage)
        source = tmp_path / f"in-{next(counter)}.ndjson"
        source.write_bytes(body)
        outcomes = tmp_path / "out.ndjson"
        result = runner.invoke(app, ["ingest", str(source), "--outcomes", str(outcomes), "--db", database_url])
        assert result.exit_code == 0, (result.output, result.exception)
        assert "Traceback" not in result.output
        lines = [line for line in body.split(b"\n") if line.strip()]
        parsed = []
        for line in lines:
            try:
                parsed.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                parsed.append(MALFORMED)
        got = [orjson.loads(line)["outcome"] for line in outcomes.read_bytes().splitlines()]
        assert len(got) == len(lines) and set(got) <= OUTCOMES
        assert got == [expected(model, item) for item in parsed]

    property_()


@SQLITE_ONLY
def test_hostile_ndjson_through_the_cli_gets_one_outcome_per_line_and_the_models(database_url, tmp_path,
                                                                               monkeypatch):
    from tests.reliability.oracle import SECRET

    monkeypatch.setenv("ANSINH_SECRET", SECRET)
    _cli_property(database_url, tmp_path, settings(FAST, max_examples=20))


@pytest.mark.slow
def test_hostile_ndjson_through_the_cli_over_many_examples(database_url, tmp_path, monkeypatch):
    from tests.reliability.oracle import SECRET

    monkeypatch.setenv("ANSINH_SECRET", SECRET)
    _cli_property(database_url, tmp_path, settings(max_examples=300, deadline=None,
                                                   suppress_health_check=list(HealthCheck)))


_SIGNED: set[tuple[int, bytes]] = set()


def _post(caller, body: bytes, content_type: str = "application/json"):
    """A signed POST; the same body is signed at another second of the window so it is no replay."""
    stamp = int(time.time()) - 200
    while (stamp, body) in _SIGNED:
        stamp += 1
    _SIGNED.add((stamp, body))
    headers = signed_headers(caller.grab.key_id, caller.grab.secret, "POST", "/v1/events", body, stamp)
    return caller.client.post("/v1/events", content=body, headers={**headers, "Content-Type": content_type})


def _http_property(caller, examples: settings):
    @examples
    @given(st.one_of(
        st.lists(items(platform="grab"), max_size=10).map(lambda batch: ("application/json", dumps(batch))),
        st.lists(items(platform="grab"), max_size=10).map(
            lambda batch: ("application/x-ndjson", _ndjson(batch, [b"{not json", b"\xff\xfe"]))),
        st.binary(max_size=300).map(lambda raw: ("application/json", raw)),
        st.lists(items(), max_size=6).map(lambda batch: ("application/json", dumps(batch)))))
    def property_(request):
        content_type, body = request
        response = _post(caller, body, content_type)
        assert response.status_code in (200, 400, 403, 413, 422), response.text
        assert "Traceback" not in response.text
        if response.status_code == 200:
            got = [item["outcome"] for item in response.json()["outcomes"]]
            assert set(got) <= OUTCOMES
            if content_type == "application/json":
                assert len(got) == len(orjson.loads(body))
        else:
            assert response.headers["content-type"] == "application/problem+json"

    property_()


@SQLITE_ONLY
def test_hostile_bodies_over_http_never_get_a_5xx_and_every_item_gets_an_outcome(caller):
    _http_property(caller, FAST)


@pytest.mark.slow
def test_hostile_bodies_over_http_over_many_examples(caller):
    _http_property(caller, settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck)))


# -- big and deep ---------------------------------------------------------------------------------

@SQLITE_ONLY
def test_a_ten_megabyte_batch_over_http_is_booked_item_by_item(caller):
    pad = "ă" * 500  # 1,000 bytes of UTF-8 in an extra field of each event
    batch = [event(f"big-{n}", note=pad) for n in range(9_000)]
    body = orjson.dumps(batch)
    assert 9_000_000 < len(body) < caller.services.settings.max_body_bytes
    response = _post(caller, body)
    assert response.status_code == 200
    assert response.json()["counts"] == {"accepted": 9_000}


@SQLITE_ONLY
def test_one_event_carrying_five_megabytes_is_booked_and_its_replay_is_a_duplicate(caller):
    body = orjson.dumps([event("huge", note="x" * 5_000_000)])
    assert _post(caller, body).json()["counts"] == {"accepted": 1}
    assert _post(caller, body).json()["counts"] == {"duplicate": 1}


def _nested(depth: int) -> dict:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[return-value]


@SQLITE_ONLY
def test_deep_nesting_that_json_can_carry_is_kept_as_an_extra_field(caller):
    batch = [event("deep-200", meta=_nested(200)), event("deep-500", meta=_nested(500))]
    assert _post(caller, dumps(batch)).json()["counts"] == {"accepted": 2}


@SQLITE_ONLY
def test_nesting_deeper_than_the_json_parser_allows_is_malformed_not_a_crash(caller, tmp_path):
    too_deep = b'{"event_id":"d","meta":' + b"[" * 1100 + b"]" * 1100 + b"}"
    response = _post(caller, too_deep + b"\n" + orjson.dumps(event("ok")), "application/x-ndjson")
    assert [item["outcome"] for item in response.json()["outcomes"]] == ["malformed", "accepted"]
    whole = _post(caller, b"[" + too_deep + b"]")
    assert (whole.status_code, whole.json()["type"].rsplit("/", 1)[1]) == (400, "malformed-body")


DEEP_BUG = ("bug: ledger/events.py payload_hash: an extra field nested ~1,000 deep (orjson parses up to 1,024) "
            "makes orjson.dumps fail and the json.dumps fallback raise RecursionError: ingest_batch crashes, "
            "HTTP answers 500, the CLI prints a traceback; expected an outcome for the item (and its neighbours)")


@SQLITE_ONLY
@pytest.mark.xfail(strict=True, reason=DEEP_BUG)
def test_nesting_a_thousand_deep_gets_an_outcome_over_http(caller):
    body = b'[{"event_id":"deep","platform":"grab","kind":"ride","worker_id":"079203001234","amount":1000,' \
           b'"occurred_at":"2026-02-10T09:00:00+07:00","meta":' + b"[" * 1000 + b"]" * 1000 + b"}," + \
           orjson.dumps(event("beside")) + b"]"
    response = _post(caller, body)
    assert response.status_code == 200
    assert [item["outcome"] for item in response.json()["outcomes"]][1] == "accepted"


@pytest.mark.xfail(strict=True, reason=DEEP_BUG)
def test_nesting_a_thousand_deep_gets_an_outcome_through_the_ingest_function(ledger):
    outcomes = ingest_batch(ledger, [(1, event("deep", meta=_nested(1000))), (2, event("beside"))])
    assert [o.outcome for o in outcomes][1] == "accepted"
