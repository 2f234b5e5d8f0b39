"""Exports use the import templates' headers, so an exported roster imports back unchanged."""

import pytest
from django.urls import reverse
from django.utils import translation
from import_export.formats.base_formats import XLSX

from roster import scoping
from roster.importing import STUDENT_COLUMNS, ImportRequest, run_import
from roster.models import SpecialGroup, Student
from roster.resources import StudentResource


def test_an_exported_roster_imports_back_with_nothing_to_change(world):
    world.student_a1_3.special_groups.add(SpecialGroup.objects.get(code="left_behind"))
    students = scoping.visible(world.school_admin_a1, Student).prefetch_related("special_groups")
    with translation.override("zh-hans"):
        dataset = StudentResource().export(queryset=students)
        # Every column but 全国学籍号, which is never stored as typed (roster.identity) and so cannot be exported; a
        # file without it leaves the stored numbers alone.
        assert dataset.headers == [c.header for c in STUDENT_COLUMNS if c.field != "national_id"]
        data = XLSX().export_data(dataset)
        history = Student.history.count()
        report = run_import(
            ImportRequest(
                kind="students", data=data, filename="export.xlsx", actor=world.school_admin_a1, dry_run=False
            )
        )
    assert (report.errors, report.new, report.updated, report.unchanged) == ([], 0, 0, 2)
    assert Student.history.count() == history


def test_formula_like_values_are_escaped_on_export(world, settings):
    world.student_a1_3.name = '=HYPERLINK("http://x")'
    world.student_a1_3.save()
    dataset = StudentResource().export(queryset=Student.objects.filter(pk=world.student_a1_3.pk))
    sheet_value = XLSX().export_data(dataset)
    import io

    import openpyxl

    cell = openpyxl.load_workbook(io.BytesIO(sheet_value)).active["E2"].value
    assert not str(cell).startswith("=")


@pytest.mark.parametrize(
    ("persona", "status"), [("school_admin_a1", 200), ("auditor_district_a", 200), ("principal_a1", 403)]
)
def test_the_export_page_is_there_for_admin_roles_only(client, world, persona, status):
    client.force_login(getattr(world, persona))
    assert client.get(reverse("admin:roster_student_export")).status_code == status
