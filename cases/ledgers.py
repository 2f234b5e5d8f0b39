"""The ledgers (台账) a school and a district keep of their cases (seed 003: 重点帮助对象台帐; seed 001: 建立工作台账):
the key-help ledger (open orange and red cases, with their team, plan and last contact), the referral ledger and the
closed-case ledger. Selectors only: each returns one queryset with every column computed in the database (subqueries
on the case's records), so a page of rows is one query whatever the size of the scope.

Who reads them: the roles that read a case's clinical records (the Referral readers rule of cases/apps.py: the
school's psychology teachers and principals, the district centre and auditor, the city centre), over the subtrees
where they hold such a role. A homeroom teacher holds no ledger: the columns are drawn from interviews, follow-ups and
referrals, which are never theirs to read (they work their own cases from the case list). Emergency access grants
one case to read, not a place in another district's ledger: rows reached only through a grant are left out.
The ledgers carry dates, names of staff and decisions, never the text of a note, a plan, a referral or an answer.

May import: roster, screening.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Case as DbCase  # the SQL CASE expression (Case is the model here)
from django.db.models import (
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, NullIf
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases.models import (
    ACTIVE_STATUSES,
    Case,
    CaseStatus,
    CaseTeamMember,
    Closure,
    Decision,
    FollowUp,
    InterventionPlan,
    InterviewNote,
    ParentContact,
    Referral,
    TeamSeat,
)  # fmt: skip
from cases.tiers import tier_rule
from roster import scoping
from roster.models import District, School
from screening.definitions import RiskTier

KEY_HELP_TIERS = (RiskTier.RED, RiskTier.ORANGE)  # 重点帮扶对象: the three-on-one tiers, most urgent first
CLOSED_TIERS = (RiskTier.RED, RiskTier.ORANGE, RiskTier.YELLOW, RiskTier.GREEN)  # green: a false positive closed
# The clinical readers rule the ledgers follow (see the module docstring): the Referral model's readers.
LEDGER_RULE_MODEL = Referral
# No record is this old: it stands in for "none" inside GREATEST (SQLite's MAX(a, NULL) is NULL, PostgreSQL's
# GREATEST skips NULLs; a sentinel gives both the same answer), and is turned back into NULL afterwards.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


# --- Who reads, over what -----------------------------------------------------------------------------------------


def reads_ledgers(user) -> bool:
    """Whether the user holds a role that reads ledgers somewhere (no query): the pages' gate."""
    return scoping.may_read_some(user, LEDGER_RULE_MODEL)


def ledger_districts(user) -> QuerySet[District]:
    """The districts a ledger filter may offer: where the user reads ledgers (a forged id is not among them)."""
    return scoping.within_readers_scope(user, District, LEDGER_RULE_MODEL).order_by("division_code", "pk")


def ledger_schools(user, district: District | None = None) -> QuerySet[School]:
    schools = scoping.within_readers_scope(user, School, LEDGER_RULE_MODEL)
    if district is not None:
        schools = schools.filter(district=district)
    return schools.order_by("code", "pk")


def _index_hint(queryset: QuerySet, user, school_path: str) -> QuerySet:
    # Redundant with the scope, but lets the (school, status, tier) index serve a school-level user's page.
    schools = scoping.scope_for(user).school_ids()
    return queryset if schools is None else queryset.filter(**{f"{school_path}__in": sorted(schools)})


def ledger_cases(user) -> QuerySet[Case]:
    """The cases a ledger may list for the user: visible to them (roster.scoping), in a subtree where they hold a
    clinical reading role (not through a team seat alone, nor an emergency grant)."""
    cases = scoping.within_readers_scope(user, scoping.visible(user, Case), LEDGER_RULE_MODEL)
    return _index_hint(cases, user, "school_id")


def _narrowed(queryset: QuerySet, prefix: str, district, school) -> QuerySet:
    # Filters narrow the scoped rows, never widen them: they are applied on top of ledger_cases / ledger_referrals.
    if district is not None:
        queryset = queryset.filter(**{f"{prefix}school__district": district})
    if school is not None:
        queryset = queryset.filter(**{f"{prefix}school": school})
    return queryset


def day_range(since: date | None, until: date | None, field: str) -> Q:
    """`field` on or after `since` and on or before `until`, local calendar days (both ends included)."""
    q = Q()
    if since is not None:
        q &= Q(**{f"{field}__gte": timezone.make_aware(datetime.combine(since, time.min))})
    if until is not None:
        q &= Q(**{f"{field}__lt": timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))})
    return q


# --- What a ledger row computes -----------------------------------------------------------------------------------


def _staff_label(path: str = "user"):
    """A staff member as a page names them: their name, or their username when the roster has no name."""
    return Coalesce(NullIf(F(f"{path}__name"), Value("")), F(f"{path}__username"))


def seat_holder(seat: str, case_ref: str = "pk") -> Subquery:
    """Who holds `seat` on the case's team now (the seat's current member; a closed case's team has left)."""
    members = CaseTeamMember.objects.filter(case=OuterRef(case_ref), seat=seat, left_at__isnull=True)
    return Subquery(members.annotate(label=_staff_label()).values("label")[:1])


def _latest(model, field: str, case_ref: str = "pk") -> Subquery:
    rows = model.objects.filter(case=OuterRef(case_ref)).order_by(f"-{field}", "-pk").values(field)[:1]
    return Subquery(rows)


def last_contact(case_ref: str = "pk"):
    """The latest time anyone of the team met the student or the parents: the latest parent contact, follow-up or
    interview (restricted notes count by their date: a reader of the ledger may know a note was held, not read it)."""
    never = Value(_NEVER, output_field=DateTimeField())
    latest = Greatest(
        *(Coalesce(_latest(model, field, case_ref), never)
          for model, field in ((ParentContact, "contacted_at"), (FollowUp, "held_at"), (InterviewNote, "held_at")))
    )  # fmt: skip
    return NullIf(latest, never, output_field=DateTimeField())


def urgency():
    """Red before orange before yellow before green: the order a ledger is read in."""
    return DbCase(
        *(When(tier=tier, then=Value(rank)) for rank, tier in enumerate(CLOSED_TIERS)),
        default=Value(len(CLOSED_TIERS)),
        output_field=IntegerField(),
    )


def contact_overdue_q(now: datetime) -> Q:
    """A case nobody has met (student or parents) within its tier's follow-up interval (cases.tiers): since the last
    contact, or since it opened when there was none yet."""
    q = Q(pk__in=[])
    for tier in KEY_HELP_TIERS:
        since = now - tier_rule(tier).follow_up_every
        q |= Q(tier=tier) & (Q(last_contact_at__lt=since) | Q(last_contact_at__isnull=True, opened_at__lt=since))
    return q


def contact_overdue(case, now: datetime) -> bool:
    """The same rule for one annotated row (to mark it on a page)."""
    since = now - tier_rule(case.tier).follow_up_every
    return (case.last_contact_at or case.opened_at) < since


# --- The key-help ledger (重点帮扶对象台账) ---------------------------------------------------------------------------


def key_help_ledger(
    user, *, district: District | None = None, school: School | None = None, tier: str | None = None,
    contact_overdue_only: bool = False, now: datetime | None = None,
) -> QuerySet[Case]:  # fmt: skip
    """Open orange and red cases (open, or closure proposed and not yet decided), red first, then by school and
    class, each with its student, school, class, team (`leader`, `psychologist`, `homeroom`: current seat holders),
    latest plan (`plan_written_at`, `plan_review_on`) and last contact (`last_contact_at`).

    Access: ledger_cases(user). Audit: the caller logs the rows it shows or exports.
    """
    cases = ledger_cases(user).filter(status__in=ACTIVE_STATUSES, tier__in=list(KEY_HELP_TIERS))
    cases = _narrowed(cases, "", district, school)
    if tier:
        cases = cases.filter(tier=tier)
    cases = cases.annotate(
        leader=seat_holder(TeamSeat.SCHOOL_LEADER),
        psychologist=seat_holder(TeamSeat.PSYCHOLOGY_TEACHER),
        homeroom=seat_holder(TeamSeat.HOMEROOM_TEACHER),
        plan_written_at=_latest(InterventionPlan, "created_at"),
        plan_review_on=Subquery(
            InterventionPlan.objects.filter(case=OuterRef("pk")).order_by("-created_at", "-pk").values("review_on")[:1]
        ),
        last_contact_at=last_contact(),
        urgency=urgency(),
    )
    if contact_overdue_only:
        cases = cases.filter(contact_overdue_q(now or timezone.now()))
    return (
        cases.select_related("student__school_class", "school")
        .order_by("urgency", "school__code", "student__school_class__grade", "student__school_class__number", "pk")
    )  # fmt: skip


# --- The referral ledger (转介台账) ---------------------------------------------------------------------------------


class ReferralStage:
    """Where a referral stands, from its fields (a referral is requested, decided, made, then answered)."""

    PENDING = "pending"
    REJECTED = "rejected"
    TO_BE_MADE = "to_be_made"
    AWAITING_FEEDBACK = "awaiting_feedback"
    FEEDBACK_RECEIVED = "feedback_received"
    ORDER = (PENDING, TO_BE_MADE, AWAITING_FEEDBACK, FEEDBACK_RECEIVED, REJECTED)


def feedback_received_q(prefix: str = "") -> Q:
    """The institution answered: a date of its feedback, or its feedback written down."""
    return Q(**{f"{prefix}feedback_received_on__isnull": False}) | ~Q(**{f"{prefix}feedback": ""})


def referral_stage():
    return DbCase(
        When(decision=Decision.PENDING, then=Value(ReferralStage.PENDING)),
        When(decision=Decision.REJECTED, then=Value(ReferralStage.REJECTED)),
        When(feedback_received_q(), then=Value(ReferralStage.FEEDBACK_RECEIVED)),
        When(referred_on__isnull=False, then=Value(ReferralStage.AWAITING_FEEDBACK)),
        default=Value(ReferralStage.TO_BE_MADE),
    )


STAGE_LABELS = {
    ReferralStage.PENDING: _("Waiting for approval"),
    ReferralStage.TO_BE_MADE: _("Approved, not yet referred"),
    ReferralStage.AWAITING_FEEDBACK: _("Referred, awaiting feedback"),
    ReferralStage.FEEDBACK_RECEIVED: _("Feedback received"),
    ReferralStage.REJECTED: _("Rejected"),
}


def stage_of(referral: Referral) -> str:
    """referral_stage's rule for one referral already read."""
    if referral.decision == Decision.PENDING:
        return ReferralStage.PENDING
    if referral.decision == Decision.REJECTED:
        return ReferralStage.REJECTED
    if referral.feedback_received_on is not None or referral.feedback:
        return ReferralStage.FEEDBACK_RECEIVED
    return ReferralStage.AWAITING_FEEDBACK if referral.referred_on is not None else ReferralStage.TO_BE_MADE


def ledger_referrals(user) -> QuerySet[Referral]:
    """The referrals a ledger may list for the user: readable (roster.scoping) in their clinical subtrees."""
    referrals = scoping.within_readers_scope(user, scoping.visible(user, Referral), LEDGER_RULE_MODEL)
    return _index_hint(referrals, user, "case__school_id")


def referral_ledger(
    user, *, district: District | None = None, school: School | None = None, stage: str | None = None,
    since: date | None = None, until: date | None = None,
) -> QuerySet[Referral]:  # fmt: skip
    """Every referral, newest request first, with its case's student, school and class, who asked (`requested_by`)
    and decided (`decided_by`), its `stage`, and the days from request to referral (`days_to_referral`, in Python
    from `requested_at` and `referred_on`). Filtered by the day it was requested (since/until, both included).

    Access: ledger_referrals(user). Audit: the caller logs the cases of the rows it shows or exports.
    """
    referrals = _narrowed(ledger_referrals(user), "case__", district, school)
    referrals = referrals.filter(day_range(since, until, "requested_at")).annotate(stage=referral_stage())
    if stage:
        referrals = referrals.filter(stage=stage)
    return (
        referrals.select_related("case__student__school_class", "case__school", "requested_by", "decided_by")
        .order_by("-requested_at", "-pk")
    )  # fmt: skip


# --- The closed-case ledger (结案台账) -----------------------------------------------------------------------------


def _approved_closure(field: str) -> Subquery:
    closures = Closure.objects.filter(case=OuterRef("pk"), decision=Decision.APPROVED).order_by("-decided_at", "-pk")
    if field == "decided_by":
        return Subquery(closures.annotate(label=_staff_label("decided_by")).values("label")[:1])
    return Subquery(closures.values(field)[:1])


def closed_ledger(
    user, *, district: District | None = None, school: School | None = None, tier: str | None = None,
    since: date | None = None, until: date | None = None,
) -> QuerySet[Case]:  # fmt: skip
    """Closed cases, latest closure first, each with the tier it closed at, who evaluated and approved the closure
    (`closure_approver`, of its latest approved closure: a case reopened and closed again counts its last one),
    who proposed it (`closure_proposer`) and how long the case ran (`duration`, opened → closed). Filtered by the day
    it closed (since/until, both included).

    Access: ledger_cases(user). Audit: the caller logs the rows it shows or exports.
    """
    cases = ledger_cases(user).filter(status=CaseStatus.CLOSED, closed_at__isnull=False)
    cases = _narrowed(cases, "", district, school).filter(day_range(since, until, "closed_at"))
    if tier:
        cases = cases.filter(tier=tier)
    proposer = (
        Closure.objects.filter(case=OuterRef("pk"), decision=Decision.APPROVED)
        .order_by("-decided_at", "-pk")
        .annotate(label=_staff_label("proposed_by"))
        .values("label")[:1]
    )  # fmt: skip
    return (
        cases.annotate(
            closure_approver=_approved_closure("decided_by"),
            closure_proposer=Subquery(proposer),
            duration=ExpressionWrapper(F("closed_at") - F("opened_at"), output_field=DurationField()),
        )
        .select_related("student__school_class", "school")
        .order_by("-closed_at", "-pk")
    )  # fmt: skip
