"""The brief: what a ministry reads first, in Vietnamese or English — national figures, then validation.

The engine and the results tables stay unweighted (one row per synthetic worker); the brief
scales them to the country with `Population.weights` (the calibration's national workers
each person stands for, `simulations/calibration.py`): a national figure is Σ weight × the
worker's figure, rounded once at the end (`national`). Per year means the horizon's total
× 12 / the months simulated. Ranges are the bootstrap ranges of `headline_ranges` (over
the unweighted sample) scaled by the same national ÷ sample ratio as their figure: sampling
noise of the sample, told at national scale, not model uncertainty.

Validation (`validation_targets`, `validation_ledger`): the calibrated baseline against every
figure of the targets file (target, weighted figure, error, tolerance, source), and, for a
`--from-db` replay, the baseline against the ledger's own closed months (contributions,
subsidy, credited months: ledger, simulator, difference).

Words live here, not in the report: every label a person sees has a Vietnamese and an
English form; money, counts and months go through `api.formats` (no "year 2,026").
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from api.formats import formats

LANGS = ("vi", "en")

WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Bản tóm tắt chính sách", "scenario": "Kịch bản", "baseline": "Hiện hành",
        "brief": "Tóm tắt", "national_note": "Số liệu quy mô cả nước: mỗi người lao động mô phỏng được gán trọng số "
        "theo tổng số toàn quốc đã hiệu chỉnh ({workers} người lao động nền tảng làm việc cùng lúc; {ever} người làm việc ít nhất một tháng trong kỳ). Khoảng trong ngoặc vuông là "
        "khoảng 95 % (bootstrap trên mẫu), không phải độ bất định của mô hình.",
        "cost": "Chi ngân sách nhà nước cho hỗ trợ đóng: {value} mỗi năm",
        "cost_delta": "{arm}: chi ngân sách {value} mỗi năm, {delta} so với hiện hành",
        "take_home": "{arm}: thu nhập thực nhận tăng với {up} người, giảm với {down} người",
        "months": "{arm}: số tháng được tính hưởng lương hưu tăng với {up} người, giảm với {down} người",
        "credited": "Số tháng được tính hưởng lương hưu trong kỳ: {value}",
        "coverage": "Độ bao phủ: {value} người lao động ({share}) được tính ít nhất một tháng",
        "leakage": "Rò rỉ: {share} tiền hỗ trợ đến 30 % người có thu nhập cao nhất",
        "charts": "Biểu đồ", "tables": "Bảng số liệu", "validation": "Kiểm định",
        "validation_targets": "Kịch bản hiện hành so với các chỉ tiêu hiệu chỉnh",
        "validation_ledger": "Kịch bản hiện hành so với các tháng đã khoá sổ của sổ cái",
        "no_targets": "Dân số không được hiệu chỉnh (không có trọng số).",
        "target": "Chỉ tiêu", "category": "Nhóm", "simulated": "Mô phỏng (có trọng số)", "error": "Sai số",
        "tolerance": "Dung sai", "source": "Nguồn", "status": "Loại số liệu", "fitted": "Hiệu chỉnh",
        "yes": "có", "no": "không", "month": "Tháng", "figure": "Chỉ tiêu", "ledger": "Sổ cái",
        "simulator": "Mô phỏng", "difference": "Chênh lệch",
        "contributions": "Tiền đóng (người lao động và nền tảng)", "subsidy": "Hỗ trợ của nhà nước",
        "credited_months": "Số tháng được tính", "arm": "Phương án", "year": "Năm", "low": "Thấp",
        "high": "Cao", "value": "Giá trị", "unit_year": "mỗi năm",
        "share_workers": "Tỷ trọng người lao động", "mean_earnings": "Thu nhập bình quân",
    },
    "en": {
        "title": "Policy brief", "scenario": "Scenario", "baseline": "Baseline",
        "brief": "Summary", "national_note": "National figures: each simulated worker is weighted to the "
        "calibrated national totals ({workers} platform workers at work at one time; {ever} who work at least one month of the horizon). Square brackets give the 95 % range "
        "(a bootstrap of the sample), not the model's uncertainty.",
        "cost": "State budget cost of the top-ups: {value} a year",
        "cost_delta": "{arm}: the state pays {value} a year, {delta} against the baseline",
        "take_home": "{arm}: take-home pay rises for {up} workers and falls for {down}",
        "months": "{arm}: months credited towards a pension rise for {up} workers and fall for {down}",
        "credited": "Months credited towards a pension over the horizon: {value}",
        "coverage": "Coverage: {value} workers ({share}) credited at least one month",
        "leakage": "Leakage: {share} of the top-ups reach the richest 30 % by income",
        "charts": "Charts", "tables": "Tables", "validation": "Validation",
        "validation_targets": "The baseline against the calibration targets",
        "validation_ledger": "The baseline against the ledger's closed months",
        "no_targets": "The population is not calibrated (no weights).",
        "target": "Target", "category": "Group", "simulated": "Simulated (weighted)", "error": "Error",
        "tolerance": "Tolerance", "source": "Source", "status": "Kind of figure", "fitted": "Fitted",
        "yes": "yes", "no": "no", "month": "Month", "figure": "Figure", "ledger": "Ledger",
        "simulator": "Simulator", "difference": "Difference",
        "contributions": "Contributions (workers and platforms)", "subsidy": "State top-up",
        "credited_months": "Credited months", "arm": "Option", "year": "Year", "low": "Low",
        "high": "High", "value": "Value", "unit_year": "a year",
        "share_workers": "Share of workers", "mean_earnings": "Mean earnings",
    },
}


def words(lang: str) -> dict[str, str]:
    return WORDS[lang if lang in LANGS else "vi"]


def _weighted(weights: np.ndarray, values: np.ndarray) -> int:
    """Σ weight × value, rounded once (float64: exact to the dong below ~9·10^15 VND). numpy's pairwise sum, as
    the national tables add (simulations/national.py): no BLAS call, whose threads spin on a busy machine."""
    return int(round(float(np.multiply(weights, values, dtype=np.float64).sum())))


def national(run) -> dict[str, Any]:
    """Per arm: the national figures of the brief (ints), and for each reform its changes and ranges.

    Computed once per run (the report asks three times: tables, HTML, PDF; ~30 weighted sums over
    every worker each time); each caller gets its own copy."""
    import copy

    kept = getattr(run, "_brief_national", None)
    if kept is None:
        kept = _national(run)
        try:
            run._brief_national = kept
        except AttributeError:  # a run that takes no attributes: computed each time
            pass
    return copy.deepcopy(kept)


def _national(run) -> dict[str, Any]:
    from simulations.national import leakage_per_mille

    weights = run.population.weights
    months = max(len(run.population.months), 1)
    summary = run.results.tables["summary"].set_index("arm")
    ranges = run.results.tables["headline_ranges"]
    arms = list(run.arms)
    base = run.arms[arms[0]].worker_totals
    calibration = run.population.source.get("calibration") or {}
    figures: dict[str, Any] = {"arms": arms, "months": months,
                               "national_workers": int(calibration.get("national_workers", len(weights))),
                               "weighted_workers": _weighted(weights, np.ones(len(weights))), "per_arm": {}}
    for arm in arms:
        totals = run.arms[arm].worker_totals
        subsidy = totals["subsidy_vnd"].to_numpy()
        credited = totals["pension_months"].to_numpy()
        active = totals["gross_vnd"].to_numpy() > 0
        subsidy_total = _weighted(weights, subsidy)
        sample_total = int(subsidy.sum())
        row: dict[str, Any] = {
            "subsidy_vnd": subsidy_total,
            "subsidy_per_year_vnd": int(round(subsidy_total * 12 / months)),
            "credited_months": _weighted(weights, credited),
            "workers_active": _weighted(weights, active),
            "workers_credited": _weighted(weights, credited > 0),
            # Weighted, as the national tables' (simulations/national.py): with weights 1, the sample's.
            "leakage_per_mille": leakage_per_mille(weights, totals["gross_vnd"].to_numpy(), subsidy),
        }
        scale = subsidy_total / sample_total if sample_total else 0.0
        row["subsidy_per_year_range_vnd"] = _range(ranges, arm, "subsidy_vnd", scale * 12 / months)
        if arm != arms[0]:
            take_home = totals["take_home_vnd"].to_numpy() - base["take_home_vnd"].to_numpy()
            change = credited - base["pension_months"].to_numpy()
            row.update({
                "take_home_winners": _weighted(weights, take_home > 0),
                "take_home_losers": _weighted(weights, take_home < 0),
                "credited_months_winners": _weighted(weights, change > 0),
                "credited_months_losers": _weighted(weights, change < 0),
            })
            sample = {key: int(summary.loc[arm, key]) for key in
                      ("take_home_winners", "take_home_losers", "credited_months_winners", "credited_months_losers")}
            for key, count in sample.items():
                row[f"{key}_range"] = _range(ranges, arm, key, row[key] / count if count else 0.0)
        figures["per_arm"][arm] = row
    first = figures["per_arm"][arms[0]]["subsidy_per_year_vnd"]
    for arm in arms[1:]:
        figures["per_arm"][arm]["subsidy_per_year_delta_vnd"] = figures["per_arm"][arm]["subsidy_per_year_vnd"] - first
    return figures


def _range(ranges: pd.DataFrame, arm: str, figure: str, scale: float) -> tuple[int, int] | None:
    if ranges.empty or "figure" not in ranges:
        return None
    found = ranges[(ranges["arm"] == arm) & (ranges["figure"] == figure)]
    if found.empty:
        return None
    return (int(round(float(found["low"].iloc[0]) * scale)), int(round(float(found["high"].iloc[0]) * scale)))


def _per_mille(value: int, lang: str) -> str:
    text = f"{value / 10:.1f}"
    return (text.replace(".", ",") if lang == "vi" else text) + " %"


def sentences(figures: dict[str, Any], lang: str, labels: dict[str, str] | None = None) -> list[str]:
    """The brief's lines, national and in `lang`; each figure with its range where one was computed.
    `labels`: how an arm is named (its scenario name by default; the baseline is "Baseline")."""
    w, f = words(lang), formats(lang)
    labels = labels or {}

    def money(value: int, bounds=None) -> str:
        text = f.money(value)
        return text + (f" [{f.money(bounds[0])} – {f.money(bounds[1])}]" if bounds else "")

    def count(value: int, bounds=None) -> str:
        return f.count(value) + (f" [{f.count(bounds[0])} – {f.count(bounds[1])}]" if bounds else "")

    arms = figures["arms"]
    base = figures["per_arm"][arms[0]]
    lines = [w["cost"].format(value=money(base["subsidy_per_year_vnd"], base["subsidy_per_year_range_vnd"]))]
    for arm in arms[1:]:
        mine = figures["per_arm"][arm]
        delta = mine["subsidy_per_year_delta_vnd"]
        label = labels.get(arm, arm)
        lines.append(w["cost_delta"].format(arm=label, value=money(mine["subsidy_per_year_vnd"],
                                                                 mine["subsidy_per_year_range_vnd"]),
                                            delta=("+" if delta > 0 else "") + f.money(delta)))
        lines.append(w["take_home"].format(arm=label, up=count(mine["take_home_winners"],
                                                             mine.get("take_home_winners_range")),
                                           down=count(mine["take_home_losers"], mine.get("take_home_losers_range"))))
        lines.append(w["months"].format(arm=label, up=count(mine["credited_months_winners"],
                                                          mine.get("credited_months_winners_range")),
                                        down=count(mine["credited_months_losers"],
                                                   mine.get("credited_months_losers_range"))))
    for arm in arms:
        mine = figures["per_arm"][arm]
        label = w["baseline"] if arm == arms[0] else labels.get(arm, arm)
        share = mine["workers_credited"] * 1000 // max(mine["workers_active"], 1)
        lines.append(f"{label} · " + w["credited"].format(value=f.count(mine["credited_months"])))
        lines.append(f"{label} · " + w["coverage"].format(value=f.count(mine["workers_credited"]),
                                                          share=_per_mille(share, lang)))
        lines.append(f"{label} · " + w["leakage"].format(share=_per_mille(mine["leakage_per_mille"], lang)))
    return lines


# -- validation ---------------------------------------------------------------------------

def validation_targets(run) -> pd.DataFrame:
    """One row per figure of the targets file: target, weighted figure, error (ppm), tolerance, fitted, source."""
    calibration = run.population.source.get("calibration")
    columns = ["figure", "category", "target", "simulated", "error_ppm", "tolerance_ppm", "calibrated", "status",
               "source"]
    if not calibration:
        return pd.DataFrame(columns=columns)
    rows = [{"figure": row["figure"], "category": row["category"], "target": row["target"],
             "simulated": row["after"], "error_ppm": row["error_ppm"], "tolerance_ppm": row["tolerance_ppm"],
             "calibrated": row["calibrated"], "status": row["status"], "source": " ".join(str(row["source"]).split())}
            for row in calibration["rows"]]
    return pd.DataFrame(rows, columns=columns)


def ledger_months(url: str) -> pd.DataFrame:
    """The ledger's own closed months: contributions, subsidy and months credited by each close (read-only)."""
    from ledger.store import database_url, make_engine, query

    engine = make_engine(database_url(url))
    try:
        with engine.connect() as conn:
            closed = [int(row[0]) for row in query(conn, "SELECT month FROM month_close ORDER BY month")]
            money = query(conn, "SELECT month, sum(CASE WHEN platform_id <> 0 THEN worker_vnd + platform_vnd "
                                "ELSE 0 END), sum(CASE WHEN platform_id = 0 THEN subsidy_vnd ELSE 0 END) "
                                "FROM worker_month GROUP BY month")
            credits = query(conn, "SELECT close_month, count(*) FROM credited_month GROUP BY close_month")
            conn.rollback()
    finally:
        engine.dispose()
    by_month = {int(m): (int(c or 0), int(s or 0)) for m, c, s in money}
    credited = {int(m): int(n) for m, n in credits}
    return pd.DataFrame([{"month": m, "contributions_vnd": by_month.get(m, (0, 0))[0],
                          "subsidy_vnd": by_month.get(m, (0, 0))[1], "credited_months": credited.get(m, 0)}
                         for m in closed], columns=["month", "contributions_vnd", "subsidy_vnd", "credited_months"])


def simulator_months(arm) -> pd.DataFrame:
    """The same figures from a simulated arm, by month (credits by the close that made them)."""
    revenue = arm.revenue
    share_columns = [c for c in revenue.columns if c.endswith("_worker") or c.endswith("_platform")]
    contributions = revenue.groupby("month")[share_columns].sum().sum(axis=1)
    budget = arm.by_month_tier
    subsidy = budget.groupby("month")["subsidy_vnd"].sum()
    credited = budget.drop_duplicates(["month", "tier"]).groupby("month")["pension_months"].sum()
    months = sorted(set(contributions.index) | set(subsidy.index))
    return pd.DataFrame([{"month": int(m), "contributions_vnd": int(contributions.get(m, 0)),
                          "subsidy_vnd": int(subsidy.get(m, 0)), "credited_months": int(credited.get(m, 0))}
                         for m in months], columns=["month", "contributions_vnd", "subsidy_vnd", "credited_months"])


def validation_ledger(run, url: str) -> pd.DataFrame:
    """Per closed month and figure: the ledger's, the simulated baseline's, and the difference."""
    ledger = ledger_months(url).set_index("month")
    simulated = simulator_months(run.arms[next(iter(run.arms))]).set_index("month")
    rows = []
    for month in ledger.index:
        for figure in ("contributions_vnd", "subsidy_vnd", "credited_months"):
            mine = int(simulated[figure].get(month, 0)) if month in simulated.index else 0
            rows.append({"month": int(month), "figure": figure, "ledger": int(ledger.loc[month, figure]),
                         "simulator": mine, "difference": mine - int(ledger.loc[month, figure])})
    return pd.DataFrame(rows, columns=["month", "figure", "ledger", "simulator", "difference"])


# -- display names: no raw column name reaches a reader --------------------------------------

NAMES: dict[str, tuple[str, str]] = {  # code -> (vi, en)
    "arm": ("Phương án", "Option"), "baseline": ("Hiện hành", "Baseline"), "month": ("Tháng", "Month"),
    "year": ("Năm", "Year"), "tier": ("Hộ", "Household"), "scheme": ("Quỹ", "Scheme"),
    "party": ("Bên đóng", "Paid by"), "kind": ("Loại việc", "Kind of work"), "platform": ("Nền tảng", "Platform"),
    "by": ("Theo", "By"), "group": ("Nhóm", "Group"), "figure": ("Chỉ tiêu", "Figure"),
    "value": ("Giá trị", "Value"), "low": ("Cận dưới 95 %", "95 % low"), "high": ("Cận trên 95 %", "95 % high"),
    "replicates": ("Số lần lấy mẫu", "Resamples"), "decile": ("Nhóm thập phân", "Decile"),
    "workers": ("Người lao động", "Workers"), "participants": ("Người tham gia", "Participants"),
    "winners": ("Được lợi", "Better off"), "losers": ("Thiệt", "Worse off"), "unchanged": ("Không đổi", "Unchanged"),
    "lose_more_than_5pct": ("Giảm > 5 %", "Down > 5 %"), "lose_0.1_to_5pct": ("Giảm 0,1–5 %", "Down 0.1–5 %"),
    "no_change": ("± 0,1 %", "± 0.1 %"), "gain_0.1_to_5pct": ("Tăng 0,1–5 %", "Up 0.1–5 %"),
    "gain_more_than_5pct": ("Tăng > 5 %", "Up > 5 %"),
    "take_home_vnd": ("Thu nhập thực nhận", "Take-home pay"), "delta_vnd": ("Thay đổi thu nhập", "Change in pay"),
    "delta_months": ("Thay đổi số tháng", "Change in months"),
    "mean_delta_vnd": ("Thay đổi thu nhập bình quân mỗi người", "Mean change in pay per worker"),
    "mean_delta_months": ("Thay đổi số tháng bình quân mỗi người", "Mean change in months per worker"),
    "subsidy_vnd": ("Hỗ trợ của nhà nước", "State top-up"), "subsidy_demand_vnd": ("Hỗ trợ theo quy định",
                                                                                   "Top-up due"),
    "subsidy_si_vnd": ("Hỗ trợ BHXH", "Top-up, pension"), "subsidy_oa_vnd": ("Hỗ trợ TNLĐ", "Top-up, accident"),
    "subsidy_ui_vnd": ("Hỗ trợ BHTN", "Top-up, unemployment"),
    "worker_vnd": ("Người lao động đóng", "Paid by workers"), "platform_vnd": ("Nền tảng đóng", "Paid by platforms"),
    "own_vnd": ("Tiền tự đóng", "Own contributions"), "amount_vnd": ("Số tiền", "Amount"),
    "balance_vnd": ("Số dư", "Balance"), "gross_vnd": ("Thu nhập gộp", "Gross income"),
    "si_balance_vnd": ("Số dư BHXH", "Pension balance"),
    "limit_vnd": ("Hạn mức", "Limit"), "demand_vnd": ("Nhu cầu", "Demand"), "paid_vnd": ("Đã chi", "Paid"),
    "period": ("Kỳ", "Period"), "strategy": ("Cách chia", "Strategy"), "horizon": ("Cả kỳ", "Whole horizon"),
    "none": ("Không giới hạn", "No limit"), "cap": ("Trần", "Cap"), "scale": ("Co giãn", "Scale"),
    "workers_active": ("Đang làm việc", "Working"), "workers_contributing": ("Có đóng", "Contributing"),
    "workers_credited": ("Được tính ≥ 1 tháng", "Credited ≥ 1 month"),
    "workers_subsidised": ("Được hỗ trợ", "Topped up"),
    "workers_with_a_pension_month": ("Được tính ≥ 1 tháng", "Credited ≥ 1 month"),
    "pension_months": ("Số tháng được tính", "Credited months"),
    "credited_months": ("Số tháng được tính", "Credited months"),
    "take_home_winners": ("Thu nhập tăng", "Pay up"), "take_home_losers": ("Thu nhập giảm", "Pay down"),
    "credited_months_winners": ("Thêm tháng được tính", "More credited months"),
    "credited_months_losers": ("Bớt tháng được tính", "Fewer credited months"),
    "crediting": ("Cách tính tháng", "Crediting"), "pooled": ("Gộp", "Pooled"), "per_month": ("Từng tháng",
                                                                                            "Month by month"),
    "undercoverage_workers": ("Hộ nghèo, cận nghèo chưa được hỗ trợ", "Poor and near-poor never topped up"),
    "leakage_per_mille": ("Rò rỉ (‰)", "Leakage (‰)"),
    "window_subsidy_nominal_vnd": ("Hỗ trợ 10 năm, giá hiện hành", "10-year top-ups, nominal"),
    "window_subsidy_real_vnd": ("Hỗ trợ 10 năm, giá năm đầu", "10-year top-ups, first year's prices"),
    "subsidy_nominal_vnd": ("Hỗ trợ, giá hiện hành", "Top-ups, nominal"),
    "subsidy_real_vnd": ("Hỗ trợ, giá năm đầu", "Top-ups, first year's prices"),
    "deflator_ppm": ("Chỉ số giá (ppm)", "Deflator (ppm)"),
    "months_simulated": ("Tháng mô phỏng", "Months simulated"),
    "months_extrapolated": ("Tháng ngoại suy", "Months extrapolated"),
    "coverage_ppm": ("Độ bao phủ (ppm)", "Coverage (ppm)"),
    "measure": ("Đại lượng", "Measure"), "gini": ("Hệ số Gini", "Gini"),
    "percentile": ("Phân vị", "Percentile"), "worker": ("Người lao động số", "Worker no."),
    "active_months": ("Tháng làm việc", "Months worked"),
    "months_to_pension": ("Tháng đến lương hưu", "Months to a pension"),
    "replacement_ppm": ("Tỷ lệ thay thế (ppm)", "Replacement rate (ppm)"),
    "contributions_vnd": ("Tiền đóng", "Contributions"),
    "ledger": ("Sổ cái", "Ledger"), "simulator": ("Mô phỏng", "Simulator"), "difference": ("Chênh lệch",
                                                                                           "Difference"),
    "target": ("Giá trị chỉ tiêu", "Target value"), "simulated": ("Mô phỏng (có trọng số)", "Simulated (weighted)"),
    "error_ppm": ("Sai số", "Error"), "tolerance_ppm": ("Dung sai", "Tolerance"),
    "calibrated": ("Hiệu chỉnh", "Fitted"), "status": ("Loại số liệu", "Kind of figure"),
    "source": ("Nguồn", "Source"), "category": ("Nhóm", "Group"),
    "published": ("đã công bố", "published"), "proxy": ("thay thế", "proxy"), "estimate": ("ước tính", "estimate"),
    "assumption": ("giả định", "assumption"),
    "poor": ("Hộ nghèo", "Poor"), "near_poor": ("Hộ cận nghèo", "Near-poor"), "other": ("Khác", "Other"),
    "ethnic_minority": ("Dân tộc thiểu số", "Ethnic minority"), "all": ("Tất cả", "All"),
    "region": ("Vùng", "Region"), "sex": ("Giới tính", "Sex"), "female": ("Nữ", "Female"), "male": ("Nam", "Male"),
    "red_river_delta": ("Đồng bằng sông Hồng", "Red River Delta"),
    "northern_midlands_mountains": ("Trung du và miền núi phía Bắc", "Northern Midlands and Mountains"),
    "north_central_coast": ("Bắc Trung Bộ và duyên hải miền Trung", "North Central and Central Coast"),
    "central_highlands": ("Tây Nguyên", "Central Highlands"), "southeast": ("Đông Nam Bộ", "Southeast"),
    "mekong_delta": ("Đồng bằng sông Cửu Long", "Mekong Delta"),
    "ride": ("Chở khách", "Rides"), "delivery": ("Giao hàng", "Deliveries"), "order": ("Bán hàng", "Orders"),
    "seller": ("Người bán hàng", "Sellers"), "worker_type": ("loại việc", "kind of work"),
    "yes": ("có", "yes"), "no": ("không", "no"),
    "total": ("Tổng", "Total"), "contributions": ("Tiền đóng", "Contributions"),
    "household": ("loại hộ", "household"), "vehicle": ("phương tiện", "vehicle"),
    "workers_total": ("Số người lao động nền tảng", "Platform workers"),
    "earnings_vnd": ("thu nhập", "earnings"),
    "earnings_full_time_motorbike": ("Tài xế xe máy toàn thời gian", "Full-time motorbike drivers"),
    "earnings_all_workers": ("Mọi người lao động", "All workers"),
    "subsidy_delta_vnd": ("Thay đổi hỗ trợ", "Change in top-ups"),
    "credited_months_delta": ("Thay đổi số tháng được tính", "Change in credited months"),
    "window_subsidy_nominal_delta_vnd": ("Thay đổi hỗ trợ 10 năm, giá hiện hành",
                                         "Change in 10-year top-ups, nominal"),
    "window_subsidy_real_delta_vnd": ("Thay đổi hỗ trợ 10 năm, giá năm đầu",
                                      "Change in 10-year top-ups, first year's prices"),
    "worker_delta_vnd": ("Thay đổi người lao động đóng", "Change paid by workers"),
    "platform_delta_vnd": ("Thay đổi nền tảng đóng", "Change paid by platforms"),
    "workers_contributing_delta": ("Thay đổi số người có đóng", "Change in contributors"),
    "pension_months_delta": ("Thay đổi số tháng được tính", "Change in credited months"),
    "workers_credited_delta": ("Thay đổi số người được tính", "Change in workers credited"),
    "workers_subsidised_delta": ("Thay đổi số người được hỗ trợ", "Change in workers topped up"),
}


def name(code: Any, lang: str) -> str:
    """A code's display name (`workers_credited_2027` -> "Credited ≥ 1 month 2027": a year suffix keeps its
    year). A code the table does not know is shown as it is — a tier a scenario made up reads as its author
    wrote it, and a results column nobody named fails the report's no-raw-names test instead of hiding."""
    text = str(code)
    pick = 0 if lang == "vi" else 1
    if text in NAMES:
        return NAMES[text][pick]
    per_year = re.fullmatch(r"(.+)_(\d{4})(_delta)?", text)  # workers_credited_2026, …_2026_delta
    if per_year and per_year.group(1) + (per_year.group(3) or "") in NAMES:
        return f"{NAMES[per_year.group(1) + (per_year.group(3) or '')][pick]} {per_year.group(2)}"
    if text.startswith("share ") or text.startswith("mean "):  # the calibration's figures
        kind, _, of = text.partition(" ")
        label = words(lang)["share_workers" if kind == "share" else "mean_earnings"]
        return label if kind == "mean" else f"{label}: {name(of, lang)}"
    if text == "workers":
        return NAMES["workers_total"][pick]
    return text


def display_rows(frame: pd.DataFrame, lang: str) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of a table as a person reads them: display names, money and counts by
    `api.formats`, months as months, years as plain years, ppm and per-mille as they are labelled."""
    f = formats(lang)
    headers = [name(column, lang) for column in frame.columns]
    scheme_columns = {"scheme"}
    rows = []
    for record in frame.astype(object).itertuples(index=False):
        row = dict(zip((str(c) for c in frame.columns), record))
        money = str(row.get("figure", "")).endswith("_vnd")  # a row of mixed figures: its unit is its figure's
        share = str(row.get("figure", "")).startswith("share ")
        rows.append([_share(value, lang) if share and column in ("target", "simulated")
                     else _cell(column, value, lang, f, scheme_columns, money and column in MIXED_COLUMNS)
                     for column, value in row.items()])
    return headers, rows


def _share(value: float, lang: str) -> str:
    text = f"{float(value) * 100:.2f}"
    return (text.replace(".", ",") if lang == "vi" else text) + " %"


MIXED_COLUMNS = ("value", "low", "high", "ledger", "simulator", "difference")


def _cell(column: str, value: Any, lang: str, f, scheme_columns, money: bool = False) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return words(lang)["yes" if value else "no"]
    if isinstance(value, (np.integer,)):
        value = int(value)
    if isinstance(value, (np.floating,)):
        value = float(value)
    if column in scheme_columns and isinstance(value, str):
        return f.scheme_short(value)
    if column == "platform" and isinstance(value, str):
        return f.platform(value)
    if isinstance(value, int):
        if column == "month" and 190001 <= value <= 299912:
            return f.month_short(f"{value // 100}-{value % 100:02d}")
        if column in ("year", "period", "decile", "percentile", "worker"):
            return str(value)
        if column.endswith("_vnd") or money:
            return f.money(value)
        if column.endswith("_ppm"):
            text = f"{value / 10_000:.2f}"
            return (text.replace(".", ",") if lang == "vi" else text) + " %"
        return f.count(value)
    if isinstance(value, float):
        text = f"{value:,.4f}" if abs(value) < 10 else f"{value:,.0f}"
        return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".") if lang == "vi" else text
    if column == "source":
        return value  # a citation, shown as written (file names in it are marked as code by the report)
    if isinstance(value, str):
        return name(value, lang) if value in NAMES or "_" in value or " " in value else value
    return str(value)
