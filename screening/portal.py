"""The student portal's rules: a one-time access code opens one open campaign for one student, answered once.

No account and no session: after the code is checked, the pages carry a signed, time-limited token naming the code
and the campaign, and every step checks the code again, so a used code, a closed window or a replayed request is
refused (or, for a replay of a stored submission, answered with the same thank-you page) and changes nothing.

May import: roster, screening. Views in screening/views_portal.py call these.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from roster.access_codes import normalize_code
from roster.models import AccessCode, School, SchoolClass, Student, StudentStatus
from screening.campaigns import accepts_answers, campaign_invites, checklist_campaigns_q, invitations
from screening.models import Campaign, CampaignStatus, ResultSource, ScreeningResult
from screening.scoring import asked_items
from screening.services import CampaignDefinitions, campaign_definitions, result_record_first, result_scored

logger = logging.getLogger(__name__)

TOKEN_SALT = "screening.portal"  # noqa: S105 (a signing namespace, not a secret)
# The reading steps (code, "is this you") take a school's campaigns from a per-worker copy this many seconds old at
# most; the submission always reads the campaign itself, inside its transaction, so a stale copy can show a page for
# a campaign that has just closed but never lets answers in after closing.
DEFAULT_CAMPAIGN_CACHE_SECONDS = 5
TOKEN_MAX_AGE = 3 * 60 * 60  # long enough for a slow reader, short enough that a lost page goes stale


class PortalRefusal(Exception):
    """Something the student can be told, in their language; nothing was written."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class CampaignWindow:
    """What the portal's reading steps need of a campaign (the attributes `accepts_answers` reads, and more)."""

    pk: int
    name: str
    status: str
    opens_at: datetime
    closes_at: datetime
    ruleset_id: int
    target_grades: tuple[int, ...]
    target: str  # with pk and target_grades, what screening.campaigns.invited_q reads


@dataclass(frozen=True)
class Visit:
    access_code: AccessCode
    campaign: Campaign | CampaignWindow
    signed: str = ""  # the token the visit was resumed from, handed on unchanged

    @property
    def student(self):
        return self.access_code.student

    @property
    def token(self) -> str:
        return self.signed or signing.dumps([self.access_code.pk, self.campaign.pk], salt=TOKEN_SALT, compress=False)


_windows: dict[int, tuple[float, tuple[CampaignWindow, ...]]] = {}
_windows_lock = threading.Lock()


def _cache_seconds() -> float:
    return getattr(settings, "SCREENING_PORTAL_CAMPAIGN_CACHE_SECONDS", DEFAULT_CAMPAIGN_CACHE_SECONDS)


def school_campaign_windows(school_id: int) -> tuple[CampaignWindow, ...]:
    """The school's campaigns that are not closed, earliest first; a copy at most a few seconds old. A teacher
    checklist (observer-rated instruments) is never offered here.

    A whole class enters its codes within a minute: one query per school and worker every few seconds instead of
    one per student.
    """
    seconds = _cache_seconds()
    now = time.monotonic()
    cached = _windows.get(school_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    rows = (
        Campaign.objects.filter(schools=school_id)
        .exclude(status=CampaignStatus.CLOSED)
        .exclude(checklist_campaigns_q())
        .order_by("opens_at", "pk")
        .values_list("pk", "name", "status", "opens_at", "closes_at", "ruleset_id", "target_grades", "target")
    )
    windows = tuple(CampaignWindow(*row[:-2], tuple(row[-2] or ()), row[-1]) for row in rows)
    if seconds > 0:
        with _windows_lock:
            if len(_windows) > 10_000:  # a city has a few thousand schools; never grow without bound
                _windows.clear()
            _windows[school_id] = (now + seconds, windows)
    return windows


def portal_caches_clear() -> None:
    """Forget the per-worker copies (tests; a deployment never needs to: they expire by themselves)."""
    _windows.clear()
    campaign_definitions_cached.cache_clear()


@lru_cache(maxsize=64)
def campaign_definitions_cached(campaign_id: int, ruleset_id: int) -> CampaignDefinitions:
    # A campaign's instruments are fixed once created and a rule-set version never changes, so the pair is a key.
    return campaign_definitions(Campaign.objects.select_related("ruleset").get(pk=campaign_id))


def definitions_for(campaign: Campaign) -> CampaignDefinitions:
    return campaign_definitions_cached(campaign.pk, campaign.ruleset_id)


def _unknown() -> PortalRefusal:
    return PortalRefusal(
        "unknown",
        _(
            "We do not know this code. Check it against your slip (letters and digits only; no 0, 1, O or I) "
            "or ask your teacher."
        ),
    )


def _used() -> PortalRefusal:
    return PortalRefusal(
        "used",
        _(
            "This code has already been used, and its answers were received. Each code can be used only once; "
            "if you think this is a mistake, tell your teacher."
        ),
    )


def _answered() -> PortalRefusal:
    return PortalRefusal("answered", _("You have already answered this screening. Thank you."))


def _closed_meanwhile() -> PortalRefusal:
    return PortalRefusal(
        "closed", _("This screening has closed. Your answers could not be received; tell your teacher.")
    )


def _token_read(token: str) -> tuple[int, int]:
    try:
        code_id, campaign_id = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
        return int(code_id), int(campaign_id)
    except signing.SignatureExpired:
        raise PortalRefusal("stale", _("This page was open too long. Please enter your code again.")) from None
    except (signing.BadSignature, TypeError, ValueError):
        raise PortalRefusal("stale", _("Please enter your code again.")) from None


def _code_checked(access_code: AccessCode | None, now) -> AccessCode:
    if access_code is None:
        raise _unknown()
    if access_code.used_at is not None:
        raise _used()
    if access_code.expires_at is not None and access_code.expires_at <= now:
        raise PortalRefusal("expired", _("This code has expired. Ask your teacher for a new one."))
    if access_code.student.status != StudentStatus.ACTIVE:
        raise PortalRefusal("not_enrolled", _("This code is not valid any more. Ask your teacher."))
    return access_code


def _campaign_for(student, answered: set[int], now) -> CampaignWindow:
    """The open campaign this student has not answered yet (`answered`: ids of campaigns with a stored result);
    a clear refusal when there is none. Which campaigns are for the student: screening.campaigns.invitations."""
    windows = school_campaign_windows(student.school_id)
    mine = invitations([student.pk], windows).get(student.pk, set())
    candidates = [c for c in windows if c.pk in mine]
    pending = [c for c in candidates if c.pk not in answered]
    for campaign in pending:
        if accepts_answers(campaign, now):
            return campaign
    upcoming = [c for c in pending if c.status == CampaignStatus.SCHEDULED and c.closes_at > now]
    if upcoming:
        raise PortalRefusal(
            "not_yet",
            _("The screening has not started yet. It opens at %(time)s.")
            % {"time": timezone.localtime(upcoming[0].opens_at).strftime("%Y-%m-%d %H:%M")},
        )
    if candidates and not pending:
        raise _answered()
    raise PortalRefusal(
        "closed", _("There is no screening open for you now. If your teacher says there is, tell them.")
    )


# --- The portal's reads, in plain SQL -----------------------------------------------------------------------------
# Every student runs these on every step, and the ORM spends about a millisecond of CPU compiling each one (3 ms for
# the submission's check with its subqueries: benchmarks/portal_load.py, README "Portal load"). They only read;
# every write goes through the models, so history and signals stay as everywhere else. The statements are plain
# SQL that SQLite and PostgreSQL both run; tests/screening/test_portal.py runs each of them on both (CI).

CODE_AND_STUDENT = """
    SELECT c.id, c.used_at, c.expires_at, s.id, s.status, s.school_id, s.school_class_id, k.grade{extra}
    FROM roster_accesscode c
    JOIN roster_student s ON s.id = c.student_id
    JOIN roster_schoolclass k ON k.id = s.school_class_id{joins}
    WHERE {where}"""

# The code a student typed, with what the confirmation page shows and the campaigns (not closed) already answered:
# one row per answered campaign, or one row with NULL.
SQL_CODE_START = CODE_AND_STUDENT.format(
    extra=", s.name, sc.name, k.number, r.campaign_id",
    joins="""
    JOIN roster_school sc ON sc.id = s.school_id
    LEFT JOIN screening_screeningresult r ON r.student_id = s.id
        AND r.campaign_id IN (SELECT p.id FROM screening_campaign p WHERE p.status <> %s)""",
    where="c.code = %s",
)
SQL_CODE_RESUME = CODE_AND_STUDENT.format(extra="", joins="", where="c.id = %s")
# The submission's check, under the lock of the code row: is the campaign open now, does it invite the student's
# school, is a result already stored.
SQL_CODE_SUBMIT = CODE_AND_STUDENT.format(
    extra=""",
        EXISTS (SELECT 1 FROM screening_campaign p
                WHERE p.id = %s AND p.status = %s AND p.opens_at <= %s AND p.closes_at > %s),
        EXISTS (SELECT 1 FROM screening_campaign_schools cs WHERE cs.campaign_id = %s AND cs.school_id = s.school_id),
        EXISTS (SELECT 1 FROM screening_screeningresult r WHERE r.campaign_id = %s AND r.student_id = s.id)""",
    joins="",
    where="c.id = %s",
)


def _aware(value):
    # PostgreSQL hands back aware datetimes; SQLite's stored text comes back naive, in UTC (USE_TZ).
    if value is None or timezone.is_aware(value):
        return value
    return timezone.make_aware(value, UTC)


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _code_from_row(row) -> AccessCode:
    """An AccessCode with its student and class, built from the first columns of CODE_AND_STUDENT."""
    code_id, used_at, expires_at, student_id, status, school_id, class_id, grade = row[:8]
    student = Student(pk=student_id, status=status, school_id=school_id, school_class_id=class_id)
    student.school_class = SchoolClass(pk=class_id, school_id=school_id, grade=grade)
    access_code = AccessCode(pk=code_id, student=student, used_at=_aware(used_at), expires_at=_aware(expires_at))
    return access_code


def _code_for_start(code: str) -> tuple[AccessCode | None, set[int]]:
    rows = _rows(SQL_CODE_START, [CampaignStatus.CLOSED, code])
    if not rows:
        return None, set()
    access_code = _code_from_row(rows[0])
    student_name, school_name, class_number = rows[0][8:11]
    student = access_code.student
    student.name = student_name
    student.school = School(pk=student.school_id, name=school_name)
    student.school_class.number = class_number
    return access_code, {row[11] for row in rows if row[11] is not None}


def portal_visit_start(typed_code: str) -> Visit:
    """The code a student typed → their open campaign. Raises PortalRefusal (unknown, used, expired, closed …).

    Access: anyone holding a code. Audit: none here (nothing is written until the answers are submitted).
    """
    now = timezone.now()
    code = normalize_code(typed_code)
    access_code, answered = _code_for_start(code) if code else (None, set())
    access_code = _code_checked(access_code, now)
    return Visit(access_code, _campaign_for(access_code.student, answered, now))


def portal_visit_resume(token: str) -> Visit:
    """The visit a page's token names, checked again (the code may have been used, the campaign closed)."""
    code_id, campaign_id = _token_read(token)
    now = timezone.now()
    rows = _rows(SQL_CODE_RESUME, [code_id])
    access_code = _code_checked(_code_from_row(rows[0]) if rows else None, now)
    windows = school_campaign_windows(access_code.student.school_id)
    campaign = next((c for c in windows if c.pk == campaign_id), None)
    if campaign is None or not accepts_answers(campaign, now):
        raise _closed_meanwhile()
    return Visit(access_code, campaign, signed=token)


def answers_from_form(definitions: CampaignDefinitions, data) -> tuple[dict[str, dict[int, str]], list[str]]:
    """Answers posted as `<CODE>-<n>` fields → {code: {n: key}} and the names of asked items left blank."""
    answers: dict[str, dict[int, str]] = {}
    missing: list[str] = []
    for code, instrument in definitions.instruments.items():
        given = {}
        for item in instrument.items:
            key = data.get(f"{code}-{item.number}")
            if key and item.option(key) is not None:
                given[item.number] = key
        asked = asked_items(instrument, given)
        missing += [f"{code}-{n}" for n in asked if n not in given]
        answers[code] = {n: key for n, key in given.items() if n in asked}
    return answers, missing


@dataclass(frozen=True)
class Submission:
    result: ScreeningResult
    replayed: bool


def portal_submit(token: str, data) -> Submission:
    """Store the answers of the visit `token` names, once: the code is locked, used and linked to the result in
    one transaction, so a double press or a replayed request finds the stored result and writes nothing.

    Raises PortalRefusal; MissingAnswers (with the blank item names) when an asked item has no answer.
    Audit: the result's history row; a log line with ids only (never answers or names).
    """
    code_id, campaign_id = _token_read(token)
    try:
        with transaction.atomic():
            result = _submit_locked(code_id, campaign_id, data)
    except IntegrityError:
        # Only a result stored for this student meanwhile by another path (an import) gets here: everything above
        # was rolled back, and the stored result is never overwritten from the portal.
        raise _answered() from None
    if isinstance(result, Submission):
        return result
    logger.info("portal submission: campaign %s, result %s", campaign_id, result.pk)
    return Submission(result, replayed=False)


def _submit_locked(code_id: int, campaign_id: int, data):
    now = timezone.now()
    sql = SQL_CODE_SUBMIT
    if connection.features.has_select_for_update_of:  # PostgreSQL; SQLite's IMMEDIATE transactions serialise writers
        sql += " FOR UPDATE OF c"
    at = connection.ops.adapt_datetimefield_value(now)
    rows = _rows(sql, [campaign_id, CampaignStatus.OPEN, at, at, campaign_id, campaign_id, code_id])
    access_code = _code_from_row(rows[0]) if rows else None
    if access_code is not None and access_code.used_at is not None:
        replayed = ScreeningResult.objects.filter(access_code=access_code, campaign_id=campaign_id).first()
        if replayed is not None:
            return Submission(replayed, replayed=True)
    access_code = _code_checked(access_code, now)
    open_now, invited, answered = (bool(value) for value in rows[0][8:11])
    if answered:  # e.g. imported from another platform meanwhile: never overwritten from here
        raise _answered()
    # The campaign's instruments, rule set and target never change once it is open; whether it is open is read above.
    campaign = next((c for c in school_campaign_windows(access_code.student.school_id) if c.pk == campaign_id), None)
    if not (open_now and invited and campaign is not None and campaign_invites(campaign, access_code.student)):
        raise _closed_meanwhile()
    definitions = definitions_for(campaign)
    answers, missing = answers_from_form(definitions, data)
    if missing:
        raise MissingAnswers(missing)
    result = result_record_first(
        campaign_id=campaign_id, student=access_code.student, fields=result_scored(campaign, definitions, answers),
        source=ResultSource.PORTAL, submitted_at=now, access_code=access_code,
    )  # fmt: skip
    AccessCode.objects.filter(pk=access_code.pk).update(used_at=now)
    return result


class MissingAnswers(Exception):
    def __init__(self, fields: list[str]):
        super().__init__(", ".join(fields))
        self.fields = fields
