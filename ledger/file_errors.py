"""What is wrong with a file people hand us, as a code and parameters, said in Vietnamese or English.

A household tiers CSV, a bank statement or an events file that cannot be used is refused
with `FileProblem`s: a stable `code` (the table below), where it is (`line` of the file, or
`item` — a payment's number in a batch sent without a file — and the bank reference `ref`
of that payment), the `field` it is about, and `params` (numbers, codes, column names,
dates). The words come last: `problem.text("vi")` on the Vietnamese page,
`problem.text("en")` — the sentence the ledger has always said, so `str()` of an error, the
CLI and the HTTP `errors` keep their words — on the English page and in the CLI.

**A cell is never quoted if it could be a citizen id.** A cell's content goes into
`params` only as a `Cell`: shown (quoted as today) when it holds no run of nine or more
digits, else named by its kind and length only — "a 12-digit number (not shown)" — so a
tiers file with its columns swapped, or a header-less file, cannot print a CCCD on a
terminal, in a log or on a page. `national_id` is never quoted at all.

Both languages of every code live in this one table, beside the codes, so a code cannot
be added with one language only (tests/ledger/test_file_errors.py checks every code and
phrase has both, with the same parameters). Numbers are grouped as `api/formats.py` groups
them (`1.000` / `1,000`; a test pins that the two agree); line and column numbers are not
grouped. Dates are ISO in English (what the CLI has always printed) and `dd/mm/yyyy` in
Vietnamese. This module imports nothing but the standard library.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import date
from typing import Any, Iterable, Mapping, Sequence

LANGS = ("vi", "en")
_LONG_DIGIT_RUN = re.compile(r"\d{9,}")  # any Unicode digits: a CCCD (12) and its mistyped neighbours
_SHORT_CHARS = 40  # a quoted header name longer than this is cut (`…`), as before

# code -> {lang: template}. A template is the sentence after the location ("line 3: …").
# `{name}` is a parameter: an int is grouped by language unless given a spec (`{line:d}`);
# a Cell is quoted or described; a date is ISO (en) or dd/mm/yyyy (vi); a list is joined ", ".
TEXTS: dict[str, dict[str, str]] = {
    # -- the file itself (ledger/files.py, ledger/readers.py) --
    "not_utf8": {
        "en": "encoding: not UTF-8 (byte 0x{byte:02x} at column {column:d}); save the file as UTF-8",
        "vi": "mã hóa: không phải UTF-8 (byte 0x{byte:02x} ở cột {column:d}); hãy lưu tệp dưới dạng UTF-8"},
    "line_too_long": {
        "en": "line: longer than {limit} bytes",
        "vi": "dòng dài hơn {limit} byte"},
    "cell_too_long": {
        "en": "cell: longer than {limit} characters",
        "vi": "một ô dài hơn {limit} ký tự"},
    "csv_newline": {
        "en": "csv: {detail}",
        "vi": "một ô không nằm trong dấu ngoặc kép có ký tự xuống dòng lẻ (CR); hãy lưu lại tệp dưới dạng CSV"},
    "csv_syntax": {
        "en": "csv: {detail}",
        "vi": "không đọc được theo cú pháp CSV ({detail})"},
    "header_empty": {
        "en": "header: the file is empty; the first line must be the header {expected}",
        "vi": "tệp trống; dòng đầu tiên phải là dòng tiêu đề {expected}"},
    "header_columns": {  # `{problems}`: the `header_*` phrases below, joined by "; "
        "en": "header: {problems} (the first line must be the header: {expected})",
        "vi": "tiêu đề: {problems} (dòng đầu tiên phải là dòng tiêu đề: {expected})"},
    "header_mapping": {  # a platform's own export read through a mapping (ledger/mapping.py's words)
        "en": "header: {detail} (the first line must be the header)",
        "vi": "tiêu đề: {detail} (dòng đầu tiên phải là dòng tiêu đề)"},
    "parquet_unreadable": {
        "en": "parquet: not a readable Parquet file ({detail})",
        "vi": "không đọc được tệp Parquet ({detail})"},
    # -- a row of a household tiers file (ledger/close.py) --
    "column_count": {
        "en": "expected {expected:d} columns, got {got:d}",
        "vi": "cần {expected:d} cột, dòng này có {got:d}"},
    "bad_national_id": {
        "en": "national_id is not a valid 12-digit citizen identity number",
        "vi": "national_id không phải số CCCD hợp lệ (12 chữ số, mã tỉnh hợp lệ)"},
    "bad_valid_from": {
        "en": "valid_from must be YYYY-MM, got {value}",
        "vi": "valid_from phải có dạng YYYY-MM, nhận được {value}"},
    "unknown_tier": {
        "en": "tier {value} is unknown to {version} (known: {known})",
        "vi": "hạng {value} không có trong {version} (các hạng có: {known})"},
    "tier_conflict": {
        "en": "a different tier for the same worker and valid_from as line {earlier:d}",
        "vi": "hạng khác với dòng {earlier:d} cho cùng người lao động và cùng valid_from"},
    # -- a payment of a bank statement (ledger/money.py) --
    "bad_date": {
        "en": "date must be YYYY-MM-DD, got {value}",
        "vi": "date phải là ngày dạng YYYY-MM-DD, nhận được {value}"},
    "bad_amount": {
        "en": "amount_vnd must be a whole number of VND between 1 and {max}, got {value}",
        "vi": "amount_vnd phải là số nguyên VND từ 1 đến {max}, nhận được {value}"},
    "missing_payer": {
        "en": "payer is required (a platform id, 'state' for the state budget, 'worker' for a top-up)",
        "vi": "thiếu payer (mã nền tảng, 'state' cho ngân sách nhà nước, 'worker' cho khoản người lao động "
              "tự đóng)"},
    "bad_bank_ref": {
        "en": "bank_ref must be 1–64 printable characters without spaces (the bank's transaction id)",
        "vi": "bank_ref phải gồm 1–64 ký tự in được, không có khoảng trắng (mã giao dịch của ngân hàng)"},
    "reference_too_long": {
        "en": "reference is longer than {max:d} characters",
        "vi": "reference dài hơn {max:d} ký tự"},
    "topup_reference_missing": {
        "en": "a worker top-up needs the worker's payment reference in its reference ({prefix} and {digits:d} "
              "digits, as on the statement); none with the right check digits was found",
        "vi": "khoản tự đóng của người lao động cần mã thanh toán của người đó trong reference ({prefix} và "
              "{digits:d} chữ số, như trên sao kê); không tìm thấy mã nào có chữ số kiểm tra đúng"},
    "topup_unknown_worker": {
        "en": "the top-up reference names no worker of these books (copy it from the worker's statement)",
        "vi": "mã tự đóng không ứng với người lao động nào trong sổ (hãy chép mã từ sao kê của người đó)"},
    "unknown_payer": {
        "en": "payer {value} is neither a known platform nor 'state' nor 'worker'",
        "vi": "payer {value} không phải nền tảng đã biết, cũng không phải 'state' hay 'worker'"},
    "future_date": {
        "en": "dated {paid_on}, after today {today}",
        "vi": "ghi ngày {paid_on}, sau ngày hôm nay ({today})"},
    "bank_ref_conflict": {
        "en": "bank_ref {ref} was booked before with another payer, amount or date",
        "vi": "bank_ref {ref} đã được ghi sổ trước đó với bên trả, số tiền hoặc ngày khác"},
}

# Pieces of sentences: where a problem is, the parts of `header_columns`, and how a hidden cell reads.
PHRASES: dict[str, dict[str, str]] = {
    "at_line": {"en": "line {line:d}", "vi": "dòng {line:d}"},
    "at_item": {"en": "payment {item:d}", "vi": "khoản {item:d}"},
    "missing_one": {"en": "missing column {names}", "vi": "thiếu cột {names}"},
    "missing_many": {"en": "missing columns {names}", "vi": "thiếu các cột {names}"},
    "unknown_one": {"en": "unknown column {names}", "vi": "cột không rõ {names}"},
    "unknown_many": {"en": "unknown columns {names}", "vi": "các cột không rõ {names}"},
    "repeated_one": {"en": "column {names} more than once", "vi": "cột {names} xuất hiện nhiều lần"},
    "repeated_many": {"en": "columns {names} more than once", "vi": "các cột {names} xuất hiện nhiều lần"},
    "hidden_number": {"en": "a {length:d}-digit number (not shown)",
                      "vi": "một số có {length:d} chữ số (không hiển thị)"},
    "hidden_text": {"en": "a text of {length:d} characters (not shown)",
                    "vi": "một chuỗi {length:d} ký tự (không hiển thị)"},
}


@dataclass(frozen=True)
class Cell:
    """What an error may say of a cell: `shown` (already quoted when `quoted`), or None and its kind."""

    shown: str | None
    length: int
    digits_only: bool

    def text(self, lang: str) -> str:
        if self.shown is not None:
            return self.shown
        return phrase("hidden_number" if self.digits_only else "hidden_text", lang, length=self.length)

    def as_json(self) -> dict[str, Any]:
        if self.shown is not None:
            return {"shown": self.shown}
        return {"kind": "number" if self.digits_only else "text", "length": self.length}


def cell(value: object, *, quoted: bool = True, limit: int | None = None) -> Cell:
    """`value` as an error may name it: `repr()` (or as it is, `quoted=False`) when it cannot be a
    citizen id; otherwise only whether it is all digits and how long it is. `limit` cuts a long text."""
    text = value if isinstance(value, str) else str(value)
    if _LONG_DIGIT_RUN.search(text):
        return Cell(None, len(text), text.isdigit())
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return Cell(repr(text) if quoted and isinstance(value, str) else repr(value) if quoted else text,
                len(text), text.isdigit())


def group(number: int, lang: str) -> str:
    """1000000 -> '1.000.000' (vi) / '1,000,000' (en): api/formats.py's `count`, without importing it."""
    return f"{number:,}".replace(",", "." if lang == "vi" else ",")


def day_text(value: date, lang: str) -> str:
    return value.isoformat() if lang == "en" else f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


class _Words(string.Formatter):
    def __init__(self, lang: str) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Cell):
            return value.text(self.lang)
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int) and not format_spec:
            return group(value, self.lang)
        if isinstance(value, date):
            return day_text(value, self.lang)
        if isinstance(value, (list, tuple)):
            return ", ".join(self.format_field(item, "") for item in value)
        return super().format_field(value, format_spec)


def _lang(lang: str) -> str:
    return lang if lang in LANGS else "vi"


def phrase(key: str, lang: str, **params: Any) -> str:
    return _Words(_lang(lang)).format(PHRASES[key][_lang(lang)], **params)


@dataclass(frozen=True)
class FileProblem:
    """One thing wrong with a file (or a batch): a code of `TEXTS`, where, and its parameters."""

    code: str
    line: int | None = None  # the file's line (from 1)
    field: str | None = None  # the column, or `header` / `cell` / `encoding` for the file itself
    params: Mapping[str, Any] = _field(default_factory=dict)  # never a raw cell: a `Cell`
    item: int | None = None  # a payment's number in a batch that came without a file
    ref: Cell | None = None  # the payment's bank reference, said beside its line

    def __post_init__(self) -> None:
        assert self.code in TEXTS, f"no words for file problem {self.code!r}"

    def message(self, lang: str = "en") -> str:
        """The sentence without the location: 'date must be YYYY-MM-DD, got …'."""
        lang = _lang(lang)
        params = dict(self.params)
        if self.code == "header_columns":
            params["problems"] = "; ".join(_header_parts(params, lang))
        return _Words(lang).format(TEXTS[self.code][lang], **params)

    def where(self, lang: str = "en") -> str | None:
        """'line 3 (VCB-2)' / 'khoản 2', or None for a problem of the whole file without a line."""
        if self.line is None and self.item is None:
            return None
        place = phrase("at_line", lang, line=self.line) if self.line is not None else \
            phrase("at_item", lang, item=self.item)
        return place if self.ref is None else f"{place} ({self.ref.text(_lang(lang))})"

    def text(self, lang: str = "en") -> str:
        """The whole sentence: 'line 3: tier 'rich' is unknown to …' (en), 'dòng 3: hạng …' (vi)."""
        where = self.where(lang)
        return self.message(lang) if where is None else f"{where}: {self.message(lang)}"

    def located(self, *, line: int | None = None, item: int | None = None, ref: Cell | None = None) -> "FileProblem":
        """The same problem placed at a line or a batch item (and its bank reference)."""
        return FileProblem(self.code, line if line is not None else self.line, self.field, self.params,
                           item if item is not None else self.item, ref if ref is not None else self.ref)

    def as_json(self) -> dict[str, Any]:
        """For machines (the HTTP problem's `problems`): code, where, and each parameter as data."""
        data: dict[str, Any] = {"code": self.code}
        for key in ("line", "item", "field"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.ref is not None:
            data["ref"] = self.ref.as_json()
        data["params"] = {key: _json_value(value) for key, value in self.params.items()}
        return data


def _json_value(value: Any) -> Any:
    if isinstance(value, Cell):
        return value.as_json()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    return value


def _header_parts(params: Mapping[str, Any], lang: str) -> list[str]:
    parts = []
    for key in ("missing", "unknown", "repeated"):
        names = list(params.get(key) or ())
        if not names:
            continue
        joined = ", ".join(name.text(lang) if isinstance(name, Cell) else str(name) for name in names)
        if key == "unknown" and params.get("unknown_more"):
            joined += " …"
        parts.append(phrase(f"{key}_{'many' if len(names) > 1 else 'one'}", lang, names=joined))
    return parts


def header_problem(columns: Sequence[str], missing: Sequence[str], unknown: Sequence[str],
                   repeated: Sequence[str]) -> FileProblem:
    """`header_columns` at line 1: unknown names as `Cell`s (a header-less file's first row is data)."""
    return FileProblem("header_columns", 1, "header", {
        "missing": list(missing), "unknown": [cell(name, limit=_SHORT_CHARS) for name in unknown[:5]],
        "unknown_more": len(unknown) > 5, "repeated": [cell(name) for name in repeated],
        "expected": ",".join(columns)})


class FileProblems(Exception):
    """A file or batch refused whole, with every problem found; `errors` are the English sentences."""

    def __init__(self, problems: Iterable[FileProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(problem.text("en") for problem in self.problems))

    @property
    def errors(self) -> list[str]:
        return [problem.text("en") for problem in self.problems]

    def texts(self, lang: str) -> list[str]:
        return [problem.text(lang) for problem in self.problems]
