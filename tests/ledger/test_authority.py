"""Reports to the authorities and the state claim exclude nothing and invent nothing: on the public
vectors, every closed month's totals equal its settlement, to the dong (docs/payments.md)."""
from __future__ import annotations

import csv
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.authority import (CONTRIBUTIONS_LAYOUT, OTHER, authority_aggregates, state_claim, suppress_small_cells,
                              write_contributions)
from ledger.close import close_month, import_tiers
from ledger.ingest import ingest_stream
from ledger.money import bills_of_month
from ledger.readers import read_events
from ledger.reports import settlement
from ledger.verify import verify


def run_vectors(ledger, vectors) -> list[str]:
    """Play steps.txt through the ledger's own functions; return the months closed."""
    closed = []
    for step in (vectors / "steps.txt").read_text().split("\n"):
        words = step.split()
        if words[:2] == ["tiers", "import"]:
            import_tiers(ledger, vectors / words[2])
        elif words and words[0] == "ingest":
            for _outcomes in ingest_stream(ledger, read_events(str(vectors / words[1]))):
                pass
        elif words and words[0] == "close":
            close_month(ledger, words[1])
            closed.append(words[1])
    return closed


def test_reports_claims_and_bills_equal_the_settlement_of_every_vector_month(ledger, shared_dir, tmp_path):
    months = run_vectors(ledger, shared_dir / "spec" / "vectors")
    assert months == ["2026-01", "2026-02", "2026-03"]
    for month in months:
        report = settlement(ledger, month)
        dues = sum(sum(by_scheme.values()) for by_scheme in report["platforms"].values())
        subsidy = sum(report["subsidy"].values())
        assert dues > 0 and subsidy > 0  # the vectors book something every month

        lines = authority_aggregates(ledger, month)
        assert sum(line["worker_vnd"] + line["platform_vnd"] for line in lines) == dues
        assert sum(line["subsidy_vnd"] for line in lines) == subsidy
        assert sum(line["total_vnd"] for line in lines) == report["control_total_vnd"]
        by_platform: dict[str, int] = {}
        for line in lines:
            by_platform[line["platform"]] = by_platform.get(line["platform"], 0) + line["total_vnd"]
        assert {name: total for name, total in by_platform.items() if name != "state_budget"} == \
            {name: sum(by_scheme.values()) for name, by_scheme in report["platforms"].items()}

        claim = state_claim(ledger, month)
        assert claim["schemes"] == report["subsidy"]
        assert claim["control_total_vnd"] == claim["claimed_vnd"] == subsidy
        for group in ("by_tier", "by_province"):
            assert {s: sum(row[s] for row in claim[group].values()) for s in ("si", "oa", "ui")} == report["subsidy"]

        bills = {bill["payer"]: bill["amount_vnd"] for bill in bills_of_month(ledger, month) if bill["kind"] == "bill"}
        assert bills == {name: sum(by_scheme.values()) for name, by_scheme in report["platforms"].items()}

        written = write_contributions(ledger, month, tmp_path / f"contributions-{month}.csv")
        assert (written["worker_vnd"] + written["platform_vnd"], written["subsidy_vnd"]) == (dues, subsidy)
        data = (tmp_path / f"contributions-{month}.csv").read_bytes()
        assert hashlib.sha256(data).hexdigest() == written["sha256"]
        assert (tmp_path / f"contributions-{month}.csv.sha256").read_text().split()[0] == written["sha256"]
        rows = list(csv.DictReader(data.decode().splitlines()))
        assert {row["layout"] for row in rows} == {CONTRIBUTIONS_LAYOUT}
        assert sum(int(row["total_vnd"]) for row in rows) == report["control_total_vnd"]
    assert [(check.name, check.problem) for check in verify(ledger) if check.problem] == []


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(cells=st.dictionaries(
    st.tuples(st.sampled_from(["001", "079", "048"]), st.sampled_from(["grab", "be"]), st.just("ride"),
              st.sampled_from(["other", "poor", "near_poor"])),
    st.tuples(st.sets(st.integers(1, 40), max_size=15), st.integers(0, 10**6), st.integers(0, 10**6)),
    max_size=12), k=st.integers(2, 12))
def test_finding_8_no_suppressed_line_covers_fewer_than_k_workers_and_the_control_total_is_kept(cells, k):
    groups = {key: [set(workers), worker_vnd, platform_vnd, 0] for key, (workers, worker_vnd, platform_vnd)
              in cells.items()}
    everyone = set().union(*(cell[0] for cell in groups.values())) if groups else set()
    total = sum(cell[1] + cell[2] for cell in groups.values())
    shown = suppress_small_cells({key: [set(c[0]), *c[1:]] for key, c in groups.items()}, k)
    if len(everyone) < k:
        assert shown == {}  # too few workers in all: nothing to show
        return
    assert all(len(cell[0]) >= k for cell in shown.values())
    assert sum(cell[1] + cell[2] for cell in shown.values()) == total  # nothing dropped, nothing invented
    for key, cell in shown.items():
        if OTHER not in key:
            assert cell == groups[key]  # a cell shown is shown whole
    hidden = [key for key in groups if key not in shown]
    assert not hidden or any(OTHER in key for key in shown)  # what is hidden sits in an "other" line
