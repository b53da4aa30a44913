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
from ledger.events import NESTING_DEPTH_MAX, canonical_json
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


def _deep_event_body(depth: int, event_id: str = "deep") -> bytes:
    """An otherwise valid event whose extra field `meta` holds `depth` nested arrays: the event object
    is one level more. Written by hand because no JSON writer here goes past a thousand levels."""
    return (b'{"event_id":"' + event_id.encode() + b'","platform":"grab","kind":"ride","worker_id":"079203001234",'
            b'"amount":1000,"occurred_at":"2026-02-10T09:00:00+07:00","meta":' + b"[" * depth + b"]" * depth + b"}")


_ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**200), 2**200), st.floats(), st.text(max_size=20)),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=6), children, max_size=4)
    | st.dictionaries(st.floats(allow_nan=False) | st.integers(-(2**70), 2**70), children, max_size=3),
    max_leaves=20)


@settings(FAST, max_examples=300)
@given(_ANY_JSON)
def test_the_payload_hash_writer_gives_json_dumps_text_character_for_character(value):
    """Hashes of events already booked through the old `json.dumps` fallback (integers past 64 bits,
    nesting past 254) must not change, or their re-sends would turn from `duplicate` to a conflict."""
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def test_the_payload_hash_writer_gives_json_dumps_text_five_hundred_deep_with_a_huge_integer():
    value = {"amount": 2**80, "meta": _nested(500), "list": [[[[2**65, 0.1, float("nan")]]]]}
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def test_nesting_past_the_limit_is_malformed_and_the_event_beside_it_is_booked(ledger):
    """NESTING_DEPTH_MAX (512) counts the event object itself; one level more is `malformed` — a thousand
    levels used to raise RecursionError in the payload hash and lose the whole batch."""
    batch = [event("at-limit", meta=_nested(NESTING_DEPTH_MAX - 1)), event("past-limit", meta=_nested(NESTING_DEPTH_MAX)),
             event("thousand", meta=_nested(1_000)), event("ten-thousand", meta=_nested(10_000)), event("beside")]
    outcomes = ingest_batch(ledger, list(enumerate(batch, start=1)))
    assert [o.outcome for o in outcomes] == ["accepted", "malformed", "malformed", "malformed", "accepted"]
    assert [o.event_id for o in outcomes] == ["at-limit", "past-limit", "thousand", "ten-thousand", "beside"]
    assert verify_problems(ledger) == []
    again = ingest_batch(ledger, list(enumerate(batch, start=1)))
    assert [o.outcome for o in again] == ["duplicate", "malformed", "malformed", "malformed", "duplicate"]


def test_the_nesting_limit_is_the_same_on_a_deep_stack(ledger):
    """The limit is counted, not left to Python's recursion limit: with 400 frames already on the stack
    an event at the limit is still booked and one past it is still malformed."""
    def deep_call(frames: int):
        if frames:
            return deep_call(frames - 1)
        return ingest_batch(ledger, [(1, event("at-limit", meta=_nested(NESTING_DEPTH_MAX - 1))),
                                     (2, event("past-limit", meta=_nested(NESTING_DEPTH_MAX)))])

    assert [o.outcome for o in deep_call(400)] == ["accepted", "malformed"]


@SQLITE_ONLY
def test_nesting_a_thousand_deep_is_malformed_over_http_and_the_rest_of_the_batch_is_booked(caller):
    body = b"[" + _deep_event_body(1_000) + b"," + orjson.dumps(event("beside")) + b"]"
    response = _post(caller, body)
    assert response.status_code == 200
    assert [(item["event_id"], item["outcome"]) for item in response.json()["outcomes"]] == \
        [("deep", "malformed"), ("beside", "accepted")]
    ndjson = _post(caller, _deep_event_body(1_020, "deep-line") + b"\n" + orjson.dumps(event("beside-line")),
                   "application/x-ndjson")
    assert [item["outcome"] for item in ndjson.json()["outcomes"]] == ["malformed", "accepted"]


@SQLITE_ONLY
def test_nesting_a_thousand_deep_is_one_malformed_line_through_the_cli(database_url, tmp_path, monkeypatch):
    from tests.reliability.oracle import SECRET

    monkeypatch.setenv("ANSINH_SECRET", SECRET)
    source = tmp_path / "deep.ndjson"
    source.write_bytes(_deep_event_body(1_000) + b"\n" + orjson.dumps(event("beside")) + b"\n")
    outcomes = tmp_path / "out.ndjson"
    result = runner.invoke(app, ["ingest", str(source), "--outcomes", str(outcomes), "--db", database_url])
    assert result.exit_code == 0, (result.output, result.exception)
    assert [orjson.loads(line)["outcome"] for line in outcomes.read_bytes().splitlines()] == ["malformed", "accepted"]


@SQLITE_ONLY
def test_nesting_a_thousand_deep_is_dead_lettered_from_the_stream_and_the_next_message_booked(database_url, names,
                                                                                             nats_url):
    import asyncio

    from ledger.books import Ledger
    from tests.conftest import FixedClock
    from tests.stream.streamdata import Listener, Message, consume_until_idle, publish

    asyncio.run(publish(nats_url, names, [Message("grab", _deep_event_body(1_000)),
                                          Message("grab", orjson.dumps(event("beside")))]))
    ledger = Ledger.open(database_url, pack="vn-pilot", clock=FixedClock())

    async def consume():
        async with Listener(nats_url, names) as heard:
            await consume_until_idle(ledger, names.settings(nats_url))
        return heard

    try:
        heard = asyncio.run(consume())
    finally:
        ledger.close()
    assert heard.last() == {1: "malformed", 2: "accepted"}
    [(headers, data)] = heard.dead_letters
    assert headers["Ansinh-Reason"] == "nested deeper than 512 levels"
    assert data == _deep_event_body(1_000)
