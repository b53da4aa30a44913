"""Human text for workers: Vietnamese first, English by `--lang en`; money as `1.234.567 ₫`."""
from __future__ import annotations

from typing import Any

from rules.pension import HORIZON_MONTHS

TEXT = {
    "vi": {
        "title": "Sao kê đóng góp tháng {month}",
        "status_closed": "đã chốt sổ",
        "status_open": "tạm tính (tháng chưa chốt)",
        "scheme": "Quỹ", "worker": "Bạn đóng", "platform": "Nền tảng đóng", "subsidy": "Nhà nước hỗ trợ",
        "total": "Cộng", "to_date": "Lũy kế",
        "si": "BHXH tự nguyện (hưu trí)", "oa": "Tai nạn lao động", "ui": "Bảo hiểm thất nghiệp",
        "platforms": "Theo nền tảng",
        "counts": "Kỳ chốt sổ tháng này đã tính thêm tháng đóng để hưởng lương hưu.",
        "shortfall": "Còn thiếu {shortfall} trong số dư BHXH gộp để tháng tiếp theo được tính hưởng lương hưu "
                     "(mức đóng tối thiểu {floor}).",
        "months": "Số tháng đã được tính: {counted}/{needed}.",
        "pool": "Số dư BHXH gộp chưa dùng: {pool}; tháng tiếp theo được tính: {next}.",
        "credits_title": "Các tháng được tính hưởng lương hưu",
        "credited_by": "tháng {month}: tính khi chốt sổ tháng {close} ({floor})",
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
        "estimate_reach": "Ước tính bạn đủ {needed} tháng vào tháng {month} (sau khoảng {years} năm {rest} tháng).",
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
        "si": "Voluntary social insurance (pension)", "oa": "Occupational accident", "ui": "Unemployment",
        "platforms": "By platform",
        "counts": "This month's close credited a month towards a pension.",
        "shortfall": "{shortfall} more in your pooled si balance would credit the next month towards a pension "
                     "(minimum contribution {floor}).",
        "months": "Months credited so far: {counted}/{needed}.",
        "pool": "Pooled si balance not yet used: {pool}; next month to credit: {next}.",
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


def money(amount_vnd: int) -> str:
    """1234567 -> '1.234.567 ₫' (Vietnamese grouping with dots)."""
    sign = "-" if amount_vnd < 0 else ""
    return f"{sign}{abs(amount_vnd):,} ₫".replace(",", ".")


def format_statement(report: dict[str, Any], lang: str = "vi") -> str:
    text = TEXT.get(lang, TEXT["vi"])
    national_id = report["national_id"]
    lines = [
        text["title"].format(month=report["month"]) + " — "
        + (text["status_closed"] if report["closed"] else text["status_open"]),
        f"{text['worker_id']}: {national_id[:3]}******{national_id[-3:]}",
        "",
        f"{text['scheme']:<40}{text['worker']:>16}{text['platform']:>16}{text['subsidy']:>18}{text['total']:>16}"
        f"{text['to_date']:>16}",
    ]
    for scheme, line in report["schemes"].items():
        lines.append(f"{text[scheme]:<40}{money(line['worker']):>16}{money(line['platform']):>16}"
                     f"{money(line['subsidy']):>18}{money(line['total']):>16}{money(report['to_date'][scheme]):>16}")
    if report.get("platforms") or report.get("topups_vnd"):
        lines += ["", text["platforms"] + ":"]
        for name, by_scheme in report["platforms"].items():
            paid = sum(part["worker"] + part["platform"] for part in by_scheme.values())
            lines.append(f"  {name:<20}{money(paid):>16}")
        if report.get("topups_vnd"):  # a top-up is no platform: its own line (RULES.md §11)
            lines.append(f"  {text['topups']:<20}{money(report['topups_vnd']):>16}")
    pension = report.get("pension")
    if pension and pension["floor_contribution_vnd"] is not None:  # pooled crediting, RULES.md §11
        lines.append("")
        if pension["month_counts"]:
            lines.append(text["counts"])
        lines.append(text["shortfall"].format(shortfall=money(pension["shortfall_vnd"]),
                                              floor=money(pension["floor_contribution_vnd"])))
        lines.append(text["pool"].format(pool=money(pension.get("pool_vnd", 0)), next=pension.get("next_month") or "—"))
        if not report.get("meaning"):  # with it, the months stand with what they mean (meaning_lines)
            lines.append(text["months"].format(counted=pension["months_counted"], needed=pension["months_needed"]))
    if report.get("meaning"):
        lines += [""] + meaning_lines(report["meaning"], text)
    if report.get("topup_reference"):
        lines += ["", text["topup_reference_line"].format(reference=report["topup_reference"])]
    return "\n".join(lines)


def projection_lines(projection: dict[str, Any], text: dict[str, str], money=money) -> list[str]:
    """The estimate's lines (pace, when 180 months would be reached, the pension) — the page uses them too."""
    needed = projection["months_needed"]
    lines = [text["estimate_pace"].format(pace=money(projection["pace_vnd"]), months=projection["pace_months"],
                                          per_year=projection["credited_months_per_year"])]
    if projection["reached"]:
        lines.append(text["estimate_reached"].format(needed=needed))
    elif projection.get("beyond_horizon"):
        lines.append(text["estimate_beyond"].format(needed=needed, years=HORIZON_MONTHS // 12))
    elif projection["months_to_go"] is None:
        lines.append(text["estimate_never"].format(pace=money(projection["pace_vnd"]), needed=needed))
    else:
        lines.append(text["estimate_reach"].format(needed=needed, month=projection["reach_month"],
                                                   years=projection["months_to_go"] // 12,
                                                   rest=projection["months_to_go"] % 12))
    lines.append(text["estimate_pension"].format(needed=needed, pension=money(projection["pension_vnd"]),
                                                 rate=projection["pension_rate_ppm"] // 10_000,
                                                 base=money(projection["income_base_vnd"])))
    return lines


def assumption_lines(projection: dict[str, Any], text: dict[str, str], money=money) -> list[str]:
    """The projection's assumptions, one line each (rules/pension.py ASSUMPTIONS)."""
    return [text[f"assumption_{key}"].format(floor=money(projection["floor_vnd"])) for key in projection["assumptions"]]


def meaning_lines(meaning: dict[str, Any], text: dict[str, str]) -> list[str]:
    """What the balance means: one sentence per scheme, credited months against 180, the estimate."""
    lines = [text["meaning_title"] + ":"]
    lines += [f"  {text[line['sentence']]}" for line in meaning["schemes"].values()]
    lines.append(text["months"].format(counted=meaning["credited_months"], needed=meaning["months_needed"]))
    projection = meaning.get("projection")
    if projection:
        lines += ["", text["estimate_title"] + ":"]
        lines += [f"  {line}" for line in projection_lines(projection, text)]
        lines.append(f"  {text['assumptions_title']}:")
        lines += [f"    - {line}" for line in assumption_lines(projection, text)]
    return lines


def format_credits(report: dict[str, Any], lang: str = "vi") -> str:
    """`ansinh credits`: the months credited, each with the close that credited it."""
    text = TEXT.get(lang, TEXT["vi"])
    lines = [text["credits_title"] + f" — {report['credited_months']}/{report['months_needed']}"]
    lines += [f"  {text['credited_by'].format(month=row['month'], close=row['credited_by_close_of'], floor=money(row['floor_vnd']))}"
              for row in report["months"]] or [f"  {text['no_credits']}"]
    return "\n".join(lines)


# -- the per-trip record (ledger/trips.py): `ansinh statement … --events`, the worker page, the CSV --

EVENT_TEXT = {
    "vi": {
        "events_title": "Các giao dịch được ghi sổ tháng {month}",
        "events_when": "Ngày giờ", "events_platform": "Nền tảng", "events_kind": "Loại",
        "events_event_id": "Mã giao dịch", "events_amount": "Số tiền", "events_worker": "Bạn đóng",
        "events_platform_paid": "Nền tảng đóng", "events_note": "Ghi chú", "events_total": "Cộng",
        "events_none": "Không có giao dịch nào được ghi sổ cho bạn trong tháng này.",
        "events_count": "{count} giao dịch",
        "events_refund": "Hoàn tiền", "events_refund_of": "hoàn tiền cho {event_id} (tháng {month})",
        "events_late": "phát sinh tháng {month}, ghi sổ muộn",
        "events_archived": "Các giao dịch của tháng {month} đã được lưu trữ; cơ quan bảo hiểm có thể khôi phục để xem.",
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

#: The CSV of a worker's events (`ansinh statement … --events --format csv`, the worker page's
#: download): Vietnamese headers, whatever the language of the page; amounts in VND as integers.
EVENTS_CSV_HEADER = (
    "Ngày giờ", "Nền tảng", "Mã giao dịch", "Loại", "Số tiền (₫)",
    "BHXH – người lao động (₫)", "BHXH – nền tảng (₫)", "TNLĐ – người lao động (₫)", "TNLĐ – nền tảng (₫)",
    "BHTN – người lao động (₫)", "BHTN – nền tảng (₫)", "Cộng (₫)",
    "Tháng ghi sổ", "Tháng phát sinh", "Hoàn tiền cho mã giao dịch", "Tháng của giao dịch gốc",
)


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
        notes.append(text["events_refund_of"].format(event_id=item["original"]["event_id"] or "?",
                                                     month=item["original"]["month"] or "?"))
    if item["late"]:
        notes.append(text["events_late"].format(month=item["occurred_month"]))
    return "; ".join(notes)


def _paid(item: dict[str, Any], party: str) -> int:
    return sum(by_party[party] for by_party in item["shares"].values())


def format_events(month: str, national_id: str, items: list[dict[str, Any]], totals: dict[str, Any],
                  lang: str = "vi") -> str:
    """The month's events as a text table (one line an event), then the totals per scheme."""
    text = {**TEXT.get(lang, TEXT["vi"]), **EVENT_TEXT.get(lang, EVENT_TEXT["vi"])}
    lines = [text["events_title"].format(month=month) + " — " + text["events_count"].format(count=totals["count"]),
             f"{text['worker_id']}: {national_id[:3]}******{national_id[-3:]} · {text['events_times']}", ""]
    if not items:
        return "\n".join(lines + [text["events_none"]])
    lines.append(f"{text['events_when']:<20}{text['events_platform']:<12}{text['events_kind']:<24}"
                 f"{text['events_event_id']:<22}{text['events_amount']:>16}{text['events_worker']:>14}"
                 f"{text['events_platform_paid']:>15}  {text['events_note']}")
    for item in items:
        lines.append(f"{item['local_time']:<20}{item['platform'] or '?':<12}{event_kind_text(item, lang):<24}"
                     f"{item['event_id']:<22}{money(item['amount_vnd']):>16}{money(_paid(item, 'worker')):>14}"
                     f"{money(_paid(item, 'platform')):>15}  {event_note(item, lang)}".rstrip())
    lines += ["", f"{text['events_total']}: {money(totals['amount_vnd'])}"]
    for scheme, by_party in totals["shares"].items():
        lines.append(f"  {text[scheme]:<40}{text['events_worker']} {money(by_party['worker']):>12}   "
                     f"{text['events_platform_paid']} {money(by_party['platform']):>12}")
    return "\n".join(lines)


def events_csv_rows(items) -> Any:
    """The CSV's rows after its header (EVENTS_CSV_HEADER), one an event, Vietnamese words."""
    for item in items:
        shares = item["shares"]
        original = item["original"] or {}
        yield (item["local_time"], item["platform"], item["event_id"], event_kind_text(item, "vi"), item["amount_vnd"],
               shares["si"]["worker"], shares["si"]["platform"], shares["oa"]["worker"], shares["oa"]["platform"],
               shares["ui"]["worker"], shares["ui"]["platform"], item["total_vnd"], item["month"],
               item["occurred_month"], original.get("event_id") or "", original.get("month") or "")
