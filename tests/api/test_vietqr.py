"""The VietQR text of a top-up (api/vietqr.py): its fields and its CRC, pinned for known inputs."""
from __future__ import annotations

import binascii
import re

import pytest

from api.vietqr import crc16_ccitt, qr_svg, vietqr_payload


def fields(text: str) -> list[tuple[str, str]]:
    """EMVCo's ID / two-digit length / value objects of `text`, in order."""
    found, at = [], 0
    while at < len(text):
        tag, size = text[at:at + 2], int(text[at + 2:at + 4])
        found.append((tag, text[at + 4:at + 4 + size]))
        at += 4 + size
    return found


def test_the_crc_is_crc16_ccitt_false_whose_check_value_is_29b1():
    assert crc16_ccitt("123456789") == "29B1"  # the catalogued check value of CRC-16/CCITT-FALSE


def test_a_published_vietqr_example_is_reproduced_to_its_crc():
    # A VietQR generator's documented output (120,000 VND to 0011001932418 at VietinBank, BIN 970415),
    # made by other code than ours: the same fields give the same text and CRC C15C.
    assert vietqr_payload("970415", "0011001932418", 120_000, "ung ho lu lut") == (
        "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA53037045406120000"
        "5802VN62170813ung ho lu lut6304C15C")


def test_a_topup_qr_carries_the_fund_account_the_amount_and_the_reference_as_its_purpose():
    text = vietqr_payload("970436", "0011000000001", 230_000, "ASW005663190629296")
    assert fields(text) == [
        ("00", "01"), ("01", "12"),
        ("38", "0010A00000072701270006970436011300110000000010208QRIBFTTA"),
        ("53", "704"), ("54", "230000"), ("58", "VN"), ("62", "0818ASW005663190629296"), ("63", "0C6D")]
    assert dict(fields(dict(fields(text))["38"])) == {"00": "A000000727", "01": "000697043601130011000000001",
                                                      "02": "QRIBFTTA"}
    # the standard library's CRC-CCITT (binascii.crc_hqx) from 0xFFFF agrees: an independent computation
    assert crc16_ccitt(text[:-4]) == f"{binascii.crc_hqx(text[:-4].encode(), 0xFFFF):04X}" == "0C6D"


@pytest.mark.parametrize("bank_bin, account, amount, purpose", [
    ("97043", "1", 1, "x"), ("970436", "acc-1", 1, "x"), ("970436", "1", 0, "x"),
    ("970436", "1", 1, "x" * 26), ("970436", "1", 1, "Nộp"),
])
def test_a_payload_banks_could_not_read_is_refused(bank_bin, account, amount, purpose):
    with pytest.raises(ValueError):
        vietqr_payload(bank_bin, account, amount, purpose)


def test_the_qr_is_one_inline_svg_named_for_screen_readers():
    svg = qr_svg(vietqr_payload("970436", "0011000000001", 230_000, "ASW005663190629296"), 'QR "nộp" <230.000 ₫>')
    assert svg.startswith('<svg role="img" aria-label="QR &quot;nộp&quot; &lt;230.000 ₫&gt;" ')
    assert "<title>QR &quot;nộp&quot; &lt;230.000 ₫&gt;</title>" in svg and svg.endswith("</svg>")
    assert len(re.findall("<path", svg)) == 2 and len(svg) < 8_000  # background and modules: a few KB
