"""Crash trials of `ansinh serve --workers 2`: SIGKILL one uvicorn worker while platforms post.

The server is uvicorn's supervisor with two worker processes sharing one listening
socket. Six platforms post their signed batches at once (one sender thread each, each
platform's batches in order), so both workers are busy and mostly waiting for the
writer's lock. After a seeded number of answers and a seeded fraction of a batch's time,
one of the two workers, chosen by the seed, is killed with SIGKILL. A request it was
serving has its connection cut: that platform's sender signs the same batch afresh and
sends it again until it is answered (as a platform must: a later batch may refund or
re-send an event of the unanswered one), and goes on. The supervisor starts a
replacement worker. Then every batch is sent once more.

Checks: every answer of the first pass is the reference model's outcome, or `duplicate`
where the model accepts an item of a batch that was cut and retried; the second pass
answers `duplicate` for every item the model accepts and the model's code for the rest;
the books equal the model fed the batches once, in each platform's order (no event of
one platform depends on another's, so the interleaving does not change a figure);
`verify` holds; the killed worker is gone and two live workers serve again.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson

from api.signing import signed_headers
from tests.reliability.crash import TrialResult, entries_booked, judged, platform_keys
from tests.reliability.oracle import ANSINH, ROOT, cli_env, model_of
from tests.reliability.served_crash import _free_port, batches_of, post_events

WORKERS = 2
START_SECONDS_MAX = 300  # two workers importing the app at once on a loaded 2-core machine (load 10 seen)
RETRIES_MAX = 20  # a cut batch is sent again at most this many times


class Signer:
    """Signs each body at a second it was never signed at before, so no re-send is refused as a replay."""

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def headers(self, key: dict, body: bytes) -> dict[str, str]:
        with self._lock:
            stamp = max(int(time.time()), self._last.get(body, -1) + 1)
            self._last[body] = stamp
        return signed_headers(key["key_id"], key["secret"], "POST", "/v1/events", body, stamp)


def _post(base: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    return post_events(base, headers, body, timeout=120)


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state; the name may hold spaces


def worker_pids(supervisor: int) -> list[int]:
    """The live uvicorn worker processes of `supervisor` (spawned children; not multiprocessing's tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _parent_of(int(entry.name)) != supervisor:
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"spawn_main" in command and state != "Z":
            found.append(int(entry.name))
    return sorted(found)


class MultiWorkerServer:
    """`ansinh serve --workers 2` on a free port; waits until both workers answer."""

    def __init__(self, url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**cli_env(url), "ANSINH_DEMO": "1",
               "ANSINH_DEMO_ON_SERVER_DATABASE": "1"}  # demo asked for, on a throwaway database
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server can never block on it
        self.process = subprocess.Popen([*ANSINH, "serve", "--port", str(self.port), "--workers", str(WORKERS)],
                                        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        self.seen_workers: set[int] = set()
        try:
            self.wait_for_workers()
        except BaseException:
            self.stop()
            raise

    def wait_for_workers(self, avoid: int | None = None) -> list[int]:
        """Block until two live workers (none of them `avoid`) exist and the service answers."""
        deadline = time.monotonic() + START_SECONDS_MAX
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"ansinh serve --workers {WORKERS} ended: {self.stderr()[-2000:]}")
            pids = worker_pids(self.process.pid)
            self.seen_workers.update(pids)
            if len(pids) == WORKERS and avoid not in pids and self._healthy():
                return pids
            time.sleep(0.1)
        raise AssertionError(f"{WORKERS} workers did not serve within {START_SECONDS_MAX} s")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/health", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> str:
        """SIGTERM the supervisor (it stops its workers); a worker left behind is killed by its id. Its stderr."""
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        for pid in self.seen_workers:
            if b"spawn_main" in _cmdline(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        text = self.stderr()
        self.log.close()
        return text


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class Senders:
    """One thread per platform posting its batches in order; a cut request is signed afresh and re-sent."""

    def __init__(self, base: str, keys: dict, signer: Signer, batches: list[tuple[str, list[object]]]) -> None:
        self.base, self.keys, self.signer = base, keys, signer
        self.answers: dict[int, list[str]] = {}  # batch number -> outcomes of its final answer
        self.cut: dict[int, int] = defaultdict(int)  # batch number -> connections cut under it
        self.errors: list[str] = []
        self.answered = 0
        self.answered_event = threading.Condition()
        self.took: list[float] = []
        by_platform: dict[str, list[tuple[int, list[object]]]] = defaultdict(list)
        for number, (platform, batch) in enumerate(batches):
            by_platform[platform].append((number, batch))
        self.threads = [threading.Thread(target=self._send, args=(platform, mine), daemon=True)
                        for platform, mine in sorted(by_platform.items())]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def send_in_order(self, batches: list[tuple[str, list[object]]]) -> None:
        """Every batch once more, one after another, in sending order (in this thread)."""
        for number, (platform, batch) in enumerate(batches):
            self._send(platform, [(number, batch)])

    def join(self, timeout_s: float) -> None:
        for thread in self.threads:
            thread.join(timeout=timeout_s)
            if thread.is_alive():
                self.errors.append(f"a sender did not finish within {timeout_s:.0f} s")

    def wait_for_answers(self, count: int) -> None:
        with self.answered_event:
            self.answered_event.wait_for(lambda: self.answered >= count or not any(t.is_alive() for t in self.threads),
                                         timeout=600)

    def _send(self, platform: str, mine: list[tuple[int, list[object]]]) -> None:
        for number, batch in mine:
            body = orjson.dumps(batch)
            for _attempt in range(RETRIES_MAX):
                clock = time.perf_counter()
                try:
                    status, answer = _post(self.base, self.signer.headers(self.keys[platform], body), body)
                except OSError:
                    self.cut[number] += 1
                    time.sleep(0.2)
                    continue
                if status != 200:
                    self.errors.append(f"batch {number}: status {status}: {answer[:300]!r}")
                    return
                self.answers[number] = [item["outcome"] for item in orjson.loads(answer)["outcomes"]]
                self.took.append(time.perf_counter() - clock)
                break
            else:
                self.errors.append(f"batch {number}: cut {RETRIES_MAX} times")
                return
            with self.answered_event:
                self.answered += 1
                self.answered_event.notify_all()


def kill_one_worker(server: MultiWorkerServer, index: int) -> int:
    """SIGKILL the live worker at `index` (by pid order) now; its pid. The workers are read at this
    moment: uvicorn's supervisor may already have replaced one (a worker that misses its health
    ping on a starved machine is killed and restarted by the supervisor itself)."""
    for _attempt in range(50):
        workers = worker_pids(server.process.pid)
        if workers:
            victim = workers[index % len(workers)]
            try:
                os.kill(victim, signal.SIGKILL)
                return victim
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    raise AssertionError("no live worker to kill within 5 s")


@dataclass
class MultiWorkerResult(TrialResult):
    cut: int = 0  # requests whose connection the kill cut

    @property
    def landed(self) -> str:
        return "inside a request" if self.cut else "between requests (the worker was idle)"


def multiworker_trial(url: str, items: list[tuple[int, object]], *, seed: int, store: str) -> TrialResult:
    started = time.perf_counter()
    batches = batches_of(items)
    sent_items = [(n, item) for n, item in enumerate((item for _p, batch in batches for item in batch), start=1)]
    model, model_outcomes = model_of(sent_items)
    want_by_batch, at = [], 0
    for _platform, batch in batches:
        want_by_batch.append(model_outcomes[at:at + len(batch)])
        at += len(batch)
    keys = platform_keys(url, {p for p, _b in batches})
    rng = random.Random(seed)
    answers_before_kill = rng.randrange(len(batches))
    fraction = rng.random()
    victim_index = rng.randrange(WORKERS)
    signer = Signer()
    result = MultiWorkerResult(f"serve-{WORKERS}-workers", seed, store, fraction, True, 0, len(model.accepted))
    server = MultiWorkerServer(url)
    try:
        server.wait_for_workers()
        first = Senders(server.base, keys, signer, batches)
        first.start()
        first.wait_for_answers(answers_before_kill)
        expected = sum(first.took) / len(first.took) if first.took else 0.05
        time.sleep(fraction * expected * 1.5)
        victim = kill_one_worker(server, victim_index)
        result.entries_at_kill = entries_booked(url)  # read just after the kill; the other senders go on
        first.join(timeout_s=600)
        replacement = server.wait_for_workers(avoid=victim)
        second = Senders(server.base, keys, signer, batches)
        second.send_in_order(batches)
    finally:
        stderr = server.stop()
    cut = result.cut = sum(first.cut.values())
    result.note = (f"worker {victim_index + 1} of {WORKERS} killed after {answers_before_kill} of {len(batches)} "
                   f"answers; {cut} request(s) cut" + (f" in batches {sorted(first.cut)}" if cut else ""))
    result.outcome_errors += first.errors + second.errors
    if victim in replacement or len(replacement) != WORKERS:
        result.outcome_errors.append(f"after the kill the workers are {len(replacement)}, the victim among them: "
                                     f"{victim in replacement}")
    if "Traceback (most recent call last)" in stderr:
        trace = stderr.split("Traceback (most recent call last)", 1)[1]
        ending = next((line for line in trace.splitlines() if line and not line.startswith((" ", "{"))), "")
        result.outcome_errors.append(f"a traceback in the server's log ending {ending[:300]!r}: {trace[:2500]}")
    for number, want in enumerate(want_by_batch):
        got_first, got_second = first.answers.get(number), second.answers.get(number)
        if got_first is None or got_second is None:
            result.outcome_errors.append(f"batch {number}: no answer (first pass {got_first is not None}, "
                                         f"second {got_second is not None})")
            continue
        retried = number in first.cut
        for position, (one, two, model_code) in enumerate(zip(got_first, got_second, want)):
            if not (one == model_code or (retried and model_code == "accepted" and one == "duplicate")):
                result.outcome_errors.append(f"batch {number} item {position}: first pass {one}, the model {model_code}")
            if two != ("duplicate" if model_code in ("accepted", "duplicate") else model_code):
                result.outcome_errors.append(f"batch {number} item {position}: second pass {two}, "
                                             f"the model {model_code}")
        if len(result.outcome_errors) >= 10:
            break
    return judged(result, url, model, started)


__all__ = ["MultiWorkerServer", "multiworker_trial", "worker_pids"]
