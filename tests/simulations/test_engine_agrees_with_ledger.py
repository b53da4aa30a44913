"""The simulator and the ledger give the same numbers, to the dong.

A small population's events (synthetic_events, two months, with refunds, re-sends and
bad events) go through the real ingest into a real SQLite ledger; tiers are imported,
the months closed in order. The simulator then replays the ledger (`from_db`) with the
same pack and must reproduce every worker-month-scheme contribution and subsidy, the
settlement and the state's total. A second check prices clean events one row each
(`from_events`) and must match the ledger without reading a single share from it.

Months credited towards a pension (RULES.md §11): the simulator's credits (worker, month,
the close that credited it, the floor it paid) must be the ledger's `credited_month` rows.
vn-pilot's 330,000 VND floor credits nobody in two months of this traffic, so two packs
lower it (8,000 VND in January, 12,000 from February: a dated floor), one pooled, one
per_month.
"""
from __future__ import annotations

import dataclasses
import secrets
from datetime import date

import numpy as np
import pandas as pd
import pytest

from ledger.books import Ledger
from ledger.close import close_month, import_tiers
from ledger.ingest import ingest_batch
from ledger.reports import settlement
from ledger.store import query
from rules import SCHEMES, RulesPack, load_pack
from simulations import engine
from simulations import population as populations
from simulations import synthetic_events as se
from simulations.scenario import Budget

SEED = 20260305
WORKERS = 250
SECRET = secrets.token_hex(32)  # fresh per run: committed secrets are refused (docs/security.md)
SCHEME_OF_CODE = {index + 1: scheme for index, scheme in enumerate(SCHEMES)}


def one_month_decree_pack() -> RulesPack:
    """vn-decree-159 with max_subsidised_months = 1, so month two tests the counting of months."""
    decree = load_pack("vn-decree-159")
    version = dataclasses.replace(decree.versions[0], pack="decree-one-month", max_subsidised_months=1)
    return RulesPack("decree-one-month", "test pack", (version,))


def low_floor_pack(crediting: str) -> RulesPack:
    """vn-pilot's rates with a floor of 8,000 VND in January and 12,000 from February, credited `crediting`."""
    name = f"low-floor-{crediting.replace('_', '-')}"
    january = dataclasses.replace(load_pack("vn-pilot").versions[0], pack=name, crediting=crediting,
                                  pension_floor_contribution_vnd=8_000)
    february = dataclasses.replace(january, effective_from=date(2026, 2, 1), pension_floor_contribution_vnd=12_000)
    return RulesPack(name, "test pack", (january, february))


def month_events(month: str, seed: int, **rates) -> list:
    """A month's traffic with event ids made unique across months (one id space per platform)."""
    items = []
    for item in se.generate_events(seed=seed, month=month, workers=WORKERS, events=4000, **rates):
        if isinstance(item, dict):
            item = dict(item)
            for field in ("event_id", "original_event_id"):
                if isinstance(item.get(field), str) and item[field]:
                    item[field] = f"{month}.{item[field]}"
        items.append(item)
    return items


def build_ledger(tmp_path, pack, **rates):
    ledger = Ledger.open(f"sqlite:///{tmp_path}/books.db", pack=pack, secret=SECRET)
    workers = se.workers_for_seed(SEED, WORKERS)
    rows = se.household_tiers(workers, np.random.default_rng(SEED), valid_from="2026-01")
    # A status change in February: the first ten `other` workers become poor.
    listed = {row[0] for row in rows}
    changed = [(nid, "poor", "2026-02") for nid in workers["national_id"].tolist() if nid not in listed][:10]
    se.write_tiers_csv(tmp_path / "tiers.csv", rows + changed)
    import_tiers(ledger, tmp_path / "tiers.csv")
    items = {"2026-01": month_events("2026-01", SEED, **rates), "2026-02": month_events("2026-02", SEED, **rates)}
    for month, stream in items.items():
        ingest_batch(ledger, list(enumerate(stream, start=1)))
        close_month(ledger, month)
    return ledger, workers, rows + changed, items


def ledger_worker_months(ledger) -> pd.DataFrame:
    with ledger.engine.connect() as conn:
        rows = query(conn, "SELECT worker_id, month, scheme, "
                           "sum(CASE WHEN platform_id <> 0 THEN worker_vnd ELSE 0 END), "
                           "sum(CASE WHEN platform_id <> 0 THEN platform_vnd ELSE 0 END), "
                           "sum(CASE WHEN platform_id = 0 THEN subsidy_vnd ELSE 0 END) "
                           "FROM worker_month GROUP BY worker_id, month, scheme")
        conn.rollback()
    frame = pd.DataFrame(rows, columns=["ledger_worker_id", "month", "scheme", "worker", "platform", "subsidy"])
    frame["scheme"] = frame["scheme"].map(SCHEME_OF_CODE)
    frame = frame[(frame[["worker", "platform", "subsidy"]] != 0).any(axis=1)]
    return frame.sort_values(["ledger_worker_id", "month", "scheme"]).reset_index(drop=True)


def simulator_worker_months(result: engine.ArmResult, population: populations.Population,
                            id_column: str) -> pd.DataFrame:
    detail = result.worker_months
    ids = population.workers[id_column].to_numpy()
    rows = []
    for scheme in SCHEMES:
        rows.append(pd.DataFrame({
            "ledger_worker_id": ids[detail["worker"].to_numpy()], "month": detail["month"].to_numpy(),
            "scheme": scheme, "worker": detail[f"{scheme}_worker"].to_numpy(),
            "platform": detail[f"{scheme}_platform"].to_numpy(),
            "subsidy": detail[f"subsidy_{scheme}"].to_numpy()}))
    frame = pd.concat(rows, ignore_index=True)
    frame = frame[(frame[["worker", "platform", "subsidy"]] != 0).any(axis=1)]
    return frame.sort_values(["ledger_worker_id", "month", "scheme"]).reset_index(drop=True)


def ledger_credits(ledger, worker_of: dict) -> pd.DataFrame:
    """The ledger's `credited_month` rows as (worker, month, close_month, floor_vnd), workers mapped by `worker_of`."""
    with ledger.engine.connect() as conn:
        rows = query(conn, "SELECT worker_id, month, close_month, floor_vnd FROM credited_month")
        conn.rollback()
    frame = pd.DataFrame(rows, columns=["worker", "month", "close_month", "floor_vnd"])
    frame["worker"] = frame["worker"].map(worker_of)
    return frame.sort_values(["close_month", "worker", "month"], ignore_index=True)


PACKS = {"vn-pilot": lambda: load_pack("vn-pilot"), "decree-one-month": one_month_decree_pack,
         "low-floor-pooled": lambda: low_floor_pack("pooled"), "low-floor-per-month": lambda: low_floor_pack("per_month")}


@pytest.fixture(scope="module", params=list(PACKS))
def books(request, tmp_path_factory):
    pack = PACKS[request.param]()
    ledger, _workers, _tiers, _items = build_ledger(tmp_path_factory.mktemp(request.param), pack)
    yield ledger, pack
    ledger.close()


def test_a_ledger_replay_reproduces_every_worker_month_contribution_and_subsidy_to_the_dong(books):
    ledger, pack = books
    population = populations.from_db(str(ledger.engine.url))
    result = engine.run(population, {"baseline": pack}, Budget(), keep_worker_months=True)["baseline"]

    expected = ledger_worker_months(ledger)
    got = simulator_worker_months(result, population, "ledger_worker_id")

    assert len(expected) > 300 and expected["subsidy"].sum() > 0
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_a_ledger_replay_matches_the_settlement_of_every_closed_month(books):
    ledger, pack = books
    population = populations.from_db(str(ledger.engine.url))
    result = engine.run(population, {"baseline": pack}, Budget())["baseline"]

    for month in (202601, 202602):
        report = settlement(ledger, f"{month // 100}-{month % 100:02d}")
        revenue = result.revenue[result.revenue["month"] == month]
        for platform, dues in report["platforms"].items():
            mine = revenue[revenue["platform"] == platform]
            for scheme in SCHEMES:
                assert int(mine[[f"{scheme}_worker", f"{scheme}_platform"]].to_numpy().sum()) == dues[scheme]
        budget = result.by_month_tier[result.by_month_tier["month"] == month]
        for scheme in SCHEMES:
            assert int(budget.loc[budget["scheme"] == scheme, "subsidy_vnd"].sum()) == report["subsidy"][scheme]


def test_a_ledger_replay_credits_the_months_the_ledger_credited_at_the_same_closes_and_floors(books):
    ledger, pack = books
    population = populations.from_db(str(ledger.engine.url))
    result = engine.run(population, {"baseline": pack}, Budget(), keep_worker_months=True)["baseline"]
    index_of = dict(zip(population.workers["ledger_worker_id"].tolist(), population.workers["worker"].tolist()))

    expected = ledger_credits(ledger, index_of)
    got = result.credits.astype({"worker": np.int64})

    if pack.name.startswith("low-floor"):
        assert len(expected) > 50 and set(expected["floor_vnd"]) == {8_000, 12_000}
    if pack.name == "low-floor-pooled":  # pooling pays January and February at one close for some workers
        assert (expected.groupby(["worker", "close_month"]).size() == 2).any()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert (result.worker_totals.set_index("worker")["pension_months"].to_numpy()
            == np.bincount(expected["worker"], minlength=len(population.workers))).all()


def test_with_at_most_one_subsidised_month_nobody_subsidised_in_january_is_subsidised_in_february(books):
    ledger, pack = books
    if pack.versions[0].max_subsidised_months != 1:
        pytest.skip("only the one-month pack limits subsidised months")
    population = populations.from_db(str(ledger.engine.url))
    detail = engine.run(population, {"baseline": pack}, Budget(), keep_worker_months=True)["baseline"].worker_months
    paid = detail.assign(total=detail[[f"subsidy_{s}" for s in SCHEMES]].sum(axis=1))
    january = set(paid.loc[(paid["month"] == 202601) & (paid["total"] > 0), "worker"])
    february = set(paid.loc[(paid["month"] == 202602) & (paid["total"] > 0), "worker"])

    assert january and february and not (january & february)


def test_clean_events_priced_one_row_each_match_the_ledger_and_its_credits_without_reading_its_shares(tmp_path):
    pack = low_floor_pack("pooled")  # vn-pilot's rates: the shares are vn-pilot's
    ledger, workers, tiers, items = build_ledger(tmp_path, pack, refund_rate=0.0, duplicate_rate=0.0,
                                                 bad_rate=0.0)
    try:
        tier_of = {}
        for national_id, tier, valid_from in sorted(tiers, key=lambda row: row[2]):
            tier_of.setdefault(valid_from, {})[national_id] = tier
        frames = []
        for month, stream in items.items():
            in_force = {**tier_of["2026-01"], **(tier_of.get("2026-02", {}) if month == "2026-02" else {})}
            frames.append(populations.from_events(stream, workers, in_force).activity)
        population = populations.from_events(items["2026-01"], workers, tier_of["2026-01"])
        activity = pd.concat(frames, ignore_index=True).sort_values(
            ["month", "worker", "platform", "kind"], kind="stable", ignore_index=True)
        population = dataclasses.replace(population, activity=activity)
        assert not population.recorded
        result = engine.run(population, {"baseline": pack}, Budget(), keep_worker_months=True)["baseline"]

        with ledger.engine.connect() as conn:
            ids = {row[0]: row[1] for row in query(conn, "SELECT id, national_id_encrypted FROM worker")}
            conn.rollback()
        national_of_ledger = {worker_id: ledger.keys.decrypt(bytes(blob)) for worker_id, blob in ids.items()}
        expected = ledger_worker_months(ledger)
        expected["ledger_worker_id"] = expected["ledger_worker_id"].map(national_of_ledger)
        expected = expected.sort_values(["ledger_worker_id", "month", "scheme"]).reset_index(drop=True)
        got = simulator_worker_months(result, population, "national_id")

        assert expected["worker"].sum() > 1_000_000
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)

        national_ids = population.workers["national_id"].tolist()
        credits = ledger_credits(ledger, {worker_id: national_ids.index(national)
                                          for worker_id, national in national_of_ledger.items()
                                          if national in national_ids})
        assert len(credits) > 100
        pd.testing.assert_frame_equal(result.credits, credits, check_dtype=False)
    finally:
        ledger.close()
