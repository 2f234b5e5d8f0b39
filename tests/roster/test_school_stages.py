"""School stages (学段): a primary school has grades 1-6 only, and imports, forms and filters keep to that."""

from importlib import import_module

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from roster import services
from roster.demo import SCHOOL_KINDS
from roster.importing import ImportRequest, run_import
from roster.models import School, SchoolClass, Student
from roster.roles import Role
from roster.stages import SchoolStage, stage_for_grades, stage_grades
from screening.admin_campaigns import CampaignCreateForm
from tests.factories.roster import SchoolClassFactory, SchoolFactory, StudentFactory, staff_with_role
from tests.roster_files import STUDENT_HEADER, csv_bytes, student_row


@pytest.mark.parametrize(
    ("grades", "stage"),
    [
        ({4, 5, 6}, SchoolStage.PRIMARY),
        ({7, 8}, SchoolStage.JUNIOR),
        ({10, 11}, SchoolStage.SENIOR),
        ({5, 8}, SchoolStage.NINE_YEAR),
        ({7, 10}, SchoolStage.COMPLETE_SECONDARY),
        ({5, 11}, SchoolStage.TWELVE_YEAR),
        (set(), SchoolStage.TWELVE_YEAR),
    ],
)
def test_the_narrowest_stage_covering_a_schools_grades(grades, stage):
    assert stage_for_grades(grades) == stage


def test_the_migration_infers_each_existing_schools_stage_from_its_classes(world):
    empty = SchoolFactory(district=world.district_a, code="9901010009")
    School.objects.update(stage=SchoolStage.TWELVE_YEAR)  # as the new column stood before the data step
    migration = import_module("roster.migrations.0011_school_stage")
    migration.infer_stages(apps, None)
    stages = dict(School.objects.values_list("code", "stage"))
    assert stages[world.school_a1.code] == SchoolStage.JUNIOR  # classes 7-3 and 7-5
    assert stages[world.school_x1.code] == SchoolStage.SENIOR  # class 10-1
    assert stages[empty.code] == SchoolStage.TWELVE_YEAR  # no classes: nothing is refused


def test_demo_schools_have_a_real_stage_holding_their_grades():
    for _suffix, stage, grades, _per_grade in SCHOOL_KINDS:
        assert stage != SchoolStage.TWELVE_YEAR
        assert set(grades) <= set(stage_grades(stage))


@pytest.fixture
def primary(world):
    school = SchoolFactory(district=world.district_a, code="9901010005", name="东湖小学", stage=SchoolStage.PRIMARY)
    SchoolClassFactory(school=school, grade=4, number=1)
    return school


def _import(kind, rows, actor, *, dry_run=False):
    return run_import(ImportRequest(kind=kind, data=csv_bytes(rows), filename="f.csv", actor=actor, dry_run=dry_run))


def test_a_primary_school_import_of_grade_7_is_refused_row_by_row_and_changes_nothing(world, primary):
    admin = staff_with_role(Role.SCHOOL_ADMIN, primary)
    rows = [
        STUDENT_HEADER,
        student_row(school_code=primary.code, grade="四年级", klass="1班", student_no="P001"),
        student_row(school_code=primary.code, grade="七年级", klass="2班", student_no="P002"),
    ]
    report = _import("students", rows, admin)
    assert not report.written
    [error] = report.errors
    assert (error.line, error.column, error.value) == (3, "年级", "7")
    assert error.message == "东湖小学的学段是小学（1–6年级），没有7年级。请核对年级，或学校信息中的学段。"
    assert not Student.objects.filter(school=primary).exists()
    assert not SchoolClass.objects.filter(school=primary, grade=7).exists()

    with translation.override("en"):
        english = _import("classes", [["学校代码", "年级", "班级"], [primary.code, "初一", "2班"]], admin)
    assert english.errors[0].message == (
        "东湖小学 (stage: Primary school, grades 1–6) has no grade 7. Check the grade, or the stage in the "
        "school's record."
    )
    assert not SchoolClass.objects.filter(school=primary, grade=7).exists()


def test_a_class_outside_the_stage_is_refused_by_the_service_and_the_admin(client, world, primary):
    with pytest.raises(ValidationError) as refused:
        services.school_class_create(school=primary, grade=10, number=1)
    assert "grade" in refused.value.message_dict

    client.force_login(staff_with_role(Role.SCHOOL_ADMIN, primary))
    response = client.post(reverse("admin:roster_schoolclass_add"), {"school": primary.pk, "grade": 8, "number": 1})
    assert response.status_code == 200
    assert "没有8年级" in response.content.decode()
    assert not SchoolClass.objects.filter(school=primary, grade=8).exists()


def test_a_stage_that_would_orphan_existing_classes_is_refused(world):
    world.school_a1.stage = SchoolStage.PRIMARY
    with pytest.raises(ValidationError) as refused:
        world.school_a1.full_clean()
    assert "stage" in refused.value.message_dict


def test_a_new_schools_stage_must_be_chosen_in_the_admin(client, world):
    client.force_login(world.admin_district_a)
    page = client.get(reverse("admin:roster_school_add")).content.decode()
    assert '<option value="" selected>---------</option>' in page and "小学：1–6年级" in page
    data = {"district": world.district_a.pk, "code": "9901010007", "name": "东湖新学校"}
    assert client.post(reverse("admin:roster_school_add"), data).status_code == 200  # stage missing
    client.post(reverse("admin:roster_school_add"), {**data, "stage": SchoolStage.PRIMARY})
    assert School.objects.get(code="9901010007").stage == SchoolStage.PRIMARY


def _filter_choices(response, title) -> list[str]:
    spec = next(spec for spec in response.context["cl"].filter_specs if str(spec.title) == title)
    return [choice["display"] for choice in spec.choices(response.context["cl"])][1:]  # without "All"


def test_a_primary_schools_grade_filters_offer_its_grades_only(client, world, primary):
    StudentFactory(school_class=SchoolClass.objects.get(school=primary))
    client.force_login(staff_with_role(Role.SCHOOL_ADMIN, primary))
    expected = [f"{g}年级" for g in range(1, 7)]
    students = client.get(reverse("admin:roster_student_changelist"))
    assert _filter_choices(students, "年级") == expected  # not grades 7, 8, 10 of the other schools
    classes = client.get(reverse("admin:roster_schoolclass_changelist"))
    assert _filter_choices(classes, "年级") == expected
    chosen = client.get(reverse("admin:roster_student_changelist"), {"school_class__grade": "4"})
    assert chosen.context["cl"].result_count == 1


def test_the_grade_filter_narrows_to_the_chosen_school(client, world, primary):
    world.school_a1.stage = SchoolStage.JUNIOR
    world.school_a1.save()
    client.force_login(world.superuser)
    response = client.get(reverse("admin:roster_student_changelist"), {"school__id__exact": world.school_a1.pk})
    assert _filter_choices(response, "年级") == ["7年级", "8年级", "9年级"]


def test_campaign_target_grades_offer_only_grades_of_the_schools_in_scope(world, primary):
    School.objects.filter(district=world.district_a).exclude(pk=primary.pk).update(stage=SchoolStage.JUNIOR)
    form = CampaignCreateForm(actor=world.admin_district_a)
    assert [g for g, _label in form.fields["grades"].choices] == list(range(1, 10))
    assert form.fields["grades"].initial == [4, 5, 6, 7, 8]

    School.objects.filter(district=world.district_a).update(stage=SchoolStage.PRIMARY)
    form = CampaignCreateForm(actor=world.admin_district_a)
    assert [g for g, _label in form.fields["grades"].choices] == list(range(1, 7))
