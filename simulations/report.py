"""Writing a run: tables (Parquet and CSV), PNG charts, one self-contained HTML page, the run record.

    out/
      run.json                 the run record (scenario, pack versions, population hash, seed, code, results hash)
      tables/<name>.parquet    every results table, and the same as CSV
      charts/*.png             budget over time, coverage by tier, decile bars (take-home pay and credited
                               months, by decile of take-home pay), Lorenz curves
      report.html              the summary and every chart (images inlined as base64), no external files

Charts use matplotlib's Agg backend: no display, same bytes for the same numbers.
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from simulations.run import Run

BILLION = 1_000_000_000
CHART_DPI = 100
BAND_COLOURS = ("#b2182b", "#ef8a62", "#bababa", "#67a9cf", "#2166ac")


def write(run: Run, out: str | Path) -> dict[str, Path]:
    """Write everything under `out`; returns the paths written by role."""
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "charts").mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, table in sorted(run.results.tables.items()):
        table.to_parquet(out / "tables" / f"{name}.parquet", index=False)
        table.to_csv(out / "tables" / f"{name}.csv", index=False, lineterminator="\n")
        written[f"table:{name}"] = out / "tables" / f"{name}.csv"
    charts = render_charts(run)
    for name, png in charts.items():
        path = out / "charts" / f"{name}.png"
        path.write_bytes(png)
        written[f"chart:{name}"] = path
    (out / "report.html").write_text(render_html(run, charts), encoding="utf-8")
    written["report"] = out / "report.html"
    (out / "run.json").write_text(json.dumps(run.record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written["record"] = out / "run.json"
    return written


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def render_charts(run: Run) -> dict[str, bytes]:
    tables = run.results.tables
    charts: dict[str, bytes] = {}

    budget = tables["budget_by_month_tier_scheme"].groupby(["arm", "month"], sort=False)["subsidy_vnd"].sum()
    figure, axes = plt.subplots(figsize=(8, 4))
    for arm in budget.index.get_level_values(0).unique():
        series = budget.loc[arm]
        axes.plot([str(m) for m in series.index], series.to_numpy() / BILLION, marker="o", label=arm)
    axes.set_title("State subsidy per month")
    axes.set_ylabel("billion VND")
    axes.tick_params(axis="x", rotation=60)
    axes.legend()
    charts["budget_over_time"] = _png(figure)

    coverage = tables["coverage"]
    by_tier = coverage[coverage["by"] == "tier"].pivot(index="group", columns="arm", values="pension_months")
    figure, axes = plt.subplots(figsize=(8, 4))
    by_tier.plot.bar(ax=axes)
    axes.set_title("Months credited towards a pension (each arm's crediting rule), by household tier")
    axes.set_ylabel("credited months")
    axes.tick_params(axis="x", rotation=0)
    charts["coverage_by_tier"] = _png(figure)

    take_home, months = tables["deciles_take_home"], tables["deciles_credited_months"]
    for arm in take_home["arm"].unique():
        figure, axes = plt.subplots(1, 2, figsize=(11, 4))
        for index, (frame, column, what, unit) in enumerate((
                (take_home, "delta_vnd", "take-home pay", "VND per worker"),
                (months, "delta_months", "credited months", "months per worker"))):
            mine = frame[frame["arm"] == arm].set_index("decile")
            workers = mine["workers"].clip(lower=1)
            axes[index].bar(mine.index, mine[column] / workers, color=BAND_COLOURS[4])
            axes[index].axhline(0, color="grey", linewidth=0.8)
            axes[index].set_title(f"{arm}: change in {what}\n(winners {int(mine['winners'].sum()):,}, "
                                  f"losers {int(mine['losers'].sum()):,})")
            axes[index].set_xlabel("decile of baseline take-home pay")
            axes[index].set_ylabel(unit)
        charts[f"deciles_{arm}"] = _png(figure)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for index, measure in enumerate(("subsidy_vnd", "balance_vnd")):
        axes[index].plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        for arm, curves in run.results.lorenz.items():
            axes[index].plot(curves[measure][0], curves[measure][1], label=arm)
        axes[index].set_title(f"Lorenz curve: {measure.removesuffix('_vnd')}")
        axes[index].legend()
    charts["lorenz"] = _png(figure)
    return charts


def _table_html(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        if value is None or value is pd.NA:
            return ""
        if isinstance(value, (int,)) and not isinstance(value, bool):
            return f"{value:,}"
        return html.escape(str(value))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in frame.astype(object).itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _replicates(tables: dict[str, pd.DataFrame]) -> str:
    ranges = tables["headline_ranges"]
    return f"{int(ranges['replicates'].iloc[0]):,}" if len(ranges) else "no"


def render_html(run: Run, charts: dict[str, bytes]) -> str:
    tables = run.results.tables
    summary = tables["summary"].drop(columns=["versions"])
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>" for name, png in charts.items())
    record = run.record
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ansinh simulation: {html.escape(run.scenario.name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;
font-size:13px;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
th{{background:#eee}}img{{max-width:100%}}code{{font-size:12px}}</style></head><body>
<h1>Scenario {html.escape(run.scenario.name)}</h1>
<p>{html.escape(run.scenario.description)}</p>
<p>Baseline pack <code>{html.escape(run.scenario.baseline)}</code>; population
<code>{html.escape(record['population']['sha256'][:16])}</code> ({record['population']['workers']:,} workers,
months {record['population']['months'][0] if record['population']['months'] else '-'}–{record['population']['months'][-1] if record['population']['months'] else '-'});
seed {record['seed']}; results <code>{record['results_sha256'][:16]}</code>; code
<code>{html.escape(str(record['code']['git_commit'])[:12])}</code>{' (dirty)' if record['code']['git_dirty'] else ''}.</p>
<h2>Summary (VND, whole horizon)</h2>{_table_html(summary)}
<h2>Budget by year and scheme</h2>{_table_html(tables['budget_by_year_scheme'])}
<h2>Budget periods</h2>{_table_html(tables['budget_periods'])}
<h2>Coverage</h2>{_table_html(tables['coverage'])}
<h2>Headline figures, with 95 % ranges</h2>
<p>A bootstrap over workers ({_replicates(tables)} resamples): the sampling noise of a population of this size,
not the uncertainty of the model's assumptions (<code>simulations/results.py</code>).</p>
{_table_html(tables['headline_ranges'])}
<h2>State subsidy over the budget window (nominal, and in the first year's prices)</h2>
{_table_html(tables['budget_window'])}
<h2>Coverage: workers credited at least one month by the year's closes</h2>{_table_html(tables['coverage_by_year'])}
<h2>Take-home pay (gross − worker deductions), by decile of baseline take-home pay</h2>
{_table_html(tables['deciles_take_home'])}
<h2>Months credited towards a pension, by decile of baseline take-home pay</h2>
{_table_html(tables['deciles_credited_months'])}
<h2>Inequality</h2>{_table_html(tables['inequality'])}
<h2>Sample workers: months to a pension and replacement rate (ppm)</h2>
<p>At the horizon's pace; 180 counted months needed; 45 % of the insured income (si account ÷ 22 %)
against gross income; empty = never qualifies at this pace (assumptions in <code>simulations/results.py</code>).</p>
{_table_html(tables['pension_projection'])}
<h2>Charts</h2>{images}
</body></html>
"""
