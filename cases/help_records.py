"""一人一案 help records (三个清单, seed 001: "明确帮扶对象、帮扶措施和责任人"; issue 20 item 3): the services that
write, change and end a member's help record, the selectors that read them, and the sweep that makes a passed review
date a signal in the school's triage queue.

One record per student and ledger group (a unique constraint). Who writes is cases.care_access's
(`may_write_help_record`: the school's psychology teachers and principal); which rows anyone reads is roster.scoping's
(cases.access registers HelpRecord: the school's care readers, and the responsible person and the writer as authors).
Every write keeps a history row with its reason (cases.reasons). The ledger of the members and their records is
cases.group_ledgers.
May import: roster, screening.
"""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from cases import care_access
from cases.models import HelpRecord, HelpStatus, Reporter, Signal, SignalSource
from cases.signal_queue import signal_raise
from roster import audit, scoping
from roster.models import (
    AccessAction,
    AccessOutcome,
    RoleAssignment,
    School,
    SpecialGroup,
    Student,
    StudentStatus,
    User,
)
from roster.special_groups import members
from screening.definitions import RiskTier

# The signal of a passed review date: short and never clinical (not even the group's name: 心理障碍史 is one), stored
# in the site's language. Yellow: the psychology teacher looks within the tier rules' yellow triage time.
REVIEW_REASON = gettext_noop("Help record review date passed")
REVIEW_DETAIL = gettext_noop("The review date of this student's help record (一人一案) was %(date)s.")
REVIEW_TIER = RiskTier.YELLOW
ENROLLED = (StudentStatus.ACTIVE, StudentStatus.ON_LEAVE)


def review_key(record_pk: int, review_on: date) -> str:
    """The signal key of one review date of one record: a new review date is a new episode, the same one never twice."""
    return f"help_review:{record_pk}:{review_on.isoformat()}"


# --- Reading --------------------------------------------------------------------------------------------------------


def school_staff(school: School | int) -> QuerySet[User]:
    """Who may be responsible for a help record of the school's students: active staff holding a role at the school
    or at one of its classes (not above it: a district's staff are nobody's 责任人 at a school)."""
    school_id = school.pk if isinstance(school, School) else school
    held = RoleAssignment.objects.filter(Q(school_id=school_id) | Q(school_class__school_id=school_id))
    return User.objects.filter(is_active=True, pk__in=held.values("user_id")).order_by("name", "username")


def help_record_by_id(user, record_id, *, logged_as: str = AccessAction.VIEW) -> HelpRecord:
    """The help record when the user reads it (roster.scoping: the school's care readers, the responsible person and
    the writer); its reading logged. A missing record and one out of reach are the same 404, the refusal logged.

    Access: everyone; the scope decides. Audit: one access-log entry, ok or denied.
    """
    record = (
        scoping.visible(user, HelpRecord)
        .select_related("student__school_class", "school", "group", "responsible", "created_by")
        .filter(pk=record_id if str(record_id).isdigit() else None)
        .first()
    )  # fmt: skip
    outcome = AccessOutcome.OK if record is not None else AccessOutcome.DENIED
    audit.record(logged_as, object_type=audit.label(HelpRecord), object_ids=[str(record_id)[:40]], outcome=outcome)
    if record is None:
        raise Http404
    return record


def help_records_responsible(user) -> QuerySet[HelpRecord]:
    """The active help records `user` is responsible for (责任人), review date first."""
    rows = scoping.visible(user, HelpRecord).filter(responsible_id=user.pk, status=HelpStatus.ACTIVE)
    return rows.select_related("student__school_class", "school", "group").order_by("review_on", "pk")


# --- Writing --------------------------------------------------------------------------------------------------------


def _check_writer(actor: User, student: Student) -> None:
    if not care_access.may_write_help_record(actor, student):
        raise PermissionDenied(_("Only the psychology teachers and the principal of the student's school do this."))


def _check_fields(student: Student, measures: str, responsible: User | None, review_on: date | None, today: date):
    errors = {}
    if not (measures or "").strip():
        errors["measures"] = _("Write the help measures.")
    if responsible is None or not school_staff(student.school_id).filter(pk=responsible.pk).exists():
        errors["responsible"] = _("The responsible person must be an active member of staff of the student's school.")
    if review_on is None:
        errors["review_on"] = _("Set a review date.")
    elif review_on < today:
        errors["review_on"] = _("The review date is in the past.")
    if errors:
        raise ValidationError(errors)


def _reason_text(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError({"reason": _("Say why the record changes (kept in its history).")})
    return reason


def _save(record: HelpRecord, actor: User, reason: str) -> None:
    record._history_user = actor
    # simple-history keeps the reason in a varchar(100): PostgreSQL refuses a longer one (a person's free text).
    # History change reasons are registered in cases.reasons; the person's reason for a change is kept as written.
    record._change_reason = reason if len(reason) <= 100 else reason[:99] + "…"
    record.save()


@transaction.atomic
def help_record_create(
    *, actor: User, student: Student, group: SpecialGroup, measures: str, responsible: User, review_on: date,
    now: datetime | None = None,
) -> HelpRecord:  # fmt: skip
    """Write the 一人一案 help record of a member of a ledger group.

    Access: cases.care_access.may_write_help_record (PermissionDenied otherwise). Refused, nothing written
    (ValidationError): a group that is not a ledger in use, a student who is not its member (or has left), a second
    record for the same student and group, a responsible person who is not active staff of the student's school, a
    review date in the past, no measures. Audit: the record's history row ("help record written").
    """
    now = now or timezone.now()
    _check_writer(actor, student)
    if not group.ledger or not group.active:
        raise ValidationError(_("“%(group)s” is not a ledger group in use: it takes no help records.")
                              % {"group": group.name})  # fmt: skip
    if not members(group, Student.objects.filter(pk=student.pk)).exists():
        raise ValidationError(_("This student is not a member of “%(group)s”.") % {"group": group.name})
    duplicate = _("This student already has a help record for “%(group)s”: change that one.") % {"group": group.name}
    if HelpRecord.objects.filter(student=student, group=group).exists():
        raise ValidationError(duplicate)
    _check_fields(student, measures, responsible, review_on, timezone.localdate(now))
    record = HelpRecord(
        student=student, school_id=student.school_id, group=group, measures=measures.strip(),
        responsible=responsible, review_on=review_on, status=HelpStatus.ACTIVE, created_by=actor,
        created_at=now, updated_at=now,
    )  # fmt: skip
    try:
        with transaction.atomic():
            _save(record, actor, "help record written")
    except IntegrityError:  # written at the same moment by someone else: one record per student and group
        raise ValidationError(duplicate) from None
    return record


@transaction.atomic
def help_record_update(
    *, actor: User, record: HelpRecord, measures: str, responsible: User, review_on: date, reason: str,
    now: datetime | None = None,
) -> HelpRecord:  # fmt: skip
    """Change a help record's measures, responsible person or review date, with the reason (kept in its history). An
    ended record changed is resumed (in progress again). A new review date is a new review: its passing is a new
    signal.

    Access: cases.care_access.may_write_help_record for the record's student (PermissionDenied otherwise). Refused
    as help_record_create refuses its fields, and without a reason (ValidationError), nothing written.
    Audit: the record's history row ("help record changed: <reason>" or "help record resumed: <reason>").
    """
    now = now or timezone.now()
    record = HelpRecord.objects.select_for_update().select_related("student").get(pk=record.pk)
    _check_writer(actor, record.student)
    text = _reason_text(reason)
    today = timezone.localdate(now)
    # An unchanged review date already passed is kept (the measures may change after the review is due).
    kept_date = review_on == record.review_on
    _check_fields(record.student, measures, responsible, review_on if not kept_date else max(review_on, today), today)
    resumed = record.status == HelpStatus.ENDED
    record.measures, record.responsible, record.review_on = measures.strip(), responsible, review_on
    record.status, record.updated_at = HelpStatus.ACTIVE, now
    _save(record, actor, f"help record resumed: {text}" if resumed else f"help record changed: {text}")
    return record


@transaction.atomic
def help_record_end(*, actor: User, record: HelpRecord, reason: str, now: datetime | None = None) -> HelpRecord:
    """End a help record (the help is no longer needed), with the reason. An ended record raises no review signal.

    Access: cases.care_access.may_write_help_record (PermissionDenied otherwise). Refused without a reason, or when it
    has ended already (ValidationError). Audit: the record's history row ("help record ended: <reason>").
    """
    now = now or timezone.now()
    record = HelpRecord.objects.select_for_update().select_related("student").get(pk=record.pk)
    _check_writer(actor, record.student)
    text = _reason_text(reason)
    if record.status == HelpStatus.ENDED:
        raise ValidationError(_("This help record has ended already."))
    record.status, record.updated_at = HelpStatus.ENDED, now
    _save(record, actor, f"help record ended: {text}")
    return record


# --- The review sweep -------------------------------------------------------------------------------------------------


def reviews_overdue_q(today: date, prefix: str = "") -> Q:
    """An active help record whose review date has passed (before `today`)."""
    return Q(**{f"{prefix}status": HelpStatus.ACTIVE, f"{prefix}review_on__lt": today})


def help_reviews_due_signal(now: datetime | None = None) -> int:
    """Raise a help-review signal (yellow, non-clinical reason) for each active record of an enrolled member whose
    review date has passed, once per review date (the signal's key names the record and the date). Returns how many
    were raised. Run from workflows.services.workflow_tick: one query finds the records not yet signalled.

    Access: the system. Audit: each signal's history row.
    """
    now = now or timezone.now()
    key = Concat(
        Value("help_review:"), Cast("pk", CharField()), Value(":"), Cast("review_on", CharField()),
        output_field=CharField(),
    )  # fmt: skip
    due = (
        HelpRecord.objects.filter(reviews_overdue_q(timezone.localdate(now)), student__status__in=ENROLLED)
        .filter(student__special_groups=F("group"))  # still a member of the group (a tag removed ends the need)
        .annotate(signal_key=key)
        .filter(~Exists(Signal.objects.filter(key=OuterRef("signal_key"))))
        .select_related("student__school")
        .order_by("pk")
    )  # fmt: skip
    raised = 0
    with translation.override(settings.LANGUAGE_CODE):
        reason = gettext(REVIEW_REASON)
        for record in due:
            detail = gettext(REVIEW_DETAIL) % {"date": record.review_on.isoformat()}
            _signal, created = signal_raise(
                record.student, source=SignalSource.HELP_REVIEW, tier=REVIEW_TIER, reason=reason, detail=detail,
                reporter=Reporter.SYSTEM, key=review_key(record.pk, record.review_on), now=now,
            )  # fmt: skip
            raised += created
    return raised
