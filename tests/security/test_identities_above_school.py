"""Who sees a student's identity in the admin: roles at the student's school or class in full; above a school (city
and district admins, centres, the auditor) masked names, no guardian, phone, birth date or special groups, and name
searches that find nobody. Exports above a school go out masked and are logged (docs/SECURITY.md §3).

王小明 of school A1 (district A, city C) carries every identifying field; the personas come from tests/conftest.py.
"""

import csv
import io
from datetime import date

import openpyxl
import pytest
from django.urls import reverse

from roster import scoping, services
from roster.models import AccessAction, AccessLogEntry, SpecialGroup, Student
from roster.roles import Role
from tests.factories.roster import staff_with_role

ABOVE_SCHOOL = ["city_admin", "city_centre", "admin_district_a", "centre_district_a", "auditor_district_a"]
ADMINS_ABOVE_SCHOOL = ["city_admin", "admin_district_a"]
# What identifies 王小明, in every form a page or a file could carry it.
IDENTITY = ["王小明", "李春花", "13812345678", "138****5678", "2013-05-17", "2013年5月17日", "留守儿童"]
CHANGELIST = reverse("admin:roster_student_changelist")
EXPORT = reverse("admin:roster_student_export")


@pytest.fixture
def identified(world):
    student = world.student_a1_3
    student.birth_date, student.guardian_name, student.guardian_phone = date(2013, 5, 17), "李春花", "13812345678"
    student.save()
    student.special_groups.add(SpecialGroup.objects.get(code="left_behind"))
    return student


def _text(response) -> str:
    return response.content.decode()


def _leaks(text: str) -> list[str]:
    return [value for value in IDENTITY if value in text]


def _export(client, fmt: str) -> tuple[list[str], list[list]]:
    """The student changelist exported as `fmt` (xlsx or csv): its header and rows."""
    form = client.get(EXPORT).context["form"]
    choice = next(value for value, label in form.fields["format"].choices if str(label).lower() == fmt)
    data = {"format": choice, "resource": "0"}
    data |= {name: "on" for name, field in form.fields.items() if getattr(field, "is_selectable_field", False)}
    response = client.post(EXPORT, data)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    if fmt == "csv":
        text = response.content.decode("utf-8-sig")
        assert _leaks(text) == []  # the bytes themselves, not only the parsed cells
        table = list(csv.reader(io.StringIO(text)))
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        table = [["" if cell.value is None else str(cell.value) for cell in row] for row in sheet.iter_rows()]
    return table[0], table[1:]


def _last_log_id() -> int:
    return AccessLogEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


@pytest.mark.parametrize("persona", ADMINS_ABOVE_SCHOOL)
def test_student_list_above_school_shows_masked_names_and_no_phone(client, world, identified, persona):
    client.force_login(getattr(world, persona))
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert identified.pk in {row.pk for row in response.context["cl"].result_list}
    assert "王*明" in _text(response)
    assert _leaks(_text(response)) == []


@pytest.mark.parametrize("persona", ADMINS_ABOVE_SCHOOL)
def test_name_search_above_school_finds_nobody_but_the_number_does(client, world, identified, persona):
    client.force_login(getattr(world, persona))
    by_name = client.post(CHANGELIST, {"q": "王小明"}, follow=True)  # searches are posted (roster.search_privacy)
    by_number = client.post(CHANGELIST, {"q": identified.student_no}, follow=True)
    assert list(by_name.context["cl"].result_list) == []
    assert [row.pk for row in by_number.context["cl"].result_list] == [identified.pk]


@pytest.mark.parametrize("persona", ABOVE_SCHOOL)
def test_student_page_above_school_shows_the_student_masked(client, world, identified, persona):
    client.force_login(getattr(world, persona))
    response = client.get(reverse("admin:roster_student_change", args=[identified.pk]))
    assert response.status_code == 200
    assert identified.student_no in _text(response) and "王*明" in _text(response)
    assert _leaks(_text(response)) == []
    assert not response.context["adminform"].form.fields  # nothing to edit


@pytest.mark.parametrize("persona", ADMINS_ABOVE_SCHOOL)
def test_student_history_above_school_withholds_identity_changes(client, world, identified, persona):
    identified.name, identified.guardian_phone = "王晓明", "13900009999"
    identified.save()
    client.force_login(getattr(world, persona))
    history = client.get(reverse("admin:roster_student_history", args=[identified.pk]))
    version = identified.history.order_by("-history_id").first()
    old_version = client.get(reverse("admin:roster_student_simple_history", args=[identified.pk, version.history_id]))
    for response in (history, old_version):
        assert response.status_code == 200
        assert [v for v in ["王晓明", "13900009999", *IDENTITY] if v in _text(response)] == []
    assert "王*明" in _text(history)


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
@pytest.mark.parametrize("persona", ADMINS_ABOVE_SCHOOL)
def test_export_above_school_is_masked_and_logged(client, world, identified, persona, fmt):
    user = getattr(world, persona)
    students = list(scoping.visible(user, Student))
    client.force_login(user)
    before = _last_log_id()
    header, rows = _export(client, fmt)
    column = {name: header.index(name) for name in ["学号", "姓名", "出生日期", "监护人", "监护人电话", "特殊群体"]}
    assert sorted(row[column["学号"]] for row in rows) == sorted(s.student_no for s in students)
    for row in rows:
        assert "*" in row[column["姓名"]]
        assert [row[column[name]] for name in ["出生日期", "监护人", "监护人电话", "特殊群体"]] == ["", "", "", ""]
    cells = {cell for row in rows for cell in row}
    assert not cells & ({s.name for s in students} | {s.guardian_phone for s in students})
    entry = AccessLogEntry.objects.get(pk__gt=before, action=AccessAction.EXPORT)
    assert sorted(entry.object_ids.split(",")) == sorted(str(s.pk) for s in students)


def test_someone_with_a_school_role_and_a_district_role_sees_identities_at_their_school_only(client, world):
    """A district B admin who is also A1's school admin: A1's students in full, district B's masked."""
    both = staff_with_role(Role.DISTRICT_ADMIN, world.district_b, username="admin_b_and_a1")
    services.role_grant(actor=None, user=both, role=Role.SCHOOL_ADMIN, node=world.school_a1)
    student_b1 = world.student_b1
    client.force_login(both)
    header, rows = _export(client, "xlsx")
    by_number = {row[header.index("学号")]: row for row in rows}
    assert by_number[world.student_a1_3.student_no][header.index("姓名")] == "王小明"
    assert by_number[student_b1.student_no][header.index("姓名")] != student_b1.name
    assert by_number[student_b1.student_no][header.index("监护人电话")] == ""
    found = client.post(CHANGELIST, {"q": "王小明"}, follow=True).context["cl"].result_list
    hidden = client.post(CHANGELIST, {"q": student_b1.name}, follow=True).context["cl"].result_list
    assert ([s.pk for s in found], list(hidden)) == ([world.student_a1_3.pk], [])
    page = client.get(reverse("admin:roster_student_change", args=[student_b1.pk]))
    assert student_b1.guardian_phone not in _text(page)


def test_school_admin_still_sees_their_students_identified(client, world, identified):
    """Regression: the school's own admin keeps full names, guardians and phones (page, search, export)."""
    client.force_login(world.school_admin_a1)
    page = _text(client.get(reverse("admin:roster_student_change", args=[identified.pk])))
    assert {"王小明", "李春花", "13812345678"} <= {v for v in IDENTITY if v in page}
    found = client.post(CHANGELIST, {"q": "王小明"}, follow=True).context["cl"].result_list
    assert [s.pk for s in found] == [identified.pk]
    header, rows = _export(client, "xlsx")
    row = next(r for r in rows if r[header.index("学号")] == identified.student_no)
    assert (row[header.index("姓名")], row[header.index("监护人电话")]) == ("王小明", "13812345678")
