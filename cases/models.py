"""The case record (一生一案) and what its steps write: team, interviews, plan, parent contacts, referrals, follow-ups,
tier changes and closure. Every model keeps simple-history with the acting user and a change reason.

The Viewflow process that drives a case lives in `workflows` and points here; nothing in this app knows about it.
May import: roster, screening.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from roster.roles import Role
from screening.definitions import RiskTier


class CaseSource(models.TextChoices):
    SCREENING = "screening", _("Screening result")
    TEACHER_REFERRAL = "teacher_referral", _("Referred by staff")
    SELF_REFERRAL = "self_referral", _("Self-referral")
    CRITICAL_EVENT = "critical_event", _("Critical event")


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSING = "closing", _("Closure proposed")
    CLOSED = "closed", _("Closed")
    TRANSFERRED = "transferred", _("Transferred")


ACTIVE_STATUSES = (CaseStatus.OPEN, CaseStatus.CLOSING)


class Case(models.Model):
    """One student's case. One active case per student: a new flag updates it; a closed case can be reopened."""

    student = models.ForeignKey(
        "roster.Student", on_delete=models.PROTECT, related_name="cases", verbose_name=_("student")
    )
    # The school responsible for the case now (scoping follows it; a transfer moves it with the student).
    school = models.ForeignKey(
        "roster.School", on_delete=models.PROTECT, related_name="cases", verbose_name=_("school")
    )
    source = models.CharField(_("source"), max_length=20, choices=CaseSource.choices)
    screening_result = models.ForeignKey(
        "screening.ScreeningResult", on_delete=models.PROTECT, null=True, blank=True, related_name="cases",
        verbose_name=_("latest screening result"),
    )  # fmt: skip
    tier = models.CharField(_("tier"), max_length=8, choices=RiskTier.choices)
    # The tier the case was opened or last flagged with, before the triage interview confirmed or changed it.
    screened_tier = models.CharField(_("screened tier"), max_length=8, choices=RiskTier.choices, blank=True)
    triaged = models.BooleanField(_("tier confirmed by triage"), default=False)
    status = models.CharField(_("status"), max_length=12, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    reason = models.TextField(_("why the case was opened"), blank=True)
    opened_at = models.DateTimeField(_("opened at"))
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("opened by"),
    )  # fmt: skip
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # When the current tier's clocks started (the first interview and the parent contact count from it): the opening,
    # the reopening, or the last raise of the tier.
    clock_from = models.DateTimeField(_("clocks run from"), null=True, blank=True)
    # 一生一案 across years: a flag for a student whose earlier case is closed opens a new case linked to it.
    follows = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="followed_by",
        verbose_name=_("follows the earlier case"),
    )  # fmt: skip
    # Set when the student left the system (roster.models.LEAVING_STATUSES): every clock of the case stops until
    # the team hands it over or closes it, or the student is enrolled again.
    paused_at = models.DateTimeField(_("clocks stopped at"), null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["student"], condition=Q(status__in=["open", "closing"]), name="one_active_case_per_student"
            )
        ]
        indexes = [
            models.Index(fields=["school", "status", "tier"]),
            models.Index(fields=["school", "-id"], name="cases_case_school_newest"),  # a school's case list
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class TeamSeat(models.TextChoices):
    """二包一: homeroom + psychology teacher; 三包一 adds a school leader."""

    PSYCHOLOGY_TEACHER = "psychology_teacher", _("Psychology teacher")
    HOMEROOM_TEACHER = "homeroom_teacher", _("Homeroom teacher")
    SCHOOL_LEADER = "school_leader", _("School leader")


class CaseTeamMember(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="team", verbose_name=_("case"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="case_seats", verbose_name=_("staff member")
    )
    seat = models.CharField(_("seat"), max_length=20, choices=TeamSeat.choices)
    joined_at = models.DateTimeField(_("joined at"))
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("case team member")
        verbose_name_plural = _("case team members")
        constraints = [
            models.UniqueConstraint(
                fields=["case", "seat"], condition=Q(left_at__isnull=True), name="one_member_per_seat"
            )
        ]
        indexes = [models.Index(fields=["user", "left_at"])]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.seat}"


class InterviewNote(models.Model):
    """调研访谈: what the psychology teacher learned. Restricted notes are for psychology teachers and the principal."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="interviews", verbose_name=_("case"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    held_at = models.DateTimeField(_("held at"))
    note = models.TextField(_("note"))
    restricted = models.BooleanField(_("restricted"), default=False)
    # The school whose psychology teachers and principal read the note when it is restricted: where it was written.
    # A transfer leaves it there (档案移交: restricted notes stay behind) until released to the case's new school.
    school = models.ForeignKey(
        "roster.School", on_delete=models.PROTECT, null=True, related_name="+", verbose_name=_("written at school")
    )
    released_to = models.ForeignKey(
        "roster.School", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("released to school"),
    )  # fmt: skip
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("interview note")
        verbose_name_plural = _("interview notes")
        ordering = ["-held_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.held_at:%Y-%m-%d}"


class InterventionPlan(models.Model):
    """一生一策: the plan for one student; measures each have a responsible person."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="plans", verbose_name=_("case"))
    goals = models.TextField(_("goals"))
    review_on = models.DateField(_("review date"))
    needs_referral = models.BooleanField(_("calls for a referral"), default=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("written at"))
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("intervention plan")
        verbose_name_plural = _("intervention plans")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.created_at:%Y-%m-%d}"


class PlanMeasure(models.Model):
    plan = models.ForeignKey(InterventionPlan, on_delete=models.PROTECT, related_name="measures")
    description = models.TextField(_("measure"))
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("responsible")
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("plan measure")
        verbose_name_plural = _("plan measures")

    def __str__(self) -> str:
        return self.description[:30]


class ContactChannel(models.TextChoices):
    PHONE = "phone", _("Phone")
    IN_PERSON = "in_person", _("Meeting at school")
    HOME_VISIT = "home_visit", _("Home visit")
    MESSAGE = "message", _("Message")


class Consent(models.TextChoices):
    GIVEN = "given", _("Given")
    REFUSED = "refused", _("Refused")
    NOT_ASKED = "not_asked", _("Not asked")


class ParentContact(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="parent_contacts", verbose_name=_("case"))
    contacted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    contacted_at = models.DateTimeField(_("contacted at"))
    guardian = models.CharField(_("who"), max_length=50)
    channel = models.CharField(_("channel"), max_length=12, choices=ContactChannel.choices)
    outcome = models.TextField(_("outcome"))
    consent = models.CharField(_("consent to intervention"), max_length=10, choices=Consent.choices)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("parent contact")
        verbose_name_plural = _("parent contacts")
        ordering = ["-contacted_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.contacted_at:%Y-%m-%d}"


class Decision(models.TextChoices):
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class Decided(models.Model):
    """A request someone decides (approves or rejects): a referral, a tier change, a closure."""

    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices, default=Decision.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        abstract = True


class Referral(Decided):
    """转介: to a hospital or professional institution, approved by the principal, with the parents' consent."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="referrals", verbose_name=_("case"))
    institution = models.CharField(_("institution"), max_length=100)
    reason = models.TextField(_("reason"))
    parental_consent = models.CharField(_("parental consent"), max_length=10, choices=Consent.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(_("requested at"))
    referred_on = models.DateField(_("referred on"), null=True, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)
    feedback_received_on = models.DateField(_("feedback received on"), null=True, blank=True)
    feedback = models.TextField(_("institution's feedback"), blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.institution}"


class FollowUpOutcome(models.TextChoices):
    CONTINUE = "continue", _("Continue")
    ESCALATE = "escalate", _("Escalate")
    DE_ESCALATE = "de_escalate", _("De-escalate")
    PROPOSE_CLOSURE = "propose_closure", _("Propose closure")


class FollowUp(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="follow_ups", verbose_name=_("case"))
    held_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    held_at = models.DateTimeField(_("held at"))
    note = models.TextField(_("note"))
    reassessment_score = models.PositiveSmallIntegerField(_("re-assessment score"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=FollowUpOutcome.choices)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-held_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.held_at:%Y-%m-%d}"


class TierChange(Decided):
    """An escalation or de-escalation: requested by the team, decided by the principal (never by the requester)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="tier_changes", verbose_name=_("case"))
    from_tier = models.CharField(_("from"), max_length=8, choices=RiskTier.choices)
    to_tier = models.CharField(_("to"), max_length=8, choices=RiskTier.choices)
    reason = models.TextField(_("reason"))
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(_("requested at"))
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.from_tier}→{self.to_tier}"


class Closure(Decided):
    """结案: proposed by the team, evaluated a level higher (principal for yellow, district centre for orange/red)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="closures", verbose_name=_("case"))
    reason = models.TextField(_("reason"))
    evaluation = models.TextField(_("evaluation"), blank=True)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(_("proposed at"))
    # How many levels of the tier's closure chain (cases.tiers) have approved so far; the closure is decided when the
    # last level approves or any level rejects.
    levels_approved = models.PositiveSmallIntegerField(_("levels approved"), default=0)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("closure")
        verbose_name_plural = _("closures")
        ordering = ["-proposed_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.decision}"


EMERGENCY_REASON_MIN_LENGTH = 15  # a sentence, not "x": the district reads it in its notice and the auditor later
# Who may break the glass: the clinical roles. Never homeroom teachers (no clinical reading), admins or auditors.
EMERGENCY_ACCESS_ROLES = frozenset({Role.PSYCHOLOGY_TEACHER, Role.PRINCIPAL, Role.DISTRICT_CENTRE, Role.CITY_CENTRE})


class EmergencyAccess(models.Model):
    """A "break the glass" grant: one staff member may read one case outside their scope until `expires_at`
    (settings.EMERGENCY_ACCESS_HOURS after it was granted), for the reason they typed. Never edited: a new need is a
    new grant; an expired one stays as the record of who looked and why."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="emergency_grants",
        verbose_name=_("staff member"),
    )  # fmt: skip
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="emergency_grants", verbose_name=_("case"))
    reason = models.TextField(_("reason"))
    granted_at = models.DateTimeField(_("granted at"))
    expires_at = models.DateTimeField(_("expires at"))
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("emergency access")
        verbose_name_plural = _("emergency accesses")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["user", "expires_at"], name="emergency_access_user_expiry")]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.user_id}:{self.granted_at:%Y-%m-%d %H:%M}"


class ClosureEvaluation(models.Model):
    """One level's evaluation of a proposed closure (seed 001: 市级…结案评估): the principal, the district centre, the
    city crisis centre, as the tier's closure chain says."""

    closure = models.ForeignKey(
        Closure, on_delete=models.PROTECT, related_name="evaluations", verbose_name=_("closure")
    )
    level = models.PositiveSmallIntegerField(_("level"))
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    approved = models.BooleanField(_("approved"))
    evaluation = models.TextField(_("evaluation"), blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(_("decided at"))
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("closure evaluation")
        verbose_name_plural = _("closure evaluations")
        ordering = ["closure", "level"]
        constraints = [models.UniqueConstraint(fields=["closure", "level"], name="one_evaluation_per_closure_level")]

    def __str__(self) -> str:
        return f"{self.closure_id}:{self.level}:{self.approved}"


class AlertKind(models.TextChoices):
    ACUTE = "acute", _("Acute: thoughts of suicide right now")
    RED = "red", _("Red tier")
    CRITICAL = "critical", _("Critical answer")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Waiting for someone to take it")
    ACKNOWLEDGED = "acknowledged", _("Taken")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class CrisisAlert(models.Model):
    """A crisis alert (DESIGN §3, the crisis loop): a critical answer or a red tier, one per student and event. It
    climbs the levels of the tier rules' alert chain until a named adult acknowledges it ("我来处理")."""

    student = models.ForeignKey(
        "roster.Student", on_delete=models.PROTECT, related_name="crisis_alerts", verbose_name=_("student")
    )
    school = models.ForeignKey(
        "roster.School", on_delete=models.PROTECT, related_name="crisis_alerts", verbose_name=_("school")
    )
    case = models.ForeignKey(
        Case, on_delete=models.PROTECT, null=True, blank=True, related_name="crisis_alerts", verbose_name=_("case")
    )
    screening_result = models.ForeignKey(
        "screening.ScreeningResult", on_delete=models.PROTECT, null=True, blank=True, related_name="crisis_alerts",
        verbose_name=_("screening result"),
    )  # fmt: skip
    kind = models.CharField(_("kind"), max_length=10, choices=AlertKind.choices)
    # What raised it, unique per student: "screening_result:12", "case_red:34:2"…
    event_key = models.CharField(_("event"), max_length=100)
    # The critical items answered, as [instrument code, item number] pairs: for readers of results only.
    critical_items = models.JSONField(_("critical items"), default=list, blank=True)
    raised_at = models.DateTimeField(_("raised at"))
    in_school_hours = models.BooleanField(_("raised in school hours"))
    level = models.PositiveSmallIntegerField(_("level reached"), default=0)  # levels of the chain told so far
    next_escalation_at = models.DateTimeField(_("climbs at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("taken by"),
    )  # fmt: skip
    acknowledged_at = models.DateTimeField(_("taken at"), null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("crisis alert")
        verbose_name_plural = _("crisis alerts")
        ordering = ["-raised_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["student", "event_key"], name="one_crisis_alert_per_student_and_event")
        ]
        indexes = [
            models.Index(fields=["status", "next_escalation_at"], name="crisis_alert_due"),
            models.Index(fields=["school", "status"], name="crisis_alert_school_status"),
            models.Index(fields=["case", "status"], name="crisis_alert_case_status"),
        ]

    def __str__(self) -> str:
        return f"alert #{self.pk} ({self.kind})"

    @property
    def open(self) -> bool:
        return self.status == AlertStatus.OPEN


class CrisisAlertStep(models.Model):
    """One step of an alert's chain: who was told, and when (the care instruction to the proctor is a step too)."""

    alert = models.ForeignKey(CrisisAlert, on_delete=models.PROTECT, related_name="steps", verbose_name=_("alert"))
    level = models.PositiveSmallIntegerField(_("level"))
    audiences = models.CharField(_("told"), max_length=200)  # comma-separated tier-rules audiences, or "proctor"
    recipients = models.JSONField(_("recipients"), default=list)  # user ids
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("crisis alert step")
        verbose_name_plural = _("crisis alert steps")
        ordering = ["alert", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.alert_id}:{self.level}:{self.audiences}"


class SupportStatus(models.TextChoices):
    OPEN = "open", _("Waiting for the district centre")
    ACCEPTED = "accepted", _("District centre supporting")
    ENDED = "ended", _("Support ended")


class SupportRequest(models.Model):
    """申请区县支持 (seed 002: 县区…第一时间介入，协调卫健、公安、社区): the case's team asks the district centre to
    join the case."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="support_requests", verbose_name=_("case"))
    reason = models.TextField(_("what support is needed"))
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(_("requested at"))
    status = models.CharField(_("status"), max_length=10, choices=SupportStatus.choices, default=SupportStatus.OPEN)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("accepted by"),
    )  # fmt: skip
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("district support request")
        verbose_name_plural = _("district support requests")
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.status}"


class Agency(models.TextChoices):
    HEALTH = "health", _("Health commission")
    POLICE = "police", _("Police")
    COMMUNITY = "community", _("Community")
    EDUCATION = "education", _("Education bureau")
    SCHOOL = "school", _("A school outside this system")  # a leaver's case handed over (转出本市)
    OTHER = "other", _("Other")


class CoordinationEntry(models.Model):
    """The case's coordination log: who outside the school was contacted, and what was agreed."""

    case = models.ForeignKey(
        Case, on_delete=models.PROTECT, related_name="coordination_entries", verbose_name=_("case")
    )
    support_request = models.ForeignKey(
        SupportRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="entries",
        verbose_name=_("support request"),
    )  # fmt: skip
    agency = models.CharField(_("agency"), max_length=12, choices=Agency.choices)
    contact = models.CharField(_("who was contacted"), max_length=100)
    agreed = models.TextField(_("what was agreed"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded at"))
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("coordination entry")
        verbose_name_plural = _("coordination entries")
        ordering = ["-recorded_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.agency}"


class SafetyOutcome(models.TextChoices):
    SAFE = "safe", _("Safe to go home; follow-up as planned")
    SAFETY_PLAN = "safety_plan", _("Safe to go home with a safety plan and the parents told")
    NOT_SAFE = "not_safe", _("Not safe to go home: urgent evaluation, parents called (the case turns red)")


class SafetyAssessment(models.Model):
    """The brief safety assessment (NIMH ASQ pathway) of a student with a non-acute critical answer, before they go
    home that school day."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="safety_assessments", verbose_name=_("case"))
    alert = models.ForeignKey(
        CrisisAlert, on_delete=models.PROTECT, null=True, blank=True, related_name="safety_assessments",
        verbose_name=_("crisis alert"),
    )  # fmt: skip
    outcome = models.CharField(_("outcome"), max_length=12, choices=SafetyOutcome.choices)
    parents_informed = models.BooleanField(_("parents informed"), default=False)
    note = models.TextField(_("note"))
    assessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assessed_at = models.DateTimeField(_("assessed at"))
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("brief safety assessment")
        verbose_name_plural = _("brief safety assessments")
        ordering = ["-assessed_at"]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.outcome}"


class TransferStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the receiving school")
    ACCEPTED = "accepted", _("Accepted")
    CANCELLED = "cancelled", _("Cancelled")


class CaseTransfer(models.Model):
    """档案移交: an active case of a student who moved school (roster.SchoolMove confirmed). The sending team stays
    responsible until the receiving school's psychology teacher accepts; then the case's school, team, tasks and
    clocks move, and the sending school keeps read-only access to what was written before `accepted_at`."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="transfers", verbose_name=_("case"))
    move = models.ForeignKey(
        "roster.SchoolMove", on_delete=models.PROTECT, null=True, blank=True, related_name="case_transfers",
        verbose_name=_("school move"),
    )  # fmt: skip
    from_school = models.ForeignKey(
        "roster.School", on_delete=models.PROTECT, related_name="transfers_out", verbose_name=_("from school")
    )
    to_school = models.ForeignKey(
        "roster.School", on_delete=models.PROTECT, related_name="transfers_in", verbose_name=_("to school")
    )
    tier = models.CharField(_("tier at the move"), max_length=8, choices=RiskTier.choices)
    status = models.CharField(_("status"), max_length=12, choices=TransferStatus.choices,
                              default=TransferStatus.PENDING)  # fmt: skip
    requested_at = models.DateTimeField(_("requested at"))
    due_at = models.DateTimeField(_("to be accepted by"))
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("accepted by"),
    )  # fmt: skip
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("case transfer")
        verbose_name_plural = _("case transfers")
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["case"], condition=Q(status="pending"), name="one_pending_transfer")
        ]
        indexes = [models.Index(fields=["to_school", "status"]), models.Index(fields=["from_school", "status"])]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.from_school_id}→{self.to_school_id}"


# --- Care beyond screening (issue 20): signals, help records, mentors' talks, home visits ---------------------------


class SignalSource(models.TextChoices):
    SCREENING = "screening", _("Screening flag")
    CONCERN = "concern", _("Concern raised by staff")  # 关注上报: a teacher, for themselves, a peer or a parent
    HOTLINE = "hotline", _("Hotline call")  # seed 004's 24-hour line, recorded by the district centre on duty
    ABSENCE = "absence", _("Absences")
    LEAVE_RETURN = "leave_return", _("Return from leave")  # 复学评估
    HELP_REVIEW = "help_review", _("Help record review due")  # 一人一案
    CHECKLIST = "checklist", _("Teacher checklist")  # 排查表, an observer-rated instrument


class SignalStatus(models.TextChoices):
    OPEN = "open", _("Waiting for triage")
    CASE_OPENED = "case_opened", _("Case opened")
    ADDED_TO_CASE = "added_to_case", _("Added to the open case")
    NO_ACTION = "no_action", _("No action")


class Reporter(models.TextChoices):
    """Who first said it, when a staff member records it for someone else (seed 001's 朋辈 level, a parent)."""

    STAFF = "staff", _("The staff member themselves")
    PEER = "peer", _("A classmate (班级心理委员)")
    PARENT = "parent", _("A parent or guardian")
    CALLER = "caller", _("A hotline caller")
    SYSTEM = "system", _("The system")


class Signal(models.Model):
    """Something that says "look at this student" (issue 20), with its source and a reason, waiting in the school's
    triage queue until a psychology teacher opens a case, adds it to the open case, or records why no action.
    `tier` orders the queue (risk first) and sets its due time (the tier rules' `signal_triage` step). `key` makes
    a rule raise one signal per episode (an absence run, a review date, a result): raising again finds this row.
    `reason` is short and never clinical (the raiser is told only that it was seen); `detail` is what was seen."""

    student = models.ForeignKey("roster.Student", on_delete=models.PROTECT, related_name="signals",
                                verbose_name=_("student"))  # fmt: skip
    school = models.ForeignKey("roster.School", on_delete=models.PROTECT, related_name="signals",
                               verbose_name=_("school"))  # fmt: skip
    source = models.CharField(_("source"), max_length=16, choices=SignalSource.choices)
    tier = models.CharField(_("urgency"), max_length=8, choices=RiskTier.choices)
    reason = models.CharField(_("reason"), max_length=200)
    detail = models.TextField(_("what was seen"), blank=True)
    reporter = models.CharField(_("reported by"), max_length=8, choices=Reporter.choices, default=Reporter.SYSTEM)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="signals_raised",
        verbose_name=_("recorded by"),
    )  # fmt: skip
    raised_at = models.DateTimeField(_("raised at"))
    due_at = models.DateTimeField(_("to be triaged by"), null=True, blank=True)
    key = models.CharField(_("episode"), max_length=100, null=True, blank=True, unique=True, editable=False)
    status = models.CharField(_("status"), max_length=16, choices=SignalStatus.choices, default=SignalStatus.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("triaged by"),
    )  # fmt: skip
    decided_at = models.DateTimeField(_("triaged at"), null=True, blank=True)
    decision_note = models.TextField(_("why"), blank=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, null=True, blank=True, related_name="signals",
                             verbose_name=_("case"))  # fmt: skip
    escalation_level = models.PositiveSmallIntegerField(_("overdue reminders sent"), default=0, editable=False)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("signal")
        verbose_name_plural = _("signals")
        ordering = ["-raised_at", "-pk"]
        indexes = [
            models.Index(fields=["school", "status"]),
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["student", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.student_id}"


class HelpStatus(models.TextChoices):
    ACTIVE = "active", _("In progress")
    ENDED = "ended", _("Ended")


class HelpRecord(models.Model):
    """一人一案 for a member of a ledger group (三个清单, seed 001: 明确帮扶对象、帮扶措施和责任人): one per student and
    group. A review date passed raises a help-review signal."""

    student = models.ForeignKey("roster.Student", on_delete=models.PROTECT, related_name="help_records",
                                verbose_name=_("student"))  # fmt: skip
    school = models.ForeignKey("roster.School", on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    group = models.ForeignKey("roster.SpecialGroup", on_delete=models.PROTECT, related_name="help_records",
                              verbose_name=_("special group"))  # fmt: skip
    measures = models.TextField(_("measures"))
    responsible = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("responsible person"))  # fmt: skip
    review_on = models.DateField(_("review date"))
    status = models.CharField(_("status"), max_length=8, choices=HelpStatus.choices, default=HelpStatus.ACTIVE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("written by"))  # fmt: skip
    created_at = models.DateTimeField(_("written at"))
    updated_at = models.DateTimeField(_("updated at"))
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("help record")
        verbose_name_plural = _("help records")
        ordering = ["review_on", "pk"]
        constraints = [models.UniqueConstraint(fields=["student", "group"], name="help_record_once_per_group")]
        indexes = [models.Index(fields=["school", "status", "review_on"])]

    def __str__(self) -> str:
        return f"{self.student_id}:{self.group_id}"


class MentorTalk(models.Model):
    """谈心谈话 (seed 004): a mentor's talk with a mentee. Something worrying can raise a concern (`signal`)."""

    student = models.ForeignKey("roster.Student", on_delete=models.PROTECT, related_name="mentor_talks",
                                verbose_name=_("student"))  # fmt: skip
    school = models.ForeignKey("roster.School", on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("mentor"))  # fmt: skip
    held_on = models.DateField(_("date"))
    topic = models.CharField(_("topic"), max_length=100)
    note = models.TextField(_("note"), blank=True)
    worrying = models.BooleanField(_("something worrying"), default=False)
    signal = models.ForeignKey(Signal, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               verbose_name=_("concern raised"))  # fmt: skip
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("mentor talk")
        verbose_name_plural = _("mentor talks")
        ordering = ["-held_on", "-pk"]
        indexes = [models.Index(fields=["school", "held_on"]), models.Index(fields=["student", "held_on"])]

    def __str__(self) -> str:
        return f"{self.student_id} {self.held_on:%Y-%m-%d}"


class HomeVisit(models.Model):
    """家访 (seed 003: every student visited at least once a school year), by the homeroom teacher or a mentor."""

    student = models.ForeignKey("roster.Student", on_delete=models.PROTECT, related_name="home_visits",
                                verbose_name=_("student"))  # fmt: skip
    school = models.ForeignKey("roster.School", on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("visited by"))  # fmt: skip
    visited_on = models.DateField(_("date"))
    met = models.CharField(_("who was met"), max_length=100)
    note = models.TextField(_("note"), blank=True)
    worrying = models.BooleanField(_("something worrying"), default=False)
    signal = models.ForeignKey(Signal, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               verbose_name=_("concern raised"))  # fmt: skip
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("home visit")
        verbose_name_plural = _("home visits")
        ordering = ["-visited_on", "-pk"]
        indexes = [models.Index(fields=["school", "visited_on"]), models.Index(fields=["student", "visited_on"])]

    def __str__(self) -> str:
        return f"{self.student_id} {self.visited_on:%Y-%m-%d}"
