"""The special-groups ledger's XLSX export (特殊群体学生台账导出) as a roster.exports kind: one writer for the file
answered at once and the one the task worker writes for a city's ledger, so both hold the same rows.

Registered by workflows.ledger_exports.register (WorkflowsConfig.ready). Rows are the user's scope at the moment of
writing (cases.group_ledgers); a download is allowed while the person still reads every student in the file.
May import: roster, screening, cases, workflows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import BinaryIO
from urllib.parse import urlencode

import openpyxl
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from cases import group_ledgers
from roster import audit, exports
from roster.models import Student
from workflows.ledger_exports import EXPORT_CHUNK, SCOPE_CHECK_CHUNK, _text_cell
from workflows.views_groups import COLUMNS, EXPORT_KIND, GroupLedgerFilterForm


def write(user, parameters: dict, out: BinaryIO, progress: Callable[[int], None]) -> exports.ExportWritten:
    """Every row of the user's scope matching the filters, as XLSX written to `out` row by row (write-only mode), the
    rows read in chunks: memory stays flat at a city's size."""
    if not group_ledgers.reads_group_ledger(user):
        raise exports.ExportRefused("no ledger")
    form = GroupLedgerFilterForm(parameters, user=user)
    if not form.is_valid():
        raise exports.ExportRefused("invalid filters")
    rows = group_ledgers.group_ledger(user, **form.filters())
    today = timezone.localdate()
    student_ids: dict[int, None] = {}
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(_title()[:31])
    sheet.append([_text_cell(sheet, str(c.label), bold=True) for c in COLUMNS])
    written = 0
    for chunk in _chunks(rows.iterator(chunk_size=EXPORT_CHUNK)):
        for row in group_ledgers.with_records(chunk):  # one query a chunk for the help records
            student_ids[group_ledgers.student_of(row).pk] = None
            sheet.append([_text_cell(sheet, c.value(row, today)) for c in COLUMNS])
        written += len(chunk)
        progress(written)
    workbook.save(out)
    return exports.ExportWritten(object_type=audit.label(Student), object_ids=list(student_ids), rows=written)


def _chunks(rows: Iterator) -> Iterator[list]:
    while chunk := list(islice(rows, EXPORT_CHUNK)):
        yield chunk


def may_download(user, job) -> bool:
    """Whether the person still reads the ledger of every student in the file (their scope now)."""
    if not group_ledgers.reads_group_ledger(user):
        return False
    ids = sorted(set(exports.job_object_ids(job)))
    readable = group_ledgers.ledger_students(user)
    for start in range(0, len(ids), SCOPE_CHECK_CHUNK):
        chunk = ids[start : start + SCOPE_CHECK_CHUNK]
        if readable.filter(pk__in=chunk).count() != len(chunk):
            return False
    return True


def _title() -> str:
    return gettext("Special-groups ledger")


def _again_url(parameters: dict) -> str:
    url = reverse("reports:ledger_groups")
    return f"{url}?{urlencode(parameters)}" if parameters else url


def register() -> None:
    exports.export_kind_register(
        exports.ExportKind(
            name=EXPORT_KIND,
            title=_title,
            write=write,
            may_download=may_download,
            filename=lambda parameters: f"ledger-special-groups-{timezone.localdate().isoformat()}.xlsx",
            again_url=_again_url,
        )  # fmt: skip
    )
