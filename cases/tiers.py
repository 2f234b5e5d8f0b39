"""The tier rules, the one place they are read (DESIGN §3, the crisis loop): what each risk tier asks of a case (the
team, every human step's deadline, how an overdue step climbs, who evaluates closure) and how a crisis alert climbs.

The rules are data, `cases/tier_rules.yaml` (or the file CASE_TIER_RULES_FILE names), validated when the project
starts: a bad file stops the start with every problem listed (`TierRulesInvalid`). Tests swap rules with
`rules_override()`.
May import: roster, screening.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from cases.models import AlertKind, TeamSeat
from roster.roles import Role
from screening.definitions import RiskTier

DEFAULT_RULES_FILE = Path(__file__).with_name("tier_rules.yaml")

TWO_ON_ONE = (TeamSeat.PSYCHOLOGY_TEACHER, TeamSeat.HOMEROOM_TEACHER)
THREE_ON_ONE = (TeamSeat.SCHOOL_LEADER, TeamSeat.PSYCHOLOGY_TEACHER, TeamSeat.HOMEROOM_TEACHER)
TEAMS = {"two_on_one": TWO_ON_ONE, "three_on_one": THREE_ON_ONE}

# The role a seat's holder must have at the case's school (the homeroom teacher's at one of its classes).
SEAT_ROLE = {
    TeamSeat.PSYCHOLOGY_TEACHER: Role.PSYCHOLOGY_TEACHER,
    TeamSeat.HOMEROOM_TEACHER: Role.HOMEROOM_TEACHER,
    TeamSeat.SCHOOL_LEADER: Role.PRINCIPAL,
}

# The human steps that have a deadline ("approval" covers every approval node).
STEPS = (
    "triage", "staffing", "interview", "parent_contact", "plan", "request_referral", "make_referral", "follow_up",
    "approval", "safety_assessment", "district_support", "transfer_acceptance", "signal_triage",
)  # fmt: skip
# Steps that may have an overdue chain of their own (`overdue_chains`), and audiences only such a chain may name.
TRANSFER_STEP = "transfer_acceptance"


class Audience:
    """Who is told at a level of an alert or an overdue chain (resolved by cases.alerts and workflows.deadlines)."""

    ASSIGNEE = "assignee"
    DUTY_PSYCHOLOGY = "duty_psychology"
    PSYCHOLOGY_TEACHERS = "psychology_teachers"
    PRINCIPAL = "principal"
    DISTRICT_DUTY = "district_duty"
    CITY_CENTRE = "city_centre"
    # 档案移交: the district centre of the school a case is being transferred from (its transfer_acceptance chain only;
    # the chain's other audiences are the receiving school's and district's).
    SENDING_DISTRICT_DUTY = "sending_district_duty"
    ALL = frozenset({ASSIGNEE, DUTY_PSYCHOLOGY, PSYCHOLOGY_TEACHERS, PRINCIPAL, DISTRICT_DUTY, CITY_CENTRE,
                     SENDING_DISTRICT_DUTY})  # fmt: skip
    # Audiences that name someone only for the step of a transfer.
    TRANSFER_ONLY = frozenset({SENDING_DISTRICT_DUTY})


# Who evaluates a closure at each level of a chain.
CLOSURE_ROLES = {"principal": Role.PRINCIPAL, "district_centre": Role.DISTRICT_CENTRE, "city_centre": Role.CITY_CENTRE}

_DURATION = re.compile(r"^(\d+)(m|h|d|sd)$")


@dataclass(frozen=True)
class Duration:
    """A deadline's length: minutes, hours, calendar days, or school days on the district's calendar."""

    amount: int
    unit: str  # "m", "h", "d" or "sd"

    @classmethod
    def parse(cls, text) -> Duration:
        match = _DURATION.match(str(text).strip())
        if not match:
            raise ValueError(f"{text!r} is not a duration like 5m, 1h, 3d or 1sd")
        return cls(int(match[1]), match[2])

    @property
    def school_days(self) -> bool:
        return self.unit == "sd"

    def as_timedelta(self) -> timedelta:
        """The calendar length; a school day counts as a day (for rules that need a rough length, e.g. ledgers)."""
        return {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
                "sd": timedelta(days=1)}[self.unit] * self.amount  # fmt: skip

    def after(self, start: datetime, school=None) -> datetime:
        """The moment this long after `start`; school days counted on the calendar of the school's district."""
        if not self.school_days:
            return start + self.as_timedelta()
        from roster import duty

        if school is None:
            raise ValueError("school days are counted on a school's district calendar: pass the school")
        return duty.add_school_days(school.district, start, self.amount)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True)
class ChainStep:
    after: Duration  # after the due time
    notify: str  # an Audience
    more: tuple[str, ...] = ()  # further audiences told at the same step ("notify: [a, b]")

    @property
    def audiences(self) -> tuple[str, ...]:
        return (self.notify, *self.more)


@dataclass(frozen=True)
class TierRule:
    seats: tuple[str, ...]  # 二包一 or 三包一
    parent_contact_required: bool
    notify_district_at_once: bool
    deadlines: dict[str, Duration]
    overdue_chain: tuple[ChainStep, ...]
    closure_chain: tuple[str, ...]  # roles, lowest first
    # A step's own overdue chain in place of `overdue_chain` (a transfer's acceptance: both district centres).
    overdue_chains: dict[str, tuple[ChainStep, ...]] = field(default_factory=dict)

    def deadline(self, step: str) -> Duration:
        return self.deadlines[step]

    def chain(self, step: str) -> tuple[ChainStep, ...]:
        """The overdue chain of a step: its own when the rules give it one, else the tier's."""
        return self.overdue_chains.get(step, self.overdue_chain)

    @property
    def closure_approver(self) -> str:
        return self.closure_chain[0]

    @property
    def first_interview_within(self) -> Duration:
        return self.deadlines["interview"]

    @property
    def parent_contact_within(self) -> Duration:
        return self.deadlines["parent_contact"]

    @property
    def follow_up_every(self) -> timedelta:
        return self.deadlines["follow_up"].as_timedelta()


@dataclass(frozen=True)
class AlertRules:
    windows: dict[str, Duration]  # AlertKind → how long each level waits for an acknowledgement
    school_hours: tuple[tuple[str, ...], ...]  # levels of audiences
    out_of_hours: tuple[tuple[str, ...], ...]

    def levels(self, in_school_hours: bool) -> tuple[tuple[str, ...], ...]:
        return self.school_hours if in_school_hours else self.out_of_hours


@dataclass(frozen=True)
class Rules:
    tiers: dict[str, TierRule]
    alerts: AlertRules


class TierRulesInvalid(ImproperlyConfigured):
    def __init__(self, source, problems: list[str]):
        self.problems = problems
        super().__init__(f"tier rules in {source} are invalid:\n  " + "\n  ".join(problems))


def _duration(value, where: str, problems: list[str], *, red: bool = False) -> Duration | None:
    try:
        duration = Duration.parse(value)
    except ValueError as error:
        problems.append(f"{where}: {error}")
        return None
    if red and duration.school_days:
        problems.append(f"{where}: red never waits for a school day ({duration})")
    return duration


def _audiences(value, where: str, problems: list[str]) -> tuple[str, ...]:
    names = tuple(value) if isinstance(value, list | tuple) else (value,)
    for name in names:
        if name not in Audience.ALL:
            problems.append(f"{where}: unknown audience {name!r} (one of {', '.join(sorted(Audience.ALL))})")
    return names


def _chain(raw, where: str, problems: list[str], *, red: bool, transfer: bool = False) -> tuple[ChainStep, ...]:
    """An overdue chain: steps of `after` (a duration past the due time) and `notify` (an audience, or a list)."""
    chain = []
    for i, step in enumerate(raw or []):
        if not isinstance(step, dict) or "after" not in step or "notify" not in step:
            problems.append(f"{where}[{i}]: needs 'after' and 'notify'")
            continue
        after = _duration(step["after"], f"{where}[{i}].after", problems, red=red)
        audiences = _audiences(step["notify"], f"{where}[{i}].notify", problems) or ("",)
        if not transfer:
            for name in set(audiences) & Audience.TRANSFER_ONLY:
                problems.append(f"{where}[{i}].notify: {name!r} names someone only in overdue_chains.{TRANSFER_STEP}")
        chain.append(ChainStep(after, audiences[0], tuple(audiences[1:])))
    if not chain:
        problems.append(f"{where}: at least one step")
    return tuple(chain)


def parse_rules(data, source="tier rules") -> Rules:
    """Validated rules from the YAML's data; every problem at once in TierRulesInvalid."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise TierRulesInvalid(source, ["the file is not a mapping with 'tiers' and 'alerts'"])
    tiers: dict[str, TierRule] = {}
    raw_tiers = data.get("tiers") or {}
    for tier in (RiskTier.YELLOW, RiskTier.ORANGE, RiskTier.RED):
        raw = raw_tiers.get(str(tier))
        if not isinstance(raw, dict):
            problems.append(f"tiers.{tier}: missing")
            continue
        red = tier == RiskTier.RED
        where = f"tiers.{tier}"
        team = TEAMS.get(raw.get("team"))
        if team is None:
            problems.append(f"{where}.team: one of {', '.join(TEAMS)}")
        deadlines = {}
        raw_deadlines = raw.get("deadlines") or {}
        for step in STEPS:
            if step not in raw_deadlines:
                problems.append(f"{where}.deadlines.{step}: missing")
                continue
            deadlines[step] = _duration(raw_deadlines[step], f"{where}.deadlines.{step}", problems, red=red)
        for step in set(raw_deadlines) - set(STEPS):
            problems.append(f"{where}.deadlines.{step}: not a step ({', '.join(STEPS)})")
        chain = _chain(raw.get("overdue_chain"), f"{where}.overdue_chain", problems, red=red)
        step_chains = {}
        raw_chains = raw.get("overdue_chains") or {}
        if not isinstance(raw_chains, dict):
            problems.append(f"{where}.overdue_chains: a mapping of step to chain")
            raw_chains = {}
        for step, raw_chain in raw_chains.items():
            if step not in STEPS:
                problems.append(f"{where}.overdue_chains.{step}: not a step ({', '.join(STEPS)})")
                continue
            step_chains[step] = _chain(raw_chain, f"{where}.overdue_chains.{step}", problems, red=red,
                                       transfer=step == TRANSFER_STEP)  # fmt: skip
        closure = []
        for name in raw.get("closure_chain") or []:
            if name not in CLOSURE_ROLES:
                problems.append(f"{where}.closure_chain: unknown {name!r} (one of {', '.join(CLOSURE_ROLES)})")
            else:
                closure.append(CLOSURE_ROLES[name])
        if not raw.get("closure_chain"):
            problems.append(f"{where}.closure_chain: at least one level")
        tiers[str(tier)] = TierRule(
            seats=team or (), parent_contact_required=bool(raw.get("parent_contact_required")),
            notify_district_at_once=bool(raw.get("notify_district_at_once")), deadlines=deadlines,
            overdue_chain=tuple(chain), closure_chain=tuple(closure), overdue_chains=step_chains,
        )  # fmt: skip
    raw_alerts = data.get("alerts") or {}
    windows = {}
    for kind in AlertKind.values:
        value = (raw_alerts.get("windows") or {}).get(kind)
        if value is None:
            problems.append(f"alerts.windows.{kind}: missing")
        else:
            windows[kind] = _duration(value, f"alerts.windows.{kind}", problems, red=True)
    levels = {}
    for name in ("school_hours", "out_of_hours"):
        raw_levels = raw_alerts.get(name) or []
        if not raw_levels:
            problems.append(f"alerts.{name}: at least one level")
        levels[name] = tuple(_audiences(level, f"alerts.{name}[{i}]", problems) for i, level in enumerate(raw_levels))
        for i, level in enumerate(levels[name]):
            for audience in set(level) & Audience.TRANSFER_ONLY:
                problems.append(f"alerts.{name}[{i}]: {audience!r} names someone only in a transfer's overdue chain")
    if problems:
        raise TierRulesInvalid(source, problems)
    return Rules(tiers, AlertRules(windows, levels["school_hours"], levels["out_of_hours"]))


def rules_file() -> Path:
    return Path(getattr(settings, "CASE_TIER_RULES_FILE", "") or DEFAULT_RULES_FILE)


@cache
def _load(path: Path) -> Rules:
    with open(path, encoding="utf-8") as handle:
        return parse_rules(yaml.safe_load(handle), source=path)


_override: list[Rules] = []


def rules() -> Rules:
    """The rules in force (validated; read once per process)."""
    return _override[-1] if _override else _load(rules_file())


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


def tier_rule(tier: str) -> TierRule:
    """The rule for a flagged tier (yellow and above); green has none: it opens no case."""
    return rules().tiers[str(RiskTier(tier))]


def alert_rules() -> AlertRules:
    return rules().alerts


def rank(tier: str) -> int:
    return RiskTier(tier).rank


def due_after(tier: str, step: str, start: datetime, school) -> datetime:
    """When `step` of a case of `tier` at `school` is due, counted from `start`."""
    return tier_rule(tier).deadline(step).after(start, school)


def peak_tier(case) -> str:
    """The highest tier of the case's episode: its tier now or the flag that opened or last raised it. A red
    screening stays a red case for closure, whatever the triage said (no path closes it inside the school)."""
    tiers = [t for t in (case.tier, case.screened_tier) if t and t != RiskTier.GREEN]
    return max(tiers, key=rank) if tiers else RiskTier.YELLOW
