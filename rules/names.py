"""What people read for each scheme code: `rules/schemes.yaml`, checked when first read.

The codes are the rules' (`rules.model.SCHEMES`); their names are data beside them, so a
scheme cannot be added without its names in both languages (the loader refuses the file).
`api/formats.py` shows them; files and APIs keep the codes.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from rules.loader import PackError, decode_text
from rules.model import SCHEMES

SCHEME_NAMES_FILE = Path(__file__).with_name("schemes.yaml")
NAME_LANGS = ("vi", "en")
NAME_FIELDS = ("name", "short")


@lru_cache(maxsize=1)
def scheme_names() -> dict[str, dict[str, dict[str, str]]]:
    """code -> lang -> {"name": …, "short": …}; PackError names the field that is missing or wrong."""
    source = SCHEME_NAMES_FILE
    data = yaml.safe_load(decode_text(source.read_bytes(), source))
    if not isinstance(data, dict) or set(data) != set(SCHEMES):
        raise PackError(source, "schemes", f"must name exactly the schemes {', '.join(SCHEMES)}")
    for code in SCHEMES:
        for lang in NAME_LANGS:
            names = (data[code] or {}).get(lang)
            if not isinstance(names, dict) or set(names) != set(NAME_FIELDS) or \
                    not all(isinstance(names[field], str) and names[field].strip() for field in NAME_FIELDS):
                raise PackError(source, f"{code}.{lang}", f"needs {' and '.join(NAME_FIELDS)}, as text")
    return data


def scheme_name(code: str, lang: str = "vi") -> str:
    """'si' -> 'BHXH tự nguyện (hưu trí)'; KeyError for a code that is no scheme (a bug, not input)."""
    return scheme_names()[code][lang if lang in NAME_LANGS else "vi"]["name"]


def scheme_short_name(code: str, lang: str = "vi") -> str:
    """'si' -> 'BHXH' / 'Pension'."""
    return scheme_names()[code][lang if lang in NAME_LANGS else "vi"]["short"]
