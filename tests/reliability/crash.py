"""Crash trials: SIGKILL an `ansinh` process at a seeded random moment, restart, re-send, compare.

One trial of `ingest_trial`: `ansinh ingest FILE` on a generated month is killed after a
delay drawn from the trial's seed; whatever it had committed stays, the same file is
sent again to completion, and then every figure of the books must equal the reference
model fed the file once (`oracle.differences`), `verify` must pass, and every item of
the re-send must get the model's outcome (or `duplicate` where the killed run had
already booked it).

One trial of `close_trial`: the same with `ansinh close MONTH` (killed at a random
time), or with a child that closes in-process and is killed while paused at one of
`close_month`'s steps inside the open transaction (`drivers.close`). The month must be
either closed whole or not at all; closing it again (or being told it is closed)
then gives the model's figures.

The default suite runs a few trials (tests/reliability/test_crash.py), the slow suite
at least fifty of each (tests/slow/test_crash_trials.py); both record what each trial
saw in a `TrialResult`, which the slow suite prints as the figures of docs/reliability.md.
"""
from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ledger.books import Ledger
from ledger.close import import_tiers
from ledger.ingest import ingest_stream
from ledger.readers import read_events
from tests.conftest import FixedClock, _drop_schema, _fresh_postgres_url, postgres_available
from tests.reliability.oracle import ANSINH, ROOT, SECRET, cli_env, differences, run_cli, table_counts, \
    verify_problems

CLOSE_STEPS = ("subsidies computed", "entries built", "half the workers written",
               "bills, claim and late interest recorded", "months credited", "close recorded")
CHUNK_SIZE = 250  # events per transaction in the killed ingest: many commits, so a kill lands between or inside


@dataclass
class TrialResult:
    kind: str
    seed: int
    store: str
    delay_s: float
    killed: bool
    entries_at_kill: int  # events and refunds committed when the process died
    entries_expected: int  # what the model accepts from the whole file
    differences: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    outcome_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    @property
    def landed(self) -> str:
        """Where the kill landed, as seen from the books afterwards."""
        if not self.killed:
            return "after the end"
        if self.kind.startswith("close"):
            return "after the commit" if self.entries_at_kill else "before the commit"
        if self.entries_at_kill == 0:
            return "before the first commit"
        if self.entries_at_kill < self.entries_expected:
            return "between or inside commits"
        return "after the last commit"

    @property
    def holds(self) -> bool:
        return not (self.differences or self.problems or self.outcome_errors)


class Books:
    """Fresh, empty books of one store for each trial (an SQLite file or a PostgreSQL schema)."""

    def __init__(self, store: str, folder: Path) -> None:
        if store == "postgresql":
            reason = postgres_available()
            if reason:
                import pytest

                pytest.skip(f"SKIPPING POSTGRESQL: {reason}")
        self.store, self.folder, self.count = store, folder, 0
        self.schemas: list[str] = []

    def fresh(self) -> str:
        self.count += 1
        if self.store == "sqlite":
            return f"sqlite:///{self.folder / f'trial-{self.count}.db'}"
        url, schema = _fresh_postgres_url()
        self.schemas.append(schema)
        return url

    def remove(self) -> None:
        for schema in self.schemas:
            _drop_schema(schema)
        self.schemas.clear()


def open_books(url: str) -> Ledger:
    return Ledger.open(url, pack="vn-pilot", clock=FixedClock(), secret=SECRET)


def entries_booked(url: str) -> int:
    ledger = open_books(url)
    try:
        from ledger.store import query

        with ledger.engine.connect() as conn:
            count = query(conn, "SELECT count(*) FROM journal WHERE entry_type IN (1, 2)")[0][0]
            conn.rollback()
        return int(count)
    finally:
        ledger.close()


def kill_after(command: list[str], env: dict, delay_s: float) -> tuple[bool, str]:
    """Start `command`, SIGKILL it after `delay_s` unless it has ended; (killed, its stderr)."""
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        child.wait(timeout=delay_s)
        killed = False
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        killed = True
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    child.stderr.close()
    if not killed and child.returncode != 0:
        raise AssertionError(f"{command[2:]} failed before it was killed:\n{stderr[-2000:]}")
    return killed, stderr


def timed_run(url: str, *args: str) -> float:
    started = time.perf_counter()
    done = run_cli(url, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    return time.perf_counter() - started


def ingest_trial(url: str, events_file: Path, model, model_outcomes: list[str], *, seed: int,
                 window: tuple[float, float], store: str) -> TrialResult:
    started = time.perf_counter()
    delay = random.Random(seed).uniform(*window)
    command = [*ANSINH, "ingest", str(events_file), "--chunk-size", str(CHUNK_SIZE)]
    killed, _stderr = kill_after(command, cli_env(url), delay)
    at_kill = entries_booked(url)
    outcomes_file = events_file.parent / f"outcomes-{store}-{seed}.ndjson"
    done = run_cli(url, "ingest", events_file, "--outcomes", outcomes_file, "--chunk-size", CHUNK_SIZE)
    result = TrialResult("ingest", seed, store, delay, killed, at_kill, len(model.accepted))
    if done.returncode != 0:
        result.outcome_errors.append(f"the re-send failed: {done.stderr[-1000:]}")
        return result
    resent = [orjson.loads(line)["outcome"] for line in outcomes_file.read_bytes().splitlines()]
    if len(resent) != len(model_outcomes):
        result.outcome_errors.append(f"{len(resent)} outcomes for {len(model_outcomes)} items")
    for number, (got, want) in enumerate(zip(resent, model_outcomes), start=1):
        if got != want and not (want == "accepted" and got == "duplicate"):
            result.outcome_errors.append(f"item {number}: re-send gave {got}, the model {want}")
            if len(result.outcome_errors) >= 5:
                break
    return judged(result, url, model, started)


def prepare_close_books(url: str, events_file: Path, tiers_file: Path) -> tuple[int, ...]:
    """Books with the month ingested and its tiers imported, in-process; their table counts."""
    ledger = open_books(url)
    try:
        for _chunk in ingest_stream(ledger, read_events(str(events_file)), chunk_size=5_000):
            pass
        import_tiers(ledger, tiers_file)
        return table_counts(ledger)
    finally:
        ledger.close()


def close_trial(url: str, month: str, model, before: tuple[int, ...], *, seed: int, mode: str,
                window: tuple[float, float], store: str) -> TrialResult:
    """`mode` is `cli` (kill `ansinh close` at a random time) or `step` (kill at a random step of close_month)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    env = cli_env(url)
    if mode == "cli":
        delay = rng.uniform(*window)
        killed, _stderr = kill_after([*ANSINH, "close", month], env, delay)
        note = ""
    else:
        step = rng.choice(CLOSE_STEPS)
        delay = rng.uniform(0.0, 0.05)
        child = subprocess.Popen([*ANSINH[:1], "-m", "tests.reliability.drivers", "close", url, month, step, "30"],
                                 env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = []
        for line in child.stdout:
            seen.append(line.strip())
            if line.strip() == step:
                time.sleep(delay)  # inside the open transaction: the child pauses 30 s after this step
                break
        killed = child.poll() is None
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
        note = f"killed after step {step!r} (steps seen: {seen})"
        if step not in seen:
            raise AssertionError(f"the close never reached step {step!r}: {seen}")
    ledger = open_books(url)
    try:
        after_kill = table_counts(ledger)
    finally:
        ledger.close()
    closed = after_kill[3] == before[3] + 1
    result = TrialResult(f"close-{mode}", seed, store, delay, killed, after_kill[3] - before[3], 1, note=note)
    if not closed and after_kill != before:
        result.outcome_errors.append(f"a half-written close: counts {before} before, {after_kill} after the kill")
    again = run_cli(url, "close", month)
    if closed and (again.returncode != 1 or "already closed" not in again.stderr):
        result.outcome_errors.append(f"closing a closed month again: exit {again.returncode}, {again.stderr[-300:]}")
    if not closed and again.returncode != 0:
        result.outcome_errors.append(f"the restarted close failed: {again.stderr[-1000:]}")
    return judged(result, url, model, started)


def copy_sqlite(template: str, url: str) -> None:
    shutil.copyfile(template.removeprefix("sqlite:///"), url.removeprefix("sqlite:///"))


def summary(results: list[TrialResult]) -> str:
    """One line per kind of trial: how many, where the kills landed, how long (docs/reliability.md)."""
    lines = []
    for kind in sorted({r.kind for r in results}):
        mine = [r for r in results if r.kind == kind]
        landed: dict[str, int] = {}
        for r in mine:
            landed[r.landed] = landed.get(r.landed, 0) + 1
        lines.append(f"{kind} on {mine[0].store}: {len(mine)} trials, {sum(r.holds for r in mine)} held; "
                     f"kills landed {landed}; {sum(r.seconds for r in mine):.1f} s")
    return "\n".join(lines)


def judged(result, url: str, model, started: float):
    """Fill in a trial's verdict: the books against the model, every invariant, the time taken."""
    ledger = open_books(url)
    try:
        result.differences = differences(ledger, model)
        result.problems = verify_problems(ledger)
    finally:
        ledger.close()
    result.seconds = time.perf_counter() - started
    return result


def platform_keys(url: str, platforms) -> dict[str, dict]:
    """A signing key for each platform of a served trial (key id and secret)."""
    from api.keys import PlatformKeys

    ledger = open_books(url)
    try:
        return {name: PlatformKeys(ledger, SECRET).add(name).__dict__ for name in sorted(platforms)}
    finally:
        ledger.close()


__all__ = ["Books", "CLOSE_STEPS", "TrialResult", "close_trial", "copy_sqlite", "ingest_trial",
           "prepare_close_books", "summary", "timed_run"]
