"""The simulator and the ledger agree to the dong where the subsidy cap, the 120-month limit and
pooled crediting all bind — and the agreement check fails when a rules kernel is mutated.

Twelve workers under `vn-decree-159` (si only, base cap 330,000 VND, at most 120 subsidised months,
pooled crediting at a 330,000 VND floor) work 123 months, July 2025 to September 2035, through the
real ingest and month close of a SQLite ledger. Their traffic is drawn (seeded) to make each rule
bind, and the test says so before it compares:

- high earners sell ~3 orders of 20–25 million VND a month: own si ~400,000 > the cap, every month,
  so the cap decides their subsidy, and they are subsidised every month until the 120th;
- steady riders (~10 rides of 50–150k) withhold ~10,000 VND a month; their pool pays a month's
  floor every ~two years (pooling);
- lumpy sellers sell two small orders a month and a large one every 24 months: one close credits
  several months;
- everybody works and is subsidised every month, so the limit stops all at the 121st month — but
  one rider misses two months, and the limit stops them two months later.

The simulator prices the same events one row each (`from_events`, no share read from the books)
and replays the books (`from_db`); `disagreements` lists every worker-month-scheme figure and
every credited month that differs. The mutation check swaps `rules.kernels.subsidy` for one that
drops the cap, then `rules.kernels.share` for one that floors, and the check must fail.
"""
from __future__ import annotations

import secrets
from datetime import date

import numpy as np
import pandas as pd
import pytest

from ledger.books import Ledger
from ledger.close import close_month, import_tiers
from ledger.ingest import ingest_batch
from ledger.store import query
from rules import SCHEMES, load_pack
from simulations import engine
from simulations import population as populations
from simulations import synthetic_events as se
from simulations.scenario import Budget
from tests.simulations.mutants import MUTANTS

SEED = 20260418
SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)
FIRST = date(2025, 7, 1)  # vn-decree-159 is in force from 2025-07-01
MONTHS = 123
CAP_VND = 330_000
FLOOR_VND = 330_000
LIMIT = 120
HIGH, STEADY, GAPPY, LUMPY = (0, 5), (1, 3, 6, 8), (2,), (4, 7, 9, 10, 11)
TIERS = {0: "poor", 1: "poor", 2: "poor", 3: "near_poor", 4: "near_poor"}  # the rest: other
GAPS = (10, 50)  # the months GAPPY does not work (index from July 2025)
SCHEME_OF_CODE = {index + 1: scheme for index, scheme in enumerate(SCHEMES)}


def month_label(index: int) -> str:
    ordinal = FIRST.year * 12 + FIRST.month - 1 + index
    return f"{ordinal // 12}-{ordinal % 12 + 1:02d}"


def traffic(national_ids: list[str]) -> dict[str, list[dict]]:
    """Each month's completed events (seeded), by the profiles in the module docstring."""
    rng = np.random.default_rng(SEED)
    months = {}
    for index in range(MONTHS):
        label = month_label(index)
        items = []

        def event(worker: int, number: int, platform: str, kind: str, amount: int) -> None:
            day, hour = 1 + number % 27, 6 + number % 14
            items.append({"event_id": f"{label}.{worker}.{number}", "platform": platform, "kind": kind,
                          "worker_id": national_ids[worker], "amount": int(amount),
                          "occurred_at": f"{label}-{day:02d}T{hour:02d}:15:00+07:00"})

        for worker in HIGH:
            for number in range(3):
                event(worker, number, "shopee", "order", rng.integers(20_000_000, 25_000_000))
        for worker in STEADY + GAPPY:
            if worker in GAPPY and index in GAPS:
                continue
            for number in range(10):
                event(worker, number, "grab", "ride", rng.integers(50_000, 150_000))
        for worker in LUMPY:
            for number in range(2):
                event(worker, number, "lazada", "order", rng.integers(100_000, 900_000))
            if index % 24 == 23:
                event(worker, 2, "lazada", "order", rng.integers(200_000_000, 260_000_000))
        months[label] = items
    return months


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bind")
    pack = load_pack("vn-decree-159")
    workers = se.workers_for_seed(SEED, 12)
    national_ids = workers["national_id"].tolist()
    tiers = {national_ids[worker]: tier for worker, tier in TIERS.items()}
    se.write_tiers_csv(folder / "tiers.csv", [(nid, tier, month_label(0)) for nid, tier in sorted(tiers.items())])
    ledger = Ledger.open(f"sqlite:///{folder}/books.db", pack=pack, secret=SECRET)
    import_tiers(ledger, folder / "tiers.csv")
    months = traffic(national_ids)
    for label, items in months.items():
        outcomes = ingest_batch(ledger, list(enumerate(items, start=1)))
        assert {outcome.outcome for outcome in outcomes} == {"accepted"}
        close_month(ledger, label)
    yield ledger, pack, workers, tiers, [item for items in months.values() for item in items]
    ledger.close()


def ledger_frames(ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(worker-month-scheme worker/platform/subsidy, credited months), by national id."""
    with ledger.engine.connect() as conn:
        national = {worker_id: ledger.keys.decrypt(bytes(blob))
                    for worker_id, blob in query(conn, "SELECT id, national_id_encrypted FROM worker")}
        rows = query(conn, "SELECT worker_id, month, scheme, "
                           "sum(CASE WHEN platform_id <> 0 THEN worker_vnd ELSE 0 END), "
                           "sum(CASE WHEN platform_id <> 0 THEN platform_vnd ELSE 0 END), "
                           "sum(CASE WHEN platform_id = 0 THEN subsidy_vnd ELSE 0 END) "
                           "FROM worker_month GROUP BY worker_id, month, scheme")
        credits = query(conn, "SELECT worker_id, month, close_month, floor_vnd FROM credited_month")
        conn.rollback()
    money = pd.DataFrame(rows, columns=["national_id", "month", "scheme", "worker", "platform", "subsidy"])
    money["national_id"] = money["national_id"].map(national)
    money["scheme"] = money["scheme"].map(SCHEME_OF_CODE)
    credited = pd.DataFrame(credits, columns=["national_id", "month", "close_month", "floor_vnd"])
    credited["national_id"] = credited["national_id"].map(national)
    return _tidy(money), credited.sort_values(["close_month", "national_id", "month"], ignore_index=True)


def simulator_frames(result: engine.ArmResult, national_ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    detail = result.worker_months
    money = pd.concat([pd.DataFrame({
        "national_id": national_ids[detail["worker"].to_numpy()], "month": detail["month"].to_numpy(),
        "scheme": scheme, "worker": detail[f"{scheme}_worker"].to_numpy(),
        "platform": detail[f"{scheme}_platform"].to_numpy(), "subsidy": detail[f"subsidy_{scheme}"].to_numpy()})
        for scheme in SCHEMES], ignore_index=True)
    credited = result.credits.assign(national_id=national_ids[result.credits["worker"].to_numpy()])
    return _tidy(money), credited[["national_id", "month", "close_month", "floor_vnd"]].sort_values(
        ["close_month", "national_id", "month"], ignore_index=True)


def _tidy(money: pd.DataFrame) -> pd.DataFrame:
    money = money[(money[["worker", "platform", "subsidy"]] != 0).any(axis=1)]
    return money.astype({"month": np.int64, "worker": np.int64, "platform": np.int64, "subsidy": np.int64}) \
        .sort_values(["national_id", "month", "scheme"], ignore_index=True)


def disagreements(ledger, simulated: engine.ArmResult, national_ids: np.ndarray) -> list[str]:
    """Every figure where the simulator and the books differ: '<column> <national id> <month> <scheme>: ledger
    <a>, simulator <b>' for money, 'credits: ...' for credited months. Empty when they agree to the dong."""
    (money, credited), (got_money, got_credited) = ledger_frames(ledger), simulator_frames(simulated, national_ids)
    keys = ["national_id", "month", "scheme"]
    joined = money.merge(got_money, on=keys, how="outer", suffixes=("_ledger", "_simulator")).fillna(0)
    found = []
    for column in ("worker", "platform", "subsidy"):
        differ = joined[joined[f"{column}_ledger"] != joined[f"{column}_simulator"]]
        found += [f"{column} {row.national_id[:3]}… {row.month} {row.scheme}: ledger "
                  f"{int(getattr(row, column + '_ledger'))}, simulator {int(getattr(row, column + '_simulator'))}"
                  for row in differ.itertuples()]
    credit_keys = ["national_id", "month", "close_month", "floor_vnd"]
    both = credited.astype({c: np.int64 for c in credit_keys[1:]}).merge(
        got_credited.astype({c: np.int64 for c in credit_keys[1:]}), on=credit_keys, how="outer", indicator="side")
    found += [f"credits: month {row.month} closed {row.close_month} only in the "
              f"{'ledger' if row.side == 'left_only' else 'simulator'}"
              for row in both[both["side"] != "both"].itertuples()]
    return found


def priced(books) -> tuple[engine.ArmResult, np.ndarray]:
    """The simulator over the books' events, priced one row each (no share read from the ledger)."""
    _ledger, pack, workers, tiers, items = books
    population = populations.from_events(items, workers, tiers)
    assert not population.recorded and len(population.months) == MONTHS
    result = engine.run(population, {"baseline": pack}, Budget(), keep_worker_months=True)["baseline"]
    return result, population.workers["national_id"].to_numpy()


def test_the_cap_the_120_month_limit_and_pooled_crediting_all_bind_in_the_books(books):
    ledger, _pack, workers, tiers, _items = books
    money, credited = ledger_frames(ledger)
    si = money[money["scheme"] == "si"]
    rate = si["national_id"].map(lambda nid: {"poor": 500_000, "near_poor": 400_000}.get(tiers.get(nid), 200_000))
    capped = si[(si["worker"] > CAP_VND) & (si["subsidy"] > 0)]
    assert len(capped) >= 2 * LIMIT  # both high earners, every subsidised month
    assert (capped["subsidy"] == (2 * CAP_VND * rate[capped.index] + 1_000_000) // 2_000_000).all()

    subsidised = si[si["subsidy"] > 0].groupby("national_id").size()
    national_ids = workers["national_id"].tolist()
    assert subsidised[national_ids].tolist() == [LIMIT] * len(national_ids)
    after = si[(si["worker"] > 0) & (si["subsidy"] == 0)].groupby("national_id")["month"].agg(["min", "size"])
    assert after.loc[national_ids, "min"].tolist() == [203509 if w in GAPPY else 203507 for w in range(12)]
    assert after.loc[national_ids, "size"].tolist() == [1 if w in GAPPY else 3 for w in range(12)]

    assert (credited["floor_vnd"] == FLOOR_VND).all()
    pooled = credited[credited["month"] < credited["close_month"]]
    assert len(pooled) > 50  # months paid by a later close's pool
    several = credited.groupby(["national_id", "close_month"]).size()
    assert several.max() >= 3  # a lumpy seller's big order pays several months at one close
    per_high = credited[credited["national_id"] == national_ids[HIGH[0]]]
    assert len(per_high) == MONTHS and (per_high["month"] == per_high["close_month"]).all()  # never ahead of M


def test_priced_one_row_each_the_simulator_agrees_with_the_books_to_the_dong_where_every_rule_binds(books):
    ledger = books[0]
    result, national_ids = priced(books)

    assert disagreements(ledger, result, national_ids) == []
    assert int(result.worker_totals["pension_months"].sum()) == len(ledger_frames(ledger)[1])


def test_a_replay_of_the_books_agrees_with_them_where_every_rule_binds(books):
    ledger, pack = books[0], books[1]
    population = populations.from_db(str(ledger.engine.url))
    result = engine.run(population, {"baseline": pack}, Budget(), keep_worker_months=True)["baseline"]
    with ledger.engine.connect() as conn:
        national = {worker_id: ledger.keys.decrypt(bytes(blob))
                    for worker_id, blob in query(conn, "SELECT id, national_id_encrypted FROM worker")}
        conn.rollback()
    national_ids = population.workers["ledger_worker_id"].map(national).to_numpy()

    assert disagreements(ledger, result, national_ids) == []


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_the_agreement_check_fails_when_a_rules_kernel_is_mutated(books, mutant, monkeypatch):
    from rules import kernels

    name, replacement = MUTANTS[mutant]
    monkeypatch.setattr(kernels, name, replacement)
    result, national_ids = priced(books)
    found = disagreements(books[0], result, national_ids)

    assert found
    columns = {line.split(" ", 1)[0] for line in found}
    if mutant == "dropped cap":  # only subsidies above the cap change, and the credits their si pays
        assert "subsidy" in columns and not columns & {"worker", "platform"}
        assert all(int(line.split("simulator ")[1]) > int(line.split("ledger ")[1].split(",")[0])
                   for line in found if line.startswith("subsidy"))
    else:  # floored shares: the worker's si and ui withheld, the platform's oa
        assert {"worker", "platform"} <= columns
