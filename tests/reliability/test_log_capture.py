"""The suite-wide log check (`tests/conftest.py`, `suite_logs`) can fail, and sees what it must.

The check is tested on lines and records made here and handed to it directly, never by
logging them: a planted id or traceback in the session's own capture would fail the
whole run. Ids in this file are written as digits joined at run time, so the literal
scan below is shown finding ids that no literal here spells out.
"""
from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from simulations.synthetic_events import make_national_ids
from tests.conftest import SuiteLogs, log_line, log_problems, national_id_literals, redacted
from tests.ledger.factories import WORKER_A, WORKER_B

PLANTED = "".join(("048", "190", "007", "777"))  # rule-valid (province 048, born 1990), written by no test


def _record(name: str, message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, message, args, exc_info)
    record.__dict__.update(extra)
    return record


def _failed() -> tuple:
    try:
        raise RuntimeError("the books refused")
    except RuntimeError:
        return sys.exc_info()


def test_a_planted_raw_test_id_in_a_log_line_is_one_problem_that_does_not_repeat_the_id():
    problems = log_problems([f"booked for {PLANTED} at 09:00", "nothing to see"], {PLANTED})
    assert len(problems) == 1
    assert redacted(PLANTED) in problems[0] and PLANTED not in problems[0]


def test_a_traceback_in_a_log_line_is_one_problem():
    problems = log_problems(["unhandled error\nTraceback (most recent call last):\n  File \"x.py\", line 1"], set())
    assert len(problems) == 1 and "traceback" in problems[0]


def test_masked_ids_and_twelve_digit_numbers_that_are_no_test_id_pass():
    masked = f"{WORKER_A[:3]}******{WORKER_A[-3:]}"
    assert log_problems([f"path /v1/households/{masked}", "amount 100000000000 VND", f"x{WORKER_A}0"],
                        {WORKER_A}) == []


def test_the_service_logger_is_checked_as_served_masked_and_a_raw_id_in_another_logger_is_caught():
    access = _record("ansinh.access", "request", method="GET", path=f"/v1/households/{PLANTED}", status=404)
    foreign = _record("uvicorn.error", "worker %s failed", PLANTED)
    assert PLANTED not in log_line(access)  # api/observability.py masks the path
    assert [len(log_problems([log_line(record)], {PLANTED})) for record in (access, foreign)] == [0, 1]


def test_an_exception_logged_by_the_service_is_a_traceback_problem_even_though_its_ids_are_masked():
    crash = _record("ansinh.api", "unhandled error", exc_info=_failed(), path=f"/v1/households/{PLANTED}")
    line = log_line(crash)
    assert PLANTED not in line
    assert len(log_problems([line], {PLANTED})) == 1


def test_a_record_observed_is_kept_only_when_it_may_be_a_problem():
    capture = SuiteLogs()  # a private capture, not installed: nothing reaches the session's
    for record in (_record("ansinh.access", "request", path="/health", status=200),
                   _record("alembic", "Running upgrade -> %s", "0001"),
                   _record("urllib3", "GET /x?worker=%s", PLANTED),
                   _record("ansinh.stream", "stopped", exc_info=_failed())):
        capture.observe(record)
    assert capture.records == 4 and len(capture.suspicious) == 2
    assert len(log_problems(capture.suspicious, {PLANTED})) == 2


def test_the_test_ids_are_the_literals_of_the_tests_and_the_ids_generated_during_the_session(suite_logs):
    generated = make_national_ids(np.random.default_rng(20_261_125), 40)
    known = suite_logs.test_ids()
    assert {WORKER_A, WORKER_B} <= known
    assert set(generated) <= known
    assert PLANTED not in known


@pytest.mark.parametrize(("text", "found"), [
    ('"079203001234"', {"079203001234"}),  # the factories' WORKER_A
    ("'001085004321', \"036326001111\"", {"001085004321", "036326001111"}),
    ('"000000000000" "999203001234" "0792030012345"', set()),  # no such province; thirteen digits
])
def test_a_literal_counts_as_a_test_id_when_it_is_a_rule_valid_national_id(text, found):
    assert national_id_literals([text]) == found


def test_the_tests_own_http_client_logging_the_urls_it_attacks_with_is_not_the_services_log():
    capture = SuiteLogs()
    capture.observe(_record("httpx", "HTTP Request: PUT http://testserver/v1/households/%s", PLANTED))
    capture.observe(_record("httpx.client", "HTTP Request: GET http://testserver/v1/workers/%s", PLANTED))
    assert capture.records == 2 and capture.suspicious == []


def test_a_librarys_diagnostic_traceback_below_warning_passes_but_its_warning_and_any_raw_id_do_not():
    capture = SuiteLogs()
    diagnostic = _record("distributed.batched", "Batched Comm Closed %r", "<TCP (closed)>", exc_info=_failed())
    warning = _record("distributed.core", "comm failed", exc_info=_failed())
    warning.levelno, warning.levelname = logging.WARNING, "WARNING"
    leak = _record("distributed.worker", "task for %s done", PLANTED)
    service_debug = _record("ansinh.stream", "retrying", exc_info=_failed())
    service_debug.levelno, service_debug.levelname = logging.DEBUG, "DEBUG"
    for record in (diagnostic, warning, leak, service_debug):
        capture.observe(record)
    problems = log_problems(capture.suspicious, {PLANTED})
    assert len(problems) == 3  # the WARNING's traceback, the raw id, the service's own traceback at DEBUG
    assert sum("traceback" in problem for problem in problems) == 2
