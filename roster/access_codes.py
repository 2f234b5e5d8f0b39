"""Screening access codes (测评账号): issuing one-time codes and reading them back for slips and the teacher's list.

Owns writes and reads of roster.models.AccessCode. A code is a credential (whoever holds it answers a screening as
that student), so reading live codes is allowed to the same people who may issue them: those who may change the
students (school admins of their school, superusers), never everyone who may see the students.

May import: roster only. Views, the admin action and the `issue_access_codes` command call these.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from roster import scoping
from roster.models import AccessCode, School, SchoolClass, Student, StudentStatus, User
from roster.spreadsheets import xlsx_bytes

logger = logging.getLogger(__name__)

# No 0/O, 1/I/L: a code is read off paper and typed by a child. 31^8 ≈ 8.5 × 10^11 codes.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
_ALPHABET_SET = frozenset(ALPHABET)
_SEPARATORS = re.compile(r"[\s\-_\u2010-\u2015]+")  # spaces, ASCII and typographic dashes, underscores
_CREATE_ATTEMPTS = 5
# AccessCode.created_by cannot be empty; codes issued from the command line without --user are recorded as this
# inactive, password-less account, so nobody can sign in as it.
SYSTEM_USERNAME = "system"
_PRINT_ORDER = ("student__school__code", "student__school_class__grade", "student__school_class__number")


def generate_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str | None) -> str:
    """What a student typed → the stored form, or "" when it contains a character no code has.

    Full-width input (全角) is folded, case is ignored, spaces and dashes are dropped. Length is not checked here:
    a code of the wrong length simply matches nothing.
    """
    compact = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text or "").upper())
    if not compact or not set(compact) <= _ALPHABET_SET:
        return ""
    return compact


def live_q(now: datetime | None = None) -> Q:
    """Codes not used yet and not expired."""
    now = now or timezone.now()
    return Q(used_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


# --- Issuing ----------------------------------------------------------------------------------------------------


class IssuedCodes(list):
    """The new codes of one issue, in print order, and how many students were passed over and why.

    A list, so callers that only want the codes use it as one.
    """

    def __init__(self, codes: Iterable[AccessCode] = (), *, already_live: int = 0, answered: int = 0):
        super().__init__(codes)
        self.already_live = already_live  # students who hold a working code, left as it is
        self.answered = answered  # students with nothing left to answer


class AccessCodeRefused(Exception):
    """A re-issue that must not happen, with the reason the school admin is shown; nothing was written."""


# Whether a student still has a screening to answer is screening's knowledge, and roster never imports screening:
# screening registers its check at start-up (ScreeningConfig.ready). Given students (school and class loaded), it
# returns the ids of those with nothing left to answer. Without it, nobody counts as having answered.
AnsweredCheck = Callable[[list[Student]], set[int]]
_answered_check: AnsweredCheck | None = None


def register_answered_check(check: AnsweredCheck) -> None:
    global _answered_check
    _answered_check = check


def _answered_ids(students: list[Student]) -> set[int]:
    if not students or _answered_check is None:
        return set()
    return _answered_check(students)


def _check_issuer(actor: User | None, students: QuerySet[Student]) -> None:
    if actor is not None and students.exclude(pk__in=scoping.changeable(actor, Student).values("pk")).exists():
        raise PermissionDenied(_("You may not issue access codes for some of these students."))


@transaction.atomic
def access_codes_issue(
    *, actor: User | None, students: QuerySet[Student], expires_at: datetime | None = None
) -> IssuedCodes:
    """A new code for each enrolled student among `students` who has no working code and has not answered yet.

    Running it again is safe: a working code already printed is never changed, and a student who has answered gets
    no slip. To replace one student's code (a lost slip) use `access_code_reissue`.
    Access: `actor` must be allowed to change every one of `students` (roster.scoping.changeable: school admins of
    their school, superusers), else PermissionDenied and nothing is written; actor None is the system (command line
    without --user), unrestricted. Students who are not enrolled (transferred, graduated, on leave) get no code.
    Audit: each code records who issued it and when (the system account for actor None); a log line with the counts.
    Returns the new codes ordered by school, class and student number, with the counts of students passed over.
    """
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValueError("expires_at must be in the future")
    _check_issuer(actor, students)
    # Locking the students serialises two admins issuing for the same class, so each student keeps one working code.
    enrolled = Student.objects.filter(pk__in=students.values("pk"), status=StudentStatus.ACTIVE)
    chosen = list(
        enrolled.select_for_update(of=("self",))
        .select_related("school", "school_class")
        .order_by("school__code", "school_class__grade", "school_class__number", "student_no")
    )
    holders = set(AccessCode.objects.filter(live_q(now), student__in=enrolled).values_list("student_id", flat=True))
    without_code = [student for student in chosen if student.pk not in holders]
    answered = _answered_ids(without_code)
    pending = [student for student in without_code if student.pk not in answered]
    issued = IssuedCodes(already_live=len(chosen) - len(without_code), answered=len(answered))
    if pending:
        issuer = actor if actor is not None else _system_account()
        issued.extend(AccessCode(student=student, created_by=issuer, expires_at=expires_at) for student in pending)
        _create_with_fresh_codes(issued)
    logger.info(
        "access codes issued: %d by user %s (%d kept, %d answered)",
        len(issued),
        getattr(actor, "pk", None),
        issued.already_live,
        issued.answered,
    )
    return issued


@transaction.atomic
def access_code_reissue(*, actor: User | None, student: Student, expires_at: datetime | None = None) -> AccessCode:
    """One student's new code: the working code they hold (the slip already printed) stops working now.

    For a lost or leaked slip. Refused (AccessCodeRefused, nothing written) for a student who is not enrolled or who
    has nothing left to answer.
    Access: `actor` must be allowed to change the student (as for `access_codes_issue`), else PermissionDenied.
    Audit: the new code records who issued it; the caller writes the access-log entry (the admin view does).
    """
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValueError("expires_at must be in the future")
    _check_issuer(actor, Student.objects.filter(pk=student.pk))
    locked = Student.objects.select_for_update(of=("self",)).select_related("school", "school_class")
    student = locked.get(pk=student.pk)
    refusal = access_code_reissue_refusal(student)
    if refusal:
        raise AccessCodeRefused(refusal)
    AccessCode.objects.filter(live_q(now), student=student).update(expires_at=now)
    issuer = actor if actor is not None else _system_account()
    code = AccessCode(student=student, created_by=issuer, expires_at=expires_at)
    _create_with_fresh_codes([code])
    logger.info("access code re-issued: student %s by user %s", student.pk, issuer.pk)
    return code


def access_code_live_for(student: Student) -> AccessCode | None:
    """The student's working code, if any (a re-issue's confirmation says whether a printed slip stops working)."""
    return AccessCode.objects.filter(live_q(), student=student).order_by("-created_at").first()


def access_code_reissue_refusal(student: Student) -> str:
    """Why this student gets no new slip ("" when they may): not enrolled, or nothing left to answer (screening
    decides; see `register_answered_check`)."""
    if student.status != StudentStatus.ACTIVE:
        return _("This student is not enrolled; no slip is issued.")
    if _answered_ids([student]):
        return _("This student has already answered the screening; no new slip is needed.")
    return ""


def _create_with_fresh_codes(codes: list[AccessCode]) -> None:
    """One INSERT; on the (astronomically rare) clash with a stored code, draw them all again."""
    for attempt in range(_CREATE_ATTEMPTS):
        drawn: set[str] = set()
        for code in codes:
            value = generate_code()
            while value in drawn:
                value = generate_code()
            drawn.add(value)
            code.code = value
        try:
            with transaction.atomic():
                AccessCode.objects.bulk_create(codes)
            return
        except IntegrityError:
            if attempt == _CREATE_ATTEMPTS - 1:
                raise


def _system_account() -> User:
    user, _created = User.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"name": "System", "is_active": False, "password": make_password(None)}
    )
    if user.is_active or user.has_usable_password():
        raise ImproperlyConfigured(f"the account “{SYSTEM_USERNAME}” is a real login; rename it or pass --user")
    return user


# --- Reading ----------------------------------------------------------------------------------------------------


def access_code_classes_by_ids(actor: User, class_ids: Iterable[int]) -> list[SchoolClass]:
    """The classes whose codes `actor` may issue and print; Http404 when any is missing or out of scope.

    Access: users of the administration site who may change the class (school admins of its school, superusers);
    forbidden and missing look the same.
    """
    wanted = set(class_ids)
    if not wanted or not scoping.can_use_admin(actor):
        raise Http404(_("Not found, or not in your scope."))
    classes = list(
        scoping.changeable(actor, SchoolClass.objects.current())
        .filter(pk__in=wanted)
        .select_related("school")
        .order_by("school__code", "grade", "number")
    )
    if len(classes) != len(wanted):
        raise Http404(_("Not found, or not in your scope."))
    return classes


def _live_codes_of(actor: User | None, school_classes: Iterable[SchoolClass]) -> QuerySet[AccessCode]:
    codes = AccessCode.objects.filter(
        live_q(), student__school_class__in=list(school_classes), student__status=StudentStatus.ACTIVE
    )
    if actor is not None:
        codes = codes.filter(student__in=scoping.changeable(actor, Student))
    return codes


def access_codes_for_print(
    *, actor: User | None, school_classes: Iterable[SchoolClass], issued_since: datetime | None = None
) -> list[AccessCode]:
    """Live codes of the enrolled students of `school_classes`, with student, class and school (one query).

    `issued_since`: only codes issued at or after it (the slips of one issue, not those printed before).
    Access: only students `actor` may change (the people who may issue codes); actor None is the system.
    Audit: a log line with the actor and the count.
    """
    codes = _live_codes_of(actor, school_classes)
    if issued_since is not None:
        codes = codes.filter(created_at__gte=issued_since)
    result = list(
        codes.select_related("student__school", "student__school_class").order_by(*_PRINT_ORDER, "student__student_no")
    )
    logger.info("access codes read for print: %d by user %s", len(result), getattr(actor, "pk", None))
    return result


def access_codes_live_before(
    *, actor: User | None, school_classes: Iterable[SchoolClass], issued_since: datetime
) -> int:
    """How many students of `school_classes` hold a working code issued before `issued_since` (slips printed earlier,
    still valid). Access: as `access_codes_for_print`."""
    return _live_codes_of(actor, school_classes).filter(created_at__lt=issued_since).count()


# --- The class teacher's list ---------------------------------------------------------------------------------


def _header() -> list[str]:
    return [
        capfirst(School._meta.verbose_name),
        capfirst(SchoolClass._meta.verbose_name),
        capfirst(Student._meta.get_field("student_no").verbose_name),
        capfirst(Student._meta.get_field("name").verbose_name),
        capfirst(AccessCode._meta.get_field("code").verbose_name),
    ]


def access_code_list_xlsx(codes: Iterable[AccessCode]) -> bytes:
    """One row per code (school, class, student number, name, code): every cell text, none runs as a formula."""
    rows = [
        [str(student.school), str(student.school_class), student.student_no, student.name, code.code]
        for code in codes
        for student in (code.student,)
    ]
    title = str(capfirst(AccessCode._meta.verbose_name_plural))[:31]
    return xlsx_bytes([(title, [str(h) for h in _header()], rows)])
