"""The one formatting layer (api/formats.py): each shape pinned once, and every rendering
reads back to what it was made from, in both languages (issue 17, item 3)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api import formats
from api.formats import (LANGS, count, day, money, moment, month, month_short, month_title, parse_count, parse_day,
                         parse_money, parse_moment, parse_month)
from ledger.events import VIETNAM_TZ
from ledger.platforms import RegistryError, platform_name, platform_registry
from rules import SCHEMES
from rules.names import scheme_name, scheme_names, scheme_short_name

# Far past any book: a whole-ledger total of 10^18 VND still reads back exactly.
AMOUNTS = st.integers(min_value=-10**18, max_value=10**18)
MONTHS = st.builds(lambda year, number: f"{year:04d}-{number:02d}", st.integers(1900, 2099), st.integers(1, 12))
DAYS = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
MOMENTS = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2099, 12, 30),
                       timezones=st.sampled_from([timezone.utc, VIETNAM_TZ, timezone(timedelta(hours=-5))]))
LANG = st.sampled_from(LANGS)


def test_money_reads_the_vietnamese_way_in_vietnamese_and_the_english_way_in_english():
    assert money(1_234_567, "vi") == "1.234.567 ₫"
    assert money(1_234_567, "en") == "1,234,567 VND"
    assert money(-849_000, "vi") == "-849.000 ₫" and money(0, "en") == "0 VND" and money(999, "vi") == "999 ₫"


def test_counts_group_like_the_money_beside_them():
    assert count(1_234_567, "vi") == "1.234.567" and count(1_234_567, "en") == "1,234,567"
    assert count(-1_000, "vi") == "-1.000" and count(12, "en") == "12"


def test_months_read_as_people_write_them():
    assert month("2026-01", "vi") == "tháng 1/2026" and month("2026-01", "en") == "January 2026"
    assert month(202612, "vi") == "tháng 12/2026" and month(date(2026, 12, 31), "en") == "December 2026"
    assert month_title("2026-01", "vi") == "Tháng 1/2026" and month_title("2026-01", "en") == "January 2026"
    assert month_short("2026-01", "vi") == "1/2026" and month_short("2026-01", "en") == "Jan 2026"


def test_dates_are_day_month_year_in_vietnamese_and_unambiguous_in_english():
    assert day("2026-02-15", "vi") == "15/02/2026" and day(date(2026, 2, 5), "en") == "5 Feb 2026"


def test_a_moment_is_vietnam_time_to_the_minute_never_with_seconds_or_microseconds():
    stamp = "2026-01-31T18:30:59.999999Z"  # what ledger.books.iso_utc stores
    assert moment(stamp, "vi") == "01/02/2026 01:30" and moment(stamp, "en") == "1 Feb 2026 01:30"
    assert moment("2026-02-01 01:30:00", "vi") == "01/02/2026 01:30"  # ledger.trips' local_time: already Vietnam time
    assert moment(datetime(2026, 2, 1, 1, 30, 45, 123456, tzinfo=VIETNAM_TZ), "en") == "1 Feb 2026 01:30"


def test_an_unknown_language_reads_vietnamese_the_products_first_language():
    assert money(1_000, "fr") == "1.000 ₫" and month("2026-03", "") == "tháng 3/2026"


def test_a_float_or_a_bool_is_refused_as_money_no_float_comes_near_a_figure():
    with pytest.raises(TypeError):
        money(1.5)
    with pytest.raises(TypeError):
        count(True)


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "26-01", "2026/01", None])
def test_something_that_is_no_month_is_refused_not_shown(bad):
    with pytest.raises(ValueError):
        month(bad)


@pytest.mark.parametrize("lang, text", [("vi", "1,234 ₫"), ("en", "1.234 VND"), ("vi", "1.23.456 ₫"), ("en", "1,234 ₫"),
                                        ("vi", "12.3456 ₫"), ("en", "")])
def test_the_parser_refuses_the_other_languages_grouping_or_a_broken_group(lang, text):
    with pytest.raises(ValueError):
        parse_money(text, lang)


@given(amount=AMOUNTS, lang=LANG)
def test_every_money_rendering_reads_back_to_the_same_integer(amount, lang):
    shown = money(amount, lang)
    assert parse_money(shown, lang) == amount
    assert ("₫" in shown) == (lang == "vi") and ("VND" in shown) == (lang == "en")


@given(number=AMOUNTS, lang=LANG)
def test_every_count_rendering_reads_back_to_the_same_integer(number, lang):
    assert parse_count(count(number, lang), lang) == number


@given(value=MONTHS, lang=LANG)
def test_every_month_rendering_long_title_and_short_reads_back_to_the_same_month(value, lang):
    assert parse_month(month(value, lang), lang) == value
    assert parse_month(month_title(value, lang), lang) == value
    assert parse_month(month_short(value, lang), lang) == value


@given(value=DAYS, lang=LANG)
def test_every_date_rendering_reads_back_to_the_same_date(value, lang):
    assert parse_day(day(value, lang), lang) == value
    assert parse_day(day(value.isoformat(), lang), lang) == value


@given(value=MOMENTS, lang=LANG)
def test_every_moment_reads_back_to_the_same_minute_in_vietnam_time(value, lang):
    shown = moment(value, lang)
    assert "." not in shown.rpartition(" ")[2] and shown.count(":") == 1  # minutes: no seconds, no microseconds
    expected = value.astimezone(VIETNAM_TZ).replace(second=0, microsecond=0)
    assert parse_moment(shown, lang) == expected
    assert moment(value.isoformat(), lang) == shown  # the same instant as ISO text reads the same


def test_scheme_names_come_from_the_data_file_in_both_languages_for_every_scheme():
    assert set(scheme_names()) == set(SCHEMES)
    assert scheme_name("si", "vi") == "BHXH tự nguyện (hưu trí)" and scheme_name("ui", "en") == "Unemployment"
    assert [scheme_short_name(code, "vi") for code in SCHEMES] == ["BHXH", "TNLĐ", "BHTN"]
    assert [scheme_short_name(code, "en") for code in SCHEMES] == ["Pension", "Accident", "Unemployment"]
    assert formats.formats("en").scheme("oa") == "Occupational accident"


def test_platform_names_come_from_the_registry_and_an_unregistered_id_reads_as_itself():
    assert platform_registry()["xanhsm"] == "Xanh SM" and platform_name("shopeefood") == "ShopeeFood"
    assert set(platform_registry()) >= {"grab", "be", "xanhsm", "shopeefood", "shopee", "lazada"}
    assert platform_name("chicago-taxi") == "chicago-taxi" and platform_name(None) == "?"


def test_a_registry_entry_without_a_name_or_with_a_bad_id_is_refused_naming_it(tmp_path, monkeypatch):
    from ledger import platforms

    for text, named in (("grab: {}\n", "grab.name"), ("'bad id': {name: X}\n", "'bad id'")):
        broken = tmp_path / "platforms.yaml"
        broken.write_text(text, encoding="utf-8")
        monkeypatch.setattr(platforms, "REGISTRY_FILE", broken)
        platforms.platform_registry.cache_clear()
        with pytest.raises(RegistryError, match=named):
            platforms.platform_registry()
    platforms.platform_registry.cache_clear()


def test_a_scheme_names_file_missing_a_language_is_refused_naming_the_field(tmp_path, monkeypatch):
    from rules import names
    from rules.loader import PackError

    broken = tmp_path / "schemes.yaml"
    broken.write_text("si: {vi: {name: a, short: b}, en: {name: c, short: d}}\n"
                      "oa: {vi: {name: a, short: b}, en: {name: c, short: d}}\n"
                      "ui: {vi: {name: a, short: b}}\n", encoding="utf-8")
    monkeypatch.setattr(names, "SCHEME_NAMES_FILE", broken)
    names.scheme_names.cache_clear()
    with pytest.raises(PackError, match="ui.en"):
        names.scheme_names()
    names.scheme_names.cache_clear()


@given(number=st.integers(min_value=0, max_value=10**18), lang=st.sampled_from(LANGS),
       value=st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31)))
def test_a_file_error_groups_its_figures_and_writes_vietnamese_dates_as_the_pages_do(number, lang, value):
    # ledger/file_errors.py imports nothing of api: its own grouping and day must not drift from this layer.
    from ledger.file_errors import day_text, group

    assert group(number, lang) == count(number, lang)
    if lang == "vi":
        assert day_text(value, lang) == day(value, lang)
