"""How numbers, months, dates and names read to people, in Vietnamese and English — one place.

The pages (`api/web`) and the CLI's worker texts (`api/i18n.py`) both format through this
module, so a figure reads the same wherever a person sees it:

| what | vi | en |
|---|---|---|
| money | `1.234.567 ₫` | `1,234,567 VND` |
| count | `1.234.567` | `1,234,567` |
| month | `tháng 1/2026` | `January 2026` |
| month, short (chart ticks) | `1/2026` | `Jan 2026` |
| date | `15/02/2026` | `15 Feb 2026` |
| moment (Vietnam time, to the minute) | `15/02/2026 14:05` | `15 Feb 2026 14:05` |

Why our own module and not Babel: the shapes above are the product's, pinned by tests, and
Babel's CLDR patterns differ from them (`₫1,234,567` in English; a no-break space before `₫`
in Vietnamese), so every call would have overridden its pattern, and a CLDR update would
have moved the figures people compare with their bank statements. STYLE.md: never rely on
a library's default for what the numbers look like. Every shape has a parser beside it
(`parse_money`, …), and a property test (tests/api/test_formats.py) pins that each
rendering reads back to the same integer, month, date or minute in both languages.

Codes stay codes in files and APIs (JSON, machine CSV, Parquet: `si`, `grab`, `2026-01`,
ISO dates); only what is shown to a person goes through here. Scheme names come from
`rules/schemes.yaml`, platform names from the registry `ledger/platforms.yaml`. A time
shown to a person is Vietnam time (UTC+7, no daylight saving) to the minute: seconds and
microseconds belong to the books, not to a page.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from ledger.events import VIETNAM_TZ
from ledger.platforms import platform_name
from rules.names import scheme_name, scheme_short_name

LANGS = ("vi", "en")
MONTH_NAMES_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                  "October", "November", "December")
MONTH_ABBREVIATIONS_EN = tuple(name[:3] for name in MONTH_NAMES_EN)
_GROUP = {"vi": ".", "en": ","}
_CURRENCY = {"vi": " ₫", "en": " VND"}


def _lang(lang: str) -> str:
    """Vietnamese for anything that is not a language we write (the product's first language)."""
    return lang if lang in LANGS else "vi"


def _integer(value: int, what: str) -> int:
    # bool is an int subclass: True is no amount. No float reaches a figure (STYLE.md habit 2).
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} is an int, got {type(value).__name__}")
    return value


def count(number: int, lang: str = "vi") -> str:
    """1234567 -> '1.234.567' (vi) or '1,234,567' (en); negatives with a leading '-'."""
    number = _integer(number, "a count")
    sign = "-" if number < 0 else ""
    return sign + f"{abs(number):,}".replace(",", _GROUP[_lang(lang)])


def money(amount_vnd: int, lang: str = "vi") -> str:
    """1234567 -> '1.234.567 ₫' (vi) or '1,234,567 VND' (en)."""
    return count(_integer(amount_vnd, "money (VND)"), lang) + _CURRENCY[_lang(lang)]


def _month_parts(month: str | int | date) -> tuple[int, int]:
    if isinstance(month, date):
        return month.year, month.month
    if isinstance(month, int) and not isinstance(month, bool):  # the books' 202601
        year, number = divmod(month, 100)
    elif isinstance(month, str) and re.fullmatch(r"\d{4}-\d{2}", month):
        year, number = int(month[:4]), int(month[5:])
    else:
        raise ValueError(f"not a month (YYYY-MM): {month!r}")
    if not 1 <= number <= 12:
        raise ValueError(f"not a month (YYYY-MM): {month!r}")
    return year, number


def month(value: str | int | date, lang: str = "vi") -> str:
    """'2026-01' (or 202601, or a date in it) -> 'tháng 1/2026' (vi) or 'January 2026' (en)."""
    year, number = _month_parts(value)
    return f"tháng {number}/{year}" if _lang(lang) == "vi" else f"{MONTH_NAMES_EN[number - 1]} {year}"


def month_title(value: str | int | date, lang: str = "vi") -> str:
    """The month at the start of a heading or a cell: 'Tháng 1/2026' / 'January 2026'."""
    text = month(value, lang)
    return text[:1].upper() + text[1:]


def month_short(value: str | int | date, lang: str = "vi") -> str:
    """A chart tick: '1/2026' (vi) or 'Jan 2026' (en)."""
    year, number = _month_parts(value)
    return f"{number}/{year}" if _lang(lang) == "vi" else f"{MONTH_ABBREVIATIONS_EN[number - 1]} {year}"


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return _local(value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def day(value: date | str, lang: str = "vi") -> str:
    """date(2026, 2, 15) or '2026-02-15' -> '15/02/2026' (vi) or '15 Feb 2026' (en)."""
    shown = _as_date(value)
    if _lang(lang) == "vi":
        return f"{shown.day:02d}/{shown.month:02d}/{shown.year:04d}"
    return f"{shown.day} {MONTH_ABBREVIATIONS_EN[shown.month - 1]} {shown.year:04d}"


def _local(moment: datetime) -> datetime:
    # A naive datetime is already Vietnam time (ledger.trips' `local_time`); an aware one is moved there.
    return moment.replace(tzinfo=VIETNAM_TZ) if moment.tzinfo is None else moment.astimezone(VIETNAM_TZ)


def _as_moment(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return _local(value)
    text = str(value).strip()
    if text.endswith("Z"):  # the books' UTC stamps (ledger.books.iso_utc)
        text = text[:-1] + "+00:00"
    return _local(datetime.fromisoformat(text))


def moment(value: datetime | str, lang: str = "vi") -> str:
    """A point in time as Vietnam time to the minute: '15/02/2026 14:05' / '15 Feb 2026 14:05'.

    Accepts a datetime or ISO text ('…Z', '…+07:00', or naive = already Vietnam time);
    seconds and microseconds are dropped (cut, not rounded: 14:05:59 is still 14:05).
    """
    local = _as_moment(value)
    return f"{day(local.date(), lang)} {local.hour:02d}:{local.minute:02d}"


def mask_national_id(national_id: str) -> str:
    """`001******142`: all a page or a CLI text shows of a citizen id (never the whole number)."""
    return f"{national_id[:3]}******{national_id[-3:]}" if len(national_id) >= 6 else "******"


# -- reading back: every shape above parses to what it was made from ---------------------

def parse_count(text: str, lang: str = "vi") -> int:
    """'1.234.567' (vi) / '1,234,567' (en) -> 1234567; ValueError for anything else."""
    group = re.escape(_GROUP[_lang(lang)])
    found = re.fullmatch(rf"(-?)(\d{{1,3}}(?:{group}\d{{3}})*)", text.strip())
    if not found:
        raise ValueError(f"not a count in {lang}: {text!r}")
    return int(found.group(1) + found.group(2).replace(_GROUP[_lang(lang)], ""))


def parse_money(text: str, lang: str = "vi") -> int:
    """'1.234.567 ₫' (vi) / '1,234,567 VND' (en) -> 1234567 (VND)."""
    suffix = _CURRENCY[_lang(lang)]
    if not text.endswith(suffix):
        raise ValueError(f"not money in {lang}: {text!r}")
    return parse_count(text[:-len(suffix)], lang)


def parse_month(text: str, lang: str = "vi") -> str:
    """'tháng 1/2026' or 'Tháng 1/2026' (vi) / 'January 2026' (en), or their short forms -> '2026-01'."""
    text = text.strip()
    if _lang(lang) == "vi":
        found = re.fullmatch(r"(?:[tT]háng )?(\d{1,2})/(\d{4})", text)
        if not found:
            raise ValueError(f"not a month in vi: {text!r}")
        number, year = int(found.group(1)), int(found.group(2))
    else:
        found = re.fullmatch(r"([A-Z][a-z]+) (\d{4})", text)
        names = {name: index + 1 for index, name in enumerate(MONTH_NAMES_EN)}
        names.update({name: index + 1 for index, name in enumerate(MONTH_ABBREVIATIONS_EN)})
        if not found or found.group(1) not in names:
            raise ValueError(f"not a month in en: {text!r}")
        number, year = names[found.group(1)], int(found.group(2))
    if not 1 <= number <= 12:
        raise ValueError(f"not a month: {text!r}")
    return f"{year:04d}-{number:02d}"


def parse_day(text: str, lang: str = "vi") -> date:
    """'15/02/2026' (vi) / '15 Feb 2026' (en) -> date(2026, 2, 15)."""
    text = text.strip()
    if _lang(lang) == "vi":
        found = re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", text)
        if not found:
            raise ValueError(f"not a date in vi: {text!r}")
        return date(int(found.group(3)), int(found.group(2)), int(found.group(1)))
    found = re.fullmatch(r"(\d{1,2}) ([A-Z][a-z]{2}) (\d{4})", text)
    if not found or found.group(2) not in MONTH_ABBREVIATIONS_EN:
        raise ValueError(f"not a date in en: {text!r}")
    return date(int(found.group(3)), MONTH_ABBREVIATIONS_EN.index(found.group(2)) + 1, int(found.group(1)))


def parse_moment(text: str, lang: str = "vi") -> datetime:
    """'15/02/2026 14:05' / '15 Feb 2026 14:05' -> that minute, Vietnam time (aware)."""
    found = re.fullmatch(r"(.+) (\d{2}):(\d{2})", text.strip())
    if not found:
        raise ValueError(f"not a date and time: {text!r}")
    shown = parse_day(found.group(1), lang)
    return datetime(shown.year, shown.month, shown.day, int(found.group(2)), int(found.group(3)), tzinfo=VIETNAM_TZ)


@dataclass(frozen=True)
class Formats:
    """The functions above bound to one language: what a page or a CLI text formats with."""

    lang: str

    def money(self, amount_vnd: int) -> str:
        return money(amount_vnd, self.lang)

    def count(self, number: int) -> str:
        return count(number, self.lang)

    def month(self, value: str | int | date) -> str:
        return month(value, self.lang)

    def month_title(self, value: str | int | date) -> str:
        return month_title(value, self.lang)

    def month_short(self, value: str | int | date) -> str:
        return month_short(value, self.lang)

    def day(self, value: date | str) -> str:
        return day(value, self.lang)

    def moment(self, value: datetime | str) -> str:
        return moment(value, self.lang)

    def scheme(self, code: str) -> str:
        """'si' -> 'BHXH tự nguyện (hưu trí)' / 'Voluntary social insurance (pension)'."""
        return scheme_name(code, self.lang)

    def scheme_short(self, code: str) -> str:
        """'si' -> 'BHXH' / 'Pension': a column heading."""
        return scheme_short_name(code, self.lang)

    def platform(self, platform_id: str | None) -> str:
        """'xanhsm' -> 'Xanh SM' (the registry); an id the registry lacks is shown as it is."""
        return platform_name(platform_id)


def formats(lang: str) -> Formats:
    return Formats(_lang(lang))
