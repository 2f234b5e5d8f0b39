"""Importing results from other screening platforms (seed 000 used an external system), in bulk.

Our template's columns: 学校代码 (school_code), 学号 (student_no), and one column per item named `<INSTRUMENT>_<n>`
(PHQ9_1 … PHQ9_9, GAD7_1 …, ASQ_1 … ASQ_5). Other platforms' exports are read through their mappings
(`screening.import_mappings`: column names, item numbering, answer codes, and the platform's own warning level, which
is stored beside our tier and never decides it). Every row is scored and tiered by the same code as the portal
(`screening.scoring`, `screening.services.result_fields`); a blank ASQ item 1-4 counts as declined (a yes). Nothing
is written when any row has an error unless only the valid rows are asked for; the same file again changes nothing.
Files are read by the roster import's reader.

City scale (100,000 rows) sets the shape of the code: scored rows are kept as compact JSON text rather than nested
dicts, stored rows are compared while streaming, and on PostgreSQL rows and their history go in with COPY and
set-based SQL (`results_bulk_write`, also used by re-scoring).
"""

from __future__ import annotations

import gc
import json
import logging
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from roster import scoping
from roster.importing import Column, FileRefused, ImportReport, map_headers, read_table
from roster.models import Student
from roster.normalize import CellError, clean_digits, clean_identifier, normalize_header
from roster.roles import Role
from screening.campaigns import invited_students
from screening.definitions import DefinitionError, RiskTier
from screening.import_mappings import (
    ANSWER_WORDS,
    AUTO,
    OURS,
    AnswerCellError,
    AnswerReader,
    PlatformMapping,
    detect_platform,
    platforms,
)
from screening.models import ResultSource, ScreeningResult
from screening.scoring import AnswerError, score_instrument, tier_for
from screening.services import CampaignDefinitions, campaign_definitions, result_fields
from screening.signals import student_flagged, students_flagged

STUDENT_NO = Column("student_no", "学号", ("student number",))
PLATFORM_LEVEL_LENGTH = 32  # ScreeningResult.platform_level
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
    platform: str = AUTO  # a mapping's code (`import_mappings.platforms()`), or AUTO: told by the headers


@dataclass
class ResultsReport(ImportReport):
    """The import report, with the platform the file was read as and its warning levels beside our tiers."""

    platform: PlatformMapping | None = None
    level_tiers: Counter = field(default_factory=Counter)  # (platform level, our tier) → rows

    def level_rows(self) -> list[tuple[str, str, int]]:
        """(platform level, our tier's label, rows) for the check page, most urgent tier first."""
        ranks = {tier.value: tier.rank for tier in RiskTier}
        pairs = sorted(self.level_tiers.items(), key=lambda pair: (-ranks[pair[0][1]], pair[0][0]))
        return [(level, RiskTier(tier).label, count) for (level, tier), count in pairs]


class ScoredRow(NamedTuple):
    """One result as it will be stored, its JSON as text: far smaller than the nested dicts it came from."""

    student_id: int
    answers: str  # canonical JSON (sorted keys): equal text means equal answers
    scores: str
    tier: str
    fired_rules: str
    platform_level: str = ""  # the source platform's own warning level, as it wrote it


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
    """A cell as an answer key without an instrument at hand (the reports benchmark's generated answers)."""
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw).strip().lower()
    return ANSWER_WORDS.get(text, text)


# One encoder each, built once: json.dumps with options builds a new encoder on every call.
canonical_json = json.JSONEncoder(sort_keys=True).encode  # equal text means equal values
_json = json.JSONEncoder().encode


def scored_row(student_id: int, fields: dict, platform_level: str = "") -> ScoredRow:
    """The stored form (`services.result_fields`) of one result, as JSON text."""
    return ScoredRow(
        student_id,
        canonical_json(fields["answers"]),
        _json(fields["scores"]),
        fields["tier"],
        _json(fields["fired_rules"]),
        platform_level,
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
            except AnswerCellError as error:
                hit = (str(error), error.column, error.value)
            except AnswerError as error:
                hit = (str(error), "", None)  # the message, not the exception: re-raising one grows its traceback
            if len(self.cache) >= SCORE_CACHE_SIZE:
                self.cache.clear()
            self.cache[key] = hit
        if isinstance(hit, tuple):
            message, column, value = hit
            raise AnswerCellError(message, column, value) if column else AnswerError(message)
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
    report = ResultsReport(kind="results", filename=request.filename)
    try:
        _run(request, report, read_table(request.data, request.filename))
    except FileRefused as refusal:
        report.refused = str(refusal)
    return report


def import_result_table(request: ResultsImport, rows: Iterable[list]) -> ImportReport:
    """As `import_results`, for a table already read (header row first), e.g. a django-import-export dataset."""
    report = ResultsReport(kind="results", filename=request.filename)
    try:
        _run(request, report, iter(rows))
    except FileRefused as refusal:
        report.refused = str(refusal)
    return report


def _mapping_for(request: ResultsImport, header: list, definitions: CampaignDefinitions) -> PlatformMapping:
    try:
        if request.platform in (AUTO, "", None):
            return detect_platform(header, definitions.instruments)
        mapping = platforms().get(request.platform)
    except DefinitionError as error:  # a mapping file a district edited wrongly: say which and where
        raise FileRefused(
            _("A platform mapping cannot be read (%(error)s). Nothing was imported.") % {"error": error}
        ) from None
    if mapping is None:
        raise FileRefused(_("Unknown source platform “%(platform)s”.") % {"platform": request.platform})
    return mapping


def _item_columns(
    header: list, definitions: CampaignDefinitions, mapping: PlatformMapping
) -> tuple[dict[str, list[tuple[int, int]]], dict[str, dict[int, str]]]:
    """Instrument code → [(item number, column position)], and the file's header of each item column; refuses the
    file naming every missing item column as the platform names it."""
    names = mapping.item_column_names(definitions.instruments)
    wanted: dict[str, tuple[str, int]] = {}
    for key, headers in names.items():
        for name in headers:
            wanted.setdefault(normalize_header(name), key)
    found: dict[tuple[str, int], int] = {}
    shown: dict[str, dict[int, str]] = {code: {} for code in definitions.instruments}
    for position, raw in enumerate(header):
        key = wanted.get(normalize_header(raw) if raw is not None else "")
        if key is not None and key not in found:
            found[key] = position
            shown[key[0]][key[1]] = str(raw).strip()
    missing = [
        headers[0]
        for (code, number), headers in names.items()
        if (code, number) not in found and not definitions.instruments[code].item(number).ask_if_any_of
    ]
    if missing:
        raise FileRefused(
            _("Missing item columns: %(columns)s. Nothing was imported.") % {"columns": "、".join(missing)}
        )
    columns: dict[str, list[tuple[int, int]]] = {code: [] for code in definitions.instruments}
    for (code, number), position in found.items():
        columns[code].append((number, position))
    return {code: sorted(pairs) for code, pairs in columns.items()}, shown


def _squeezed(value) -> str:
    """A name or a school name compared without its spaces and full-width forms ("王 小明" is "王小明")."""
    return "".join(unicodedata.normalize("NFKC", str(value)).split()) if value is not None else ""


def _level_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())[:PLATFORM_LEVEL_LENGTH]


def _run(request: ResultsImport, report: ResultsReport, rows: Iterator[list]) -> None:
    campaign = request.campaign
    if request.actor is not None and not may_import_results(request.actor):
        raise FileRefused(_("You may not import screening results: that needs a psychology or centre role."))
    definitions: CampaignDefinitions = campaign_definitions(campaign)
    header = next((row for row in rows if any(v not in (None, "") for v in row)), None)
    if header is None:
        raise FileRefused(_("The file is empty."))
    mapping = report.platform = _mapping_for(request, header, definitions)
    identity = [
        Column(name, headers[0], headers[1:], required=name == "student_no")
        for name, headers in mapping.columns.items()
    ]
    index = map_headers(header, identity, school_given=True)
    number_at = index["student_no"]
    code_at, school_name_at = index.get("school_code"), index.get("school_name")
    name_at, level_at = index.get("name"), index.get("level")
    number_column = mapping.header("student_no")

    schools = list(campaign.schools.values_list("code", "name"))
    school_by_name: dict[str, str | None] = {}
    for code, name in schools:
        # Two schools of one name (two campuses) cannot be told apart by name: such rows need the code.
        school_by_name[_squeezed(name)] = None if _squeezed(name) in school_by_name else code
    only_school = schools[0][0] if len(schools) == 1 else None
    if code_at is None and school_name_at is None and only_school is None:
        # Only a campaign of one school can do without: the student number alone names a student within a school.
        school_columns = [f"{mapping.header(f)} ({f})" for f in ("school_code", "school_name") if f in mapping.columns]
        raise FileRefused(
            _("Missing required columns: %(columns)s. Nothing was imported; download the template to see them.")
            % {"columns": " / ".join(school_columns)}
        )
    columns, item_headers = _item_columns(header, definitions, mapping)

    students = invited_students(campaign)  # the one rule of who a campaign is for
    # Ids only, not model instances: a city file holds 100,000 students.
    by_key = {(code, number): pk for pk, code, number in students.values_list("pk", "school__code", "student_no")}
    # Another platform's file may number students differently: where it gives names, each must match the roster's.
    names = dict(students.values_list("pk", "name")) if name_at is not None else {}
    # Writing results is for those who may read them (psychology teachers and above), in their own subtree.
    in_scope = (
        None
        if request.actor is None
        else set(results_import_scope(request.actor, students).values_list("pk", flat=True))
    )
    try:
        scorers = []
        for code, instrument in definitions.instruments.items():
            numbers = [n for n, _p in columns[code]]
            reader = AnswerReader(instrument, mapping, item_headers[code])
            scorers.append(
                (
                    code,
                    ScoreCache(instrument, lambda cells, r=reader, ns=numbers: r.read(ns, cells), from_import=True),
                    [p for _n, p in columns[code]],
                )
            )
    except DefinitionError as error:
        raise FileRefused(str(error)) from None
    seen: dict[int, int] = {}
    scored: dict[int, ScoredRow] = {}
    with _gc_paused():
        for line, row in enumerate(rows, start=2):
            if all(v in (None, "") or (isinstance(v, str) and not v.strip()) for v in row):
                continue
            report.total += 1
            width = len(row)
            cell = row.__getitem__
            try:
                number = clean_identifier(cell(number_at) if number_at < width else None)
                if code_at is not None:
                    code = clean_digits(cell(code_at) if code_at < width else None)
                elif school_name_at is not None:
                    school_name = cell(school_name_at) if school_name_at < width else None
                    code = school_by_name.get(_squeezed(school_name), "")
                    if not code:
                        problem = (
                            _("Required: this cell is empty.")
                            if not _squeezed(school_name)
                            else _("No school of this campaign has this name.")
                            if code == ""
                            else _("Two schools of this campaign have this name: give 学校代码 (school code) instead.")
                        )
                        report.add_error(line, mapping.header("school_name"), school_name, problem)
                        continue
                else:
                    code = only_school
            except CellError as error:
                report.add_error(line, number_column, "", error.message)
                continue
            student_id = by_key.get((code, number))
            if student_id is None:
                report.add_error(
                    line, number_column, number, _("No such student in this campaign's schools and grades.")
                )
                continue
            if in_scope is not None and student_id not in in_scope:
                report.add_error(line, number_column, number, _("This student is outside your scope."))
                continue
            # After the scope check: nobody learns whether a name matches a student they may not see.
            if name_at is not None:
                given = _squeezed(cell(name_at) if name_at < width else None)
                if given and given != _squeezed(names.get(student_id)):
                    report.add_error(
                        line,
                        mapping.header("name"),
                        cell(name_at),
                        _("This name is not the roster's name of student %(number)s: check the student number.")
                        % {"number": number},
                    )
                    continue
            if student_id in seen:
                report.add_error(
                    line, number_column, number,
                    _("Duplicate of line %(line)d in this file.") % {"line": seen[student_id]},
                )  # fmt: skip
                continue
            seen[student_id] = line
            try:
                scores = {}
                for instrument_code, cache, positions in scorers:
                    scores[instrument_code] = cache.score(tuple([row[p] if p < width else None for p in positions]))
            except AnswerCellError as error:
                report.add_error(line, error.column, error.value, str(error))
                continue
            except AnswerError as error:
                report.add_error(line, "", number, str(error))
                continue
            level = _level_text(cell(level_at) if level_at is not None and level_at < width else None)
            result = scored_row(
                student_id, result_fields(campaign, scores, tier_for(definitions.ruleset, scores)), level
            )
            scored[student_id] = result
            if level_at is not None:
                report.level_tiers[(level, result.tier)] += 1
    _store(request, report, scored)


def _store(request: ResultsImport, report: ResultsReport, scored: dict[int, ScoredRow]) -> None:
    campaign = request.campaign
    # Our own template is no other platform: its results carry none.
    platform = "" if report.platform is None or report.platform.code == OURS else report.platform.code
    # Scores, tier and reasons follow from the answers and the rule-set version, so those two (and where the result
    # came from: the platform and its level) decide "unchanged".
    # Streamed: holding every stored answer of a city campaign as dicts would cost more than the file itself.
    changed: list[tuple[int, ScoredRow]] = []
    known: set[int] = set()
    stored = ScreeningResult.objects.filter(campaign=campaign).values_list(
        "pk", "student_id", "answers", "ruleset_id", "platform", "platform_level"
    )
    for pk, student_id, answers, ruleset_id, stored_platform, stored_level in stored.iterator(chunk_size=BATCH_SIZE):
        row = scored.get(student_id)
        if row is None:
            continue
        known.add(student_id)
        if (
            ruleset_id != campaign.ruleset_id
            or (stored_platform, stored_level) != (platform, row.platform_level)
            or canonical_json(answers) != row.answers
        ):
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
            values={"ruleset_id": campaign.ruleset_id, "source": ResultSource.IMPORT, "submitted_at": now,
                    "platform": platform},
            actor=request.actor, reason=f"results import: {request.filename}", now=now, platform_levels=True,
        )  # fmt: skip
        flagged = [pk for pk, row in written if row.tier != RiskTier.GREEN]
        results_flagged_on_commit(flagged)
    report.written = True


# --- Writing in bulk (import and re-scoring) ------------------------------------------------------------------

WRITTEN_FIELDS = ("answers", "scores", "tier", "fired_rules")


def results_bulk_write(
    *, campaign, new: list[ScoredRow], changed: list[tuple[int, ScoredRow]], values: dict, actor, reason: str, now,
    platform_levels: bool = False,
) -> list[tuple[int, ScoredRow]]:  # fmt: skip
    """Insert `new` and update `changed` (pk, row) results of `campaign`, each with one history row, in the caller's
    transaction. `values` are the other fields set on every written row (e.g. ruleset_id). With `platform_levels`
    (an import) each row's `platform_level` is written too; without (re-scoring) the stored one is kept. Returns
    (pk, row) of every written result, new ones first.

    Access: callers have checked the actor and scope. Audit: one history row per written result (type + or ~), with
    `actor` as history_user and `reason` (cut to the column's 100 characters) as the change reason; the history row
    is a copy of the stored row, as simple-history makes it.
    """
    reason = reason[:100]
    if not new and not changed:
        return []
    row_fields = (*WRITTEN_FIELDS, "platform_level") if platform_levels else WRITTEN_FIELDS
    if connection.vendor == "postgresql" and _is_psycopg3():
        return _write_postgresql(campaign, new, changed, values, actor, reason, now, row_fields)
    return _write_generic(campaign, new, changed, values, actor, reason, now, row_fields)


def _is_psycopg3() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3  # importable only with a PostgreSQL driver

    return is_psycopg3


def _instance(campaign, pk, row: ScoredRow, values: dict) -> ScreeningResult:
    return ScreeningResult(
        pk=pk, campaign=campaign, student_id=row.student_id, answers=json.loads(row.answers),
        scores=json.loads(row.scores), tier=row.tier, fired_rules=json.loads(row.fired_rules),
        platform_level=row.platform_level, **values,
    )  # fmt: skip


def _write_generic(campaign, new, changed, values, actor, reason, now, row_fields) -> list[tuple[int, ScoredRow]]:
    history = ScreeningResult.history
    written = []
    for start in range(0, len(new), BATCH_SIZE):
        rows = new[start : start + BATCH_SIZE]
        batch = ScreeningResult.objects.bulk_create([_instance(campaign, None, row, values) for row in rows])
        history.bulk_history_create(batch, default_user=actor, default_change_reason=reason, default_date=now)
        written += [(result.pk, row) for result, row in zip(batch, rows, strict=True)]
    fields = [*row_fields, *values]
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


def _write_postgresql(campaign, new, changed, values, actor, reason, now, row_fields) -> list[tuple[int, ScoredRow]]:
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
            " scores jsonb, tier varchar(8), fired_rules jsonb, platform_level varchar(32), is_new boolean)"
            " ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY screening_results_write (id, student_id, answers, scores, tier, fired_rules, platform_level, is_new)"
            " FROM STDIN"
        ) as copy:
            for pk, row in zip(ids, new, strict=True):
                copy.write_row((pk, row.student_id, row.answers, row.scores, row.tier, row.fired_rules,
                                row.platform_level, True))  # fmt: skip
            for pk, row in changed:
                copy.write_row((pk, row.student_id, row.answers, row.scores, row.tier, row.fired_rules,
                                row.platform_level, False))  # fmt: skip
        if new:
            # Fields this import does not set (e.g. the portal's access code) get their model default.
            given = {meta.pk.column, "campaign_id", "student_id", *row_fields, *columns}
            defaults = {
                f.column: f.get_db_prep_save(f.get_default(), connection)
                for f in meta.concrete_fields
                if f.column not in given
            }
            constants = {"campaign_id": campaign.pk, **columns, **defaults}
            names = [meta.pk.column, "student_id", *row_fields, *constants]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(quote(n) for n in names)}) "  # noqa: S608 (names are quoted)
                f"SELECT id, student_id, {', '.join(row_fields)}, {', '.join(['%s'] * len(constants))} "
                "FROM screening_results_write WHERE is_new",
                list(constants.values()),
            )
        if changed:
            assignments = [f"{quote(c)} = w.{c}" for c in row_fields] + [f"{quote(c)} = %s" for c in columns]
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
