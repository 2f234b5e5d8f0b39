"""Importing results from other screening platforms (seed 000 used an external system), in bulk.

Columns: 学校代码 (school_code), 学号 (student_no), and one column per item named `<INSTRUMENT>_<n>` (PHQ9_1 … PHQ9_9,
GAD7_1 …, ASQ_1 … ASQ_5). Every row is scored and tiered by the same code as the portal (`screening.scoring`,
`screening.services.result_fields`); a blank ASQ item 1-4 counts as declined (a yes). Nothing is written when any
row has an error unless only the valid rows are asked for; the same file again changes nothing. Files are read by
the roster import's reader.

City scale (100,000 rows) sets the shape of the code: scored rows are kept as compact JSON text rather than nested
dicts, stored rows are compared while streaming, and on PostgreSQL rows and their history go in with COPY and
set-based SQL (`results_bulk_write`, also used by re-scoring).
"""

from __future__ import annotations

import gc
import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import scoping
from roster.importing import SCHOOL_CODE, Column, FileRefused, ImportReport, map_headers, read_table
from roster.models import Student
from roster.normalize import CellError, clean_digits, clean_identifier, normalize_header
from roster.roles import Role
from screening.definitions import RiskTier
from screening.models import ResultSource, ScreeningResult
from screening.scoring import AnswerError, score_instrument, tier_for
from screening.services import CampaignDefinitions, campaign_definitions, result_fields
from screening.signals import student_flagged, students_flagged

STUDENT_NO = Column("student_no", "学号", ("student number",))
ITEM_COLUMN = re.compile(r"^([a-z0-9]+)_(\d{1,4})$")  # a few digits: int() refuses over 4,300 of them
ANSWER_WORDS = {"是": "yes", "否": "no", "y": "yes", "n": "no", "拒答": "declined", "不想回答": "declined"}
logger = logging.getLogger(__name__)
BATCH_SIZE = 2000  # rows per bulk statement on the generic (non-PostgreSQL) path and per signal chunk
SCORE_CACHE_SIZE = 50_000  # distinct answer patterns kept per instrument (bounded: a city file is mostly alike)
# The auditor reads results but changes nothing (DESIGN §2), so reading them is not enough to import them.
READ_ONLY_ROLES = frozenset({Role.DISTRICT_AUDITOR})


@dataclass
class ResultsImport:
    campaign: object
    data: bytes
    filename: str
    actor: object | None = None
    dry_run: bool = True
    skip_invalid: bool = False


class ScoredRow(NamedTuple):
    """One result as it will be stored, its JSON as text: far smaller than the nested dicts it came from."""

    student_id: int
    answers: str  # canonical JSON (sorted keys): equal text means equal answers
    scores: str
    tier: str
    fired_rules: str


def results_import_scope(user, model_or_qs) -> QuerySet:
    """Rows (students, or schools) for which `user` may import results: within their readers' scope, and through a
    role that may change something (an auditor reads results but changes nothing, DESIGN §2).

    Access: the one rule the admin, the resource and the command share; built from the scoping layer's predicates.
    """
    qs = model_or_qs if isinstance(model_or_qs, QuerySet) else model_or_qs._default_manager.all()
    scope = scoping.scope_for(user)
    if scope.unrestricted:
        return qs
    qs = scoping.within_readers_scope(user, qs, ScreeningResult)
    return qs.filter(scoping.subtree_q(qs.model, scope.nodes(scope.roles - READ_ONLY_ROLES)))


def may_import_results(user) -> bool:
    """Whether the user may import results for any student at all (one query)."""
    return results_import_scope(user, Student).exists()


def _answer_key(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw).strip().lower()
    return ANSWER_WORDS.get(text, text)


# One encoder each, built once: json.dumps with options builds a new encoder on every call.
canonical_json = json.JSONEncoder(sort_keys=True).encode  # equal text means equal values
_json = json.JSONEncoder().encode


def scored_row(student_id: int, fields: dict) -> ScoredRow:
    """The stored form (`services.result_fields`) of one result, as JSON text."""
    return ScoredRow(
        student_id,
        canonical_json(fields["answers"]),
        _json(fields["scores"]),
        fields["tier"],
        _json(fields["fired_rules"]),
    )


class ScoreCache:
    """`score_instrument` is pure, and most students give one of a few answer patterns: score each pattern once.

    `key` is any hashable form of one student's answers to the instrument and `answers(key)` the mapping scored.
    Bounded (emptied when full at SCORE_CACHE_SIZE patterns), so a file of all-different answers cannot grow it.
    """

    def __init__(self, instrument, answers, *, from_import: bool):
        self.instrument, self.answers, self.from_import = instrument, answers, from_import
        self.cache: dict[tuple, object] = {}

    def score(self, key: tuple):
        hit = self.cache.get(key)
        if hit is None:
            try:
                hit = score_instrument(self.instrument, self.answers(key), from_import=self.from_import)
            except AnswerError as error:
                hit = str(error)  # the message, not the exception: re-raising one object grows its traceback
            if len(self.cache) >= SCORE_CACHE_SIZE:
                self.cache.clear()
            self.cache[key] = hit
        if isinstance(hit, str):
            raise AnswerError(hit)
        return hit


@contextmanager
def _gc_paused():
    # Scoring keeps a hundred thousand rows alive to the end; the cyclic collector would walk them again and again
    # without ever finding garbage (measured: a 100,000-row check runs about 15 % faster without it).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def import_results(request: ResultsImport) -> ImportReport:
    """Check (and unless dry_run, store) a results file for one campaign. Bad input is reported, never raised.

    Access: with an actor, only students within their readers' scope (`scoping.within_readers_scope`), and never
    for read-only roles; without one (command line), every student of the campaign. Audit: one history row per new
    or changed result, with the actor and the file name. Results of yellow or above send `student_flagged` after
    commit.
    """
    report = ImportReport(kind="results", filename=request.filename)
    try:
        _run(request, report, read_table(request.data, request.filename))
    except FileRefused as refusal:
        report.refused = str(refusal)
    return report


def import_result_table(request: ResultsImport, rows: Iterable[list]) -> ImportReport:
    """As `import_results`, for a table already read (header row first), e.g. a django-import-export dataset."""
    report = ImportReport(kind="results", filename=request.filename)
    try:
        _run(request, report, iter(rows))
    except FileRefused as refusal:
        report.refused = str(refusal)
    return report


def _item_columns(header: list, definitions: CampaignDefinitions) -> dict[str, list[tuple[int, int]]]:
    """Instrument code → [(item number, column position)]; refuses the file naming every missing item column."""
    item_columns: dict[str, dict[int, int]] = {code: {} for code in definitions.instruments}
    by_code = {code.lower(): code for code in definitions.instruments}
    for position, raw in enumerate(header):
        match = ITEM_COLUMN.match(normalize_header(raw) if raw is not None else "")
        if match and match[1] in by_code:
            item_columns[by_code[match[1]]].setdefault(int(match[2]), position)
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
    return {code: sorted(columns.items()) for code, columns in item_columns.items()}


def _run(request: ResultsImport, report: ImportReport, rows: Iterator[list]) -> None:
    campaign = request.campaign
    if request.actor is not None and not may_import_results(request.actor):
        raise FileRefused(_("You may not import screening results: that needs a psychology or centre role."))
    definitions: CampaignDefinitions = campaign_definitions(campaign)
    header = next((row for row in rows if any(v not in (None, "") for v in row)), None)
    if header is None:
        raise FileRefused(_("The file is empty."))
    index = map_headers(header, [SCHOOL_CODE, STUDENT_NO], school_given=False)
    columns = _item_columns(header, definitions)
    code_at, number_at = index["school_code"], index["student_no"]

    students = Student.objects.filter(school__in=campaign.schools.all(), status="active")
    target_grades = set(campaign.target_grades)
    # Ids only, not model instances: a city file holds 100,000 students.
    by_key = {
        (code, number): pk
        for pk, code, number, grade in students.values_list("pk", "school__code", "student_no", "school_class__grade")
        if grade in target_grades
    }
    # Writing results is for those who may read them (psychology teachers and above), in their own subtree.
    in_scope = (
        None
        if request.actor is None
        else set(results_import_scope(request.actor, students).values_list("pk", flat=True))
    )
    scorers = [
        (
            code,
            ScoreCache(instrument, partial(_answers, [n for n, _p in columns[code]]), from_import=True),
            [p for _n, p in columns[code]],
        )
        for code, instrument in definitions.instruments.items()
    ]
    seen: dict[int, int] = {}
    scored: dict[int, ScoredRow] = {}
    with _gc_paused():
        for line, row in enumerate(rows, start=2):
            if all(v in (None, "") or (isinstance(v, str) and not v.strip()) for v in row):
                continue
            report.total += 1
            width = len(row)
            try:
                code = clean_digits(row[code_at] if code_at < width else None)
                number = clean_identifier(row[number_at] if number_at < width else None)
            except CellError as error:
                report.add_error(line, STUDENT_NO, "", error.message)
                continue
            student_id = by_key.get((code, number))
            if student_id is None:
                report.add_error(line, STUDENT_NO, number, _("No such student in this campaign's schools and grades."))
                continue
            if in_scope is not None and student_id not in in_scope:
                report.add_error(line, STUDENT_NO, number, _("This student is outside your scope."))
                continue
            if student_id in seen:
                report.add_error(
                    line, STUDENT_NO, number, _("Duplicate of line %(line)d in this file.") % {"line": seen[student_id]}
                )
                continue
            seen[student_id] = line
            try:
                scores = {}
                for instrument_code, cache, positions in scorers:
                    scores[instrument_code] = cache.score(tuple([row[p] if p < width else None for p in positions]))
            except AnswerError as error:
                report.add_error(line, "", number, str(error))
                continue
            scored[student_id] = scored_row(
                student_id, result_fields(campaign, scores, tier_for(definitions.ruleset, scores))
            )
    _store(request, report, scored)


def _answers(numbers: list[int], cells: tuple) -> dict[int, str]:
    return {number: _answer_key(cell) for number, cell in zip(numbers, cells, strict=True)}


def _store(request: ResultsImport, report: ImportReport, scored: dict[int, ScoredRow]) -> None:
    campaign = request.campaign
    # Scores, tier and reasons follow from the answers and the rule-set version, so those two decide "unchanged".
    # Streamed: holding every stored answer of a city campaign as dicts would cost more than the file itself.
    changed: list[tuple[int, ScoredRow]] = []
    known: set[int] = set()
    stored = ScreeningResult.objects.filter(campaign=campaign)
    for pk, student_id, answers, ruleset_id in stored.values_list("pk", "student_id", "answers", "ruleset_id").iterator(
        chunk_size=BATCH_SIZE
    ):
        row = scored.get(student_id)
        if row is None:
            continue
        known.add(student_id)
        if ruleset_id != campaign.ruleset_id or canonical_json(answers) != row.answers:
            changed.append((pk, row))
    new = [row for student_id, row in scored.items() if student_id not in known]
    report.new, report.updated = len(new), len(changed)
    report.unchanged = len(known) - len(changed)
    if request.dry_run or (report.error_lines and not request.skip_invalid):
        return
    now = timezone.now()
    with transaction.atomic():
        written = results_bulk_write(
            campaign=campaign, new=new, changed=changed,
            values={"ruleset_id": campaign.ruleset_id, "source": ResultSource.IMPORT, "submitted_at": now},
            actor=request.actor, reason=f"results import: {request.filename}", now=now,
        )  # fmt: skip
        flagged = [pk for pk, row in written if row.tier != RiskTier.GREEN]
        results_flagged_on_commit(flagged)
    report.written = True


# --- Writing in bulk (import and re-scoring) ------------------------------------------------------------------

WRITTEN_FIELDS = ("answers", "scores", "tier", "fired_rules")


def results_bulk_write(
    *, campaign, new: list[ScoredRow], changed: list[tuple[int, ScoredRow]], values: dict, actor, reason: str, now
) -> list[tuple[int, ScoredRow]]:
    """Insert `new` and update `changed` (pk, row) results of `campaign`, each with one history row, in the caller's
    transaction. `values` are the other fields set on every written row (e.g. ruleset_id). Returns (pk, row) of
    every written result, new ones first.

    Access: callers have checked the actor and scope. Audit: one history row per written result (type + or ~), with
    `actor` as history_user and `reason` (cut to the column's 100 characters) as the change reason; the history row
    is a copy of the stored row, as simple-history makes it.
    """
    reason = reason[:100]
    if not new and not changed:
        return []
    if connection.vendor == "postgresql" and _is_psycopg3():
        return _write_postgresql(campaign, new, changed, values, actor, reason, now)
    return _write_generic(campaign, new, changed, values, actor, reason, now)


def _is_psycopg3() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3  # importable only with a PostgreSQL driver

    return is_psycopg3


def _instance(campaign, pk, row: ScoredRow, values: dict) -> ScreeningResult:
    return ScreeningResult(
        pk=pk, campaign=campaign, student_id=row.student_id, answers=json.loads(row.answers),
        scores=json.loads(row.scores), tier=row.tier, fired_rules=json.loads(row.fired_rules), **values,
    )  # fmt: skip


def _write_generic(campaign, new, changed, values, actor, reason, now) -> list[tuple[int, ScoredRow]]:
    history = ScreeningResult.history
    written = []
    for start in range(0, len(new), BATCH_SIZE):
        rows = new[start : start + BATCH_SIZE]
        batch = ScreeningResult.objects.bulk_create([_instance(campaign, None, row, values) for row in rows])
        history.bulk_history_create(batch, default_user=actor, default_change_reason=reason, default_date=now)
        written += [(result.pk, row) for result, row in zip(batch, rows, strict=True)]
    fields = [*WRITTEN_FIELDS, *values]
    for start in range(0, len(changed), BATCH_SIZE):
        pairs = changed[start : start + BATCH_SIZE]
        ScreeningResult.objects.bulk_update([_instance(campaign, pk, row, values) for pk, row in pairs], fields)
        # History copies the stored rows, fields this write did not set (e.g. the portal's access code) included.
        stored = list(ScreeningResult.objects.filter(pk__in=[pk for pk, _row in pairs]).order_by("pk"))
        history.bulk_history_create(
            stored, update=True, default_user=actor, default_change_reason=reason, default_date=now
        )
        written += pairs
    return written


def _write_postgresql(campaign, new, changed, values, actor, reason, now) -> list[tuple[int, ScoredRow]]:
    """COPY the rows into a temporary table, then insert, update and write history with three set-based statements.

    Measured at 100,000 results: bulk_create plus bulk_history_create of the wide JSON rows took about 50 s; this
    takes under 10 s, and never holds model instances.
    """
    quote = connection.ops.quote_name
    meta = ScreeningResult._meta
    history_meta = ScreeningResult.history.model._meta
    table, history_table = quote(meta.db_table), quote(history_meta.db_table)
    pk_column = quote(meta.pk.column)
    columns = {meta.get_field(name).column: value for name, value in values.items()}
    with connection.cursor() as cursor:
        ids: list[int] = []
        if new:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(new)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
        cursor.execute(
            "CREATE TEMPORARY TABLE screening_results_write (id bigint PRIMARY KEY, student_id bigint, answers jsonb,"
            " scores jsonb, tier varchar(8), fired_rules jsonb, is_new boolean) ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY screening_results_write (id, student_id, answers, scores, tier, fired_rules, is_new) FROM STDIN"
        ) as copy:
            for pk, row in zip(ids, new, strict=True):
                copy.write_row((pk, row.student_id, row.answers, row.scores, row.tier, row.fired_rules, True))
            for pk, row in changed:
                copy.write_row((pk, row.student_id, row.answers, row.scores, row.tier, row.fired_rules, False))
        if new:
            # Fields this import does not set (e.g. the portal's access code) get their model default.
            given = {meta.pk.column, "campaign_id", "student_id", *WRITTEN_FIELDS, *columns}
            defaults = {
                f.column: f.get_db_prep_save(f.get_default(), connection)
                for f in meta.concrete_fields
                if f.column not in given
            }
            constants = {"campaign_id": campaign.pk, **columns, **defaults}
            names = [meta.pk.column, "student_id", *WRITTEN_FIELDS, *constants]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(quote(n) for n in names)}) "  # noqa: S608 (names are quoted)
                f"SELECT id, student_id, answers, scores, tier, fired_rules, {', '.join(['%s'] * len(constants))} "
                "FROM screening_results_write WHERE is_new",
                list(constants.values()),
            )
        if changed:
            assignments = [f"{quote(c)} = w.{c}" for c in WRITTEN_FIELDS] + [f"{quote(c)} = %s" for c in columns]
            cursor.execute(
                f"UPDATE {table} AS r SET {', '.join(assignments)} FROM screening_results_write AS w "  # noqa: S608
                f"WHERE r.{pk_column} = w.id AND NOT w.is_new",
                list(columns.values()),
            )
        tracked = [history_meta.get_field(f.name).column for f in ScreeningResult.history.model.tracked_fields]
        source_columns = [meta.get_field(f.name).column for f in ScreeningResult.history.model.tracked_fields]
        cursor.execute(
            f"INSERT INTO {history_table} ({', '.join(quote(c) for c in tracked)}, history_date, "  # noqa: S608
            "history_change_reason, history_type, history_user_id) "
            f"SELECT {', '.join('r.' + quote(c) for c in source_columns)}, %s, %s, "
            "CASE WHEN w.is_new THEN '+' ELSE '~' END, %s "
            f"FROM {table} AS r JOIN screening_results_write AS w ON r.{pk_column} = w.id ORDER BY w.id",
            [now, reason, getattr(actor, "pk", None)],
        )
        cursor.execute("DROP TABLE screening_results_write")
    return list(zip(ids, new, strict=True)) + changed


# Up to this many flagged results send `student_flagged` right after the commit; more (a district's import) are
# handed to the task worker in chunks, one task per chunk: each receiver (a case opened, a red alert queued) costs
# milliseconds, and the person importing should not wait for thousands of them. settings.SCREENING_FLAGGED_INLINE_MAX.
FLAGGED_INLINE_MAX = 200


def results_flagged_on_commit(result_ids: list[int]) -> None:
    """After commit, send `student_flagged` for each of these results: at once for a few, else in the background."""
    if not result_ids:
        return

    def send() -> None:
        if not (student_flagged.has_listeners(ScreeningResult) or students_flagged.has_listeners(ScreeningResult)):
            return
        if len(result_ids) <= getattr(settings, "SCREENING_FLAGGED_INLINE_MAX", FLAGGED_INLINE_MAX):
            results_flagged_send(result_ids)
            return
        from django_q.tasks import async_task

        for start in range(0, len(result_ids), BATCH_SIZE):
            async_task("screening.tasks.results_flagged_send", result_ids[start : start + BATCH_SIZE], group="flagged")

    transaction.on_commit(send)


# Results whose receivers run in one transaction: one commit (one wait for the disk) per this many, not per result,
# while no other writer waits long for the locks they take.
FLAGGED_PER_TRANSACTION = 100


class FlaggedNotDelivered(Exception):
    """A receiver of `student_flagged` failed for some results; the others were delivered (see the error log)."""


def results_flagged_send(result_ids: list[int]) -> int:
    """Send `student_flagged` for each of these results (loaded in chunks). Returns how many were sent.

    A receiver failing for one result does not stop the others: its writes for that result are undone (receivers
    write inside their own atomic blocks), the error is logged with the result id, and FlaggedNotDelivered is raised
    at the end, so the task is marked failed and can be run again (receivers are idempotent).
    """
    sent, failed = 0, []
    for start in range(0, len(result_ids), FLAGGED_PER_TRANSACTION):
        chunk = result_ids[start : start + FLAGGED_PER_TRANSACTION]
        loaded = ScreeningResult.objects.select_related("student__school").in_bulk(chunk)
        results = [loaded[pk] for pk in chunk if pk in loaded]
        with transaction.atomic():
            for receiver, response in students_flagged.send_robust(sender=ScreeningResult, results=results):
                if isinstance(response, Exception):
                    logger.error("students_flagged receiver %r failed for results %s…", receiver, chunk[0],
                                 exc_info=response)  # fmt: skip
                    failed += [r.pk for r in results]
            for result in results:
                responses = student_flagged.send_robust(sender=ScreeningResult, result=result, in_batch=True)
                for receiver, response in responses:
                    if isinstance(response, Exception):
                        logger.error("student_flagged receiver %r failed for result %s", receiver, result.pk,
                                     exc_info=response)  # fmt: skip
                        failed.append(result.pk)
                sent += 1
    if failed:
        raise FlaggedNotDelivered(f"student_flagged failed for results {sorted(set(failed))}")
    return sent
