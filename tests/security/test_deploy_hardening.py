"""Deployment hardening (issue 6, items 6-8): the deploy check, the headers on every response, the cookies, the
error pages and error mails, formula-safe exports, and uploads refused before they are read (too large, too many
rows, zip bombs, sheets whose few cells span a huge grid).
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from django.urls import path, reverse
from django.utils import translation
from django.views.defaults import server_error

from config import urls as project_urls
from roster.importing import ImportRequest, run_import
from roster.models import ImportJob, Student
from roster.spreadsheets import xlsx_bytes
from roster.uploads import FileRefused, check_upload
from screening.models import ScreeningResult
from tests.factories.screening import CampaignFactory
from tests.roster_files import STUDENT_HEADER, csv_bytes, student_row
from tests.roster_files import xlsx_bytes as roster_xlsx

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "k" * 20 + "-Qx8!vB3@nM7#pL2$wR6%tY1^zC5", "ALLOWED_HOSTS": "x.example"}
CHILD = "王小明"  # the name the error pages and mails must never show


@pytest.fixture(autouse=True)
def english():
    """Messages are asserted in their English msgids (requests here send the English language cookie)."""
    with translation.override("en"):
        yield


# --- A test-only URLconf: the project's URLs and views that fail ---------------------------------------------------


def _boom(request):
    raise RuntimeError(f"failed while reading the case of {CHILD}")


def _forbidden(request):
    raise PermissionDenied(f"{CHILD} is outside your scope")


urlpatterns = [path("test-boom/", _boom), path("test-forbidden/", _forbidden), *project_urls.urlpatterns]


# --- Settings --------------------------------------------------------------------------------------------------


def _settings_of(env: dict) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"}}
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({"
        "'session': s.SESSION_COOKIE_NAME, 'csrf': s.CSRF_COOKIE_NAME, 'secure': s.SESSION_COOKIE_SECURE,"
        "'csrf_secure': s.CSRF_COOKIE_SECURE, 'samesite': [s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_SAMESITE],"
        "'httponly': s.SESSION_COOKIE_HTTPONLY}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**base, **env, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_deploy_check_passes_with_debug_off_and_https_on():
    with override_settings(DEBUG=False, SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["x.example"]):
        call_command("check", deploy=True, fail_level="WARNING")  # SystemCheckError on any warning


def test_without_debug_the_cookies_are_secure_prefixed_httponly_and_lax():
    cookies = _settings_of(PRODUCTION)
    assert (cookies["session"], cookies["csrf"]) == ("__Secure-sessionid", "__Secure-csrftoken")
    assert cookies["secure"] and cookies["csrf_secure"] and cookies["httponly"]
    assert cookies["samesite"] == ["Lax", "Lax"]


def test_in_development_on_plain_http_the_cookies_keep_their_plain_names():
    # A browser drops a __Secure- cookie that is not Secure: the prefix goes with the flag.
    cookies = _settings_of({**PRODUCTION, "DEBUG": "1"})
    assert (cookies["session"], cookies["csrf"], cookies["secure"]) == ("sessionid", "csrftoken", False)


# --- Headers ---------------------------------------------------------------------------------------------------


def _csp(response) -> dict[str, str]:
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in response.headers["Content-Security-Policy"].split(";"))
    }


def test_a_signed_in_page_has_the_security_headers_and_is_not_stored(client, world):
    client.force_login(world.counselor_a1)
    response = client.get(reverse("home"), secure=True)
    assert response.status_code == 200
    csp = _csp(response)
    assert csp["frame-ancestors"] == "'none'" and csp["default-src"] == "'self'" and csp["object-src"] == "'none'"
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "no-store" in response.headers["Cache-Control"]


def test_signed_in_admin_pages_and_downloads_are_not_stored_either(client, world):
    client.force_login(world.school_admin_a1)
    page = client.get(reverse("admin:roster_student_changelist"))
    template = client.get(reverse("admin:roster_importjob_template", args=["students", "xlsx"]))
    assert "no-store" in page.headers["Cache-Control"] and "no-store" in template.headers["Cache-Control"]
    assert "frame-ancestors 'none'" in template.headers["Content-Security-Policy"]


def test_anonymous_pages_have_the_policy_and_the_portal_form_is_not_stored(client):
    login = client.get(reverse("login"))
    assert "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]
    assert "no-store" in client.get(reverse("portal:start")).headers["Cache-Control"]  # the code form
    help_page = client.get(reverse("portal:help"))  # the same for every student: may be cached
    assert "frame-ancestors 'none'" in help_page.headers["Content-Security-Policy"]
    assert "no-store" not in help_page.headers.get("Cache-Control", "")


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE)


def test_no_template_of_ours_has_inline_script_the_policy_would_block():
    offenders = [
        str(template.relative_to(ROOT))
        for template in (ROOT / "templates").rglob("*.html")
        if INLINE_SCRIPT.search(template.read_text()) or INLINE_HANDLER.search(template.read_text())
    ]
    assert offenders == [], "move the script to static/js/ (config/security.py allows no inline script)"


# --- Error pages and error mails -----------------------------------------------------------------------------------


@pytest.fixture
def failing(client, settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False
    client.raise_request_exception = False
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _shows_nothing_of_the_failure(response):
    text = response.content.decode()
    assert CHILD not in text and "Traceback" not in text and "RuntimeError" not in text and "outside" not in text
    return text


@pytest.mark.django_db
def test_a_server_error_shows_the_generic_page(failing):
    response = failing.get("/test-boom/?student=" + CHILD)
    assert response.status_code == 500
    assert [t.name for t in response.templates][:1] == ["500.html"]
    assert "Something went wrong" in _shows_nothing_of_the_failure(response)


@pytest.mark.django_db
def test_a_refusal_and_a_missing_page_show_generic_pages(failing, world):
    failing.force_login(world.counselor_a1)
    forbidden = failing.get("/test-forbidden/")
    assert forbidden.status_code == 403 and "403.html" in [t.name for t in forbidden.templates]
    _shows_nothing_of_the_failure(forbidden)
    missing = failing.get("/no-such-page/")
    assert missing.status_code == 404 and "404.html" in [t.name for t in missing.templates]
    assert "frame-ancestors 'none'" in missing.headers["Content-Security-Policy"]


def test_the_500_page_needs_no_database_and_no_context_processors():
    # No django_db mark: any query would raise here. server_error renders without the request's context.
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500 and b"<h1>" in response.content


@pytest.mark.django_db
def test_an_error_mail_names_the_path_but_carries_no_form_query_or_cookie_values(failing, settings):
    settings.ADMINS = [("ops", "ops@example.cn")]
    failing.cookies["sessionid"] = "a-session-key-that-must-not-travel"
    failing.post(f"/test-boom/?q={CHILD}", {"note": f"{CHILD}近期失眠", "password": "hunter2-secret"})
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "/test-boom/" in mail.outbox[0].subject
    assert "note = '********************'" in body and "q = '********************'" in body
    for leaked in ("近期失眠", "hunter2-secret", "a-session-key-that-must-not-travel", settings.SECRET_KEY):
        assert leaked not in body
    assert f"?q={CHILD}" not in body  # the request URL without its query string


# --- Exports -----------------------------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(1+9)", "\t=1+1", "\r=1+1"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_admin_export_neutralises_formula_cells(client, world, fmt):
    for student, name, guardian in ((world.student_a1_3, *FORMULAS[0:2]), (world.student_a1_5, *FORMULAS[2:4])):
        student.name, student.guardian_name = name, guardian
        student.save()
    client.force_login(world.school_admin_a1)
    url = reverse("admin:roster_student_export")
    form = client.get(url).context["form"]
    choice = next(value for value, label in form.fields["format"].choices if str(label).lower() == fmt)
    data = {"format": choice, "resource": "0"}
    data |= {name: "on" for name, field in form.fields.items() if getattr(field, "is_selectable_field", False)}
    response = client.post(url, data)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    if fmt == "csv":
        cells = [cell for row in csv.reader(io.StringIO(response.content.decode("utf-8-sig"))) for cell in row]
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        cells = [cell.value for row in sheet.iter_rows() for cell in row]
    texts = [c for c in cells if isinstance(c, str)]
    assert [c for c in texts if c.startswith(FORMULA_START)] == []
    assert {"'" + formula for formula in FORMULAS[:4]} <= set(texts)


def test_spreadsheets_written_by_the_project_neutralise_formula_cells():
    data = xlsx_bytes([("sheet", ["name", "=header"], [[f, 1] for f in FORMULAS])])
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    values = [cell.value for row in sheet.iter_rows() for cell in row]
    assert [v for v in values if isinstance(v, str) and v.startswith(FORMULA_START)] == []
    assert all(sheet.cell(row=r, column=1).data_type == "s" for r in range(1, sheet.max_row + 1))


# --- Uploads -----------------------------------------------------------------------------------------------------

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
    '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
    '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet'
    '+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" '
    'sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def xlsx_of(sheet_data: str, prefix: str = "") -> bytes:
    """An XLSX package whose first sheet's <sheetData> is `sheet_data`, with an optional namespace prefix."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns:{prefix}="{MAIN}"' if prefix else f'xmlns="{MAIN}"'
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet {xmlns}><{p}sheetData>{sheet_data}</{p}sheetData>'
        f"</{p}worksheet>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", CONTENT_TYPES)
        package.writestr("_rels/.rels", RELS)
        package.writestr("xl/workbook.xml", WORKBOOK)
        package.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        package.writestr("xl/worksheets/sheet1.xml", sheet)
    return buffer.getvalue()


def _cell(ref: str, text: str, p: str = "") -> str:
    return f'<{p}c r="{ref}" t="inlineStr"><{p}is><{p}t>{text}</{p}t></{p}is></{p}c>'


def zip_bomb() -> bytes:
    """A header and 30 MB of one row repeated: about 30 KB packed, a thousand times tighter than any real sheet."""
    header = '<row r="1">' + "".join(_cell(f"{chr(65 + i)}1", h) for i, h in enumerate(STUDENT_HEADER)) + "</row>"
    filler = "<row>" + "<c><v>1</v></c>" * 20 + "</row>"
    return xlsx_of(header + filler * (30 * 1024 * 1024 // len(filler)))


def far_apart() -> bytes:
    """Two cells, A1 and XFD1048576: 1.5 KB that the reader would hold as 17 billion cells (550 GB)."""
    return xlsx_of(f'<row r="1">{_cell("A1", "x")}</row><row r="1048576">{_cell("XFD1048576", "y")}</row>')


@pytest.fixture
def school_admin(client, world):
    client.force_login(world.school_admin_a1)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _upload_roster(client, data, name):
    return client.post(reverse("admin:roster_importjob_add"), {"file": SimpleUploadedFile(name, data)})


def test_an_oversize_roster_upload_is_refused_with_a_message_and_nothing_stored(school_admin, world, settings):
    settings.UPLOAD_MAX_BYTES = 2 * 1024 * 1024
    students = Student.objects.count()
    rows = [STUDENT_HEADER] + [student_row(student_no=f"2025{n:05d}") for n in range(30_000)]
    response = _upload_roster(school_admin, csv_bytes(rows), "big.csv")
    assert response.status_code == 200
    assert "The file is larger than 2 MB" in response.content.decode()
    assert not ImportJob.objects.exists() and Student.objects.count() == students


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (zip_bomb, "would unpack to more than"),
        (far_apart, "more than 200,000 rows"),
        (
            lambda: xlsx_of(
                f'<row r="1">{_cell("A1", "x")}{_cell("ZZZ1", "y")}</row><row r="5000">{_cell("A5000", "z")}</row>'
            ),
            "more cells than can be read",
        ),
    ],  # fmt: skip
    ids=["zip-bomb", "far-apart-cells", "too-wide"],
)
def test_a_dangerous_xlsx_is_refused_before_it_is_read_or_stored(school_admin, world, make, message):
    data = make()
    students = Student.objects.count()
    response = _upload_roster(school_admin, data, "roster.xlsx")
    assert response.status_code == 200 and message in response.content.decode()
    assert not ImportJob.objects.exists() and Student.objects.count() == students
    # The command line and the background job read through the same reader, which refuses it too.
    report = run_import(
        ImportRequest(kind="students", data=data, filename="roster.xlsx", actor=world.school_admin_a1, dry_run=False)
    )
    assert message in report.refused and not report.written


def test_a_zip_bomb_of_results_is_refused_and_nothing_is_stored(client, world):
    campaign = CampaignFactory(schools=[world.school_a1])
    client.force_login(world.centre_district_a)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.post(
        reverse("admin:screening_screeningresult_import"),
        {"campaign": campaign.pk, "format": "0", "import_file": SimpleUploadedFile("results.xlsx", zip_bomb())},
    )
    assert response.status_code == 200 and "would unpack to more than" in response.content.decode()
    assert response.context.get("confirm_form") is None and not ScreeningResult.objects.exists()


def test_rows_beyond_the_limit_refuse_the_whole_file(world, settings):
    settings.UPLOAD_MAX_ROWS = 3
    rows = [STUDENT_HEADER] + [student_row(student_no=f"2025{n:04d}") for n in range(4)]
    for data, name in ((csv_bytes(rows), "four.csv"), (roster_xlsx(rows), "four.xlsx")):
        report = run_import(
            ImportRequest(kind="students", data=data, filename=name, actor=world.school_admin_a1, dry_run=False)
        )
        assert "more than 3 rows" in report.refused and not report.written
    assert not Student.objects.filter(student_no__startswith="20250").exists()


def test_the_total_unpacked_size_is_capped(monkeypatch):
    monkeypatch.setattr("roster.uploads.MAX_UNPACKED_BYTES", 1024)
    with pytest.raises(FileRefused, match="would unpack to more than"):
        check_upload(roster_xlsx([STUDENT_HEADER] + [student_row(student_no=str(n)) for n in range(50)]))


def test_cells_written_without_positions_or_with_a_prefix_are_placed_by_parsing():
    # Legal markup the fast scan does not read (no r="…", an x: prefix): parsed properly, then judged the same way.
    check_upload(xlsx_of("<row><c><v>1</v></c><c><v>2</v></c></row>" * 10))
    check_upload(xlsx_of(f'<x:row r="1">{_cell("A1", "a", "x:")}</x:row>', prefix="x"))
    with pytest.raises(FileRefused, match="200,000 rows"):
        check_upload(xlsx_of(f'<x:row r="1">{_cell("A1", "a", "x:")}{_cell("A900000", "b", "x:")}</x:row>', "x"))
    with pytest.raises(FileRefused, match="200,000 rows"):
        check_upload(xlsx_of(f'<row r="1">{_cell("A1", "a")}<c  r="XFD1048576"><v>1</v></c></row>'))


def test_other_workbook_packages_are_refused_whatever_their_name():
    # The reader recognises XLSB and OpenDocument by content; their sheets are not XML this check reads.
    for name in ("content.xml", "xl/workbook.bin"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as package:
            package.writestr(name, "<x/>")
            if name == "xl/workbook.bin":
                package.writestr("xl/workbook.xml", WORKBOOK)
        with pytest.raises(FileRefused, match="not an XLSX workbook"):
            check_upload(buffer.getvalue())


def test_real_spreadsheets_pass_the_check():
    check_upload(roster_xlsx([STUDENT_HEADER] + [student_row(student_no=str(n)) for n in range(2000)]))
    check_upload(xlsx_bytes([("Roster", STUDENT_HEADER, [student_row()])]))
    check_upload(csv_bytes([STUDENT_HEADER, student_row()]))
    check_upload(b"PK\x03\x04 not really a workbook")  # the reader refuses it, with its own message
