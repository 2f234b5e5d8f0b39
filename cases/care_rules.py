"""The care rules, the one place they are read: when a student's absences become a signal (issue 20 item 6).

The rules are data, `cases/care_rules.yaml` (or the file CASE_CARE_RULES_FILE names), validated when the project
starts (cases.apps): a bad file stops the start with every problem listed (`CareRulesInvalid`), as the tier rules
do (cases.tiers). Tests swap rules with `rules_override()`. cases.absence_rules applies them.
May import: roster, screening.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from roster.models import AbsenceKind
from screening.definitions import RiskTier

DEFAULT_RULES_FILE = Path(__file__).with_name("care_rules.yaml")
SIGNAL_TIERS = (RiskTier.GREEN, RiskTier.YELLOW, RiskTier.ORANGE)  # never red: absences are not a crisis alert


@dataclass(frozen=True)
class ConsecutiveRule:
    school_days: int  # counted absences on this many school days in a row
    tier: str


@dataclass(frozen=True)
class WindowRule:
    days: int  # calendar days of the window, the day itself included
    absences: int  # counted absences within it
    tier: str


@dataclass(frozen=True)
class AbsenceRules:
    counted: frozenset[str]  # AbsenceKind values that count
    consecutive: ConsecutiveRule | None  # None: disabled
    window: WindowRule | None

    @property
    def lookback_days(self) -> int:
        """How many calendar days before the first day evaluated the rules read: enough to see a whole window
        rule's episode start (two windows) and a run's start in most cases (a longer run is read further back)."""
        window = self.window.days if self.window else 0
        return max(2 * window, 60)


@dataclass(frozen=True)
class CareRules:
    absences: AbsenceRules


class CareRulesInvalid(ImproperlyConfigured):
    def __init__(self, source, problems: list[str]):
        self.problems = problems
        super().__init__(f"care rules in {source} are invalid:\n  " + "\n  ".join(problems))


def _count(raw: dict, name: str, where: str, problems: list[str], *, upto: int) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upto:
        problems.append(f"{where}.{name}: a whole number from 1 to {upto}, not {value!r}")
        return 1
    return value


def _tier(raw: dict, where: str, problems: list[str]) -> str:
    tier = raw.get("tier")
    if tier not in SIGNAL_TIERS:
        problems.append(f"{where}.tier: one of {', '.join(SIGNAL_TIERS)}, not {tier!r}")
        return RiskTier.YELLOW
    return str(tier)


def _enabled(raw, where: str, problems: list[str]) -> bool:
    if not isinstance(raw, dict):
        problems.append(f"{where}: missing (a mapping; `enabled: false` turns the rule off)")
        return False
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"{where}.enabled: true or false, not {enabled!r}")
        return False
    unknown = set(raw) - {"enabled", "school_days", "days", "absences", "tier"}
    for name in sorted(unknown):
        problems.append(f"{where}.{name}: not a setting of this rule")
    return enabled


def parse_rules(data, source="care rules") -> CareRules:
    """Validated rules from the YAML's data; every problem at once in CareRulesInvalid."""
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("absences"), dict):
        raise CareRulesInvalid(source, ["the file is not a mapping with 'absences'"])
    raw = data["absences"]
    counted = raw.get("counted")
    if not isinstance(counted, list) or not counted:
        problems.append(f"absences.counted: a list of absence types ({', '.join(AbsenceKind.values)})")
        counted = []
    for kind in counted:
        if kind not in AbsenceKind.values:
            problems.append(f"absences.counted: unknown type {kind!r} (one of {', '.join(AbsenceKind.values)})")
    consecutive = window = None
    where = "absences.consecutive"
    if _enabled(raw.get("consecutive"), where, problems):
        rule = raw["consecutive"]
        consecutive = ConsecutiveRule(
            school_days=_count(rule, "school_days", where, problems, upto=60), tier=_tier(rule, where, problems)
        )
    where = "absences.window"
    if _enabled(raw.get("window"), where, problems):
        rule = raw["window"]
        days = _count(rule, "days", where, problems, upto=366)
        absences = _count(rule, "absences", where, problems, upto=366)
        if absences > days:
            problems.append(f"{where}.absences: {absences} absences cannot fit in {days} days")
        window = WindowRule(days=days, absences=absences, tier=_tier(rule, where, problems))
    for name in sorted(set(raw) - {"counted", "consecutive", "window"}):
        problems.append(f"absences.{name}: not a rule (counted, consecutive, window)")
    if problems:
        raise CareRulesInvalid(source, problems)
    return CareRules(AbsenceRules(frozenset(counted), consecutive, window))


def rules_file() -> Path:
    return Path(getattr(settings, "CASE_CARE_RULES_FILE", "") or DEFAULT_RULES_FILE)


@cache
def _load(path: Path) -> CareRules:
    with open(path, encoding="utf-8") as handle:
        return parse_rules(yaml.safe_load(handle), source=path)


_override: list[CareRules] = []


def rules() -> CareRules:
    """The rules in force (validated; read once per process)."""
    return _override[-1] if _override else _load(rules_file())


def absence_rules() -> AbsenceRules:
    return rules().absences


@contextlib.contextmanager
def rules_override(data: dict):
    """Tests: the rules parsed from `data` for the duration of the block."""
    _override.append(parse_rules(data, source="override"))
    try:
        yield _override[-1]
    finally:
        _override.pop()


def raw_rules() -> dict:
    """The rules file's data as loaded (tests start from it to change one value)."""
    with open(rules_file(), encoding="utf-8") as handle:
        return yaml.safe_load(handle)
