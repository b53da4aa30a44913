"""VietQR: the QR text Vietnamese banking apps scan to fill in a transfer, and its SVG.

A worker tops up a month (RULES.md §11) by a bank transfer to the fund with their payment
reference in the memo. The worker page shows it as a VietQR code, so the banking app
fills in the account, the amount and the memo, and nothing is mistyped.

The text is EMVCo's merchant-presented QR (ID, two-digit length, value), with NAPAS's
VietQR template for transfers to an account:

| ID | value |
|---|---|
| 00 | payload format `01` |
| 01 | point of initiation: `12` (a QR for one amount; `11` is a static one) |
| 38 | merchant account: 00 GUID `A000000727` (NAPAS), 01 beneficiary (00 the bank's BIN, 01 the account number), 02 service `QRIBFTTA` (transfer to an account) |
| 53 | currency `704` (VND) |
| 54 | amount, whole đồng |
| 58 | country `VN` |
| 62 | additional data: 08 purpose of the transfer (the memo: our reference, 25 characters at most) |
| 63 | CRC-16/CCITT-FALSE (polynomial 0x1021, start 0xFFFF) of everything before it, `6304` included, 4 hex digits |

The SVG comes from segno (pure Python, no image library): one path, so the page stays small.
"""
from __future__ import annotations

import io
import re
from html import escape

NAPAS_GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
CURRENCY_VND = "704"
COUNTRY = "VN"
PURPOSE_MAX = 25
_BIN = re.compile(r"[0-9]{6}", re.ASCII)
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,19}", re.ASCII)
_PURPOSE = re.compile(r"[ -~]{1,25}", re.ASCII)  # printable ASCII: what every banking app reads back


def tlv(tag: str, value: str) -> str:
    """One EMVCo data object: ID, length in two digits, value."""
    if len(value) > 99:
        raise ValueError(f"VietQR field {tag} is {len(value)} characters long; 99 at most")
    return f"{tag}{len(value):02d}{value}"


def crc16_ccitt(text: str) -> str:
    """CRC-16/CCITT-FALSE of the text's bytes, as EMVCo's field 63 writes it (4 upper-case hex digits)."""
    crc = 0xFFFF
    for byte in text.encode("ascii"):
        crc ^= byte << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def vietqr_payload(bank_bin: str, account: str, amount_vnd: int, purpose: str) -> str:
    """The VietQR text for a transfer of `amount_vnd` to `account` at the bank `bank_bin`, memo `purpose`."""
    if not _BIN.fullmatch(bank_bin):
        raise ValueError("the bank's BIN is 6 digits (NAPAS's list: 970436 is Vietcombank)")
    if not _ACCOUNT.fullmatch(account):
        raise ValueError("the account number is 1 to 19 letters or digits")
    if not 0 < amount_vnd < 10**13:
        raise ValueError(f"a VietQR amount is a positive whole number of VND, got {amount_vnd}")
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError(f"the memo is 1 to {PURPOSE_MAX} printable ASCII characters")
    beneficiary = tlv("00", bank_bin) + tlv("01", account)
    merchant = tlv("00", NAPAS_GUID) + tlv("01", beneficiary) + tlv("02", SERVICE_TO_ACCOUNT)
    body = (tlv("00", "01") + tlv("01", "12") + tlv("38", merchant) + tlv("53", CURRENCY_VND)
            + tlv("54", str(amount_vnd)) + tlv("58", COUNTRY) + tlv("62", tlv("08", purpose)) + "6304")
    return body + crc16_ccitt(body)


def qr_svg(payload: str, title: str) -> str:
    """The payload as an inline SVG QR code (error correction M), titled for screen readers.

    One module per unit and a viewBox, no width or height: the page's CSS sizes it (sharp at any size).
    """
    import segno  # the page's only use of it: imported when a QR is drawn

    code = segno.make_qr(payload, error="m", boost_error=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="svg", scale=1, border=4, omitsize=True, xmldecl=False, svgns=True, nl=False,
              title=None, desc=None, svgclass="vietqr", lineclass=None, dark="#000", light="#fff")
    svg = buffer.getvalue().decode("ascii")
    # An image with a name: role and aria-label for assistive technology, <title> for a tooltip.
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" ', 1).replace(
        ">", f"><title>{escape(title)}</title>", 1)


__all__ = ["crc16_ccitt", "qr_svg", "tlv", "vietqr_payload"]
