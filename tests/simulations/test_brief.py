"""The brief: national figures weighted to the calibrated totals, in Vietnamese and English, with no raw
column name; the validation against every calibration target and against the ledger's closed months."""
from __future__ import annotations

import html
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from simulations import brief, report
from simulations.calibration import DEFAULT_TARGETS
from simulations.run import run_scenario
from simulations.scenario import parse_scenario

SCENARIO = {"name": "brief", "baseline": "vn-pilot", "start": "2026-01", "horizon_months": 3, "seed": 42,
            "population": {"synthetic": {"workers": 3_000}},
            "reforms": {"poor-50": {"changes": {"tiers.poor": 500_000}},
                        "ride-1.2pct": {"changes": {"rates.ride.si.worker": {"2026-02-01": 12_000}}}}}
RAW_IDENTIFIER = re.compile(r"\b[A-Za-z0-9.]+_[A-Za-z0-9_.]+\b")


@pytest.fixture(scope="module")
def small_run():
    return run_scenario(parse_scenario(SCENARIO))


def reader_text(page: str) -> str:
    """What a person reads: no style, no inlined image data, no text marked as code (file names in citations)."""
    page = re.sub(r"<style>.*?</style>|<code>.*?</code>", " ", page, flags=re.S)
    page = re.sub(r'src="[^"]*"', " ", page)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_brief_renders_in_each_language_with_no_raw_column_name_and_no_year_with_a_thousands_separator(
        small_run, lang):
    page = report.render_html(small_run, report.render_charts(small_run, lang), lang=lang)
    text = reader_text(page)

    assert RAW_IDENTIFIER.findall(text) == []
    assert "year 2,0" not in text and "2,026" not in text and "2.026" not in text
    assert f'<html lang="{lang}">' in page
    lead = text.index("Tóm tắt" if lang == "vi" else "Summary")
    assert lead < text.index("Kiểm định" if lang == "vi" else "Validation")  # the brief comes first
    money = "₫" if lang == "vi" else "VND"
    cost = brief.national(small_run)["per_arm"]["baseline"]["subsidy_per_year_vnd"]
    assert brief.formats(lang).money(cost) in text and money in text


def test_the_headline_national_cost_is_the_weighted_sum_of_the_workers_subsidies_per_year():
    totals = pd.DataFrame({"subsidy_vnd": [10, 20, 30], "pension_months": [0, 1, 2], "gross_vnd": [1, 1, 0],
                           "take_home_vnd": [5, 5, 5]})
    arm = SimpleNamespace(worker_totals=totals)
    population = SimpleNamespace(weights=np.array([1.0, 2.0, 3.5]), months=(202601, 202602, 202603),
                                 source={})
    results = SimpleNamespace(tables={"summary": pd.DataFrame({"arm": ["baseline"], "leakage_per_mille": [0]}),
                                      "headline_ranges": pd.DataFrame()})
    run = SimpleNamespace(population=population, arms={"baseline": arm}, results=results)

    figures = brief.national(run)["per_arm"]["baseline"]

    assert figures["subsidy_vnd"] == 10 + 40 + 105  # Σ weight × subsidy
    assert figures["subsidy_per_year_vnd"] == 155 * 4  # three months of a year
    assert figures["credited_months"] == 2 + 7  # 1 × 2 + 2 × 3.5
    assert figures["workers_credited"] == 6  # 2 + 3.5, rounded once
    assert figures["workers_active"] == 3  # weights 1 + 2 of the workers with income


def test_on_a_calibrated_run_the_national_cost_is_the_weighted_sum_of_the_engine_s_per_worker_subsidies(small_run):
    weights = small_run.population.weights
    for arm, result in small_run.arms.items():
        per_worker = result.worker_totals["subsidy_vnd"].to_numpy()
        expected = int(round(sum(w * int(s) for w, s in zip(weights.tolist(), per_worker.tolist())) * 12 / 3))
        assert abs(brief.national(small_run)["per_arm"][arm]["subsidy_per_year_vnd"] - expected) <= 1
    assert abs(float(weights.sum()) - brief.national(small_run)["weighted_workers"]) < 1


def test_the_validation_table_lists_every_figure_of_the_targets_file_with_its_error_and_source(small_run):
    document = yaml.safe_load(DEFAULT_TARGETS.read_text(encoding="utf-8"))
    expected = {("workers", "total")}
    for margin, body in document["shares"].items():
        expected |= {(f"share {margin}", str(category)) for category in body["values"]}
    expected |= {(f"mean {body['of']}", name) for name, body in document["means"].items()}

    table = brief.validation_targets(small_run)

    assert set(zip(table["figure"], table["category"])) == expected
    assert table["source"].str.len().min() > 20 and (table["tolerance_ppm"] >= 0).all()
    fitted = table[table["calibrated"]]
    assert (fitted["error_ppm"].abs() <= fitted["tolerance_ppm"]).all()


def test_a_replay_of_books_reproduces_the_ledger_s_closed_months_with_no_difference(tmp_path):
    from rules import load_pack
    from tests.simulations.test_engine_agrees_with_ledger import build_ledger

    ledger, *_ = build_ledger(tmp_path, load_pack("vn-pilot"))
    url = str(ledger.engine.url)
    scenario = parse_scenario({**SCENARIO, "horizon_months": 2, "reforms": {}})
    try:
        run = run_scenario(scenario, from_db=url)
        table = brief.validation_ledger(run, url)
    finally:
        ledger.close()

    assert table["month"].tolist() == [202601] * 3 + [202602] * 3
    assert (table["difference"] == 0).all()
    assert table.loc[table["figure"] == "contributions_vnd", "ledger"].min() > 0
    assert table.loc[table["figure"] == "subsidy_vnd", "ledger"].sum() > 0


def test_a_written_run_has_an_excel_workbook_a_pdf_and_the_brief_and_validation_tables(small_run, tmp_path):
    import openpyxl

    written = report.write(small_run, tmp_path, lang="en")

    workbook = openpyxl.load_workbook(written["excel"], read_only=True)
    assert {"summary", "brief_national", "validation_targets"} <= set(workbook.sheetnames)
    assert written["pdf"].read_bytes()[:5] == b"%PDF-"
    national = pd.read_parquet(tmp_path / "tables" / "brief_national.parquet").set_index("arm")
    assert national.loc["baseline", "subsidy_per_year_vnd"] == \
        brief.national(small_run)["per_arm"]["baseline"]["subsidy_per_year_vnd"]
