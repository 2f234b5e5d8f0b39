"""django-import-export resource for results from other screening platforms.

The resource describes our template's file (学校代码, 学号, one `<INSTRUMENT>_<n>` column per item of the campaign;
other platforms' layouts come from their mappings, `screening.import_mappings`) and hands the whole table to
`screening.results_import`, the same bulk service as `manage.py import_results`: rows are scored and tiered by the
portal's code, limited to the importer's scope, and written with history in bulk. Row-by-row saving through
import-export's own machinery would neither score nor scale to a city's 100,000 results.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from import_export import resources
from import_export.fields import Field
from import_export.formats.base_formats import Format
from import_export.results import Error, Result, RowResult
from tablib import Dataset

from roster.importing import SCHOOL_CODE, FileRefused, ImportReport, read_table
from screening.import_mappings import AUTO
from screening.models import ScreeningResult
from screening.results_import import STUDENT_NO, ResultsImport, import_result_table
from screening.services import campaign_definitions

ZIP_MAGIC = b"PK\x03\x04"  # XLSX
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # XLS


class SpreadsheetFormat(Format):
    """XLSX, XLS or CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), told apart by content, read by the roster's reader.

    One format instead of import-export's three: nobody has to pick one, and CSV in GBK (what Excel in China saves)
    is read instead of refused.
    """

    def __init__(self, encoding=None):
        self.encoding = encoding  # unused: the reader detects the encoding

    def get_title(self):
        return _("Spreadsheet (XLSX, XLS or CSV)")

    def get_extension(self):
        return "xlsx"

    def can_import(self):
        return True

    def create_dataset(self, in_stream):
        data = in_stream if isinstance(in_stream, bytes) else in_stream.encode("utf-8")
        suffix = ".xlsx" if data.startswith(ZIP_MAGIC) else ".xls" if data.startswith(OLE_MAGIC) else ".csv"
        rows = read_table(data, f"upload{suffix}")  # raises FileRefused with the reason
        header = next((row for row in rows if any(v not in (None, "") for v in row)), None)
        if header is None:
            raise FileRefused(_("The file is empty."))
        width = len(header)
        dataset = Dataset(headers=["" if cell is None else str(cell) for cell in header])
        for row in rows:
            # tablib needs rows as wide as the header; blank rows stay so that line numbers match the file's.
            dataset.append(list(row[:width]) + [None] * (width - len(row)))
        return dataset


class ResultsImportResult(Result):
    """import-export's result, carrying the service's report (counts and every bad row) for the preview page."""

    def __init__(self, report: ImportReport, campaign):
        super().__init__()
        self.report, self.campaign = report, campaign
        self.diff_headers = [SCHOOL_CODE.header, STUDENT_NO.header]
        self.totals[RowResult.IMPORT_TYPE_NEW] = report.new
        self.totals[RowResult.IMPORT_TYPE_UPDATE] = report.updated
        self.totals[RowResult.IMPORT_TYPE_SKIP] = report.unchanged
        self.totals[RowResult.IMPORT_TYPE_INVALID] = len(report.error_lines)
        self.total_rows = report.total
        if report.refused:
            self.append_base_error(Error(FileRefused(report.refused)))
        for error in report.errors:
            self.append_invalid_row(
                error.line, {STUDENT_NO.header: error.value}, ValidationError({error.column or "-": [error.message]})
            )


class ScreeningResultResource(resources.ModelResource):
    """Results of one campaign (`campaign`), imported by `user` (import_data's keyword, as the admin passes it)."""

    school_code = Field(attribute="student__school__code", column_name=SCHOOL_CODE.header, readonly=True)
    student_no = Field(attribute="student__student_no", column_name=STUDENT_NO.header, readonly=True)

    class Meta:
        model = ScreeningResult
        name = _("Screening results")
        fields = ("school_code", "student_no")
        import_id_fields = ("school_code", "student_no")

    def __init__(self, campaign=None, platform=AUTO, **kwargs):
        super().__init__(**kwargs)
        self.campaign, self.platform = campaign, platform
        if campaign is not None:
            for code, instrument in campaign_definitions(campaign).instruments.items():
                for item in instrument.items:
                    name = f"{code}_{item.number}"
                    self.fields[name] = Field(column_name=name, readonly=True)

    def get_user_visible_fields(self):
        return list(self.fields.values())  # the item columns are added per campaign, outside Meta.fields

    def import_data(
        self, dataset, dry_run=False, raise_errors=False, use_transactions=None, collect_failed_rows=False,
        rollback_on_validation_errors=False, **kwargs,
    ):  # fmt: skip
        """Check (dry_run) or import the whole dataset through the bulk service; nothing is written on any error."""
        if self.campaign is None:
            raise ValueError("ScreeningResultResource needs a campaign to import into")
        request = ResultsImport(
            campaign=self.campaign, data=b"", filename=kwargs.get("file_name") or "", actor=kwargs.get("user"),
            dry_run=dry_run, platform=self.platform,
        )  # fmt: skip
        table = [list(dataset.headers or []), *dataset]
        report = import_result_table(request, table)
        if raise_errors and (report.refused or report.errors):
            raise ValueError(report.refused or report.errors[0].message)
        return ResultsImportResult(report, self.campaign)
