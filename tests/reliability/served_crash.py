"""Crash trials of the HTTP service: SIGKILL `ansinh serve` (one uvicorn worker) while a platform posts.

A sender posts signed batches one after another; after a seeded number of answers and
a seeded fraction of the next batch's time, the server process is killed. It is started
again, every batch is sent again (signed afresh), and the books must equal the reference
model fed the batches once in sending order; every re-sent item gets the model's
outcome or `duplicate`; `verify` holds. One worker process per server: with uvicorn
`--workers 1` the worker is the server process, so killing it is killing the worker.
"""
from __future__ import annotations

import random
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict

import orjson

from api.signing import signed_headers
from ledger.ingest import MALFORMED
from tests.reliability.crash import TrialResult, judged, platform_keys
from tests.reliability.oracle import ANSINH, ROOT, cli_env, model_of

BATCH = 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_events(base: str, headers: dict[str, str], body: bytes, timeout: float = 60) -> tuple[int, bytes]:
    """POST a signed batch; (status, body) whatever the status."""
    request = urllib.request.Request(base + "/v1/events", data=body, method="POST",
                                     headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _post(base: str, key, body: bytes) -> tuple[int, bytes]:
    return post_events(base, signed_headers(key["key_id"], key["secret"], "POST", "/v1/events", body, time.time()),
                       body)


def _post_quietly(base: str, key, body: bytes) -> None:
    """The request the kill lands in: its connection is cut; whatever it books or not is fine."""
    try:
        _post(base, key, body)
    except OSError:
        pass


def batches_of(items: list[tuple[int, object]]) -> list[tuple[str, list[object]]]:
    """(platform, items) batches in sending order: each platform's own events; non-objects ride with the first."""
    by_platform: dict[str, list[object]] = defaultdict(list)
    loose: list[object] = []
    for _line, item in items:
        if item is MALFORMED:
            loose.append("<malformed line>")
        elif isinstance(item, dict) and isinstance(item.get("platform"), str) and item["platform"].isidentifier():
            by_platform[item["platform"]].append(item)
        elif not isinstance(item, dict):
            loose.append(item)
    names = sorted(by_platform)
    by_platform[names[0]][:0] = loose
    return [(name, by_platform[name][start:start + BATCH]) for name in names
            for start in range(0, len(by_platform[name]), BATCH)]


class Server:
    def __init__(self, url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**cli_env(url), "ANSINH_DEMO": "1",
               "ANSINH_DEMO_ON_SERVER_DATABASE": "1"}  # demo asked for, on a throwaway database
        self.process = subprocess.Popen([*ANSINH, "serve", "--port", str(self.port)], env=env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        self.process.kill()
        raise AssertionError("the server did not come up within 60 s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def served_trial(url: str, items: list[tuple[int, object]], *, seed: int, store: str) -> TrialResult:
    started = time.perf_counter()
    batches = batches_of(items)
    sent_items = [(n, item) for n, item in enumerate((item for _p, batch in batches for item in batch), start=1)]
    model, model_outcomes = model_of(sent_items)
    keys = platform_keys(url, {p for p, _b in batches})
    rng = random.Random(seed)
    answers_before_kill = rng.randrange(len(batches))
    fraction = rng.random()
    server = Server(url)
    took: list[float] = []
    in_flight = None
    try:
        for number, (platform, batch) in enumerate(batches):
            if number == answers_before_kill:
                # kill at a seeded point of this batch's expected time (from the batches before it)
                expected = sum(took) / len(took) if took else 0.05
                in_flight = threading.Thread(target=_post_quietly, args=(server.base, keys[platform],
                                                                         orjson.dumps(batch)))
                in_flight.start()
                time.sleep(fraction * expected * 1.5)
                break
            clock = time.perf_counter()
            status, _answer = _post(server.base, keys[platform], orjson.dumps(batch))
            took.append(time.perf_counter() - clock)
            assert status == 200, _answer[:500]
        server.kill()
        if in_flight is not None:
            in_flight.join(timeout=60)
    except BaseException:
        server.kill()
        raise
    at_kill = _entries(url)
    server = Server(url)
    resent: list[str] = []
    try:
        for platform, batch in batches:
            status, answer = _post(server.base, keys[platform], orjson.dumps(batch))
            assert status == 200, answer[:500]
            resent += [item["outcome"] for item in orjson.loads(answer)["outcomes"]]
    finally:
        server.stop()
    result = TrialResult("serve", seed, store, fraction, True, at_kill, len(model.accepted),
                         note=f"killed after {answers_before_kill} of {len(batches)} answers")
    for number, (got, want) in enumerate(zip(resent, model_outcomes), start=1):
        if got != want and not (want == "accepted" and got == "duplicate"):
            result.outcome_errors.append(f"item {number}: re-send gave {got}, the model {want}")
            if len(result.outcome_errors) >= 5:
                break
    if len(resent) != len(model_outcomes):
        result.outcome_errors.append(f"{len(resent)} outcomes for {len(model_outcomes)} items")
    return judged(result, url, model, started)


def _entries(url: str) -> int:
    from tests.reliability.crash import entries_booked

    return entries_booked(url)


__all__ = ["batches_of", "served_trial"]
