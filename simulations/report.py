"""Writing a run: tables (Parquet and CSV), PNG charts, one self-contained HTML page, the run record.

    out/
      run.json                 the run record (scenario, pack versions, population hash, seed, code, results hash)
      tables/<name>.parquet    every results table, and the same as CSV
      charts/*.png             budget over time, coverage by tier, decile bars (take-home pay and credited
                               months, by decile of take-home pay), Lorenz curves
      tables.xlsx              the same tables, one sheet each, with the brief's and the validation's, and
                               the national ones (`national_*`: weighted, simulations/national.py)
      report.html              the brief first (national figures with ranges, `lang` vi or en), the validation,
                               every chart and table with display names (images inlined), no external files;
                               counts and money at national scale (weighted), labelled so, with the sample's size
      report.pdf               the brief's text, then every chart (matplotlib's PdfPages)

Charts use matplotlib's Agg backend: no display, same bytes for the same numbers.

What a reader sees is at national scale, as the brief is: each chart and table of counts or
money comes from `simulations.national.national_tables` (each simulated worker weighted), and
says so ("national estimate, weighted"); per-worker figures (the deciles' changes) are
weighted means. The sample's own tables stay on disk (`tables/`, their hashes in the run
record); the budget limits and the sample workers' pension projection are the sample's, and
labelled so.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from api.formats import formats
from simulations import brief
from simulations.national import national_tables
from simulations.run import Run

BILLION = 1_000_000_000
CHART_DPI = 100
BAND_COLOURS = ("#b2182b", "#ef8a62", "#bababa", "#67a9cf", "#2166ac")


def write(run: Run, out: str | Path, lang: str = "vi", ledger_url: str | None = None) -> dict[str, Path]:
    """Write everything under `out`; returns the paths written by role.

    `lang`: the language of report.html and report.pdf (`vi` or `en`); `ledger_url`: the books a
    `--from-db` run replayed, for the validation against their closed months."""
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "charts").mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    national = national_tables(run)
    tables = analyst_tables(run, ledger_url, national)
    for name, table in sorted(tables.items()):
        table.to_parquet(out / "tables" / f"{name}.parquet", index=False)
        table.to_csv(out / "tables" / f"{name}.csv", index=False, lineterminator="\n")
        written[f"table:{name}"] = out / "tables" / f"{name}.csv"
    written["excel"] = write_excel(tables, out / "tables.xlsx")
    charts = render_charts(run, lang, national)
    for name, png in charts.items():
        path = out / "charts" / f"{name}.png"
        path.write_bytes(png)
        written[f"chart:{name}"] = path
    validation = tables.get("validation_ledger")
    (out / "report.html").write_text(render_html(run, charts, lang=lang, ledger=validation,
                                                             national=national), encoding="utf-8")
    written["report"] = out / "report.html"
    written["pdf"] = write_pdf(run, charts, out / "report.pdf", lang)
    (out / "run.json").write_text(json.dumps(run.record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written["record"] = out / "run.json"
    return written


def analyst_tables(run: Run, ledger_url: str | None = None,
                   national: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """The results tables (the sample's), the same weighted to national scale (`national_*`), the brief's
    national figures and the validation tables, as written to disk."""
    tables = dict(run.results.tables)
    for name, table in (national if national is not None else national_tables(run)).items():
        tables[f"national_{name}"] = table
    figures = brief.national(run)
    tables["brief_national"] = pd.DataFrame(
        [{"arm": arm, **{k: v for k, v in row.items() if not k.endswith("_range")},
          **{f"{k}_{side}": (v[index] if v else None) for k, v in row.items() if k.endswith("_range")
             for index, side in enumerate(("low", "high"))}}
         for arm, row in figures["per_arm"].items()])
    tables["validation_targets"] = brief.validation_targets(run)
    if ledger_url:
        tables["validation_ledger"] = brief.validation_ledger(run, ledger_url)
    return tables


def write_excel(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """One sheet per table (openpyxl), codes as columns: for analysts, like the Parquet files."""
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, table in sorted(tables.items()):
            table.to_excel(writer, sheet_name=name[:31], index=False)
    return path


def write_pdf(run: Run, charts: dict[str, bytes], path: Path, lang: str = "vi") -> Path:
    """The brief's text on a first page, then every chart, one a page (matplotlib's PdfPages: no browser)."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.image import imread

    lines = [f"{brief.words(lang)['title']}: {run.scenario.name}", ""] + brief.sentences(brief.national(run), lang)
    with PdfPages(path, metadata={"Title": run.scenario.name, "Creator": "ansinh", "CreationDate": None}) as pdf:
        figure = plt.figure(figsize=(8.27, 11.69))
        figure.text(0.06, 0.96, "\n".join(_wrap(line) for line in lines), va="top", fontsize=9, wrap=True)
        pdf.savefig(figure)
        plt.close(figure)
        for png in charts.values():
            image = imread(io.BytesIO(png), format="png")
            figure = plt.figure(figsize=(11.69, 8.27))
            axes = figure.add_axes((0, 0, 1, 1))
            axes.imshow(image)
            axes.axis("off")
            pdf.savefig(figure)
            plt.close(figure)
    return path


def _wrap(line: str, width: int = 100) -> str:
    import textwrap
    return "\n".join(textwrap.wrap(line, width)) or " "


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


CHART_WORDS = {
    "vi": {"budget": "Hỗ trợ của nhà nước mỗi tháng (ước tính cả nước, có trọng số)", "billion": "tỷ đồng",
           "month": "tháng", "coverage": "Số tháng được tính hưởng lương hưu, theo loại hộ (ước tính cả nước, "
                                         "có trọng số)", "months": "số tháng được tính",
           "tier": "loại hộ", "change": "{arm}: thay đổi bình quân {what}\n(cả nước, có trọng số: được lợi {winners}, thiệt {losers})",
           "take_home": "thu nhập thực nhận", "credited": "số tháng được tính",
           "vnd_per_worker": "đồng mỗi người", "months_per_worker": "tháng mỗi người",
           "decile": "nhóm thập phân thu nhập thực nhận (hiện hành)",
           "lorenz": "Đường Lorenz (cả nước, có trọng số): {what}", "subsidy_vnd": "hỗ trợ", "balance_vnd": "số dư",
           "share_workers": "tỷ lệ người lao động (tích luỹ)", "share_total": "tỷ lệ (tích luỹ)"},
    "en": {"budget": "State top-up per month (national estimate, weighted)", "billion": "billion VND",
           "month": "month", "coverage": "Months credited towards a pension, by household tier (national "
                                         "estimate, weighted)", "months": "credited months",
           "tier": "household tier", "change": "{arm}: mean change in {what}\n(national, weighted: better off {winners}, worse off {losers})",
           "take_home": "take-home pay", "credited": "credited months",
           "vnd_per_worker": "VND per worker", "months_per_worker": "months per worker",
           "decile": "decile of baseline take-home pay",
           "lorenz": "Lorenz curve (national, weighted): {what}", "subsidy_vnd": "top-ups",
           "balance_vnd": "balances",
           "share_workers": "cumulative share of workers", "share_total": "cumulative share"},
}


def _arm_label(arm: str, lang: str) -> str:
    return brief.name(arm, lang) if arm == "baseline" else arm


def render_charts(run: Run, lang: str = "en", national: dict[str, pd.DataFrame] | None = None) -> dict[str, bytes]:
    """Every chart with a title and both axes labelled, in `lang`; counts and money at national scale
    (`national`: `national_tables(run)`, computed when not given)."""
    words = CHART_WORDS["vi" if lang == "vi" else "en"]
    shown = formats(lang)
    tables = national if national is not None else national_tables(run)
    charts: dict[str, bytes] = {}

    budget = tables["budget_by_month"].set_index(["arm", "month"])["subsidy_vnd"]
    figure, axes = plt.subplots(figsize=(8, 4))
    for arm in budget.index.get_level_values(0).unique():
        series = budget.loc[arm]
        axes.plot([shown.month_short(f"{m // 100}-{m % 100:02d}") for m in series.index],
                  series.to_numpy() / BILLION, marker="o", label=_arm_label(arm, lang))
    axes.set_title(words["budget"])
    axes.set_xlabel(words["month"])
    axes.set_ylabel(words["billion"])
    axes.tick_params(axis="x", rotation=60)
    axes.legend()
    charts["budget_over_time"] = _png(figure)

    coverage = tables["coverage"]
    by_tier = coverage[coverage["by"] == "tier"].pivot(index="group", columns="arm", values="pension_months")
    by_tier.index = [brief.name(tier, lang) for tier in by_tier.index]
    by_tier.columns = [_arm_label(arm, lang) for arm in by_tier.columns]
    figure, axes = plt.subplots(figsize=(8, 4))
    by_tier.plot.bar(ax=axes)
    axes.set_title(words["coverage"])
    axes.set_xlabel(words["tier"])
    axes.set_ylabel(words["months"])
    axes.tick_params(axis="x", rotation=0)
    charts["coverage_by_tier"] = _png(figure)

    take_home, months = tables["deciles_take_home"], tables["deciles_credited_months"]
    for arm in take_home["arm"].unique():
        figure, axes = plt.subplots(1, 2, figsize=(11, 4))
        for index, (frame, column, what, unit) in enumerate((
                (take_home, "delta_vnd", words["take_home"], words["vnd_per_worker"]),
                (months, "delta_months", words["credited"], words["months_per_worker"]))):
            mine = frame[frame["arm"] == arm].set_index("decile")
            axes[index].bar(mine.index, mine[f"mean_{column}"], color=BAND_COLOURS[4])  # weighted mean per worker
            axes[index].axhline(0, color="grey", linewidth=0.8)
            axes[index].set_title(words["change"].format(arm=arm, what=what,
                                                         winners=shown.count(int(mine["winners"].sum())),
                                                         losers=shown.count(int(mine["losers"].sum()))))
            axes[index].set_xlabel(words["decile"])
            axes[index].set_ylabel(unit)
        charts[f"deciles_{arm}"] = _png(figure)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for index, measure in enumerate(("subsidy_vnd", "balance_vnd")):
        axes[index].plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        curves = tables["lorenz"][tables["lorenz"]["measure"] == measure]
        for arm, curve in curves.groupby("arm", sort=False):  # the weighted population's curves
            axes[index].plot(curve["share_workers"], curve["share_total"], label=_arm_label(arm, lang))
        axes[index].set_title(words["lorenz"].format(what=words[measure]))
        axes[index].set_xlabel(words["share_workers"])
        axes[index].set_ylabel(words["share_total"])
        axes[index].legend()
    charts["lorenz"] = _png(figure)
    return charts


def _code_marked(text: str) -> str:
    """A citation's file names and identifiers (`synthetic_events.py`) as code; the rest as text."""
    return re.sub(r"(\S*[_/]\S*)", lambda found: f"<code>{found.group(1)}</code>", html.escape(text))


def _table_html(frame: pd.DataFrame, lang: str = "en", table_id: str = "") -> str:
    headers, rows = brief.display_rows(frame, lang)
    sources = {index for index, column in enumerate(frame.columns) if column == "source"}
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="source">{_code_marked(v)}</td>' if i in sources
                                    else f"<td>{html.escape(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _replicates(tables: dict[str, pd.DataFrame]) -> str:
    ranges = tables["headline_ranges"]
    return f"{int(ranges['replicates'].iloc[0]):,}" if len(ranges) else "no"


SECTION_WORDS = {
    "vi": {"summary": "Tổng hợp (cả kỳ)", "weighted": "ước tính cả nước, có trọng số",
           "sample": "mẫu mô phỏng", "by_year": "Hỗ trợ theo năm và quỹ",
           "periods": "Hạn mức ngân sách", "coverage": "Độ bao phủ theo nhóm",
           "ranges": "Các chỉ tiêu chính, với khoảng 95 %",
           "ranges_note": "Bootstrap trên người lao động ({n} lần): sai số do cỡ mẫu, không phải độ bất định "
                          "của các giả định.",
           "window": "Hỗ trợ của nhà nước trong 10 năm (giá hiện hành và giá năm đầu)",
           "coverage_by_year": "Độ bao phủ: người được tính ít nhất một tháng trong năm",
           "deciles_take_home": "Thu nhập thực nhận, theo nhóm thập phân thu nhập thực nhận hiện hành",
           "deciles_months": "Số tháng được tính hưởng lương hưu, theo nhóm thập phân thu nhập thực nhận",
           "inequality": "Bất bình đẳng", "projection": "Người lao động mẫu: thời gian đến lương hưu",
           "population": "Dân số: {workers} người lao động mô phỏng, {months}; hạt giống {seed}; kết quả {sha}.",
           "tables_note": "Số người và số tiền trong các bảng và biểu đồ là ước tính quy mô cả nước, có "
                          "trọng số: mỗi người lao động mô phỏng đại diện cho số người lao động toàn quốc theo "
                          "hiệu chỉnh; thay đổi theo nhóm thập phân có cả bình quân mỗi người (có trọng số). Hạn "
                          "mức ngân sách và người lao động mẫu là của mẫu mô phỏng. Bảng của mẫu "
                          "(chưa nhân trọng số) cho nhà phân tích: tables.xlsx và tables/*.parquet."},
    "en": {"summary": "Summary (whole horizon)", "weighted": "national estimate, weighted",
           "sample": "simulated sample", "by_year": "Top-ups by year and scheme",
           "periods": "Budget limits", "coverage": "Coverage by group",
           "ranges": "Headline figures, with 95 % ranges",
           "ranges_note": "A bootstrap over workers ({n} resamples): the sampling noise of the sample, not the "
                          "uncertainty of the model's assumptions.",
           "window": "State top-ups over the 10-year window (nominal, and in the first year's prices)",
           "coverage_by_year": "Coverage: workers credited at least one month in the year",
           "deciles_take_home": "Take-home pay, by decile of baseline take-home pay",
           "deciles_months": "Months credited towards a pension, by decile of baseline take-home pay",
           "inequality": "Inequality", "projection": "Sample workers: months to a pension",
           "population": "Population: {workers} simulated workers, {months}; seed {seed}; results {sha}.",
           "tables_note": "Counts and money in the tables and charts are national estimates, weighted: each "
                          "simulated worker stands for the national workers the calibration gives them; changes "
                          "by decile come with the weighted mean per worker. The budget limits and the sample "
                          "workers are the simulated sample's. The sample's own (unweighted) tables, "
                          "for analysts: tables.xlsx and tables/*.parquet."},
}


def render_html(run: Run, charts: dict[str, bytes], lang: str = "vi", ledger: pd.DataFrame | None = None,
                national: dict[str, pd.DataFrame] | None = None) -> str:
    """The brief first (national figures with ranges, in `lang`), then validation, charts and tables — at
    national scale (`national`: `national_tables(run)`, computed when not given), each labelled so."""
    lang = "en" if lang == "en" else "vi"
    words, sections, shown = brief.words(lang), SECTION_WORDS[lang], formats(lang)
    sample = run.results.tables
    tables = national if national is not None else national_tables(run)
    figures = brief.national(run)
    summary = tables["summary"].drop(columns=["versions"])
    captions = {"budget_over_time": CHART_WORDS[lang]["budget"], "coverage_by_tier": CHART_WORDS[lang]["coverage"],
                "lorenz": CHART_WORDS[lang]["lorenz"].format(what="")}
    images = "".join(
        f'<figure><img alt="{html.escape(captions.get(name, name.removeprefix("deciles_")))}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(captions.get(name, name.removeprefix('deciles_')))}</figcaption></figure>"
        for name, png in charts.items())
    record = run.record
    months = record["population"]["months"]
    span = (f"{shown.month_short(f'{months[0] // 100}-{months[0] % 100:02d}')} – "
            f"{shown.month_short(f'{months[-1] // 100}-{months[-1] % 100:02d}')}") if months else "-"
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in brief.sentences(figures, lang))
    targets = brief.validation_targets(run)
    validation = (_table_html(targets, lang, "validation-targets") if len(targets)
                  else f"<p>{html.escape(words['no_targets'])}</p>")
    ledger_part = (f"<h3>{html.escape(words['validation_ledger'])}</h3>{_table_html(ledger, lang, 'validation-ledger')}"
                   if ledger is not None else "")
    population = sections["population"].format(
        workers=shown.count(int(record["population"]["workers"])), months=span, seed=record["seed"],
        sha=record["results_sha256"][:16])
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(words['title'])}: {html.escape(run.scenario.name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;
font-size:13px;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
th{{background:#eee}}img{{max-width:100%}}code{{font-size:12px}}#brief li{{margin:.3em 0}}td.source{{text-align:left}}</style></head><body>
<h1>{html.escape(words['title'])}: {html.escape(run.scenario.name)}</h1>
<p>{html.escape(run.scenario.description)}</p>
<section id="brief"><h2>{html.escape(words['brief'])}</h2>
<p>{html.escape(words['national_note'].format(workers=shown.count(figures['national_workers']), ever=shown.count(figures['weighted_workers'])))}</p>
<ul>{lines}</ul></section>
<section id="validation"><h2>{html.escape(words['validation'])}</h2>
<h3>{html.escape(words['validation_targets'])}</h3>{validation}{ledger_part}</section>
<h2>{html.escape(words['charts'])}</h2>{images}
<h2>{html.escape(words['tables'])}</h2>
<p>{html.escape(sections['tables_note'])} {html.escape(population)}</p>
<h3>{sections['summary']} · {sections['weighted']}</h3>{_table_html(summary, lang)}
<h3>{sections['ranges']} · {sections['weighted']}</h3>
<p>{html.escape(sections['ranges_note'].format(n=_replicates(sample)))}</p>
{_table_html(tables['headline_ranges'], lang)}
<h3>{sections['window']} · {sections['weighted']}</h3>{_table_html(tables['budget_window'], lang)}
<h3>{sections['by_year']} · {sections['weighted']}</h3>{_table_html(tables['budget_by_year_scheme'], lang)}
<h3>{sections['periods']} · {sections['sample']}</h3>{_table_html(sample['budget_periods'], lang)}
<h3>{sections['coverage_by_year']} · {sections['weighted']}</h3>{_table_html(tables['coverage_by_year'], lang)}
<h3>{sections['coverage']} · {sections['weighted']}</h3>{_table_html(tables['coverage'], lang)}
<h3>{sections['deciles_take_home']} · {sections['weighted']}</h3>{_table_html(tables['deciles_take_home'], lang)}
<h3>{sections['deciles_months']} · {sections['weighted']}</h3>{_table_html(tables['deciles_credited_months'], lang)}
<h3>{sections['inequality']} · {sections['weighted']}</h3>{_table_html(tables['inequality'], lang)}
<h3>{sections['projection']}</h3>{_table_html(sample['pension_projection'], lang)}
</body></html>
"""
