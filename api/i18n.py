"""Human text for workers: Vietnamese first, English by `--lang en`; money as `1.234.567 ₫`."""
from __future__ import annotations

from typing import Any

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
        lines.append(text["months"].format(counted=pension["months_counted"], needed=pension["months_needed"]))
    if report.get("topup_reference"):
        lines += ["", text["topup_reference_line"].format(reference=report["topup_reference"])]
    return "\n".join(lines)


def format_credits(report: dict[str, Any], lang: str = "vi") -> str:
    """`ansinh credits`: the months credited, each with the close that credited it."""
    text = TEXT.get(lang, TEXT["vi"])
    lines = [text["credits_title"] + f" — {report['credited_months']}/{report['months_needed']}"]
    lines += [f"  {text['credited_by'].format(month=row['month'], close=row['credited_by_close_of'], floor=money(row['floor_vnd']))}"
              for row in report["months"]] or [f"  {text['no_credits']}"]
    return "\n".join(lines)
