"""The routes called in any order against the reference model (a Hypothesis state machine; the reads are
schemathesis' generated requests). The stateless contract run — every operation, every role, every answer
declared — is tests/api/test_contract.py."""
from __future__ import annotations

import secrets
import os
import time
import warnings
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.app import build_services, create_app
from api.settings import Settings
from api.signing import signed_headers
from api.tokens import mint_demo_token
from tests.conftest import FixedClock

SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)


def _app(tmp_dir: str):
    services = build_services(Settings(database_url=f"sqlite:///{tmp_dir}/schema.db", secret=SECRET, mode="demo"),
                              clock=FixedClock())
    return create_app(services=services), services


_TMP = os.environ.get("PYTEST_SCHEMA_TMP") or __import__("tempfile").mkdtemp(prefix="ansinh-schema-")
APP, SERVICES = _app(_TMP)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

# -- stateful: the routes in random order against the reference model ------------------------------------
# The OpenAPI document has no links, so schemathesis cannot chain calls itself; a Hypothesis state
# machine does: signed batches (valid, hostile, refunds of what was accepted, replays), household
# statuses, closes in and out of order, and any generated GET of the schema, in any order. After each
# call: no 5xx, every batch item an outcome, the model's; at the end the books equal the model.

import copy  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test  # noqa: E402

from tests.reference_model import CloseRefused, ReferenceModel, TierFileRefused, month_after  # noqa: E402
from tests.reliability.fuzz_strategies import OUTCOMES, WORKERS, expected, items  # noqa: E402
from tests.reliability.oracle import differences, verify_problems  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

PLATFORMS = ("grab", "be")
EVENT_IDS = tuple(f"s-{n}" for n in range(12))
MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04")
READS = [result.ok() for result in schema.get_all_operations() if result.ok().method.upper() == "GET"]
STAFF_READ_ROLE = {"/v1/months": "insurer", "/v1/payers": "admin", "/v1/platform-keys": "admin", "/v1/packs": "policy"}


def dumps(value: object) -> bytes:
    """JSON of any JSON value, integers past 64 bits included (orjson refuses to write those)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@st.composite
def valid_events(draw, platform: str):
    day = draw(st.integers(0, 100))
    return {"event_id": draw(st.sampled_from(EVENT_IDS)), "platform": platform,
            "kind": draw(st.sampled_from(("ride", "delivery", "order"))), "worker_id": draw(st.sampled_from(WORKERS)),
            "amount": draw(st.integers(1, 3_000_000)),
            "occurred_at": f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T{draw(st.integers(0, 23)):02d}:30:00+07:00"}


class RoutesAgainstTheModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="ansinh-stateful-")
        self.services = build_services(Settings(database_url=f"sqlite:///{self.folder}/books.db", secret=SECRET,
                                                mode="demo"), clock=FixedClock())
        self.client = TestClient(create_app(services=self.services), raise_server_exceptions=False)
        self.client.__enter__()
        self.keys = {platform: self.services.keys.add(platform) for platform in PLATFORMS}
        self.model = ReferenceModel()
        self.accepted: list[dict] = []  # completes the model accepted: originals to refund
        self.sent: list[dict] = []
        self.calls: dict[str, int] = {}
        self.stamps: dict[bytes, int] = {}  # the same body twice in a second must not look like a replay

    def teardown(self) -> None:
        try:
            assert differences(self.services.ledger, self.model) == []
            assert verify_problems(self.services.ledger) == []
        finally:
            self.client.__exit__(None, None, None)
            self.services.ledger.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _bearer(self, role: str, subject: str = "stateful") -> dict[str, str]:
        token = mint_demo_token(SECRET, role, subject, self.services.ledger.clock(), timedelta(minutes=15))
        return {"Authorization": f"Bearer {token}"}

    def _answered(self, name: str, response) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        assert response.status_code < 500, (name, response.status_code, response.text[:500])
        assert "Traceback" not in response.text

    @rule(data=st.data())
    def a_platform_posts_a_batch(self, data) -> None:
        platform = data.draw(st.sampled_from(PLATFORMS))
        batch = []
        for _ in range(data.draw(st.integers(1, 8))):
            how = data.draw(st.sampled_from(("valid", "valid", "hostile", "refund", "replay")))
            if how == "refund" and self.accepted:
                original = data.draw(st.sampled_from([item for item in self.accepted if item["platform"] == platform]
                                                     or self.accepted))
                item = {**original, "event_id": "r-" + data.draw(st.sampled_from(EVENT_IDS)), "action": "refund",
                        "original_event_id": original["event_id"], "amount": data.draw(st.integers(1, 2_000_000))}
                item["platform"] = platform
            elif how == "replay" and self.sent:
                item = copy.deepcopy(data.draw(st.sampled_from(self.sent)))
                item["platform"] = platform
            elif how == "hostile":
                item = data.draw(items(platform=platform))
            else:
                item = data.draw(valid_events(platform))
            batch.append(item)
        want = []
        for item in batch:
            want.append(expected(self.model, copy.deepcopy(item)))
            if isinstance(item, dict):
                self.sent.append(copy.deepcopy(item))
                if want[-1] == "accepted" and item.get("action") != "refund":
                    self.accepted.append(copy.deepcopy(item))
        ndjson = data.draw(st.booleans())
        body = b"\n".join(dumps(item) for item in batch) + b"\n" if ndjson else dumps(batch)
        key = self.keys[platform]
        stamp = self.stamps[body] = max(int(time.time()), self.stamps.get(body, -1) + 1)
        headers = signed_headers(key.key_id, key.secret, "POST", "/v1/events", body, stamp)
        response = self.client.post("/v1/events", content=body, headers={
            **headers, "Content-Type": "application/x-ndjson" if ndjson else "application/json"})
        self._answered("POST /v1/events", response)
        assert response.status_code == 200, response.text[:500]
        got = [item["outcome"] for item in response.json()["outcomes"]]
        assert len(got) == len(batch) and set(got) <= OUTCOMES
        assert got == want

    @rule(national_id=st.sampled_from(WORKERS + ("079203001", "999203001234")),
          tier=st.sampled_from(("poor", "near_poor", "other", "rich")),
          valid_from=st.sampled_from(MONTHS + ("2026-13", "2026-2")))
    def an_admin_records_a_household_status(self, national_id, tier, valid_from) -> None:
        try:
            self.model.import_tiers([(national_id, tier, valid_from)])
            refused = False
        except TierFileRefused:
            refused = True
        response = self.client.put(f"/v1/households/{national_id}", json={"tier": tier, "valid_from": valid_from},
                                   headers=self._bearer("admin"))
        self._answered("PUT /v1/households/{national_id}", response)
        assert response.status_code == (422 if refused else 200), response.text[:300]

    @rule(data=st.data())
    def an_insurer_closes_a_month_in_order_or_not(self, data) -> None:
        last = self.model.last_closed
        month = data.draw(st.sampled_from((month_after(last),) * 3 + MONTHS if last else MONTHS))
        try:
            self.model.close(month)
            refused = False
        except CloseRefused:
            refused = True
        response = self.client.post(f"/v1/months/{month}/close", headers=self._bearer("insurer"))
        self._answered("POST /v1/months/{month}/close", response)
        assert response.status_code == (409 if refused else 200), response.text[:300]

    @rule(data=st.data())
    def anyone_reads_a_generated_request(self, data) -> None:
        operation = data.draw(st.sampled_from(READS))
        case = data.draw(operation.as_strategy())
        headers = {key: value for key, value in (case.headers or {}).items() if key.lower() != "authorization"}
        path = case.operation.path
        if path.startswith("/v1/workers"):
            headers.update(self._bearer("worker", self.services.ledger.keys.pseudonym(
                data.draw(st.sampled_from(WORKERS)))))
        else:
            role = next((role for prefix, role in STAFF_READ_ROLE.items() if path.startswith(prefix)), None)
            if role:
                headers.update(self._bearer(role))
        response = self.client.get(case.formatted_path, params=case.query or None, headers=headers)
        self._answered(f"GET {path}", response)


def test_routes_called_in_any_order_never_fail_and_the_books_equal_the_model():
    run_state_machine_as_test(RoutesAgainstTheModel, settings=settings(
        max_examples=6, stateful_step_count=12, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck)))


@pytest.mark.slow
def test_routes_called_in_any_order_over_many_runs():
    run_state_machine_as_test(RoutesAgainstTheModel, settings=settings(
        max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)))


def test_a_first_close_of_a_later_month_leaves_every_payer_book_matching_its_receivable(ledger):
    """The smallest example the stateful run found: one 1,211 VND ride in January (24 VND of dues), then March
    closed first — the first close bills what was booked before it (docs/payments.md)."""
    from ledger.close import close_month
    from ledger.ingest import ingest_batch
    from tests.ledger.factories import event

    booked = ingest_batch(ledger, [(1, event("s-0", platform="be", amount=1_211,
                                             occurred_at="2026-01-19T22:30:00+07:00"))])
    assert [o.outcome for o in booked] == ["accepted"]
    close_month(ledger, "2026-03")
    from ledger.money import bills_of_month

    assert [(bill["payer"], bill["amount_vnd"]) for bill in bills_of_month(ledger, "2026-03")] == [("be", 24)]
    assert verify_problems(ledger) == []
