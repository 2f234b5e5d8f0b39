"""What each risk tier asks of a case (DESIGN §3): the team, the deadlines, the follow-up interval, who approves
closure. Defaults here; a deployment changes them with settings.CASE_TIER_RULES (a dict of the same shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from cases.models import TeamSeat
from roster.roles import Role
from screening.definitions import RiskTier


@dataclass(frozen=True)
class TierRule:
    seats: tuple[str, ...]  # 二包一 or 三包一
    parent_contact_required: bool
    parent_contact_within: timedelta | None
    first_interview_within: timedelta
    follow_up_every: timedelta
    closure_approver: str  # the role that evaluates closure, a level above the team
    notify_district_at_once: bool = False


TWO_ON_ONE = (TeamSeat.PSYCHOLOGY_TEACHER, TeamSeat.HOMEROOM_TEACHER)
THREE_ON_ONE = (TeamSeat.SCHOOL_LEADER, TeamSeat.PSYCHOLOGY_TEACHER, TeamSeat.HOMEROOM_TEACHER)

DEFAULT_TIER_RULES = {
    RiskTier.YELLOW: TierRule(TWO_ON_ONE, False, None, timedelta(days=7), timedelta(days=14), Role.PRINCIPAL),
    RiskTier.ORANGE: TierRule(
        THREE_ON_ONE, True, timedelta(hours=48), timedelta(hours=72), timedelta(days=7), Role.DISTRICT_CENTRE
    ),
    RiskTier.RED: TierRule(
        THREE_ON_ONE,
        True,
        timedelta(hours=24),
        timedelta(hours=24),
        timedelta(days=3),
        Role.DISTRICT_CENTRE,
        notify_district_at_once=True,
    ),  # fmt: skip
}

# The role a seat's holder must have at the case's school (the homeroom teacher's at one of its classes).
SEAT_ROLE = {
    TeamSeat.PSYCHOLOGY_TEACHER: Role.PSYCHOLOGY_TEACHER,
    TeamSeat.HOMEROOM_TEACHER: Role.HOMEROOM_TEACHER,
    TeamSeat.SCHOOL_LEADER: Role.PRINCIPAL,
}


def tier_rule(tier: str) -> TierRule:
    """The rule for a flagged tier (yellow and above); green has none: it opens no case."""
    rules = getattr(settings, "CASE_TIER_RULES", None) or DEFAULT_TIER_RULES
    return rules[RiskTier(tier)]


def rank(tier: str) -> int:
    return RiskTier(tier).rank
