"""Column mappings: a platform's own export, turned into ledger events as it is read.

A mapping is a small YAML file (docs/stream.md, "Bulk import with a mapping";
docs/mappings/chicago-taxi.yaml is a worked example). It is applied as a wrapper
over the `(line, item)` pairs of `ledger.readers.read_events`, so a mapped file
goes through the one ingest path like any other:

    items = apply_mapping(load_mapping("grab-export.yaml"), read_events("export.csv"))

Each row is transformed in this order: column renames; value maps for `kind` and
`action`; the amount (decimal × multiplier, rounded to integer VND); the timestamp
(parsed, naive times placed in the mapping's time zone, optionally shifted by whole
days); constants (set on every row); an `event_id` from a template when the row has
none; a generated `worker_id` when the row has none; columns that are not event
fields dropped unless `keep_other_columns`.

A mapping never rejects a row itself: a value it cannot convert is passed on as it
is, and the ledger rejects the event with the usual code (`invalid_amount`,
`invalid_timestamp`, …), so outcomes mean the same with or without a mapping. The
mapping file, on the other hand, is validated completely before any row is read;
every problem is reported, each naming its key.
"""
from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ledger.files import FileFormatError, is_ascii_decimal, read_text
from ledger.identity import PROVINCE_CODES
from rules.model import KINDS

MAPPING_VERSION = 1
EVENT_FIELDS = ("event_id", "platform", "kind", "action", "worker_id", "amount", "currency", "occurred_at",
                "original_event_id")
ACTIONS = ("complete", "refund")
ROUNDINGS = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "down": ROUND_DOWN, "exact": None}
TIME_FORMATS = ("iso", "unix_seconds", "unix_milliseconds", "unix_seconds_local")
TOP_KEYS = ("mapping", "description", "columns", "constants", "kinds", "actions", "amount", "occurred_at",
            "event_id", "worker_id", "keep_other_columns")
_PROVINCES = tuple(sorted(PROVINCE_CODES))
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EPOCH = datetime(1970, 1, 1)


class MappingError(Exception):
    """A mapping file that cannot be used; `errors` lists every problem, each naming its key."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(errors))


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, str]
    constants: dict[str, Any]
    kinds: dict[str, str]
    actions: dict[str, str]
    amount_multiplier: Decimal | None
    amount_rounding: str
    time_format: str
    time_zone: ZoneInfo | None
    time_zone_name: str | None
    shift_days: int
    event_id_template: str | None
    worker_columns: tuple[str, ...] | None
    worker_salt: str
    birth_years: tuple[int, int]
    keep_other_columns: bool
    description: str = ""


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file (MappingError lists every problem)."""
    source = str(path)
    try:
        document = yaml.safe_load(read_text(path))
    except OSError as error:
        raise MappingError(source, [f"cannot read the file: {error.strerror}"]) from None
    except FileFormatError as error:
        raise MappingError(source, [error.problem.text("en")]) from None
    except yaml.YAMLError as error:
        raise MappingError(source, [f"not valid YAML: {_one_line(error)}"]) from None
    except ValueError as error:  # a YAML date that is no date (2026-02-30)
        raise MappingError(source, [f"not valid YAML: {error}"]) from None
    return parse_mapping(document, source)


def parse_mapping(document: object, source: str = "mapping") -> Mapping:
    errors: list[str] = []
    if not isinstance(document, dict):
        raise MappingError(source, ["the file must hold a mapping of keys (columns:, constants:, …)"])
    for key in document:
        if key not in TOP_KEYS:
            errors.append(f"{key}: unknown key (known: {', '.join(TOP_KEYS)})")
    if document.get("mapping") != MAPPING_VERSION:
        errors.append(f"mapping: must be {MAPPING_VERSION} (the format version), got {document.get('mapping')!r}")

    columns = _text_dict(document, "columns", errors)
    targets: dict[str, str] = {}
    for column, target in columns.items():
        if target in targets:
            errors.append(f"columns.{column}: renames to {target!r}, as columns.{targets[target]} does")
        targets[target] = column

    constants = document.get("constants") or {}
    if not isinstance(constants, dict):
        errors.append("constants: must map event fields to values")
        constants = {}
    for key, value in constants.items():
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            errors.append(f"constants.{key}: must be a string or an integer, got {value!r}")
    if "kind" in constants and constants["kind"] not in KINDS:
        errors.append(f"constants.kind: {constants['kind']!r} is not a kind ({', '.join(KINDS)})")
    if "action" in constants and constants["action"] not in ACTIONS:
        errors.append(f"constants.action: {constants['action']!r} is not an action ({', '.join(ACTIONS)})")

    kinds = _text_dict(document, "kinds", errors)
    for value, kind in kinds.items():
        if kind not in KINDS:
            errors.append(f"kinds.{value}: {kind!r} is not a kind ({', '.join(KINDS)})")
    actions = _text_dict(document, "actions", errors)
    for value, action in actions.items():
        if action not in ACTIONS:
            errors.append(f"actions.{value}: {action!r} is not an action ({', '.join(ACTIONS)})")

    amount = _section(document, "amount", ("multiplier", "rounding"), errors)
    multiplier = None
    if "multiplier" in amount:
        multiplier = _decimal(amount["multiplier"])
        if multiplier is None or multiplier <= 0:
            errors.append(f"amount.multiplier: must be a positive decimal number, got {amount['multiplier']!r}")
    rounding = amount.get("rounding", "half_up")
    if rounding not in ROUNDINGS:
        errors.append(f"amount.rounding: must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")

    timing = _section(document, "occurred_at", ("format", "time_zone", "shift_days"), errors)
    time_format = timing.get("format", "iso")
    if not isinstance(time_format, str) or (time_format not in TIME_FORMATS and "%" not in time_format):
        errors.append(f"occurred_at.format: must be one of {', '.join(TIME_FORMATS)} or a strptime pattern "
                      f"such as '%d/%m/%Y %H:%M', got {time_format!r}")
    zone, zone_name = None, timing.get("time_zone")
    if zone_name is not None:
        try:
            zone = ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"occurred_at.time_zone: {zone_name!r} is not an IANA time zone (e.g. Asia/Ho_Chi_Minh)")
    elif time_format == "unix_seconds_local":
        errors.append("occurred_at.time_zone: unix_seconds_local needs the zone of the wall clock")
    shift_days = timing.get("shift_days", 0)
    if type(shift_days) is not int or abs(shift_days) > 100_000:
        errors.append(f"occurred_at.shift_days: must be a whole number of days, got {shift_days!r}")
        shift_days = 0

    identity = _section(document, "event_id", ("template",), errors)
    template = identity.get("template")
    if template is not None:
        errors.extend(_template_problems(template))

    worker = _section(document, "worker_id", ("generate_from", "salt", "birth_years"), errors)
    worker_columns = worker.get("generate_from")
    if worker_columns is not None and (not isinstance(worker_columns, list) or not worker_columns
                                       or not all(isinstance(c, str) for c in worker_columns)):
        errors.append(f"worker_id.generate_from: must be a list of column names, got {worker_columns!r}")
        worker_columns = None
    salt = worker.get("salt", "")
    if not isinstance(salt, str):
        errors.append("worker_id.salt: must be a string")
        salt = ""
    birth_years = worker.get("birth_years", [1960, 2000])
    if (not isinstance(birth_years, list) or len(birth_years) != 2 or not all(type(y) is int for y in birth_years)
            or not 1900 <= birth_years[0] <= birth_years[1] <= 2099):
        errors.append(f"worker_id.birth_years: must be [first, last] with 1900 ≤ first ≤ last ≤ 2099, "
                      f"got {birth_years!r}")
        birth_years = [1960, 2000]
    if worker and worker_columns is None and "generate_from" not in worker:
        errors.append("worker_id.generate_from: required when worker_id is given")

    keep = document.get("keep_other_columns", False)
    if not isinstance(keep, bool):
        errors.append(f"keep_other_columns: must be true or false, got {keep!r}")
    description = document.get("description") or ""
    if errors:
        raise MappingError(source, errors)
    return Mapping(columns, dict(constants), kinds, actions, multiplier, rounding, time_format, zone,
                   str(zone_name) if zone_name else None, shift_days, template,
                   tuple(worker_columns) if worker_columns else None, salt, (birth_years[0], birth_years[1]),
                   keep, str(description))


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def header_problems(mapping: Mapping, header: list[str], required: Iterable[str]) -> list[str]:
    """What is wrong with a file's header under this mapping: required event fields it cannot give,
    and columns the mapping reads (worker_id.generate_from, the event_id template) that it lacks.

    Without this, a file with no header, or with a renamed column, maps every row to the same
    blank worker or event id, or to events missing a field, and nothing says why.
    """
    produced = {mapping.columns.get(column, column) for column in header} | set(mapping.constants)
    if mapping.event_id_template:
        produced.add("event_id")
    if mapping.worker_columns:
        produced.add("worker_id")
    problems = []
    missing = [field for field in required if field not in produced]
    if missing:
        problems.append(f"no column gives {', '.join(missing)} (after the mapping's renames and constants)")
    read = list(mapping.worker_columns or ())
    if mapping.event_id_template:
        read += [name for _literal, name, _spec, _conversion in string.Formatter().parse(mapping.event_id_template)
                 if name and name != "_line"]
    absent = [column for column in dict.fromkeys(read) if column not in header]
    if absent:
        problems.append(f"missing column{'s' if len(absent) > 1 else ''} {', '.join(absent)} "
                        "(read by worker_id.generate_from or event_id.template)")
    return problems


def _section(document: dict, key: str, allowed: tuple[str, ...], errors: list[str]) -> dict:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"{key}: must hold the keys {', '.join(allowed)}")
        return {}
    for inner in value:
        if inner not in allowed:
            errors.append(f"{key}.{inner}: unknown key (known: {', '.join(allowed)})")
    return value


def _text_dict(document: dict, key: str, errors: list[str]) -> dict[str, str]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"{key}: must map names to names")
        return {}
    result = {}
    for name, target in value.items():
        if not isinstance(target, str) or not isinstance(name, (str, int)) or isinstance(name, bool):
            errors.append(f"{key}.{name}: must map a name to a name, got {target!r}")
            continue
        result[str(name)] = target
    return result


def _template_problems(template: object) -> list[str]:
    if not isinstance(template, str) or not template:
        return [f"event_id.template: must be a non-empty string, got {template!r}"]
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        return [f"event_id.template: {error}"]
    problems = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not _FIELD_NAME.fullmatch(name) or spec or conversion:
            problems.append(f"event_id.template: {{{name}}} must be a plain column name or {{_line}}, "
                            "with no format spec, index or attribute")
    return problems


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)  # the shortest text that reads back as this float: 12.45, not 12.4499999…
    if not isinstance(value, (int, str)):
        return None
    text = str(value).strip()
    if not is_ascii_decimal(text):  # Decimal() reads full-width and other Unicode digits: never money
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


# -- applying a mapping ----------------------------------------------------------------------

def apply_mapping(mapping: Mapping, items: Iterable[tuple[int, object]]) -> Iterator[tuple[int, object]]:
    """Map each `(line, item)`; items that are not objects pass through (the ledger calls them malformed)."""
    for line, item in items:
        yield line, (map_row(mapping, line, item) if type(item) is dict else item)


def map_row(mapping: Mapping, line: int, row: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {}
    renames = mapping.columns
    for column, value in row.items():
        target = renames.get(column, column)
        if mapping.keep_other_columns or target in EVENT_FIELDS:
            event[target] = value
    kind = event.get("kind")
    if mapping.kinds and isinstance(kind, (str, int)) and str(kind) in mapping.kinds:
        event["kind"] = mapping.kinds[str(kind)]
    action = event.get("action")
    if mapping.actions and isinstance(action, (str, int)) and str(action) in mapping.actions:
        event["action"] = mapping.actions[str(action)]
    if mapping.amount_multiplier is not None and "amount" in event:
        event["amount"] = convert_amount(event["amount"], mapping.amount_multiplier, mapping.amount_rounding)
    if "occurred_at" in event and (mapping.time_format != "iso" or mapping.time_zone or mapping.shift_days):
        event["occurred_at"] = convert_time(event["occurred_at"], mapping)
    event.update(mapping.constants)
    if mapping.event_id_template and event.get("event_id") is None:
        event["event_id"] = _fill(mapping.event_id_template, row, line)
    if mapping.worker_columns and event.get("worker_id") is None:
        key = "\x1f".join(_text(row.get(column)) for column in mapping.worker_columns)
        event["worker_id"] = synthetic_national_id(key, mapping.worker_salt, mapping.birth_years)
    return event


def convert_amount(value: object, multiplier: Decimal, rounding: str) -> object:
    """value × multiplier as integer VND; a value that is not a number is returned unchanged."""
    number = _decimal(value)
    if number is None:
        return value
    scaled = number * multiplier
    mode = ROUNDINGS[rounding]
    if mode is None:
        return int(scaled) if scaled == scaled.to_integral_value() else value
    return int(scaled.quantize(Decimal(1), rounding=mode))


def convert_time(value: object, mapping: Mapping) -> object:
    """An RFC 3339 text with the offset in force in the mapping's zone; unparsable values unchanged."""
    moment = _parse_time(value, mapping.time_format)
    if moment is None:
        return value
    if moment.tzinfo is None:
        if mapping.time_zone is None:
            return value  # naive and no zone to place it in: the ledger rejects it (invalid_timestamp)
        moment = (moment + timedelta(days=mapping.shift_days)).replace(tzinfo=mapping.time_zone)
    elif mapping.shift_days:
        # Shift the wall clock where the event happened, so a 10:00 trip stays a 10:00 trip.
        zone = mapping.time_zone or moment.tzinfo
        local = moment.astimezone(zone).replace(tzinfo=None) + timedelta(days=mapping.shift_days)
        moment = local.replace(tzinfo=zone)
    elif mapping.time_zone is not None:
        moment = moment.astimezone(mapping.time_zone)
    return moment.isoformat()


def _parse_time(value: object, time_format: str) -> datetime | None:
    try:
        if time_format in ("unix_seconds", "unix_milliseconds", "unix_seconds_local"):
            number = _decimal(value)
            if number is None:
                return None
            seconds = number / 1000 if time_format == "unix_milliseconds" else number
            wall = _EPOCH + timedelta(seconds=float(seconds))
            return wall if time_format == "unix_seconds_local" else wall.replace(tzinfo=timezone.utc)
        if type(value) is not str:
            return None
        if time_format == "iso":
            text = value.strip()
            return datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
        return datetime.strptime(value.strip(), time_format)
    except (ValueError, OverflowError, ArithmeticError):
        return None


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Parquet's 14.0 and CSV's "14" name the same area
    return str(value)


def _fill(template: str, row: dict[str, Any], line: int) -> str:
    values = {name: _text(value) for name, value in row.items()}
    values["_line"] = str(line)
    return string.Formatter().vformat(template, (), _Blank(values))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""  # a blank cell (CSV omits it) reads as empty text


def synthetic_national_id(key: str, salt: str, birth_years: tuple[int, int]) -> str:
    """A made-up, rule-valid 12-digit CCCD derived from `key` (RULES.md §2); the same key, the same number.

    For sources with no worker identity (test data, anonymised exports): province, sex,
    birth year and serial all come from SHA-256 of salt and key. Never feed it real
    identity numbers; never use its output as one.
    """
    digest = int.from_bytes(hashlib.sha256(f"{salt}\x1e{key}".encode("utf-8")).digest(), "big")
    province = _PROVINCES[digest % len(_PROVINCES)]
    digest //= len(_PROVINCES)
    first, last = birth_years
    year = first + digest % (last - first + 1)
    digest //= last - first + 1
    sex = digest % 2
    digest //= 2
    century_digit = 2 * ((year - 1900) // 100) + sex
    serial = digest % 1_000_000
    return f"{province}{century_digit}{year % 100:02d}{serial:06d}"
