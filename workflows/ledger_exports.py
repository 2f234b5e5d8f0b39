"""The ledgers' XLSX exports (台账导出) as roster.exports kinds: one writer for the file answered at once and the one
the task worker writes for a large ledger (a city's), so both hold the same rows.

Registered from WorkflowsConfig.ready. Rows are the user's scope at the moment of writing (cases.ledgers); a
download is allowed while the person may still read every case in the file.
May import: roster, screening, cases, workflows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import urlencode

import openpyxl
from django.urls import reverse
from django.utils import timezone
from openpyxl.cell import WriteOnlyCell

from cases import ledgers
from cases.models import Case
from roster import audit, exports
from roster.spreadsheets import safe_cell
from workflows.views_ledgers import LEDGERS, Ledger, kind_name

# Rows are read from the database in chunks of this many while the export is written (a city's ledger holds
# tens of thousands): neither the rows nor the workbook are held whole in memory. Progress is saved per chunk.
EXPORT_CHUNK = 2000
# Case ids checked per query when a download asks whether the person still reads every case in the file.
SCOPE_CHECK_CHUNK = 500


def ledger_filtered_rows(ledger: Ledger, user, parameters: dict):
    """The ledger's rows for the user and filters, or ExportRefused (no ledger, or filters outside the scope)."""
    if not ledgers.reads_ledgers(user):
        raise exports.ExportRefused("no ledger")
    form = ledger.form(parameters, user=user)
    if not form.is_valid():
        raise exports.ExportRefused("invalid filters")
    filters = {k: v for k, v in form.cleaned_data.items() if v not in (None, "", False)}
    return ledger.rows(user, **filters)


def write_ledger(
    ledger: Ledger, user, parameters: dict, out: BinaryIO, progress: Callable[[int], None]
) -> exports.ExportWritten:
    """Every row of the user's scope matching the filters, as XLSX written to `out`: row by row (openpyxl's
    write-only mode) while the rows come from the database in chunks, so memory stays flat at any size."""
    rows = ledger_filtered_rows(ledger, user, parameters)
    case_ids: dict[int, None] = {}  # in order, once each (a case may have several referrals)
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(str(ledger.title)[:31])
    sheet.append([_text_cell(sheet, str(c.label), bold=True) for c in ledger.columns])
    written = 0
    for row in rows.iterator(chunk_size=EXPORT_CHUNK):
        case_ids[ledger.case_id(row)] = None
        sheet.append([_text_cell(sheet, c.value(row)) for c in ledger.columns])
        written += 1
        if written % EXPORT_CHUNK == 0:
            progress(written)
    workbook.save(out)
    return exports.ExportWritten(object_type=audit.label(Case), object_ids=list(case_ids), rows=written)


def _text_cell(sheet, value, *, bold: bool = False) -> WriteOnlyCell:
    # Formula-safe (roster.spreadsheets); numbers stay numbers (days), the rest is kept as text (student numbers).
    cell = WriteOnlyCell(sheet, value=safe_cell(value))
    if not isinstance(value, int):
        cell.number_format = "@"
    if bold:
        cell.font = openpyxl.styles.Font(bold=True)
    return cell


def may_download(user, job) -> bool:
    """Whether the person still reads a ledger holding every case in the file (their scope now, not the job's)."""
    if not ledgers.reads_ledgers(user):
        return False
    ids = sorted(set(exports.job_object_ids(job)))
    readable = ledgers.ledger_cases(user)
    for start in range(0, len(ids), SCOPE_CHECK_CHUNK):
        chunk = ids[start : start + SCOPE_CHECK_CHUNK]
        if readable.filter(pk__in=chunk).count() != len(chunk):
            return False
    return True


def _kind(ledger: Ledger) -> exports.ExportKind:
    def again_url(parameters: dict) -> str:
        url = reverse(f"reports:ledger_{ledger.name}")
        return f"{url}?{urlencode(parameters)}" if parameters else url

    return exports.ExportKind(
        name=kind_name(ledger),
        title=lambda: str(ledger.title),
        write=lambda user, parameters, out, progress: write_ledger(ledger, user, parameters, out, progress),
        may_download=may_download,
        filename=lambda parameters: f"ledger-{ledger.name}-{timezone.localdate().isoformat()}.xlsx",
        again_url=again_url,
    )


def register() -> None:
    for ledger in LEDGERS:
        exports.export_kind_register(_kind(ledger))
    from workflows import group_ledger_export  # the special-groups ledger (issue 20); it imports this module

    group_ledger_export.register()
