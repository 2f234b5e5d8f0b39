"""The results admin as a district centre uses it: a scoped, read-only list and the import (check → confirm)."""

import re
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from tablib import Dataset

from screening.models import ScreeningResult
from screening.resources import ScreeningResultResource
from screening.services import result_record
from screening.signals import student_flagged
from tests.factories.screening import CampaignFactory
from tests.roster_files import csv_bytes, xlsx_bytes

HEADER = (
    ["学校代码", "学号"]
    + [f"PHQ9_{n}" for n in range(1, 10)]
    + [f"GAD7_{n}" for n in range(1, 8)]
    + [f"ASQ_{n}" for n in range(1, 6)]
)
CALM = {"PHQ9": dict.fromkeys(range(1, 10), "0"), "GAD7": dict.fromkeys(range(1, 8), "0"),
        "ASQ": {1: "no", 2: "no", 3: "no", 4: "no"}}  # fmt: skip
IMPORT_URL = reverse("admin:screening_screeningresult_import")
CONFIRM_URL = reverse("admin:screening_screeningresult_process_import")
LIST_URL = reverse("admin:screening_screeningresult_changelist")


def row(student, phq=0, asq=("否", "否", "否", "否", "")):
    return [student.school.code, student.student_no] + [phq] * 9 + [0] * 7 + list(asq)


@pytest.fixture
def campaign(world):
    return CampaignFactory(schools=[world.school_a1, world.school_a2, world.school_b1])


def _login(client, user):
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the new messages are asserted in their English msgids
    return client


@pytest.fixture
def centre(client, world):
    return _login(client, world.centre_district_a)


def _check(client, campaign, data, name="results.csv"):
    return client.post(
        IMPORT_URL, {"campaign": campaign.pk, "format": "0", "import_file": SimpleUploadedFile(name, data)}
    )


def _confirm(client, response):
    form = response.context["confirm_form"]
    return client.post(CONFIRM_URL, {name: form.initial[name] for name in form.fields})


def test_the_list_shows_results_of_the_centres_district_only_with_masked_names(centre, campaign, world):
    for student in (world.student_a1_3, world.student_a2, world.student_b1):
        result_record(campaign=campaign, student=student, answers=CALM, source="portal")
    page = centre.get(LIST_URL)
    content = page.content.decode()
    assert page.status_code == 200
    shown = {r.student_id for r in page.context["cl"].result_list}
    assert shown == {world.student_a1_3.pk, world.student_a2.pk}  # not district B's student
    assert "王*明" in content and "王小明" not in content
    assert '"PHQ9"' not in content and "answers" not in page.context["cl"].list_display


def test_the_list_runs_the_same_queries_for_more_results(centre, campaign, world, django_assert_num_queries):
    result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="portal")
    with CaptureQueriesContext(connection) as one:
        centre.get(LIST_URL)
    for student in (world.student_a1_5, world.student_a2):
        result_record(campaign=campaign, student=student, answers=CALM, source="portal")
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(centre.get(LIST_URL).context["cl"].result_list) == 3


def test_the_resource_imports_a_dataset_through_the_bulk_service(campaign, world):
    dataset = Dataset(row(world.student_a1_3), row(world.student_a1_5), headers=HEADER)
    resource = ScreeningResultResource(campaign=campaign)
    assert "ASQ_5" in [f.column_name for f in resource.get_user_visible_fields()]
    checked = resource.import_data(dataset, dry_run=True, user=world.counselor_a1, file_name="other.csv")
    assert (checked.totals["new"], checked.has_validation_errors(), ScreeningResult.objects.count()) == (2, False, 0)
    done = resource.import_data(dataset, dry_run=False, user=world.counselor_a1, file_name="other.csv")
    assert done.report.written and ScreeningResult.objects.count() == 2
    again = resource.import_data(dataset, dry_run=False, user=world.counselor_a1, file_name="other.csv")
    assert (again.totals["new"], again.totals["update"], again.totals["skip"]) == (0, 0, 2)


def test_a_result_page_is_read_only_and_404_outside_the_scope(centre, campaign, world):
    own = result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="portal").result
    other = result_record(campaign=campaign, student=world.student_b1, answers=CALM, source="portal").result
    page = centre.get(reverse("admin:screening_screeningresult_change", args=[own.pk]))
    assert page.status_code == 200 and "王*明" in page.content.decode()
    assert "answers" not in page.context["adminform"].form.fields
    assert centre.get(reverse("admin:screening_screeningresult_change", args=[other.pk])).status_code == 404
    forged = centre.post(reverse("admin:screening_screeningresult_change", args=[own.pk]), {"tier": "red"})
    assert forged.status_code == 403
    assert (
        centre.post(reverse("admin:screening_screeningresult_delete", args=[own.pk]), {"post": "yes"}).status_code
        == 403
    )
    own.refresh_from_db()
    assert own.tier == "green" and ScreeningResult.objects.count() == 2


def test_school_admins_get_no_access_to_results(client, campaign, world):
    result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="portal")
    school_admin = _login(client, world.school_admin_a1)
    assert school_admin.get(LIST_URL).status_code == 403
    assert school_admin.get(IMPORT_URL).status_code == 403
    assert _check(school_admin, campaign, csv_bytes([HEADER, row(world.student_a1_3)])).status_code == 403
    index = school_admin.get(reverse("admin:index"))
    assert LIST_URL not in index.content.decode()


def test_the_auditor_reads_results_but_cannot_import(client, campaign, world):
    result_record(campaign=campaign, student=world.student_a1_3, answers=CALM, source="portal")
    auditor = _login(client, world.auditor_district_a)
    page = auditor.get(LIST_URL)
    assert page.status_code == 200 and len(page.context["cl"].result_list) == 1
    assert IMPORT_URL not in page.content.decode()
    assert auditor.get(IMPORT_URL).status_code == 403


def test_import_checks_first_then_writes_on_confirmation(centre, campaign, world, django_capture_on_commit_callbacks):
    flagged = []
    student_flagged.connect(receiver := (lambda sender, result, **kw: flagged.append(result.student_id)))
    data = xlsx_bytes([HEADER, row(world.student_a1_3), row(world.student_a2, asq=("是", "否", "否", "否", "是"))])
    try:
        check = _check(centre, campaign, data, "results.xlsx")
        report = check.context["result"].report
        assert (report.total, report.new, report.updated, report.written) == (2, 2, 0, False)
        assert not ScreeningResult.objects.exists()
        assert re.search(r'id="results-new">\s*2<', check.content.decode())

        with django_capture_on_commit_callbacks(execute=True):
            done = _confirm(centre, check)
    finally:
        student_flagged.disconnect(receiver)
    assert done.status_code == 302 and done.url == LIST_URL
    assert ScreeningResult.objects.count() == 2
    history = ScreeningResult.history.all()
    assert {(h.history_user, h.history_change_reason) for h in history} == {
        (world.centre_district_a, "results import: results.xlsx")
    }
    assert flagged == [world.student_a2.pk]  # the red one only
    assert "Imported 2 rows: 2 new" in centre.get(LIST_URL).content.decode()

    again = _check(centre, campaign, data, "results.xlsx").context["result"].report
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)


def test_a_re_import_of_the_same_file_writes_nothing(centre, campaign, world):
    data = csv_bytes([HEADER, row(world.student_a1_3)])
    _confirm(centre, _check(centre, campaign, data))
    history = ScreeningResult.history.count()
    _confirm(centre, _check(centre, campaign, data))
    assert ScreeningResult.history.count() == history == 1


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("duplicate", "Duplicate of line 2 in this file."),
        ("out_of_scope", "This student is outside your scope."),
        ("bad_answer", "not one of its answers"),
    ],
)
def test_bad_rows_are_listed_and_nothing_can_be_confirmed(centre, campaign, world, rows, message):
    body = {
        "duplicate": [row(world.student_a1_3), row(world.student_a1_3)],
        "out_of_scope": [row(world.student_a1_3), row(world.student_b1)],  # district B: not the centre's
        "bad_answer": [row(world.student_a1_3, phq=7)],
    }[rows]
    check = _check(centre, campaign, csv_bytes([HEADER, *body]))
    stored = Path(tempfile.gettempdir()) / Path(check.context["form"].cleaned_data["import_file"].tmp_storage_name).name
    assert stored.name and not stored.exists()  # the rejected upload (minors' answers) is not left behind
    content = check.content.decode()
    assert message in content and 'id="results-errors"' in content
    assert check.context.get("confirm_form") is None
    assert not ScreeningResult.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("\ufeff学校代码,学号\r\n".encode("utf-16-le"), "text encoding is not recognised"),
        (csv_bytes([HEADER[:-2], ["9901010001", "1"] + [0] * 19]), "Missing item columns: ASQ_4"),
        (csv_bytes([["姓名", "学号"], ["李", "1"]]), "Missing required columns"),
        (b"PK\x03\x04 not really a workbook", "not a readable XLSX file"),
    ],
)
def test_a_refused_file_says_why(centre, campaign, world, data, message):
    check = _check(centre, campaign, data)
    assert check.status_code == 200 and message in check.content.decode()
    assert check.context.get("confirm_form") is None and not ScreeningResult.objects.exists()


def test_a_csv_saved_as_gbk_by_excel_is_read(centre, campaign, world):
    data = csv_bytes([HEADER, row(world.student_a1_3)], encoding="gbk")
    assert _check(centre, campaign, data).context["result"].report.new == 1


def test_a_forged_confirmation_changes_nothing(centre, campaign, world):
    check = _check(centre, campaign, csv_bytes([HEADER, row(world.student_a1_3)]))
    form = check.context["confirm_form"]
    posted = {name: form.initial[name] for name in form.fields}
    for forged in ({"import_file_name": "results-bench.csv"}, {"token": posted["token"][:-2] + "xx"}):
        response = centre.post(CONFIRM_URL, {**posted, **forged})
        assert "upload the file again" in response.content.decode()
    assert not ScreeningResult.objects.exists()


def test_only_campaigns_with_schools_in_scope_are_offered(centre, world):
    mine = CampaignFactory(schools=[world.school_a1])
    theirs = CampaignFactory(schools=[world.school_b1])
    offered = set(centre.get(IMPORT_URL).context["form"].fields["campaign"].queryset)
    assert mine in offered and theirs not in offered
    response = _check(centre, theirs, csv_bytes([HEADER, row(world.student_b1)]))
    assert "campaign" in response.context["form"].errors and not ScreeningResult.objects.exists()
