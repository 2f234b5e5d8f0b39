"""档案移交: a case travels with its student to another school (issue 19 item 3; DESIGN §3 "the record follows the
student").

When a confirmed school move (roster.SchoolMove) takes a student with an active case to another school, the case gets
a pending CaseTransfer, due by the tier rules' `transfer_acceptance` deadline. The sending team stays responsible
until a psychology teacher of the receiving school accepts: then the case's school is the receiving one, the team is
re-staffed there, the open crisis alerts go there, and the sending school keeps reading (never changing) what was
written before the acceptance (cases.access). Restricted interview notes stay with the school they were written at
until that school (or its district centre) releases them on the receiving school's request, with a reason.

The flow side (the acceptance task, moving the case's tasks, the links in notices) is workflows.transfers'.
May import: roster, screening.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cases import access
from cases.models import (
    ACTIVE_STATUSES,
    AlertStatus,
    Case,
    CaseTeamMember,
    CaseTransfer,
    CrisisAlert,
    InterviewNote,
    TeamSeat,
    TransferStatus,
)
from cases.services import _save, team_proposal
from cases.tiers import TRANSFER_STEP, rules, tier_rule
from roster import scoping
from roster.masking import mask_name
from roster.models import RoleAssignment, School, User
from roster.notifications import notify
from roster.roles import Role
from screening.definitions import RiskTier

logger = logging.getLogger(__name__)

TRANSFER_KIND = "case_transfer"  # notifications about a transfer (its kind; the subject names the transfer)


class TransferUnavailable(ValidationError):
    """The transfer was accepted by someone else, or cancelled, meanwhile: nothing was changed."""


def _rule(tier: str):
    # A case triaged green waits for its false positive's approval: the lowest tier's rule applies.
    return tier_rule(tier) if str(tier) in rules().tiers else tier_rule(RiskTier.YELLOW)


def _label(school: School) -> str:
    return school.name or school.code


# --- Starting and cancelling ---------------------------------------------------------------------------------------


def active_case_of(student_id: int) -> Case | None:
    return Case.objects.filter(student_id=student_id, status__in=ACTIVE_STATUSES).first()


def transfer_cancel(actor, transfer: CaseTransfer, why: str) -> CaseTransfer:
    """A pending transfer that will not be accepted (the student moved again, or back). Call inside a transaction.
    Access: the system (a school move). Audit: the transfer's history row with the reason."""
    transfer = CaseTransfer.objects.select_for_update().get(pk=transfer.pk)
    if transfer.status != TransferStatus.PENDING:
        return transfer
    transfer.status = TransferStatus.CANCELLED
    _save(transfer, actor, f"transfer cancelled: {why}")
    return transfer


def transfer_request(case: Case, move, *, actor=None, now=None) -> CaseTransfer | None:
    """The student of an active case moved to `move.to_school`: a pending transfer of the case, due by the tier
    rules (on the receiving district's calendar). A pending transfer elsewhere is cancelled first; a student back at
    the case's own school needs none (None). Nothing else about the case changes: its team, tasks and clocks stay.
    Call inside the move's transaction.

    Access: the system (roster.signals.student_moved). Audit: the transfer's and the case's history rows.
    """
    now = now or timezone.now()
    case = Case.objects.select_for_update().select_related("school").get(pk=case.pk)
    if case.status not in ACTIVE_STATUSES:
        return None
    for pending in case.transfers.filter(status=TransferStatus.PENDING):
        transfer_cancel(actor, pending, "the student moved again")
    to_school = School.objects.select_related("district").get(pk=move.to_school_id)
    if to_school.pk == case.school_id:
        return None
    due_at = _rule(case.tier).deadline(TRANSFER_STEP).after(now, to_school)
    transfer = CaseTransfer(case=case, move=move, from_school=case.school, to_school=to_school, tier=case.tier,
                            requested_at=now, due_at=due_at)  # fmt: skip
    a, b = _label(case.school), _label(to_school)
    _save(transfer, actor, f"transfer requested: {a} → {b}")
    _save(case, actor, f"transfer requested: {a} → {b}")
    logger.info("case %s: transfer %s to school %s requested", case.pk, transfer.pk, to_school.pk)
    return transfer


def district_centres_of(transfer: CaseTransfer) -> set[int]:
    """The district centre staff of both districts of a move (one district: its centre once)."""
    ids: set[int] = set()
    for school in (transfer.from_school, transfer.to_school):
        ids |= set(scoping.holders_over(school.district, Role.DISTRICT_CENTRE).values_list("pk", flat=True))
    return ids


def transfer_red_notify(transfer: CaseTransfer, link: str = "") -> int:
    """A red case's move tells both district centres at once (not only when its acceptance is late). Idempotent.

    Access: the system, when the transfer starts. Audit: the notification rows."""
    if transfer.tier != RiskTier.RED:
        return 0
    case, student = transfer.case, transfer.case.student
    with translation.override(settings.LANGUAGE_CODE):  # stored once, read in the deployment's language
        told = notify(
            district_centres_of(transfer), kind=TRANSFER_KIND, subject_key=f"transfer:{transfer.pk}:red", urgent=True,
            link=link,
            title=_("Red case #%(case)s moves from %(from)s to %(to)s")
            % {"case": case.pk, "from": _label(transfer.from_school), "to": _label(transfer.to_school)},
            body=_("%(student)s (%(class)s), a red case, has moved school. The sending team stays responsible until "
                   "%(to)s accepts the case (due %(due)s).")
            % {"student": mask_name(student.name), "class": student.school_class, "to": _label(transfer.to_school),
               "due": timezone.localtime(transfer.due_at).strftime("%Y-%m-%d %H:%M")},
        )  # fmt: skip
    logger.info("transfer %s of red case %s: %s district centre staff told", transfer.pk, case.pk, told)
    return told


# --- Acceptance ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    transfer: CaseTransfer
    case: Case
    seats: dict[str, User]  # the receiving school's team, seat → person (seats nobody could fill are absent)
    sending_psychology: set[int]  # whom to tell that the case was accepted


def may_accept(user, transfer: CaseTransfer) -> bool:
    """A psychology teacher of the receiving school (the role held at that school itself)."""
    return RoleAssignment.objects.filter(
        user_id=user.pk, user__is_active=True, role=Role.PSYCHOLOGY_TEACHER, school_id=transfer.to_school_id
    ).exists()


def _already(transfer: CaseTransfer) -> TransferUnavailable:
    if transfer.status == TransferStatus.ACCEPTED:
        who = transfer.accepted_by
        return TransferUnavailable(
            _("%(name)s already accepted this case at %(time)s. Nothing was changed.")
            % {"name": (who.name or who.username) if who else "?",
               "time": timezone.localtime(transfer.accepted_at).strftime("%Y-%m-%d %H:%M")}
        )  # fmt: skip
    return TransferUnavailable(_("This transfer was cancelled (the student moved again). Nothing was changed."))


def transfer_accept(actor, transfer: CaseTransfer) -> Acceptance:
    """The receiving school's psychology teacher accepts the case, in one transaction: the case's school is theirs,
    every seat of the sending team is left and the team is re-staffed at the receiving school (the accepting teacher,
    the homeroom teacher of the student's new class, a school leader for 三包一), the case's open crisis alerts go to
    the receiving school, and the transfer is accepted. The case's tasks and clocks are the caller's to move
    (workflows.transfers), in the same transaction.

    Access: a psychology teacher of the receiving school (PermissionDenied otherwise). A transfer accepted or cancelled
    meanwhile raises TransferUnavailable, naming who accepted it, and changes nothing.
    Audit: history rows with change reasons on the case, the seats, the alerts and the transfer.
    """
    if not may_accept(actor, transfer):
        raise PermissionDenied(_("Only a psychology teacher of the receiving school accepts a transferred case."))
    now = timezone.now()
    with transaction.atomic():
        transfer = (
            CaseTransfer.objects.select_for_update(of=("self",))
            .select_related("accepted_by", "from_school", "to_school__district")
            .get(pk=transfer.pk)
        )  # fmt: skip
        if transfer.status != TransferStatus.PENDING:
            raise _already(transfer)
        case = Case.objects.select_for_update(of=("self",)).select_related("student").get(pk=transfer.case_id)
        if case.status not in ACTIVE_STATUSES:  # closed meanwhile (its closure was decided at the sending school)
            raise TransferUnavailable(_("The case is no longer open: there is nothing to accept. Nothing was changed."))
        to_school = transfer.to_school
        a, b = _label(transfer.from_school), _label(to_school)
        leaving = list(case.team.select_for_update().filter(left_at__isnull=True))
        sending_psychology = {m.user_id for m in leaving if m.seat == TeamSeat.PSYCHOLOGY_TEACHER}
        for member in leaving:
            member.left_at = now
            _save(member, actor, f"transferred: {a} → {b}")
        case.school = to_school
        _save(case, actor, f"transfer accepted: {a} → {b}")
        seats = _restaff(actor, case, now)
        for alert in CrisisAlert.objects.select_for_update().filter(case=case, status=AlertStatus.OPEN):
            alert.school = to_school
            _save(alert, actor, "crisis alert moved to the receiving school")
        transfer.status, transfer.accepted_at, transfer.accepted_by = TransferStatus.ACCEPTED, now, actor
        _save(transfer, actor, f"transfer accepted: {a} → {b}")
    if not sending_psychology:
        sending_psychology = set(
            scoping.holders_over(transfer.from_school, Role.PSYCHOLOGY_TEACHER).values_list("pk", flat=True)
        )
    logger.info("case %s: transfer %s accepted by user %s", case.pk, transfer.pk, actor.pk)
    return Acceptance(transfer, case, seats, sending_psychology)


def _restaff(actor, case: Case, now) -> dict[str, User]:
    """The receiving school's team: the accepting psychology teacher, and from its roster the homeroom teacher of
    the student's class and (三包一) a school leader. A seat nobody holds stays empty: its tasks wait in the
    school's queue and the staffing of that seat is the school's (never a person of another school)."""
    proposal = team_proposal(case)
    proposal[TeamSeat.PSYCHOLOGY_TEACHER] = actor
    seats = {}
    for seat in _rule(case.tier).seats:
        person = proposal.get(seat)
        if person is None or not access.seat_allowed(person, seat, case):
            continue
        _save(CaseTeamMember(case=case, user=person, seat=seat, joined_at=now), actor,
              "re-staffed at the receiving school")  # fmt: skip
        seats[seat] = person
    return seats


def transfer_accepted_notify(acceptance: Acceptance, link: str = "") -> int:
    """Tell the sending psychology teacher(s) who accepted the case. Idempotent. Access: the system."""
    transfer, case = acceptance.transfer, acceptance.case
    who = transfer.accepted_by
    told = notify(
        acceptance.sending_psychology, kind=TRANSFER_KIND, subject_key=f"transfer:{transfer.pk}:accepted", link=link,
        title=_("Case #%(case)s accepted by %(school)s") % {"case": case.pk, "school": _label(transfer.to_school)},
        body=_("%(student)s's case was accepted by %(name)s (%(school)s) at %(time)s. Your school keeps reading what "
               "it wrote, without changing it.")
        % {"student": mask_name(case.student.name), "name": (who.name or who.username) if who else "?",
           "school": _label(transfer.to_school),
           "time": timezone.localtime(transfer.accepted_at).strftime("%Y-%m-%d %H:%M")},
    )  # fmt: skip
    return told


# --- Restricted notes: withheld until released ----------------------------------------------------------------------


def _latest_accepted(case: Case) -> CaseTransfer | None:
    return (
        case.transfers.filter(status=TransferStatus.ACCEPTED, to_school_id=case.school_id)
        .select_related("from_school__district", "to_school")
        .order_by("-accepted_at", "-pk")
        .first()
    )


def note_release_request(actor, case: Case, reason: str, link: str = "") -> CaseTransfer:
    """The receiving school asks the schools the case came from to release their restricted notes, with a reason.

    Access: a psychology teacher of the case's school, when notes are withheld from it. Audit: the transfer's history
    row with the reason; the sending schools' psychology teachers and district centres are notified.
    """
    if not access.holds(actor, Role.PSYCHOLOGY_TEACHER, case):
        raise PermissionDenied(_("Only a psychology teacher of the case's school asks for its restricted notes."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why the restricted notes are needed."))
    schools = access.withheld_note_schools(case)
    if not schools:
        raise ValidationError(_("No restricted note is withheld from your school."))
    transfer = _latest_accepted(case)
    if transfer is None:
        raise ValidationError(_("No restricted note is withheld from your school."))
    with transaction.atomic():
        _save(transfer, actor, f"restricted notes release requested: {reason}")
    recipients: set[int] = set()
    for school in schools:
        recipients |= set(scoping.holders_over(school, Role.PSYCHOLOGY_TEACHER).values_list("pk", flat=True))
        recipients |= set(scoping.holders_over(school.district, Role.DISTRICT_CENTRE).values_list("pk", flat=True))
    notify(
        recipients, kind=TRANSFER_KIND, link=link,
        subject_key=f"transfer:{transfer.pk}:release-request:{transfer.history.count()}",
        title=_("Case #%(case)s: %(school)s asks for the restricted notes")
        % {"case": case.pk, "school": _label(case.school)},
        body=_("%(name)s (%(school)s) asks your school to release the restricted interview notes of %(student)s's "
               "case. Reason: %(reason)s")
        % {"name": actor.name or actor.username, "school": _label(case.school),
           "student": mask_name(case.student.name), "reason": reason},
    )  # fmt: skip
    return transfer


def notes_release(actor, case: Case, reason: str, link: str = "") -> int:
    """Release the restricted notes of the schools the actor answers for (a psychology teacher or principal of the
    school they were written at, or its district centre) to the case's school, with a reason. Returns how many notes.

    Access: as above (PermissionDenied otherwise). Audit: each note's history row and the transfer's, with the reason;
    the receiving school's psychology teachers are notified.
    """
    schools = access.note_schools_released_by(actor, case)
    if not schools:
        raise PermissionDenied(_("You may not release these notes."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why the restricted notes are released."))
    with transaction.atomic():
        notes = list(
            InterviewNote.objects.select_for_update()
            .filter(case=case, restricted=True, school__in=schools)
            .exclude(released_to_id=case.school_id)
        )  # fmt: skip
        for note in notes:
            note.released_to_id = case.school_id
            _save(note, actor, f"restricted note released: {reason}")
        transfer = _latest_accepted(case)
        if transfer is not None:
            _save(transfer, actor, f"restricted notes released: {reason}")
    notify(
        scoping.holders_over(case.school, Role.PSYCHOLOGY_TEACHER), kind=TRANSFER_KIND, link=link,
        subject_key=f"case:{case.pk}:notes-released:{len(notes)}:{timezone.now():%Y%m%d%H%M%S}",
        title=_("Case #%(case)s: restricted notes released") % {"case": case.pk},
        body=_("%(name)s released %(count)s restricted interview notes of %(student)s's case to your school. Reason: "
               "%(reason)s")
        % {"name": actor.name or actor.username, "count": len(notes), "student": mask_name(case.student.name),
           "reason": reason},
    )  # fmt: skip
    logger.info("case %s: %s restricted notes released to school %s", case.pk, len(notes), case.school_id)
    return len(notes)
