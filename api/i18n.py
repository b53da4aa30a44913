"""Human text for workers: Vietnamese first, English by `--lang en`.

The words live here (the pages reuse them, `api/web/texts.py`); how a figure, a month, a
date, a scheme or a platform reads comes from `api/formats.py`, the one formatting layer
for the CLI and the pages: `1.234.567 ₫` / `1,234,567 VND`, `tháng 1/2026` / `January 2026`.
A `{month}` in a text is filled with the formatted month, so no text says "tháng" itself.
"""
from __future__ import annotations

from typing import Any

from api import formats
from api.formats import Formats
from rules import SCHEMES
from rules.names import scheme_name, scheme_short_name
from rules.pension import HORIZON_MONTHS

TEXT = {
    "vi": {
        "title": "Sao kê đóng góp {month}",
        "status_closed": "đã chốt sổ",
        "status_open": "tạm tính (tháng chưa chốt)",
        "scheme": "Quỹ", "worker": "Bạn đóng", "platform": "Nền tảng đóng", "subsidy": "Nhà nước hỗ trợ",
        "total": "Cộng", "to_date": "Lũy kế",
        "platforms": "Theo nền tảng", "paid_by_all": "Cả tháng",
        "counts": "Kỳ chốt sổ tháng này đã tính thêm tháng đóng để hưởng lương hưu.",
        "shortfall": "Còn thiếu {shortfall} trong số dư BHXH gộp để tháng tiếp theo được tính hưởng lương hưu "
                     "(mức đóng tối thiểu {floor}).",
        "months": "Số tháng đã được tính: {counted}/{needed}.",
        "pool": "Số dư BHXH gộp chưa dùng: {pool}; tháng tiếp theo được tính: {next}.",
        "credits_title": "Các tháng được tính hưởng lương hưu",
        "credited_by": "{month}: tính khi chốt sổ {close} ({floor})",
        "no_credits": "Chưa có tháng nào được tính.",
        "worker_id": "Số CCCD",
        "topups": "Bạn tự đóng thêm",
        "topup_reference_line": "Mã thanh toán để tự đóng thêm (ghi ở nội dung chuyển khoản): {reference}",
        # what a balance means (rules/pension.py)
        "meaning_title": "Số tiền này dùng để làm gì",
        "meaning_si": "BHXH tự nguyện (hưu trí): khi đủ 180 tháng được tính (15 năm), bạn được nhận lương hưu "
                      "hằng tháng từ tuổi nghỉ hưu.",
        "meaning_oa": "Tai nạn lao động: chi trả khi bạn bị tai nạn trong lúc làm việc (chữa trị và trợ cấp).",
        "meaning_ui": "Bảo hiểm thất nghiệp (thí điểm): hỗ trợ khi bạn mất việc trên nền tảng, theo quy định "
                      "của chương trình thí điểm.",
        "estimate_title": "Ước tính lương hưu",
        "estimate_label": "ước tính",
        "estimate_pace": "Ước tính: với mức tích lũy trung bình {pace}/tháng ({months} tháng gần nhất), mỗi năm "
                         "được tính khoảng {per_year} tháng.",
        "estimate_reach": "Ước tính bạn đủ {needed} tháng vào {month} (sau khoảng {years} năm {rest} tháng).",
        "estimate_never": "Ước tính: với mức tích lũy hiện nay ({pace}/tháng), bạn sẽ không đủ {needed} tháng.",
        "estimate_beyond": "Ước tính: với mức tích lũy hiện nay, bạn chưa đủ {needed} tháng trong vòng {years} năm tới.",
        "estimate_reached": "Bạn đã đủ {needed} tháng được tính.",
        "estimate_pension": "Lương hưu ước tính khi đủ {needed} tháng: {pension}/tháng ({rate}% của thu nhập làm "
                            "căn cứ đóng {base}).",
        "assumptions_title": "Giả định của ước tính",
        "assumption_pace_continues": "Bạn tiếp tục tích lũy đều như mức trung bình hiện nay.",
        "assumption_todays_floor": "Mỗi tháng được tính ở mức đóng tối thiểu hiện nay ({floor}).",
        "assumption_todays_law": "Theo luật hiện hành: 45% sau 15 năm, thêm 2% mỗi năm, tối đa 75%.",
        "assumption_no_indexation": "Không tính trượt giá, điều chỉnh thu nhập hay tiền lãi.",
    },
    "en": {
        "title": "Contribution statement for {month}",
        "status_closed": "closed",
        "status_open": "provisional (month not closed yet)",
        "scheme": "Scheme", "worker": "You paid", "platform": "Platform paid", "subsidy": "State top-up",
        "total": "Total", "to_date": "To date",
        "platforms": "By platform", "paid_by_all": "The month",
        "counts": "This month's close credited a month towards a pension.",
        "shortfall": "{shortfall} more in your pooled pension balance would credit the next month towards a pension "
                     "(minimum contribution {floor}).",
        "months": "Months credited so far: {counted}/{needed}.",
        "pool": "Pooled pension balance not yet used: {pool}; next month to credit: {next}.",
        "credits_title": "Months credited towards a pension",
        "credited_by": "{month}: credited by the close of {close} ({floor})",
        "no_credits": "No month credited yet.",
        "worker_id": "Citizen ID",
        "topups": "Your top-ups",
        "topup_reference_line": "Payment reference for a top-up (the transfer's memo): {reference}",
        # what a balance means (rules/pension.py)
        "meaning_title": "What this pays for",
        "meaning_si": "Voluntary social insurance (pension): with 180 credited months (15 years) you receive a "
                      "monthly retirement pension from retirement age.",
        "meaning_oa": "Occupational accident: pays when you are hurt while working (treatment and benefits).",
        "meaning_ui": "Unemployment (pilot): supports you when you lose platform work, under the pilot's rules.",
        "estimate_title": "Pension estimate",
        "estimate_label": "estimate",
        "estimate_pace": "Estimate: at your average of {pace} a month (averaged over {months} months), about {per_year} "
                         "months a year are credited.",
        "estimate_reach": "Estimate: {needed} months reached in {month} (in about {years} years {rest} months).",
        "estimate_never": "Estimate: at this pace ({pace} a month) you would not reach {needed} months.",
        "estimate_beyond": "Estimate: at this pace you would not reach {needed} months within {years} years.",
        "estimate_reached": "You have {needed} credited months.",
        "estimate_pension": "Estimated pension at {needed} months: {pension} a month ({rate} % of the income "
                            "base {base}).",
        "assumptions_title": "Assumptions of the estimate",
        "assumption_pace_continues": "You keep accruing at today's average pace.",
        "assumption_todays_floor": "Every credited month is at today's minimum contribution ({floor}).",
        "assumption_todays_law": "Today's law: 45 % after 15 years, +2 % a year, up to 75 %.",
        "assumption_no_indexation": "No indexation of incomes or pensions, no interest.",
    },
}


for _lang, _words in TEXT.items():  # the schemes' names are data (rules/schemes.yaml), not copies here
    _words.update({code: scheme_name(code, _lang) for code in SCHEMES})
assert TEXT["vi"].keys() == TEXT["en"].keys(), "every statement text needs both languages"


def money(amount_vnd: int, lang: str = "vi") -> str:
    """1234567 -> '1.234.567 ₫' (vi) or '1,234,567 VND' (en): api.formats.money."""
    return formats.money(amount_vnd, lang)


def format_statement(report: dict[str, Any], lang: str = "vi") -> str:
    text = TEXT.get(lang, TEXT["vi"])
    shown = formats.formats(lang)
    lines = [
        text["title"].format(month=shown.month(report["month"])) + " — "
        + (text["status_closed"] if report["closed"] else text["status_open"]),
        f"{text['worker_id']}: {formats.mask_national_id(report['national_id'])}",
        "",
        f"{text['scheme']:<40}{text['worker']:>16}{text['platform']:>16}{text['subsidy']:>18}{text['total']:>16}"
        f"{text['to_date']:>16}",
    ]
    for scheme, line in report["schemes"].items():
        lines.append(f"{shown.scheme(scheme):<40}{shown.money(line['worker']):>16}{shown.money(line['platform']):>16}"
                     f"{shown.money(line['subsidy']):>18}{shown.money(line['total']):>16}"
                     f"{shown.money(report['to_date'][scheme]):>16}")
    if report.get("platforms") or report.get("topups_vnd"):
        lines += ["", text["platforms"] + ":"]
        for name, by_scheme in report["platforms"].items():
            paid = sum(part["worker"] + part["platform"] for part in by_scheme.values())
            lines.append(f"  {shown.platform(name):<20}{shown.money(paid):>16}")
        if report.get("topups_vnd"):  # a top-up is no platform: its own line (RULES.md §11)
            lines.append(f"  {text['topups']:<20}{shown.money(report['topups_vnd']):>16}")
        # The state's top-up comes through no platform; with it the lines add up to the schemes' totals.
        subsidy = sum(line["subsidy"] for line in report["schemes"].values())
        lines.append(f"  {text['subsidy']:<20}{shown.money(subsidy):>16}")
        month_total = sum(line["total"] for line in report["schemes"].values())
        lines.append(f"  {text['paid_by_all']:<20}{shown.money(month_total):>16}")
    pension = report.get("pension")
    if pension and pension["floor_contribution_vnd"] is not None:  # pooled crediting, RULES.md §11
        lines.append("")
        if pension["month_counts"]:
            lines.append(text["counts"])
        lines.append(text["shortfall"].format(shortfall=shown.money(pension["shortfall_vnd"]),
                                              floor=shown.money(pension["floor_contribution_vnd"])))
        next_month = pension.get("next_month")
        lines.append(text["pool"].format(pool=shown.money(pension.get("pool_vnd", 0)),
                                         next=shown.month(next_month) if next_month else "—"))
        if not report.get("meaning"):  # with it, the months stand with what they mean (meaning_lines)
            lines.append(text["months"].format(counted=pension["months_counted"], needed=pension["months_needed"]))
    if report.get("meaning"):
        lines += [""] + meaning_lines(report["meaning"], text, shown)
    if report.get("topup_reference"):
        lines += ["", text["topup_reference_line"].format(reference=report["topup_reference"])]
    return "\n".join(lines)


def projection_lines(projection: dict[str, Any], text: dict[str, str], shown: Formats) -> list[str]:
    """The estimate's lines (pace, when 180 months would be reached, the pension) — the page uses them too."""
    needed = projection["months_needed"]
    lines = [text["estimate_pace"].format(pace=shown.money(projection["pace_vnd"]), months=projection["pace_months"],
                                          per_year=projection["credited_months_per_year"])]
    if projection["reached"]:
        lines.append(text["estimate_reached"].format(needed=needed))
    elif projection.get("beyond_horizon"):
        lines.append(text["estimate_beyond"].format(needed=needed, years=HORIZON_MONTHS // 12))
    elif projection["months_to_go"] is None:
        lines.append(text["estimate_never"].format(pace=shown.money(projection["pace_vnd"]), needed=needed))
    else:
        lines.append(text["estimate_reach"].format(needed=needed, month=shown.month(projection["reach_month"]),
                                                   years=projection["months_to_go"] // 12,
                                                   rest=projection["months_to_go"] % 12))
    lines.append(text["estimate_pension"].format(needed=needed, pension=shown.money(projection["pension_vnd"]),
                                                 rate=projection["pension_rate_ppm"] // 10_000,
                                                 base=shown.money(projection["income_base_vnd"])))
    return lines


def assumption_lines(projection: dict[str, Any], text: dict[str, str], shown: Formats) -> list[str]:
    """The projection's assumptions, one line each (rules/pension.py ASSUMPTIONS)."""
    return [text[f"assumption_{key}"].format(floor=shown.money(projection["floor_vnd"]))
            for key in projection["assumptions"]]


def meaning_lines(meaning: dict[str, Any], text: dict[str, str], shown: Formats) -> list[str]:
    """What the balance means: one sentence per scheme, credited months against 180, the estimate."""
    lines = [text["meaning_title"] + ":"]
    lines += [f"  {text[line['sentence']]}" for line in meaning["schemes"].values()]
    lines.append(text["months"].format(counted=meaning["credited_months"], needed=meaning["months_needed"]))
    projection = meaning.get("projection")
    if projection:
        lines += ["", text["estimate_title"] + ":"]
        lines += [f"  {line}" for line in projection_lines(projection, text, shown)]
        lines.append(f"  {text['assumptions_title']}:")
        lines += [f"    - {line}" for line in assumption_lines(projection, text, shown)]
    return lines


def format_credits(report: dict[str, Any], lang: str = "vi") -> str:
    """`ansinh credits`: the months credited, each with the close that credited it."""
    text = TEXT.get(lang, TEXT["vi"])
    shown = formats.formats(lang)
    lines = [text["credits_title"] + f" — {report['credited_months']}/{report['months_needed']}"]
    lines += [f"  {text['credited_by'].format(month=shown.month_title(row['month']), close=shown.month(row['credited_by_close_of']), floor=shown.money(row['floor_vnd']))}"
              for row in report["months"]] or [f"  {text['no_credits']}"]
    return "\n".join(lines)


# -- the per-trip record (ledger/trips.py): `ansinh statement … --events`, the worker page, the CSV --

EVENT_TEXT = {
    "vi": {
        "events_title": "Các giao dịch được ghi sổ {month}",
        "events_when": "Ngày giờ", "events_platform": "Nền tảng", "events_kind": "Loại",
        "events_event_id": "Mã giao dịch", "events_amount": "Số tiền", "events_worker": "Bạn đóng",
        "events_platform_paid": "Nền tảng đóng", "events_note": "Ghi chú", "events_total": "Cộng",
        "events_none": "Không có giao dịch nào được ghi sổ cho bạn trong tháng này.",
        "events_count": "{count} giao dịch",
        "events_refund": "Hoàn tiền", "events_refund_of": "hoàn tiền cho {event_id} ({month})",
        "events_late": "phát sinh {month}, ghi sổ muộn",
        "events_archived": "Các giao dịch của {month} đã được lưu trữ; cơ quan bảo hiểm có thể khôi phục để xem.",
        "events_times": "Giờ Việt Nam (UTC+7).",
        "events_pager": "Các trang giao dịch", "events_prev": "← Trang trước", "events_next": "Trang sau →",
        "events_first": "Về trang đầu", "download_events": "Tải các giao dịch (CSV)",
        "bad_cursor": "Liên kết trang không hợp lệ; hãy mở lại danh sách từ trang đầu.",
        "kind_ride": "Chuyến xe", "kind_delivery": "Giao hàng", "kind_order": "Đơn hàng",
    },
    "en": {
        "events_title": "Events booked in {month}",
        "events_when": "Date and time", "events_platform": "Platform", "events_kind": "Kind",
        "events_event_id": "Event id", "events_amount": "Amount", "events_worker": "You paid",
        "events_platform_paid": "Platform paid", "events_note": "Note", "events_total": "Total",
        "events_none": "No event was booked for you in this month.",
        "events_count": "{count} events",
        "events_refund": "Refund", "events_refund_of": "refund of {event_id} ({month})",
        "events_late": "occurred in {month}, booked late",
        "events_archived": "The events of {month} are archived; the insurer can restore them.",
        "events_times": "Vietnam time (UTC+7).",
        "events_pager": "Pages of events", "events_prev": "← Previous page", "events_next": "Next page →",
        "events_first": "Back to the first page", "download_events": "Download the events (CSV)",
        "bad_cursor": "That page link is not valid; open the list again from its first page.",
        "kind_ride": "Ride", "kind_delivery": "Delivery", "kind_order": "Order",
    },
}

assert EVENT_TEXT["vi"].keys() == EVENT_TEXT["en"].keys()

#: The words of the CSV headers for people (`events_csv_header`, `statement_csv_header`): scheme columns read
#: "<scheme's short name> – <party> (<currency>)".
EVENTS_CSV_WORDS = {
    "vi": {"when": "Ngày giờ", "platform": "Nền tảng", "event_id": "Mã giao dịch", "kind": "Loại",
           "amount": "Số tiền", "worker": "người lao động", "platform_party": "nền tảng", "total": "Cộng",
           "month": "Tháng ghi sổ", "occurred_month": "Tháng phát sinh", "original": "Hoàn tiền cho mã giao dịch",
           "original_month": "Tháng của giao dịch gốc", "currency": "₫", "month_plain": "Tháng",
           "status": "Trạng thái"},
    "en": {"when": "Date and time", "platform": "Platform", "event_id": "Event id", "kind": "Kind",
           "amount": "Amount", "worker": "worker", "platform_party": "platform", "total": "Total",
           "month": "Booked in month", "occurred_month": "Occurred in month", "original": "Refund of event id",
           "original_month": "Month of the original event", "currency": "VND", "month_plain": "Month",
           "status": "Status"},
}


def events_csv_header(lang: str = "vi") -> tuple[str, ...]:
    """The header of the events CSV — a file for people (docs/web.md, "Files"): in the reader's language."""
    words = EVENTS_CSV_WORDS.get(lang, EVENTS_CSV_WORDS["vi"])
    currency = f" ({words['currency']})"
    schemes = tuple(f"{scheme_short_name(scheme, lang)} – {words[party]}{currency}"
                    for scheme in SCHEMES for party in ("worker", "platform_party"))
    return (words["when"], words["platform"], words["event_id"], words["kind"], words["amount"] + currency,
            *schemes, words["total"] + currency, words["month"], words["occurred_month"], words["original"],
            words["original_month"])


def statement_csv_header(lang: str = "vi", *, to_date: bool = True) -> tuple[str, ...]:
    """The header of the worker's statement (and, without `to_date`, history) CSV, in the reader's language."""
    words = EVENTS_CSV_WORDS.get(lang, EVENTS_CSV_WORDS["vi"])
    text = TEXT.get(lang, TEXT["vi"])
    currency = f" ({words['currency']})"
    figures = ("worker", "platform", "subsidy", "total") + (("to_date",) if to_date else ())
    return (words["month_plain"], words["status"], text["scheme"], *(text[key] + currency for key in figures))


def statement_csv_rows(lines: list[dict[str, Any]], lang: str = "vi", to_date: dict[str, int] | None = None):
    """Rows under `statement_csv_header`: one a (month, scheme), the scheme by its name, the month ISO."""
    text = TEXT.get(lang, TEXT["vi"])
    for line in lines:
        status = text["status_closed"] if line["closed"] else text["status_open"]
        for scheme in SCHEMES:
            part = line["schemes"][scheme]
            yield (line["month"], status, scheme_name(scheme, lang), part["worker"], part["platform"],
                   part["subsidy"], part["total"], *((to_date[scheme],) if to_date is not None else ()))


#: The Vietnamese header, the default of `ansinh statement … --events --format csv`.
EVENTS_CSV_HEADER = events_csv_header("vi")


def event_kind_text(item: dict[str, Any], lang: str = "vi") -> str:
    """'Chuyến xe', or 'Hoàn tiền – Chuyến xe' for a refund."""
    text = EVENT_TEXT.get(lang, EVENT_TEXT["vi"])
    kind = text[f"kind_{item['kind']}"]
    return f"{text['events_refund']} – {kind}" if item["type"] == "refund" else kind


def event_note(item: dict[str, Any], lang: str = "vi") -> str:
    """What a reader needs beside the figures: the original of a refund, the month of a late booking."""
    text = EVENT_TEXT.get(lang, EVENT_TEXT["vi"])
    notes = []
    if item["original"] is not None:
        original_month = item["original"]["month"]
        notes.append(text["events_refund_of"].format(
            event_id=item["original"]["event_id"] or "?",
            month=formats.month(original_month, lang) if original_month else "?"))
    if item["late"]:
        notes.append(text["events_late"].format(month=formats.month(item["occurred_month"], lang)))
    return "; ".join(notes)


def _paid(item: dict[str, Any], party: str) -> int:
    return sum(by_party[party] for by_party in item["shares"].values())


def format_events(month: str, national_id: str, items: list[dict[str, Any]], totals: dict[str, Any],
                  lang: str = "vi") -> str:
    """The month's events as a text table (one line an event), then the totals per scheme."""
    text = {**TEXT.get(lang, TEXT["vi"]), **EVENT_TEXT.get(lang, EVENT_TEXT["vi"])}
    shown = formats.formats(lang)
    lines = [text["events_title"].format(month=shown.month(month)) + " — "
             + text["events_count"].format(count=shown.count(totals["count"])),
             f"{text['worker_id']}: {formats.mask_national_id(national_id)} · {text['events_times']}", ""]
    if not items:
        return "\n".join(lines + [text["events_none"]])
    lines.append(f"{text['events_when']:<20}{text['events_platform']:<12}{text['events_kind']:<24}"
                 f"{text['events_event_id']:<22}{text['events_amount']:>16}{text['events_worker']:>14}"
                 f"{text['events_platform_paid']:>15}  {text['events_note']}")
    for item in items:
        lines.append(f"{shown.moment(item['local_time']):<20}{shown.platform(item['platform']):<12}"
                     f"{event_kind_text(item, lang):<24}{item['event_id']:<22}{shown.money(item['amount_vnd']):>16}"
                     f"{shown.money(_paid(item, 'worker')):>14}{shown.money(_paid(item, 'platform')):>15}"
                     f"  {event_note(item, lang)}".rstrip())
    lines += ["", f"{text['events_total']}: {shown.money(totals['amount_vnd'])}"]
    for scheme, by_party in totals["shares"].items():
        lines.append(f"  {shown.scheme(scheme):<40}{text['events_worker']} {shown.money(by_party['worker']):>14}   "
                     f"{text['events_platform_paid']} {shown.money(by_party['platform']):>14}")
    return "\n".join(lines)


def events_csv_rows(items, lang: str = "vi") -> Any:
    """The CSV's rows after its header (`events_csv_header(lang)`), one an event.

    Words (kind, platform) in the reader's language; amounts as integers of VND and the
    time and months as ISO text (`2026-02-01 01:30:00`, `2026-02`), which a spreadsheet
    reads as numbers and dates and shows in its own locale.
    """
    shown = formats.formats(lang)
    for item in items:
        shares = item["shares"]
        original = item["original"] or {}
        yield (item["local_time"], shown.platform(item["platform"]), item["event_id"],
               event_kind_text(item, lang), item["amount_vnd"],
               *(shares[scheme][party] for scheme in SCHEMES for party in ("worker", "platform")),
               item["total_vnd"], item["month"], item["occurred_month"], original.get("event_id") or "",
               original.get("month") or "")
