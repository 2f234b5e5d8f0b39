"""Writes of the screening app: loading instrument and rule-set definitions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from screening.definitions import (
    INSTRUMENTS_DIR,
    RULESETS_DIR,
    DefinitionError,
    load_yaml,
    parse_instrument,
    parse_ruleset,
)
from screening.models import Instrument, RuleSet


@dataclass
class LoadReport:
    created: list[str]
    unchanged: list[str]


def _store(model, key: dict, definition: dict, fields: dict, report: LoadReport, label: str) -> None:
    existing = model.objects.filter(**key).first()
    if existing is None:
        model.objects.create(**key, definition=definition, **fields)
        report.created.append(label)
    elif existing.definition == definition:
        report.unchanged.append(label)
    else:
        raise DefinitionError(
            f"{label} is already stored with different content: give the changed definition a new version number"
        )


@transaction.atomic
def definitions_load(
    *, instrument_files: list[Path] | None = None, ruleset_files: list[Path] | None = None
) -> LoadReport:
    """Store instruments and rule sets from YAML files (default: the shipped ones). Idempotent.

    Access: administrators (command line, or the admin for city roles). Audit: a history row per new definition.
    A file whose (code, version) is stored with other content is refused, nothing written: versions are immutable.
    """
    report = LoadReport(created=[], unchanged=[])
    instruments = {}
    for path in instrument_files if instrument_files is not None else sorted(INSTRUMENTS_DIR.glob("*.yaml")):
        data = load_yaml(path)
        instrument = parse_instrument(data)
        instruments[instrument.code] = instrument
        fields = {"name": instrument.name["zh-hans"], "source": instrument.source, "licence": instrument.licence}
        _store(
            Instrument,
            {"code": instrument.code, "version": instrument.version},
            data,
            fields,
            report,
            str(instrument.code) + f" v{instrument.version}",
        )
    for stored in Instrument.objects.exclude(code__in=instruments):
        instruments.setdefault(stored.code, stored.parsed())
    for path in ruleset_files if ruleset_files is not None else sorted(RULESETS_DIR.glob("*.yaml")):
        data = load_yaml(path)
        ruleset = parse_ruleset(data, instruments)
        _store(
            RuleSet, {"code": ruleset.code, "version": ruleset.version}, data, {"population": ruleset.population},
            report, f"{ruleset.code} v{ruleset.version}",
        )  # fmt: skip
    return report


# --- Results ----------------------------------------------------------------------------------------------------


class NotInvited(Exception):
    """The student is not in this campaign's schools and grades."""


@dataclass(frozen=True)
class CampaignDefinitions:
    instruments: dict  # code → definitions.Instrument, in the campaign's order
    ruleset: object  # definitions.RuleSet


def campaign_definitions(campaign) -> CampaignDefinitions:
    from screening.definitions import parse_ruleset
    from screening.models import CampaignInstrument

    links = CampaignInstrument.objects.filter(campaign=campaign).select_related("instrument").order_by("position")
    instruments = {link.instrument.code: link.instrument.parsed() for link in links}
    return CampaignDefinitions(instruments, parse_ruleset(campaign.ruleset.definition, instruments, allow_absent=True))


def campaign_invites(campaign, student) -> bool:
    """Whether the campaign is for the student: the one rule, screening.campaigns.invited_q."""
    from screening.campaigns import campaign_invites as invites

    return invites(campaign, student)


def result_fields(campaign, scores: dict, tiered) -> dict:
    """The stored form of a scored result; reasons are not copied (they live in the pinned rule-set version)."""
    return {
        "answers": {code: {str(n): key for n, key in s.answers.items()} for code, s in scores.items()},
        "scores": {code: {"scales": s.scales, "bands": s.bands} for code, s in scores.items()},
        "tier": tiered.tier.value,
        "fired_rules": [r.id for r in tiered.fired],
        "ruleset_id": campaign.ruleset_id,
    }


@dataclass(frozen=True)
class RecordOutcome:
    result: object  # ScreeningResult
    outcome: str  # "new", "changed" or "unchanged"


class AlreadyRecorded(Exception):
    """`only_new` was asked and the student already has a result in this campaign."""


def result_scored(campaign, definitions: CampaignDefinitions, answers: dict, *, from_import: bool = False) -> dict:
    """Score and tier one student's answers with the campaign's pinned rule set: the fields a result stores.

    Raises scoring.AnswerError for incomplete or unknown answers. Pure: reads and writes nothing.
    """
    from screening.scoring import AnswerError, score_instrument, tier_for

    unknown = set(answers) - set(definitions.instruments)
    if unknown:
        raise AnswerError(f"instruments {sorted(unknown)} are not in this campaign")
    scores = {
        code: score_instrument(
            instrument, {int(n): v for n, v in answers.get(code, {}).items()}, from_import=from_import
        )
        for code, instrument in definitions.instruments.items()
    }
    return result_fields(campaign, scores, tier_for(definitions.ruleset, scores))


def _result_save(result, source: str, submitted_at) -> None:
    from django.utils import timezone

    from screening.definitions import RiskTier
    from screening.models import ScreeningResult
    from screening.signals import student_flagged

    result.submitted_at = submitted_at or timezone.now()
    result._change_reason = f"screening result ({source})"
    result.save()
    if result.tier != RiskTier.GREEN:
        transaction.on_commit(lambda: student_flagged.send(sender=ScreeningResult, result=result))


def result_record(
    *, campaign, student, answers: dict, source: str, from_import: bool = False,
    definitions: CampaignDefinitions | None = None, submitted_at=None, access_code=None, only_new: bool = False,
    rated_by=None,
) -> RecordOutcome:  # fmt: skip
    """Score and tier one student's answers and store them once per campaign; the same answers again change nothing.

    Access: callers have checked the student (portal: the access code; import: the importer's scope).
    Audit: a history row per new or changed result. A tier of yellow or above sends `student_flagged` after commit.
    Raises NotInvited, or scoring.AnswerError for incomplete or unknown answers (nothing written); with `only_new`
    (a student answers once), AlreadyRecorded instead of changing a stored result. `rated_by`: the teacher who
    filled an observer-rated checklist (source ResultSource.OBSERVER).
    """
    from screening.models import ScreeningResult

    if not campaign_invites(campaign, student):
        raise NotInvited(f"student {student.pk} is not invited to campaign {campaign.pk}")
    fields = result_scored(campaign, definitions or campaign_definitions(campaign), answers, from_import=from_import)
    # Checks above write nothing; the writes need no savepoint of their own (callers inside a transaction would
    # pay two round trips per result for one).
    with transaction.atomic(savepoint=False):
        existing = ScreeningResult.objects.select_for_update().filter(campaign=campaign, student=student).first()
        if existing is not None and only_new:
            raise AlreadyRecorded(f"student {student.pk} already has a result in campaign {campaign.pk}")
        if existing is not None and all(getattr(existing, name) == value for name, value in fields.items()):
            return RecordOutcome(existing, "unchanged")
        if existing is None:
            result = ScreeningResult(
                campaign=campaign,
                student=student,
                source=source,
                access_code=access_code,
                rated_by=rated_by,
                **fields,
            )
            outcome = "new"
        else:
            result, outcome = existing, "changed"
            for name, value in fields.items():
                setattr(result, name, value)
            result.source = source
            result.rated_by = rated_by
        if rated_by is not None:
            result._history_user = rated_by  # also outside a request (the demo)
        _result_save(result, source, submitted_at)
    return RecordOutcome(result, outcome)


def result_record_first(*, campaign_id: int, student, fields: dict, source: str, submitted_at=None, access_code=None):
    """Store a student's first result in a campaign, scored by `result_scored`.

    For a caller that has already checked, in its own transaction and under a lock, that the campaign invites the
    student and that no result is stored (the portal does both in the one query that locks the access code). A result
    stored meanwhile by another path (an import) breaks the unique constraint: IntegrityError, and the caller's
    transaction is rolled back whole. Audit: the result's history row; `student_flagged` after commit when flagged.
    """
    from screening.models import ScreeningResult

    result = ScreeningResult(campaign_id=campaign_id, student=student, source=source, access_code=access_code, **fields)
    _result_save(result, source, submitted_at)
    return result
