"""Scenarios as data: a baseline pack, named reforms as dated parameter patches, a population.

A scenario file is YAML and holds no code. It is validated in full before anything
runs: every problem is collected as a `ScenarioIssue(key, reason)` and reported
together, each naming the dotted key it is about (OpenFisca habit: an error names the
parameter). A reform becomes a `rules.RulesPack` whose versions are the baseline's
versions with the patch applied through `dataclasses.replace` — the arithmetic stays
in `rules/`, the one implementation the ledger uses too.

    name: poor-tier-50pct
    baseline: vn-pilot
    start: 2026-01            # first simulated month
    horizon_months: 12
    seed: 20260101
    population: {synthetic: {workers: 100000}}   # or {parquet: DIR} or {from_db: URL}
    # synthetic also takes churn: {start_ppm, exit_ppm, entry_ppm}, growth_ppm (a year; entrants replace
    # leavers), contribution_base: {order: margin_share}, targets: FILE (or false) and fare_profile: CHICAGO_TRIPS.csv
    behaviour: {participation_elasticity: 0.1}    # optional: workers opt out when a reform raises their rate
    budget: {strategy: none}                      # or {strategy: cap|scale, limit_vnd: N, period: horizon|year}
    window: {years: 10, inflation_ppm: 36300}     # the budget window, nominal and real (defaults shown)
    ranges: {replicates: 200}                     # bootstrap resamples behind each headline range (≥ 20)
    reforms:
      poor-50:
        description: the poor tier's top-up raised to 50 %
        changes:
          tiers.poor: {2026-07-01: 500000}
          rates.ride.si.worker: 12000            # a bare value applies from the baseline's first day

Patchable keys: `rates.<kind>.<scheme>.<party>` (ppm), `tiers.<tier>` (ppm),
`caps.<scheme>` (VND/month), `subsidised_schemes` (list), `max_subsidised_months`
(int or null), `pension_floor_contribution_vnd` (VND), `crediting` (`pooled` or
`per_month`: how months are credited towards a pension, RULES.md §11). Effective dates
must be the first day of a month: the simulator works in whole months.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ledger.files import FileFormatError, read_text
from rules import KINDS, PARTIES, SCHEMES, PackError, RulesPack, RulesVersion, load_pack, shipped_packs
from rules.loader import TextDatesLoader
from rules.model import CREDITING_MODES
from simulations.behaviour import DEFAULT_ELASTICITY, ELASTICITY_MAX, Behaviour
from simulations.population import BASES, ContributionBase
from simulations.population import Churn
from simulations.options import (INFLATION_PPM_DEFAULT, INFLATION_PPM_MAX, REPLICATES_DEFAULT, REPLICATES_MAX,
                                 REPLICATES_MIN, WINDOW_YEARS_DEFAULT, WINDOW_YEARS_MAX, Options)

BUDGET_STRATEGIES = ("none", "cap", "scale")
BUDGET_PERIODS = ("horizon", "year")
HORIZON_MONTHS_MAX = 600  # 50 years: an explicit limit on the month loop
SYNTHETIC_WORKERS_MAX = 50_000_000  # Vietnam's whole labour force is ~53 million
RATE_PPM_MAX = 1_000_000
MONEY_VND_MAX = 10**12
TOP_LEVEL_KEYS = {"name", "description", "baseline", "start", "horizon_months", "seed", "population",
                  "budget", "reforms", "behaviour", "window", "ranges"}
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
BASELINE_ARM = "baseline"


class ScenarioIssue(NamedTuple):
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class ScenarioError(ValueError):
    """A scenario that cannot run; `issues` lists every problem, each naming its key."""

    def __init__(self, issues: list[ScenarioIssue], source: str = "scenario") -> None:
        self.issues = issues
        self.source = source
        super().__init__(f"{source}: " + "; ".join(str(issue) for issue in issues))


@dataclass(frozen=True)
class Change:
    """One parameter of a reform taking `value` from `effective_from` (None: the baseline's first day)."""

    key: str
    effective_from: date | None
    value: Any


@dataclass(frozen=True)
class Reform:
    name: str
    description: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Budget:
    strategy: str = "none"
    limit_vnd: int | None = None
    period: str = "horizon"


@dataclass(frozen=True)
class PopulationSpec:
    source: str  # synthetic | parquet | from_db
    workers: int | None = None
    churn: Churn | None = None  # synthetic: explicit monthly start / exit / entry probabilities
    fare_profile: str | None = None  # synthetic: a real trips file whose fares price car rides
    base: ContributionBase | None = None  # synthetic: what the rates apply to, per kind (None: the default)
    targets: str | bool = True  # synthetic: the national totals to weight to (True: the shipped file; False: none)
    path: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    baseline: str
    start_month: int  # yyyymm
    horizon_months: int
    seed: int
    population: PopulationSpec
    budget: Budget
    reforms: tuple[Reform, ...] = field(default_factory=tuple)
    behaviour: Behaviour = field(default_factory=Behaviour)
    document: Mapping[str, Any] = field(default_factory=dict, compare=False)
    window_years: int = WINDOW_YEARS_DEFAULT
    inflation_ppm: int = INFLATION_PPM_DEFAULT
    replicates: int = REPLICATES_DEFAULT

    def result_options(self) -> Options:
        """The results' budget window, inflation and ranges, seeded by the scenario's seed."""
        return Options(self.window_years, self.inflation_ppm, self.replicates, self.seed)

    @property
    def months(self) -> tuple[int, ...]:
        return month_range(self.start_month, self.horizon_months)

    def baseline_pack(self) -> RulesPack:
        return load_pack(self.baseline)

    def arms(self) -> dict[str, RulesPack]:
        """Arm name -> pack: the baseline first, then each reform, in file order."""
        baseline = self.baseline_pack()
        arms = {BASELINE_ARM: baseline}
        for reform in self.reforms:
            arms[reform.name] = apply_reform(baseline, reform, scenario_name=self.name)
        return arms


def month_range(start_month: int, count: int) -> tuple[int, ...]:
    year, month = divmod(start_month, 100)
    months = []
    for _ in range(count):
        months.append(year * 100 + month)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(months)


# ---------------------------------------------------------------------------
# Reading and validating
# ---------------------------------------------------------------------------

def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        document = yaml.load(read_text(path), TextDatesLoader)  # dates stay text: the key's check names them
    except OSError as error:
        raise ScenarioError([ScenarioIssue("file", f"cannot be read ({error.strerror})")], str(path)) from None
    except FileFormatError as error:
        raise ScenarioError([ScenarioIssue(f"line {error.line}", error.reason)],
                            str(path)) from None
    except yaml.YAMLError as error:
        raise ScenarioError([ScenarioIssue("file", f"is not valid YAML ({' '.join(str(error).split())})")],
                            str(path)) from None
    return parse_scenario(document, source=str(path))


def parse_scenario(document: Any, *, source: str = "scenario", registered_packs_only: bool = False) -> Scenario:
    """A validated `Scenario`, or `ScenarioError` listing every problem found.

    `registered_packs_only` (the HTTP service): `baseline` must name a shipped pack; a path
    is refused before anything is opened, so a caller cannot make the server read a file."""
    issues: list[ScenarioIssue] = []
    if not isinstance(document, dict):
        raise ScenarioError([ScenarioIssue("scenario", "must be a mapping of keys")], source)
    for key in sorted(set(document) - TOP_LEVEL_KEYS, key=str):
        issues.append(ScenarioIssue(str(key), f"unknown key (known: {', '.join(sorted(TOP_LEVEL_KEYS))})"))

    name = document.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        issues.append(ScenarioIssue("name", "is required: lower-case letters, digits, '.', '_' or '-', ≤ 64 chars"))
    description = document.get("description", "")
    if not isinstance(description, str):
        issues.append(ScenarioIssue("description", "must be text"))

    baseline_pack: RulesPack | None = None
    baseline = document.get("baseline")
    if not isinstance(baseline, str) or not baseline:
        issues.append(ScenarioIssue("baseline", "is required: the name of a rules pack (e.g. vn-pilot)"))
    elif registered_packs_only and baseline not in shipped_packs():
        issues.append(ScenarioIssue("baseline", "must be the name of a registered rules pack ("
                                                f"{', '.join(shipped_packs())}); the service reads no file a caller names"))
    else:
        try:
            baseline_pack = load_pack(baseline)
        except PackError as error:
            issues.append(ScenarioIssue("baseline", str(error.reason)))

    start_month = _month(document.get("start"), "start", issues)
    horizon = document.get("horizon_months")
    if not _is_int(horizon) or not 1 <= horizon <= HORIZON_MONTHS_MAX:
        issues.append(ScenarioIssue("horizon_months", f"must be an integer from 1 to {HORIZON_MONTHS_MAX}"))
        horizon = None
    if start_month is not None and horizon is not None and baseline_pack is not None:
        first = baseline_pack.first_effective_from
        if date(start_month // 100, start_month % 100, 1) < first:
            issues.append(ScenarioIssue("start", f"is before the baseline pack's first version "
                                                 f"({first.isoformat()})"))
    seed = document.get("seed")
    if not _is_int(seed) or seed < 0:
        issues.append(ScenarioIssue("seed", "is required: an integer ≥ 0 (it is recorded with every run)"))

    population = _population(document.get("population"), issues, registered_packs_only)
    behaviour = _behaviour(document.get("behaviour"), issues)
    budget = _budget(document.get("budget", {"strategy": "none"}), issues)
    reforms = _reforms(document.get("reforms", {}), baseline_pack, issues)
    window = _settings(document.get("window", {}), "window", {
        "years": (1, WINDOW_YEARS_MAX, WINDOW_YEARS_DEFAULT),
        "inflation_ppm": (0, INFLATION_PPM_MAX, INFLATION_PPM_DEFAULT)}, issues)
    ranges = _settings(document.get("ranges", {}), "ranges", {
        "replicates": (REPLICATES_MIN, REPLICATES_MAX, REPLICATES_DEFAULT)}, issues)

    if baseline_pack is not None:
        for reform in reforms:
            try:
                apply_reform(baseline_pack, reform, scenario_name=str(name))
            except ValueError as error:
                issues.append(ScenarioIssue(f"reforms.{reform.name}.changes", str(error)))
    if issues:
        raise ScenarioError(issues, source)
    scenario = Scenario(name=name, behaviour=behaviour, description=(description or "").strip(), baseline=baseline,
                        start_month=start_month, horizon_months=horizon, seed=seed, population=population,
                        budget=budget, reforms=tuple(reforms), document=dict(document),
                        window_years=window["years"], inflation_ppm=window["inflation_ppm"],
                        replicates=ranges["replicates"])
    return scenario


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _settings(value: Any, key: str, known: Mapping[str, tuple[int, int, int]],
              issues: list[ScenarioIssue]) -> dict[str, int]:
    """Integer settings under `key`, each (low, high, default); every problem named by its key."""
    found = {name: default for name, (_low, _high, default) in known.items()}
    if not isinstance(value, dict):
        issues.append(ScenarioIssue(key, f"must be a mapping of {', '.join(known)}"))
        return found
    for extra in sorted(set(value) - set(known), key=str):
        issues.append(ScenarioIssue(f"{key}.{extra}", f"unknown key (known: {', '.join(known)})"))
    for name, (low, high, _default) in known.items():
        if name in value:
            if not _is_int(value[name]) or not low <= value[name] <= high:
                issues.append(ScenarioIssue(f"{key}.{name}", f"must be an integer from {low:,} to {high:,}, "
                                                             f"got {value[name]!r}"))
            else:
                found[name] = value[name]
    return found


def _month(value: Any, key: str, issues: list[ScenarioIssue]) -> int | None:
    if isinstance(value, date):
        value = f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}", value) and 1 <= int(value[5:]) <= 12 \
            and 1900 <= int(value[:4]) <= 2099:
        return int(value[:4]) * 100 + int(value[5:])
    issues.append(ScenarioIssue(key, f"must be a month YYYY-MM, got {value!r}"))
    return None


SYNTHETIC_KEYS = ("workers", "churn", "growth_ppm", "contribution_base", "targets", "fare_profile")


def _population(value: Any, issues: list[ScenarioIssue], registered_packs_only: bool = False) -> PopulationSpec | None:
    key = "population"
    if not isinstance(value, dict) or len(value) != 1:
        issues.append(ScenarioIssue(key, "must name exactly one source: synthetic, parquet or from_db"))
        return None
    (source, spec), = value.items()
    if source == "synthetic":
        workers = spec.get("workers") if isinstance(spec, dict) else None
        churn = fare_profile = base = None
        targets: str | bool = True
        if isinstance(spec, dict):
            for extra in sorted(set(spec) - set(SYNTHETIC_KEYS), key=str):
                issues.append(ScenarioIssue(f"{key}.synthetic.{extra}",
                                            f"unknown key (known: {', '.join(SYNTHETIC_KEYS)})"))
            churn = _churn(spec.get("churn"), f"{key}.synthetic.churn", issues, spec.get("growth_ppm"))
            base = _base(spec.get("contribution_base"), f"{key}.synthetic.contribution_base", issues)
            targets = spec.get("targets", True)
            if not (targets is True or targets is False or (isinstance(targets, str) and targets)):
                issues.append(ScenarioIssue(f"{key}.synthetic.targets",
                                            "must be the path of a targets file, or false for no weights"))
                targets = True
            elif isinstance(targets, str) and registered_packs_only:
                issues.append(ScenarioIssue(f"{key}.synthetic.targets",
                                            "the service reads no file a caller names: use the shipped targets"))
            elif isinstance(targets, str):
                from simulations.calibration import TargetsError, load_targets
                try:
                    load_targets(targets)
                except TargetsError as error:
                    issues.append(ScenarioIssue(f"{key}.synthetic.targets", str(error)))
            fare_profile = spec.get("fare_profile")
            if fare_profile is not None and (not isinstance(fare_profile, str) or not fare_profile):
                issues.append(ScenarioIssue(f"{key}.synthetic.fare_profile",
                                            "must be the path of a real trips file (Chicago taxi CSV)"))
                fare_profile = None
        if not _is_int(workers) or not 1 <= workers <= SYNTHETIC_WORKERS_MAX:
            issues.append(ScenarioIssue(f"{key}.synthetic.workers",
                                        f"must be an integer from 1 to {SYNTHETIC_WORKERS_MAX:,}"))
            return None
        return PopulationSpec("synthetic", workers=workers, churn=churn, fare_profile=fare_profile, base=base,
                              targets=targets)
    if source == "parquet":
        if not isinstance(spec, str) or not spec:
            issues.append(ScenarioIssue(f"{key}.parquet", "must be the directory of a saved population"))
            return None
        return PopulationSpec("parquet", path=spec)
    if source == "from_db":
        if not isinstance(spec, str) or "://" not in spec:
            issues.append(ScenarioIssue(f"{key}.from_db", "must be a database URL (sqlite:///… or postgresql://…)"))
            return None
        return PopulationSpec("from_db", url=spec)
    issues.append(ScenarioIssue(f"{key}.{source}", "unknown population source (known: synthetic, parquet, from_db)"))
    return None


def _churn(value: Any, key: str, issues: list[ScenarioIssue], growth: Any = None) -> Churn | None:
    growth_key = key.rsplit(".", 1)[0] + ".growth_ppm"
    if growth is not None and (not _is_int(growth) or not -500_000 <= growth <= RATE_PPM_MAX):
        issues.append(ScenarioIssue(growth_key, f"must be an integer from -500,000 to {RATE_PPM_MAX:,} ppm a year, "
                                                f"got {growth!r}"))
        growth = None
    if value is None:
        return Churn(growth_ppm=growth) if growth else None
    known = ("start_ppm", "exit_ppm", "entry_ppm")
    if not isinstance(value, dict):
        issues.append(ScenarioIssue(key, f"must be a mapping of {', '.join(known)}"))
        return None
    for extra in sorted(set(value) - set(known), key=str):
        issues.append(ScenarioIssue(f"{key}.{extra}", f"unknown key (known: {', '.join(known)})"))
    found = True
    for name in known:
        if name in value and (not _is_int(value[name]) or not 0 <= value[name] <= RATE_PPM_MAX):
            issues.append(ScenarioIssue(f"{key}.{name}", f"must be an integer from 0 to {RATE_PPM_MAX:,} ppm, "
                                                         f"got {value[name]!r}"))
            found = False
    if found and "entry_ppm" in value and growth:
        issues.append(ScenarioIssue(growth_key, f"cannot be given with {key}.entry_ppm: entrants either replace "
                                                "leavers and grow the workforce (growth_ppm) or enter at a fixed "
                                                "probability (entry_ppm)"))
        found = False
    if not found:
        return None
    return Churn(**{name: value[name] for name in known if name in value}, growth_ppm=growth or 0)


def _base(value: Any, key: str, issues: list[ScenarioIssue]) -> ContributionBase | None:
    """`contribution_base: {kind: basis}` or `{kind: {basis, ppm}}`, basis amount | payout | margin_share."""
    if value is None:
        return None
    if not isinstance(value, dict):
        issues.append(ScenarioIssue(key, f"must map kinds ({', '.join(KINDS)}) to a basis ({', '.join(BASES)})"))
        return None
    found = True
    for kind, body in value.items():
        where = f"{key}.{kind}"
        if kind not in KINDS:
            issues.append(ScenarioIssue(where, f"unknown kind (known: {', '.join(KINDS)})"))
            found = False
        elif isinstance(body, dict):
            for extra in sorted(set(body) - {"basis", "ppm"}, key=str):
                issues.append(ScenarioIssue(f"{where}.{extra}", "unknown key (known: basis, ppm)"))
                found = False
            if body.get("basis") not in BASES:
                issues.append(ScenarioIssue(f"{where}.basis", f"must be one of {', '.join(BASES)}"))
                found = False
            ppm = body.get("ppm")
            if ppm is not None and (not _is_int(ppm) or not 1 <= ppm <= RATE_PPM_MAX
                                    or (body.get("basis") == "amount" and ppm != RATE_PPM_MAX)):
                issues.append(ScenarioIssue(f"{where}.ppm", f"must be an integer from 1 to {RATE_PPM_MAX:,} "
                                                            f"(the share of the amount the base is), got {ppm!r}"))
                found = False
        elif body not in BASES:
            issues.append(ScenarioIssue(where, f"must be one of {', '.join(BASES)} or {{basis, ppm}}"))
            found = False
    return ContributionBase.of(value) if found else None


def _behaviour(value: Any, issues: list[ScenarioIssue]) -> Behaviour:
    """`behaviour: {participation_elasticity: E}`; absent: static (nobody opts out); `{}`: the cited default."""
    if value is None:
        return Behaviour()
    if not isinstance(value, dict):
        issues.append(ScenarioIssue("behaviour", "must be a mapping (participation_elasticity)"))
        return Behaviour()
    for extra in sorted(set(value) - {"participation_elasticity"}, key=str):
        issues.append(ScenarioIssue(f"behaviour.{extra}", "unknown key (known: participation_elasticity)"))
    elasticity = value.get("participation_elasticity", DEFAULT_ELASTICITY)
    if not isinstance(elasticity, (int, float)) or isinstance(elasticity, bool) \
            or not 0 <= elasticity <= ELASTICITY_MAX:
        issues.append(ScenarioIssue("behaviour.participation_elasticity",
                                    f"must be a number from 0 to {ELASTICITY_MAX:g}, got {elasticity!r}"))
        return Behaviour()
    return Behaviour(float(elasticity))


def _budget(value: Any, issues: list[ScenarioIssue]) -> Budget | None:
    if not isinstance(value, dict):
        issues.append(ScenarioIssue("budget", "must be a mapping (strategy, limit_vnd, period)"))
        return None
    for extra in sorted(set(value) - {"strategy", "limit_vnd", "period"}, key=str):
        issues.append(ScenarioIssue(f"budget.{extra}", "unknown key (known: strategy, limit_vnd, period)"))
    strategy = value.get("strategy", "none")
    if strategy not in BUDGET_STRATEGIES:
        issues.append(ScenarioIssue("budget.strategy", f"must be one of {', '.join(BUDGET_STRATEGIES)}, "
                                                       f"got {strategy!r}"))
        return None
    period = value.get("period", "horizon")
    if period not in BUDGET_PERIODS:
        issues.append(ScenarioIssue("budget.period", f"must be one of {', '.join(BUDGET_PERIODS)}, got {period!r}"))
    limit = value.get("limit_vnd")
    if strategy == "none":
        if limit is not None:
            issues.append(ScenarioIssue("budget.limit_vnd", "has no effect with strategy none; remove it"))
        return Budget("none")
    if not _is_int(limit) or not 0 <= limit <= 10**16:
        issues.append(ScenarioIssue("budget.limit_vnd", f"strategy {strategy} needs an integer VND limit "
                                                        f"from 0 to 10^16"))
        return None
    return Budget(strategy, limit, period)


def _reforms(value: Any, baseline: RulesPack | None, issues: list[ScenarioIssue]) -> list[Reform]:
    if not isinstance(value, dict):
        issues.append(ScenarioIssue("reforms", "must map reform names to {description, changes}"))
        return []
    reforms = []
    for name, body in value.items():
        where = f"reforms.{name}"
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name == BASELINE_ARM:
            issues.append(ScenarioIssue(where, "a reform name is lower-case letters, digits, '.', '_' or '-', "
                                               f"and not {BASELINE_ARM!r}"))
            continue
        if not isinstance(body, dict):
            issues.append(ScenarioIssue(where, "must be a mapping with description and changes"))
            continue
        for extra in sorted(set(body) - {"description", "changes"}, key=str):
            issues.append(ScenarioIssue(f"{where}.{extra}", "unknown key (known: description, changes)"))
        changes_doc = body.get("changes")
        if not isinstance(changes_doc, dict) or not changes_doc:
            issues.append(ScenarioIssue(f"{where}.changes", "must map parameter keys to values"))
            continue
        changes: list[Change] = []
        for key, dated in changes_doc.items():
            changes.extend(_changes(f"{where}.changes.{key}", str(key), dated, baseline, issues))
        reforms.append(Reform(name, str(body.get("description", "")).strip(), tuple(changes)))
    return reforms


def _changes(where: str, key: str, dated: Any, baseline: RulesPack | None,
             issues: list[ScenarioIssue]) -> list[Change]:
    checker = _value_checker(key, baseline)
    if checker is None:
        issues.append(ScenarioIssue(where, "unknown parameter (rates.<kind>.<scheme>.<party>, tiers.<tier>, "
                                           "caps.<scheme>, subsidised_schemes, max_subsidised_months, "
                                           "pension_floor_contribution_vnd, crediting)"))
        return []
    # A mapping is a schedule of dates; anything else (a number, a list, null) is one value from the start.
    items = list(dated.items()) if isinstance(dated, dict) else [(None, dated)]
    if not items:
        issues.append(ScenarioIssue(where, "an empty schedule changes nothing"))
    result = []
    for day, value in items:
        at = where if day is None else f"{where}.{day}"
        if day is not None:
            if isinstance(day, str):
                try:
                    day = date.fromisoformat(day)
                except ValueError:
                    issues.append(ScenarioIssue(at, "an effective date is YYYY-MM-DD"))
                    continue
            if not isinstance(day, date):
                issues.append(ScenarioIssue(at, "an effective date is YYYY-MM-DD"))
                continue
            if day.day != 1:
                issues.append(ScenarioIssue(at, "takes effect on the first day of a month (the simulator "
                                                "works in whole months)"))
                continue
            if baseline is not None and day < baseline.first_effective_from:
                issues.append(ScenarioIssue(at, f"is before the baseline's first version "
                                                f"({baseline.first_effective_from.isoformat()})"))
                continue
        reason = checker(value)
        if reason:
            issues.append(ScenarioIssue(at, reason))
            continue
        result.append(Change(key, day, tuple(value) if isinstance(value, list) else value))
    return result


def _value_checker(key: str, baseline: RulesPack | None):
    parts = key.split(".")

    def integer(low: int, high: int, allow_none: bool = False):
        def check(value: Any) -> str | None:
            if value is None and allow_none:
                return None
            if not _is_int(value) or not low <= value <= high:
                return f"must be an integer from {low:,} to {high:,}, got {value!r}"
            return None
        return check

    if parts[0] == "rates" and len(parts) == 4:
        _, kind, scheme, party = parts
        if kind in KINDS and scheme in SCHEMES and party in PARTIES:
            return integer(0, RATE_PPM_MAX)
        return None
    if parts[0] == "tiers" and len(parts) == 2 and re.fullmatch(r"[a-z_]{1,32}", parts[1]):
        return integer(0, RATE_PPM_MAX)
    if parts[0] == "caps" and len(parts) == 2 and parts[1] in SCHEMES:
        return integer(0, MONEY_VND_MAX)
    if key == "max_subsidised_months":
        return integer(1, 10_000, allow_none=True)
    if key == "pension_floor_contribution_vnd":
        return integer(0, MONEY_VND_MAX)
    if key == "crediting":
        def mode(value: Any) -> str | None:
            if value not in CREDITING_MODES:
                return f"must be one of {', '.join(CREDITING_MODES)}, got {value!r}"
            return None
        return mode
    if key == "subsidised_schemes":
        def schemes(value: Any) -> str | None:
            if not isinstance(value, list) or any(s not in SCHEMES for s in value) or len(set(value)) != len(value):
                return f"must be a list of distinct schemes from {', '.join(SCHEMES)}"
            return None
        return schemes
    return None


# ---------------------------------------------------------------------------
# Reforms -> packs
# ---------------------------------------------------------------------------

def apply_reform(baseline: RulesPack, reform: Reform, *, scenario_name: str = "scenario") -> RulesPack:
    """The baseline with `reform` applied: one new version at every baseline or change date.

    Each version is `dataclasses.replace` of the baseline version in force that day, with
    every change whose date has come (the latest value per key). Old versions are not
    edited; the reform pack is a separate pack named `<baseline>+<reform>`.
    """
    first = baseline.first_effective_from
    dated = [(change.effective_from or first, change) for change in reform.changes]
    breakpoints = sorted({version.effective_from for version in baseline.versions} | {day for day, _ in dated})
    pack_name = f"{baseline.name}+{reform.name}"
    versions = []
    for day in breakpoints:
        base = baseline.version_on(day)
        in_force: dict[str, Change] = {}
        for change_day, change in sorted(dated, key=lambda pair: pair[0]):
            if change_day <= day:
                in_force[change.key] = change
        versions.append(_patched(base, day, pack_name, in_force.values(), scenario_name, reform.name))
    return RulesPack(name=pack_name, description=f"{baseline.description} Reform {reform.name}: "
                                                 f"{reform.description}".strip(), versions=tuple(versions))


def _patched(base: RulesVersion, day: date, pack_name: str, changes, scenario_name: str,
             reform_name: str) -> RulesVersion:
    rates = dict(base.rates_ppm)
    tiers = dict(base.tier_rate_ppm)
    caps = dict(base.subsidy_base_cap_vnd)
    fields: dict[str, Any] = {}
    applied = []
    for change in changes:
        parts = change.key.split(".")
        if parts[0] == "rates":
            rates[(parts[1], parts[2], parts[3])] = change.value
        elif parts[0] == "tiers":
            tiers[parts[1]] = change.value
        elif parts[0] == "caps":
            caps[parts[1]] = change.value
        elif change.key == "subsidised_schemes":
            fields["subsidised_schemes"] = tuple(change.value)
        else:
            fields[change.key] = change.value
        applied.append(f"{change.key}={change.value}")
    schemes = fields.get("subsidised_schemes", base.subsidised_schemes)
    for scheme in schemes:
        if scheme not in caps:
            # The loader requires a cap for every subsidised scheme; a reform that adds one must too.
            raise ValueError(f"subsidised scheme {scheme} needs a base cap (caps.{scheme}) from {day.isoformat()}")
    return dataclasses.replace(
        base, pack=pack_name, effective_from=day, rates_ppm=rates, tier_rate_ppm=tiers,
        subsidy_base_cap_vnd=caps,
        source=f"scenario {scenario_name}, reform {reform_name} on {base.version_id}: "
               + (", ".join(sorted(applied)) or "no change yet"),
        **fields)
