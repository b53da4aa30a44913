"""Words on the pages: Vietnamese first, English by `?lang=en`; money as `1.234.567 ₫`.

Scheme names and statement phrases come from `api.i18n.TEXT` (the CLI's statement
uses the same words); this module adds what only the pages say.
"""
from __future__ import annotations

from api.i18n import TEXT as STATEMENT_TEXT
from api.i18n import money as money_vi

LANGS = ("vi", "en")

PAGES = {
    "vi": {
        "app": "An sinh", "skip": "Bỏ qua, đến nội dung chính", "lang_switch": "English", "lang_other": "en",
        "nav_worker": "Của tôi", "nav_insurer": "Bảo hiểm", "nav_policy": "Chính sách", "nav_admin": "Quản trị",
        "sign_out": "Đăng xuất", "sign_in": "Đăng nhập",
        # sign-in
        "signin_title": "Đăng nhập",
        "signin_worker": "Người lao động",
        "signin_worker_help": "Nhập số CCCD 12 chữ số của bạn (chế độ thử nghiệm).",
        "national_id": "Số CCCD",
        "signin_staff": "Cán bộ",
        "role": "Vai trò", "role_insurer": "Cơ quan bảo hiểm", "role_policy": "Phân tích chính sách",
        "role_admin": "Quản trị viên",
        "signin_token": "Hoặc dán mã truy cập (token)", "token": "Mã truy cập",
        "signin_demo_note": "Chế độ thử nghiệm: mã được tạo trên máy chủ, hết hạn sau {minutes} phút.",
        "signin_production": "Đăng nhập qua ứng dụng định danh quốc gia, rồi dán mã truy cập được cấp.",
        "bad_national_id": "Số CCCD phải gồm đúng 12 chữ số.",
        "bad_token": "Mã truy cập không hợp lệ: {reason}",
        "demo_only": "Chỉ dùng được ở chế độ thử nghiệm.",
        # worker
        "worker_title": "Bảo hiểm của bạn", "month": "Tháng", "show": "Xem",
        "this_month": "Tháng {month}", "to_date_label": "Lũy kế đến nay",
        "pension_title": "Hướng tới lương hưu",
        "pension_progress": "{counted} trên {needed} tháng đã được tính",
        "no_floor": "Tháng này chưa có mức đóng tối thiểu để tính lương hưu.",
        "history": "Lịch sử theo tháng", "history_chart": "Tổng đóng góp mỗi tháng (bạn, nền tảng, nhà nước)",
        "download_csv": "Tải sao kê (CSV)", "download_history": "Tải lịch sử (CSV)", "print": "Bản in sao kê",
        "platform_name": "Nền tảng", "paid_total": "Đã đóng",
        "no_accounts": "Chưa có khoản đóng góp nào được ghi cho bạn.",
        "not_worker": "Trang này dành cho người lao động. Bạn đang đăng nhập với vai trò {role}.",
        "print_note": "In trang này hoặc lưu thành PDF bằng trình duyệt.", "printed_from": "Trích từ sổ An sinh",
        # insurer
        "insurer_title": "Các tháng và quyết toán", "status": "Trạng thái", "entries": "Bút toán",
        "closed_at": "Chốt lúc", "subsidy_total": "Tổng hỗ trợ", "rules_version": "Phiên bản quy tắc",
        "open": "đang mở", "closed": "đã chốt", "settlement": "Quyết toán", "close": "Chốt sổ…",
        "close_title": "Chốt sổ tháng {month}?",
        "close_what": "Khi chốt sổ:",
        "close_step1": "Nhà nước hỗ trợ được ghi cho từng người lao động theo hạng hộ gia đình.",
        "close_step2": "Tháng {month} bị khóa: không ghi thêm hay sửa khoản nào vào tháng này; sự kiện đến muộn được ghi vào tháng sau.",
        "close_step3": "Quyết toán trở thành chính thức, kèm mã băm của các bút toán.",
        "close_provisional": "Quyết toán tạm tính hiện tại",
        "close_confirm": "Xác nhận chốt sổ tháng {month}", "cancel": "Hủy",
        "closed_done": "Đã chốt sổ tháng {month}: {workers} người lao động được hỗ trợ, tổng {subsidy}.",
        "cannot_close": "Không thể chốt sổ: {reason}",
        "settlement_title": "Quyết toán tháng {month}", "final": "chính thức", "provisional": "tạm tính",
        "payer": "Bên trả", "state_budget": "Ngân sách nhà nước (hỗ trợ)", "control_total": "Tổng kiểm soát",
        "postings": "Số dòng hạch toán", "postings_hash": "Mã băm SHA-256 của các dòng hạch toán",
        "download_parquet": "Tải Parquet", "download_settlement_csv": "Tải CSV", "back": "Quay lại",
        "no_months": "Chưa có tháng nào có bút toán.",
        # policy
        "policy_title": "Thử nghiệm chính sách", "baseline": "Gói quy tắc gốc", "start": "Tháng bắt đầu",
        "horizon": "Số tháng mô phỏng", "workers_count": "Số người lao động (mô phỏng)", "seed": "Hạt giống ngẫu nhiên",
        "rates": "Tỷ lệ đóng theo loại giao dịch (%)", "tiers": "Nhà nước hỗ trợ theo hạng hộ (%)",
        "caps": "Mức trần cơ sở hỗ trợ mỗi tháng (₫)", "run": "Chạy mô phỏng", "load": "Tải gói", "scenario": "Kịch bản",
        "kind_ride": "Chuyến xe", "kind_delivery": "Giao hàng", "kind_order": "Đơn hàng",
        "party_worker": "người lao động", "party_platform": "nền tảng",
        "tier_poor": "Hộ nghèo", "tier_near_poor": "Hộ cận nghèo", "tier_other": "Khác",
        "results": "Kết quả", "arm_baseline": "Hiện hành", "arm": "Phương án", "reform": "Cải cách",
        "subsidy_vnd": "Ngân sách hỗ trợ", "worker_vnd": "Người lao động đóng", "platform_vnd": "Nền tảng đóng",
        "workers_contributing": "Người có đóng", "pension_months": "Tháng tính lương hưu",
        "leakage": "Rò rỉ (‰ hỗ trợ tới 30 % thu nhập cao nhất)", "difference": "Chênh lệch",
        "chart_budget": "Ngân sách hỗ trợ theo năm", "chart_coverage": "Tháng tính lương hưu theo hạng hộ",
        "chart_deciles": "Thay đổi số dư tích lũy theo nhóm thu nhập (thập phân vị)",
        "winners": "Người được lợi (số dư tăng)", "losers": "Người chịu thiệt (số dư giảm)",
        "download_report": "Tải báo cáo đầy đủ (HTML)", "scenario_errors": "Kịch bản chưa hợp lệ:",
        "population_note": "Dân số tổng hợp, tối đa {workers} người khi chạy trên trang.",
        "changes": "Thay đổi so với gốc", "no_changes": "Không có thay đổi nào: phương án cải cách giống gốc.",
        "decile": "Nhóm",
        # admin
        "admin_title": "Quản trị", "households": "Nhập hạng hộ gia đình (CSV)",
        "households_help": "Cột: national_id,tier,valid_from (YYYY-MM). Nhập tất cả hoặc không gì cả.",
        "csv_file": "Tệp CSV", "csv_text": "Hoặc dán nội dung CSV", "import": "Nhập",
        "imported": "Đã nhập {count} dòng hạng hộ.", "import_errors": "Không dòng nào được nhập. Lỗi:",
        "keys": "Khóa API của nền tảng", "key_id": "Mã khóa", "created_at": "Tạo lúc", "retires_at": "Hết hạn lúc",
        "revoked_at": "Thu hồi lúc", "add_key": "Cấp khóa mới", "platform_id": "Mã nền tảng",
        "revoke": "Thu hồi", "rotate": "Xoay vòng", "secret_once": "Bí mật của khóa {key_id} (chỉ hiện một lần, hãy lưu lại ngay):",
        "revoked": "Đã thu hồi khóa {key_id}.", "active": "đang dùng", "no_keys": "Chưa có khóa nào.",
        "confirm_revoke": "Thu hồi khóa này ngay?",
        "bad_platform": "Mã nền tảng chỉ gồm chữ, số và . _ : - (tối đa 128 ký tự).",
        # errors
        "forbidden": "Bạn không có quyền xem trang này (vai trò của bạn: {role}).", "error": "Lỗi",
        "not_found": "Không tìm thấy trang.", "bad_month": "Tháng phải có dạng YYYY-MM.",
        "bad_origin": "Yêu cầu bị từ chối: biểu mẫu không gửi từ trang này.",
        "signed_in_as": "Đăng nhập: {who}",
    },
    "en": {
        "app": "An sinh", "skip": "Skip to main content", "lang_switch": "Tiếng Việt", "lang_other": "vi",
        "nav_worker": "Mine", "nav_insurer": "Insurer", "nav_policy": "Policy", "nav_admin": "Admin",
        "sign_out": "Sign out", "sign_in": "Sign in",
        "signin_title": "Sign in",
        "signin_worker": "Worker",
        "signin_worker_help": "Enter your 12-digit citizen ID (demo mode).",
        "national_id": "Citizen ID",
        "signin_staff": "Staff",
        "role": "Role", "role_insurer": "Insurer", "role_policy": "Policy analyst", "role_admin": "Administrator",
        "signin_token": "Or paste an access token", "token": "Access token",
        "signin_demo_note": "Demo mode: the token is minted on the server and expires after {minutes} minutes.",
        "signin_production": "Sign in with the national identity app, then paste the token it gives you.",
        "bad_national_id": "A citizen ID is exactly 12 digits.",
        "bad_token": "The access token is not valid: {reason}",
        "demo_only": "Only available in demo mode.",
        "worker_title": "Your insurance", "month": "Month", "show": "Show",
        "this_month": "Month {month}", "to_date_label": "To date",
        "pension_title": "Towards a pension",
        "pension_progress": "{counted} of {needed} months counted",
        "no_floor": "No pension floor is in force for this month.",
        "history": "History by month", "history_chart": "Total contributions per month (you, platform, state)",
        "download_csv": "Download statement (CSV)", "download_history": "Download history (CSV)",
        "print": "Printable statement",
        "platform_name": "Platform", "paid_total": "Paid",
        "no_accounts": "No contributions are recorded for you yet.",
        "not_worker": "This page is for workers. You are signed in as {role}.",
        "print_note": "Print this page or save it as PDF from the browser.", "printed_from": "From the An sinh ledger",
        "insurer_title": "Months and settlement", "status": "Status", "entries": "Entries",
        "closed_at": "Closed at", "subsidy_total": "Subsidy total", "rules_version": "Rules version",
        "open": "open", "closed": "closed", "settlement": "Settlement", "close": "Close…",
        "close_title": "Close {month}?",
        "close_what": "Closing the month will:",
        "close_step1": "post the state top-up to each worker by household status;",
        "close_step2": "freeze {month}: nothing more is booked into it or changed; late events go to the next open month;",
        "close_step3": "make the settlement final, with a hash of its postings.",
        "close_provisional": "Provisional settlement now",
        "close_confirm": "Confirm: close {month}", "cancel": "Cancel",
        "closed_done": "Closed {month}: {workers} workers subsidised, {subsidy} in all.",
        "cannot_close": "Cannot close: {reason}",
        "settlement_title": "Settlement for {month}", "final": "final", "provisional": "provisional",
        "payer": "Payer", "state_budget": "State budget (top-up)", "control_total": "Control total",
        "postings": "Postings", "postings_hash": "SHA-256 of the postings",
        "download_parquet": "Download Parquet", "download_settlement_csv": "Download CSV", "back": "Back",
        "no_months": "No month has bookings yet.",
        "policy_title": "Policy what-ifs", "baseline": "Baseline pack", "start": "First month",
        "horizon": "Months simulated", "workers_count": "Workers (synthetic)", "seed": "Random seed",
        "rates": "Contribution rates by kind (%)", "tiers": "State top-up by household tier (%)",
        "caps": "Monthly subsidy base cap (₫)", "run": "Run the simulation", "load": "Load pack", "scenario": "Scenario",
        "kind_ride": "Ride", "kind_delivery": "Delivery", "kind_order": "Order",
        "party_worker": "worker", "party_platform": "platform",
        "tier_poor": "Poor", "tier_near_poor": "Near-poor", "tier_other": "Other",
        "results": "Results", "arm_baseline": "Baseline", "arm": "Arm", "reform": "Reform",
        "subsidy_vnd": "State top-up", "worker_vnd": "Workers paid", "platform_vnd": "Platforms paid",
        "workers_contributing": "Contributors", "pension_months": "Pension months",
        "leakage": "Leakage (‰ of top-up to the richest 30 %)", "difference": "Difference",
        "chart_budget": "State top-up by year", "chart_coverage": "Pension months by household tier",
        "chart_deciles": "Change in accrued balance by income decile",
        "winners": "Winners (balance up)", "losers": "Losers (balance down)",
        "download_report": "Download the full report (HTML)", "scenario_errors": "The scenario is not valid:",
        "population_note": "Synthetic population, at most {workers} workers on this page.",
        "changes": "Changes from the baseline", "no_changes": "No changes: the reform equals the baseline.",
        "decile": "Decile",
        "admin_title": "Administration", "households": "Import household tiers (CSV)",
        "households_help": "Columns: national_id,tier,valid_from (YYYY-MM). All rows or none are applied.",
        "csv_file": "CSV file", "csv_text": "Or paste the CSV", "import": "Import",
        "imported": "Imported {count} household rows.", "import_errors": "Nothing was imported. Errors:",
        "keys": "Platform API keys", "key_id": "Key id", "created_at": "Created", "retires_at": "Retires",
        "revoked_at": "Revoked", "add_key": "Issue a key", "platform_id": "Platform id",
        "revoke": "Revoke", "rotate": "Rotate", "secret_once": "Secret of key {key_id} (shown once, store it now):",
        "revoked": "Revoked key {key_id}.", "active": "active", "no_keys": "No keys yet.",
        "confirm_revoke": "Revoke this key now?",
        "bad_platform": "A platform id is letters, digits and . _ : - (at most 128 characters).",
        "forbidden": "You may not see this page (your role: {role}).", "error": "Error",
        "not_found": "Page not found.", "bad_month": "A month is YYYY-MM.",
        "bad_origin": "Refused: the form was not sent from this site.",
        "signed_in_as": "Signed in: {who}",
    },
}

assert PAGES["vi"].keys() == PAGES["en"].keys(), "every page text needs both languages"


def texts(lang: str) -> dict[str, str]:
    """Page and statement words for `lang` (Vietnamese for anything else)."""
    chosen = lang if lang in LANGS else "vi"
    return {**STATEMENT_TEXT[chosen], **PAGES[chosen]}


def money(amount_vnd: int, lang: str = "vi") -> str:
    """`1.234.567 ₫` in Vietnamese, `1,234,567 ₫` in English; integers only."""
    if not isinstance(amount_vnd, int):
        raise TypeError(f"money is an int of VND, got {type(amount_vnd).__name__}")
    text = money_vi(amount_vnd)
    return text.replace(".", ",") if lang == "en" else text


def mask_national_id(national_id: str) -> str:
    """`001******142`: what a worker's own page shows of the number."""
    return f"{national_id[:3]}******{national_id[-3:]}" if len(national_id) >= 6 else "******"
