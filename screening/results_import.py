"""Importing results from other screening platforms (seed 000 used an external system), in bulk.

Columns: 学校代码 (school_code), 学号 (student_no), and one column per item named `<INSTRUMENT>_<n>` (PHQ9_1 … PHQ9_9,
GAD7_1 …, ASQ_1 … ASQ_5). Every row is scored and tiered by the same code as the portal (`screening.scoring`);
a blank ASQ item 1-4 counts as declined (a yes). Nothing is written when any row has an error unless only the valid
rows are asked for; the same file again changes nothing. Files are read by the roster import's reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import scoping
from roster.importing import SCHOOL_CODE, Column, FileRefused, ImportReport, map_headers, read_table
from roster.models import Student
from roster.normalize import CellError, clean_digits, clean_identifier, normalize_header
from screening.definitions import RiskTier
from screening.models import ResultSource, ScreeningResult
from screening.scoring import AnswerError, score_instrument, tier_for
from screening.services import CampaignDefinitions, campaign_definitions, result_fields
from screening.signals import student_flagged

STUDENT_NO = Column("student_no", "学号", ("student number",))
ITEM_COLUMN = re.compile(r"^([a-z0-9]+)_(\d+)$")
ANSWER_WORDS = {"是": "yes", "否": "no", "y": "yes", "n": "no", "拒答": "declined", "不想回答": "declined"}
BATCH_SIZE = 2000


@dataclass
class ResultsImport:
    campaign: object
    data: bytes
    filename: str
    actor: object | None = None
    dry_run: bool = True
    skip_invalid: bool = False


def _answer_key(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw).strip().lower()
    return ANSWER_WORDS.get(text, text)


def import_results(request: ResultsImport) -> ImportReport:
    """Check (and unless dry_run, store) a results file for one campaign. Bad input is reported, never raised."""
    report = ImportReport(kind="results", filename=request.filename)
    try:
        _run(request, report)
    except FileRefused as refusal:
        report.refused = str(refusal)
    return report


def _run(request: ResultsImport, report: ImportReport) -> None:
    campaign = request.campaign
    definitions: CampaignDefinitions = campaign_definitions(campaign)
    rows = read_table(request.data, request.filename)
    header = next((row for row in rows if any(v not in (None, "") for v in row)), None)
    if header is None:
        raise FileRefused(_("The file is empty."))
    index = map_headers(header, [SCHOOL_CODE, STUDENT_NO], school_given=False)
    item_columns: dict[str, dict[int, int]] = {code: {} for code in definitions.instruments}
    by_code = {code.lower(): code for code in definitions.instruments}
    for position, raw in enumerate(header):
        match = ITEM_COLUMN.match(normalize_header(raw) if raw is not None else "")
        if match and match[1] in by_code:
            item_columns[by_code[match[1]]][int(match[2])] = position
    missing = [
        f"{code}_{item.number}"
        for code, instrument in definitions.instruments.items()
        for item in instrument.items
        if item.number not in item_columns[code] and not item.ask_if_any_of
    ]
    if missing:
        raise FileRefused(
            _("Missing item columns: %(columns)s. Nothing was imported.") % {"columns": "、".join(missing)}
        )

    students = Student.objects.filter(school__in=campaign.schools.all(), status="active")
    if request.actor is not None:
        # Writing results is for those who may read them (psychology teachers and above), in their own subtree.
        students = scoping.within_readers_scope(request.actor, students, ScreeningResult)
    # Tuples, not model instances: a city file holds 100,000 students.
    by_key = {
        (code, number): (pk, grade)
        for pk, code, number, grade in students.values_list("pk", "school__code", "student_no", "school_class__grade")
    }
    seen: dict[int, int] = {}
    scored = []
    for line, row in enumerate(rows, start=2):
        if all(v in (None, "") or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        report.total += 1
        try:
            code = clean_digits(row[index["school_code"]] if index["school_code"] < len(row) else None)
            number = clean_identifier(row[index["student_no"]] if index["student_no"] < len(row) else None)
        except CellError as error:
            report.add_error(line, STUDENT_NO, "", error.message)
            continue
        student = by_key.get((code, number))
        if student is None or student[1] not in campaign.target_grades:
            report.add_error(line, STUDENT_NO, number, _("No such student in this campaign's schools and grades."))
            continue
        student_id = student[0]
        if student_id in seen:
            report.add_error(
                line, STUDENT_NO, number, _("Duplicate of line %(line)d in this file.") % {"line": seen[student_id]}
            )
            continue
        seen[student_id] = line
        try:
            scores = {
                code: score_instrument(
                    instrument,
                    {n: _answer_key(row[p] if p < len(row) else None) for n, p in item_columns[code].items()},
                    from_import=True,
                )
                for code, instrument in definitions.instruments.items()
            }
        except AnswerError as error:
            report.add_error(line, "", number, str(error))
            continue
        scored.append((student_id, result_fields(campaign, scores, tier_for(definitions.ruleset, scores))))
    _store(request, report, scored)


def _store(request: ResultsImport, report: ImportReport, scored: list) -> None:
    campaign = request.campaign
    # Scores, tier and reasons follow from the answers and the rule-set version, so those two decide "unchanged".
    existing = {
        student_id: (pk, answers, ruleset_id)
        for pk, student_id, answers, ruleset_id in ScreeningResult.objects.filter(campaign=campaign).values_list(
            "pk", "student_id", "answers", "ruleset_id"
        )
    }
    new, changed = [], []
    now = timezone.now()
    for student_id, fields in scored:
        current = existing.get(student_id)
        if current is None:
            new.append(
                ScreeningResult(
                    campaign=campaign, student_id=student_id, source=ResultSource.IMPORT, submitted_at=now, **fields
                )
            )
        elif (current[1], current[2]) != (fields["answers"], fields["ruleset_id"]):
            changed.append(
                ScreeningResult(
                    pk=current[0], campaign=campaign, student_id=student_id, source=ResultSource.IMPORT,
                    submitted_at=now, **fields,
                )
            )  # fmt: skip
        else:
            report.unchanged += 1
    report.new, report.updated = len(new), len(changed)
    if request.dry_run or (report.error_lines and not request.skip_invalid):
        return
    reason = f"results import: {request.filename}"[:100]
    with transaction.atomic():
        for start in range(0, len(new), BATCH_SIZE):
            batch = ScreeningResult.objects.bulk_create(new[start : start + BATCH_SIZE])
            ScreeningResult.history.bulk_history_create(batch, default_user=request.actor, default_change_reason=reason)
        for start in range(0, len(changed), BATCH_SIZE):
            batch = changed[start : start + BATCH_SIZE]
            ScreeningResult.objects.bulk_update(
                batch, ["answers", "scores", "tier", "fired_rules", "ruleset_id", "source", "submitted_at"]
            )
            ScreeningResult.history.bulk_history_create(
                batch, update=True, default_user=request.actor, default_change_reason=reason
            )
        flagged = [r for r in new + changed if r.tier != RiskTier.GREEN]
        transaction.on_commit(lambda: [student_flagged.send(sender=ScreeningResult, result=r) for r in flagged])
    report.written = True
