"""The student portal's rules: a one-time access code opens one open campaign for one student, answered once.

No account and no session: after the code is checked, the pages carry a signed, time-limited token naming the code
and the campaign, and every step checks the code again, so a used code, a closed window or a replayed request is
refused (or, for a replay of a stored submission, answered with the same thank-you page) and changes nothing.

May import: roster, screening. Views in screening/views_portal.py call these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from django.core import signing
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from roster.access_codes import normalize_code
from roster.models import AccessCode, StudentStatus
from screening.campaigns import accepts_answers
from screening.models import Campaign, CampaignStatus, ResultSource, ScreeningResult
from screening.scoring import asked_items
from screening.services import AlreadyRecorded, CampaignDefinitions, campaign_definitions, result_record

logger = logging.getLogger(__name__)

TOKEN_SALT = "screening.portal"  # noqa: S105 (a signing namespace, not a secret)
CODE_CHECK_FIELDS = ("used_at", "expires_at", "student__status")
CAMPAIGN_CHECK_FIELDS = ("status", "opens_at", "closes_at", "ruleset_id")
TOKEN_MAX_AGE = 3 * 60 * 60  # long enough for a slow reader, short enough that a lost page goes stale


class PortalRefusal(Exception):
    """Something the student can be told, in their language; nothing was written."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Visit:
    access_code: AccessCode
    campaign: Campaign
    signed: str = ""  # the token the visit was resumed from, handed on unchanged

    @property
    def student(self):
        return self.access_code.student

    @property
    def token(self) -> str:
        return self.signed or signing.dumps([self.access_code.pk, self.campaign.pk], salt=TOKEN_SALT, compress=False)


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


def _campaign_for(student, now) -> Campaign:
    """The open campaign this student has not answered yet; a clear refusal when there is none."""
    answered = ScreeningResult.objects.filter(campaign=OuterRef("pk"), student=student)
    candidates = [
        campaign
        for campaign in Campaign.objects.filter(schools=student.school_id)
        .exclude(status=CampaignStatus.CLOSED)
        .annotate(answered=Exists(answered))
        .only(*CAMPAIGN_CHECK_FIELDS, "name", "target_grades")
        .order_by("opens_at")
        if student.school_class.grade in campaign.target_grades  # a JSON list: filtered here, portably
    ]
    pending = [c for c in candidates if not c.answered]
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


def _load_code(**lookup) -> AccessCode | None:
    """The code with what the confirmation page shows (school, class, the name to mask) and the checks read."""
    return (
        AccessCode.objects.select_related("student__school", "student__school_class")
        .only(
            *CODE_CHECK_FIELDS,
            "student__name",
            "student__school__name",
            "student__school_class__grade",
            "student__school_class__number",
        )  # fmt: skip
        .filter(**lookup)
        .first()
    )


def portal_visit_start(typed_code: str) -> Visit:
    """The code a student typed → their open campaign. Raises PortalRefusal (unknown, used, expired, closed …).

    Access: anyone holding a code. Audit: none here (nothing is written until the answers are submitted).
    """
    now = timezone.now()
    code = normalize_code(typed_code)
    access_code = _code_checked(_load_code(code=code) if code else None, now)
    return Visit(access_code, _campaign_for(access_code.student, now))


def portal_visit_resume(token: str) -> Visit:
    """The visit a page's token names, checked again (the code may have been used, the campaign closed)."""
    code_id, campaign_id = _token_read(token)
    now = timezone.now()
    # Only what the checks read: this runs on every questionnaire page, the portal's busiest moment.
    light = AccessCode.objects.select_related("student").only(*CODE_CHECK_FIELDS)
    access_code = _code_checked(light.filter(pk=code_id).first(), now)
    campaign = Campaign.objects.only(*CAMPAIGN_CHECK_FIELDS).filter(pk=campaign_id).first()
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
    with transaction.atomic():
        access_code = (
            AccessCode.objects.select_for_update(of=("self",))
            .select_related("student__school_class")
            .only(*CODE_CHECK_FIELDS, "student__school_id", "student__school_class__grade")
            .filter(pk=code_id)
            .first()
        )
        if access_code is not None and access_code.used_at is not None:
            stored = ScreeningResult.objects.filter(access_code=access_code, campaign_id=campaign_id).first()
            if stored is not None:
                return Submission(stored, replayed=True)
        now = timezone.now()
        access_code = _code_checked(access_code, now)
        campaign = Campaign.objects.only(*CAMPAIGN_CHECK_FIELDS, "target_grades").filter(pk=campaign_id).first()
        if campaign is None or not accepts_answers(campaign, now):
            raise _closed_meanwhile()
        definitions = definitions_for(campaign)
        answers, missing = answers_from_form(definitions, data)
        if missing:
            raise MissingAnswers(missing)
        try:
            outcome = result_record(
                campaign=campaign, student=access_code.student, answers=answers, source=ResultSource.PORTAL,
                definitions=definitions, submitted_at=now, access_code=access_code, only_new=True,
            )  # fmt: skip
        except AlreadyRecorded:  # e.g. imported from another platform meanwhile: never overwritten from here
            raise _answered() from None
        AccessCode.objects.filter(pk=access_code.pk).update(used_at=now)
    logger.info("portal submission: campaign %s, result %s", campaign.pk, outcome.result.pk)
    return Submission(outcome.result, replayed=False)


class MissingAnswers(Exception):
    def __init__(self, fields: list[str]):
        super().__init__(", ".join(fields))
        self.fields = fields
