"""The school-year rollover (学年升级, issue 19 item 4): preview, run, re-run, undo, scope, and the class lists
imported afterwards."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import translation

from roster.importing import ImportRequest, run_import
from roster.models import (
    AccessLogEntry,
    AccessOutcome,
    Rollover,
    RolloverSchool,
    RolloverStatus,
    SchoolClass,
    Student,
    StudentStatus,
)
from roster.rollover import (
    RolloverRefused,
    current_school_year,
    rollover_preview,
    rollover_run,
    rollover_undo,
    rollover_undo_refusal,
)
from roster.signals import students_left, students_returned
from roster.stages import SchoolStage
from tests.factories.roster import SchoolClassFactory, SchoolFactory, StudentFactory
from tests.roster_files import STUDENT_HEADER, csv_bytes, student_row

YEAR = 2026


@pytest.fixture
def stages(world):
    """District A gets one school of each stage, each with a class in its top grade and one below (two students a
    class), besides the world's twelve-year schools A1 (7-3, 7-5) and A2 (8-1)."""
    made = {}
    for stage, grades in [
        (SchoolStage.PRIMARY, (5, 6)),
        (SchoolStage.JUNIOR, (8, 9)),
        (SchoolStage.SENIOR, (11, 12)),
        (SchoolStage.NINE_YEAR, (8, 9)),
        (SchoolStage.COMPLETE_SECONDARY, (11, 12)),
        (SchoolStage.TWELVE_YEAR, (6, 12)),
    ]:
        school = SchoolFactory(district=world.district_a, stage=stage, name=f"{stage}学校")
        school._classes = {}
        for grade in grades:
            klass = SchoolClassFactory(school=school, grade=grade, number=1)
            school._classes[grade] = klass
            StudentFactory.create_batch(2, school_class=klass)
        made[stage] = school
    return made


@pytest.fixture
def signals():
    seen = {"left": [], "returned": []}

    def left(sender, student_ids, status, actor, **kwargs):
        seen["left"].append((sorted(student_ids), status, actor))

    def returned(sender, student_ids, actor, **kwargs):
        seen["returned"].append((sorted(student_ids), actor))

    students_left.connect(left, dispatch_uid="test-rollover-left")
    students_returned.connect(returned, dispatch_uid="test-rollover-returned")
    yield seen
    students_left.disconnect(dispatch_uid="test-rollover-left")
    students_returned.disconnect(dispatch_uid="test-rollover-returned")


def _plan(preview, school):
    return next(p for p in preview.schools if p.school_id == school.pk)


def _import(world, rows, *, actor="school_admin_a1", filename="new-classes.csv"):
    with translation.override("zh-hans"):
        return run_import(
            ImportRequest(
                kind="students", data=csv_bytes(rows), filename=filename, actor=getattr(world, actor), dry_run=False
            )
        )


def test_the_preview_counts_by_stage_which_classes_graduate_and_which_move_up(world, stages):
    preview = rollover_preview(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)

    expected = {  # stage: (top grade, classes up, classes graduating)
        SchoolStage.PRIMARY: (6, 1, 1),
        SchoolStage.JUNIOR: (9, 1, 1),
        SchoolStage.SENIOR: (12, 1, 1),
        SchoolStage.NINE_YEAR: (9, 1, 1),
        SchoolStage.COMPLETE_SECONDARY: (12, 1, 1),
        SchoolStage.TWELVE_YEAR: (12, 1, 1),
    }
    for stage, (top, up, graduating) in expected.items():
        plan = _plan(preview, stages[stage])
        assert (plan.top_grade, plan.classes_up, plan.classes_graduating) == (top, up, graduating), stage
        assert (plan.students_up, plan.students_graduating, plan.problems) == (2, 2, []), stage
    a1 = _plan(preview, world.school_a1)
    assert (a1.classes_up, a1.classes_graduating, a1.students_up, a1.students_graduating) == (2, 0, 2, 0)
    assert {p.school_id for p in preview.schools} == {world.school_a1.pk, world.school_a2.pk} | {
        s.pk for s in stages.values()
    }  # district A only
    assert preview.totals()["students_graduating"] == 12
    assert not Rollover.objects.exists() and not SchoolClass.objects.archived().exists()  # a preview writes nothing


def test_the_run_moves_classes_up_graduates_the_top_grade_and_writes_history(world, stages, signals):
    junior = stages[SchoolStage.JUNIOR]
    grade_8, grade_9 = junior._classes[8], junior._classes[9]
    graduates = set(Student.objects.filter(school_class=grade_9).values_list("pk", flat=True))
    left_before = StudentFactory(school_class=grade_9, status=StudentStatus.TRANSFERRED)

    result = rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)

    assert result.run.status == RolloverStatus.APPLIED and result.run.created_by == world.admin_district_a
    assert "2026–2027" in result.message
    grade_8.refresh_from_db()
    grade_9.refresh_from_db()
    assert (grade_8.grade, grade_8.graduated_in) == (9, None)  # the same class, a grade up
    assert (grade_9.grade, grade_9.graduated_in) == (9, 2025)  # archived: graduated at the end of 2025–2026
    assert (
        set(Student.objects.filter(status=StudentStatus.GRADUATED).filter(school=junior).values_list("pk", flat=True))
        == graduates
    )
    left_before.refresh_from_db()
    assert left_before.status == StudentStatus.TRANSFERRED  # only the enrolled graduate
    world.class_a1_3.refresh_from_db()
    assert world.class_a1_3.grade == 8

    student = Student.objects.get(pk=min(graduates))
    last = student.history.first()
    assert (last.status, last.history_user, last.history_change_reason) == (
        StudentStatus.GRADUATED,
        world.admin_district_a,
        "学年升级：毕业",
    )
    moved = grade_8.history.first()
    assert (moved.grade, moved.history_user, moved.history_change_reason) == (
        9,
        world.admin_district_a,
        "学年升级：升年级",
    )
    assert grade_9.history.first().graduated_in == 2025

    record = RolloverSchool.objects.get(rollover=result.run, school=junior)
    assert (record.moved_class_ids, record.graduated_class_ids) == ([grade_8.pk], [grade_9.pk])
    assert set(record.graduated_student_ids) == graduates
    all_graduates = sorted(Student.objects.filter(status=StudentStatus.GRADUATED).values_list("pk", flat=True))
    assert signals["left"] == [(all_graduates, StudentStatus.GRADUATED, world.admin_district_a)]
    world.class_b1.refresh_from_db()
    assert world.class_b1.grade == 7  # district B is not the district A admin's


def test_a_second_run_for_the_same_year_changes_nothing_and_says_so(world, stages, signals):
    rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)
    grades = dict(SchoolClass.objects.values_list("pk", "grade"))
    history = SchoolClass.history.count() + Student.history.count()

    again = rollover_run(actor=world.city_admin, scope=world.city, school_year=YEAR)  # the city: B is new

    assert again.run is not None and list(again.run.schools.values_list("school", flat=True)) == [world.school_b1.pk]
    assert all(p.skipped for p in again.preview.schools if p.school_id != world.school_b1.pk)
    third = rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)
    assert third.run is None and "已" in third.message  # 已经升级
    grades[world.class_b1.pk] = 8
    assert dict(SchoolClass.objects.values_list("pk", "grade")) == grades
    assert SchoolClass.history.count() + Student.history.count() == history + 1  # B1's class only
    # An earlier year after a later one is no rollover either.
    assert rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR - 1).run is None


def test_undo_restores_exactly_what_the_run_did(world, stages, signals):
    junior = stages[SchoolStage.JUNIOR]
    grade_9 = junior._classes[9]
    already_graduated = StudentFactory(school_class=grade_9, status=StudentStatus.GRADUATED)
    before_classes = set(SchoolClass.objects.values_list("pk", "grade", "graduated_in"))
    before_students = set(Student.objects.values_list("pk", "status", "school_class_id"))
    run = rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR).run
    graduates = sorted(pk for r in run.schools.all() for pk in r.graduated_student_ids)

    assert rollover_undo_refusal(run) == ""
    rollover_undo(actor=world.admin_district_a, run=run)

    assert set(SchoolClass.objects.values_list("pk", "grade", "graduated_in")) == before_classes
    assert set(Student.objects.values_list("pk", "status", "school_class_id")) == before_students
    already_graduated.refresh_from_db()
    assert already_graduated.status == StudentStatus.GRADUATED  # graduated before the run: not the run's to undo
    run.refresh_from_db()
    assert (run.status, run.undone_by) == (RolloverStatus.UNDONE, world.admin_district_a)
    assert not RolloverSchool.objects.filter(undone=False).exists()
    assert signals["returned"] == [(graduates, world.admin_district_a)]
    back = Student.objects.get(pk=graduates[0]).history.first()
    assert (back.status, back.history_change_reason) == (StudentStatus.ACTIVE, "撤销学年升级")
    with pytest.raises(RolloverRefused):
        rollover_undo(actor=world.admin_district_a, run=run)
    # Undone, the year may be rolled over again.
    assert rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR).run is not None


def test_undo_is_refused_after_a_new_import_at_one_of_the_schools(world, stages):
    run = rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR).run
    report = _import(world, [STUDENT_HEADER, student_row(grade="8", klass="3", student_no="20269999")])
    assert report.written and report.new == 1

    refusal = rollover_undo_refusal(run)
    assert "导入" in refusal
    with pytest.raises(RolloverRefused):
        rollover_undo(actor=world.admin_district_a, run=run)
    world.class_a1_3.refresh_from_db()
    assert world.class_a1_3.grade == 8 and Rollover.objects.get().status == RolloverStatus.APPLIED


def test_undo_is_refused_after_an_import_job_at_one_of_the_schools_even_one_that_changed_nothing(world, stages):
    from roster.import_jobs import import_job_confirm, import_job_create

    run = rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR).run
    student = world.student_a1_3
    student.refresh_from_db()
    row = [world.school_a1.code, "8", "3", student.student_no, student.name, "女"]
    data = csv_bytes([STUDENT_HEADER[:6], row])
    job = import_job_create(actor=world.school_admin_a1, data=data, filename="same.csv", school=world.school_a1)
    import_job_confirm(actor=world.school_admin_a1, job=job, skip_invalid=False)
    job.refresh_from_db()
    assert job.status == "done" and job.report["unchanged"] == 1

    assert rollover_undo_refusal(run) != ""


def test_a_district_admin_cannot_preview_run_or_undo_another_district(world, stages, client):
    for actor in (world.admin_district_b, world.city_admin_x, world.school_admin_a1, world.centre_district_a):
        with pytest.raises(Http404):
            rollover_preview(actor=actor, scope=world.district_a, school_year=YEAR)
        with pytest.raises(Http404):
            rollover_run(actor=actor, scope=world.district_a, school_year=YEAR)
    with pytest.raises(Http404):
        rollover_run(actor=world.admin_district_a, scope=world.city, school_year=YEAR)
    assert not Rollover.objects.exists()
    run = rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR).run
    with pytest.raises(Http404):
        rollover_undo(actor=world.admin_district_b, run=run)

    client.force_login(world.admin_district_b)
    assert client.get(f"/school-year/?place=district:{world.district_a.pk}").status_code == 404
    assert client.post(f"/school-year/{run.pk}/undo/").status_code == 404
    assert client.get(f"/school-year/{run.pk}/").status_code == 404
    response = client.post("/school-year/run/", {"place": f"district:{world.district_a.pk}", "year": YEAR})
    assert response.status_code == 404
    client.force_login(world.counselor_a1)
    assert client.get("/school-year/").status_code == 404
    denied = AccessLogEntry.objects.filter(object_type="roster.rollover", outcome=AccessOutcome.DENIED)
    assert denied.count() == 5
    run.refresh_from_db()
    assert run.status == RolloverStatus.APPLIED


def test_class_numbers_are_unique_among_current_classes_only(world, stages):
    junior = stages[SchoolStage.JUNIOR]
    rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)
    # 9年级1班 exists twice now: this year's (the former 8-1) and last year's graduates (archived).
    assert SchoolClass.objects.filter(school=junior, grade=9, number=1).count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():
        SchoolClass.objects.create(school=junior, grade=9, number=1)
    SchoolClass.objects.create(school=junior, grade=7, number=1)  # next year's first grade: free again
    assert "2025–2026" in str(SchoolClass.objects.archived().get(school=junior))


def test_the_new_class_lists_imported_after_a_rollover_place_students_without_duplicating_anyone(world, stages):
    junior = stages[SchoolStage.JUNIOR]
    world.school_admin_j = world.school_admin_a1
    from roster import services
    from roster.roles import Role

    services.role_grant(actor=None, user=world.school_admin_a1, role=Role.SCHOOL_ADMIN, node=junior)
    second_8 = SchoolClassFactory(school=junior, grade=8, number=2)
    mover, stayer = Student.objects.filter(school_class=junior._classes[8]).order_by("pk")
    StudentFactory(school_class=second_8)
    rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)
    count = Student.objects.count()

    rows = [STUDENT_HEADER[:6]]
    for student, klass in [(mover, "2"), (stayer, "1")]:  # 9年级: the rolled-over classes; mover changes class
        rows.append([junior.code, "9", klass, student.student_no, student.name, "女"])
    rows.append([junior.code, "7", "1", "20260701", "新生甲", "男"])  # a new first-year student
    report = _import(world, rows)

    assert (report.errors, report.new, report.updated, report.unchanged) == ([], 1, 1, 1)
    assert Student.objects.count() == count + 1
    mover.refresh_from_db()
    stayer.refresh_from_db()
    current_9 = SchoolClass.objects.current().get(school=junior, grade=9, number=2)
    assert mover.school_class == current_9 and current_9.pk == second_8.pk  # the rolled-over class, not an archived one
    assert stayer.school_class_id == junior._classes[8].pk and stayer.status == StudentStatus.ACTIVE
    assert SchoolClass.objects.current().filter(school=junior, grade=7, number=1).exists()
    assert SchoolClass.objects.archived().filter(school=junior).count() == 1  # no class was taken from the archive


def test_a_homeroom_row_of_a_staff_import_after_a_rollover_names_this_years_class(world, stages):
    junior = stages[SchoolStage.JUNIOR]
    from roster import services
    from roster.models import RoleAssignment
    from roster.roles import Role

    services.role_grant(actor=None, user=world.school_admin_a1, role=Role.SCHOOL_ADMIN, node=junior)
    rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)
    rows = [
        ["学校代码", "工号", "姓名", "手机号", "角色", "班级"],
        [junior.code, "T9", "赵老师", "", "班主任", "9年级1班"],
    ]
    with translation.override("zh-hans"):
        report = run_import(
            ImportRequest(kind="staff", data=csv_bytes(rows), filename="staff.csv", actor=world.school_admin_a1,
                          dry_run=False)
        )  # fmt: skip

    assert report.errors == []
    grant = RoleAssignment.objects.get(user__staff_no="T9", role=Role.HOMEROOM_TEACHER)
    # 9年级1班 is this year's class (last year's 8-1), not the archived class of last year's graduates.
    assert grant.school_class == junior._classes[8] and grant.school_class.graduated_in is None


def test_students_on_leave_in_a_graduating_class_stay_on_leave_and_are_listed(world, stages):
    primary = stages[SchoolStage.PRIMARY]
    on_leave = StudentFactory(school_class=primary._classes[6], status=StudentStatus.ON_LEAVE)
    plan = _plan(rollover_preview(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR), primary)
    assert plan.on_leave_graduating == 1 and plan.students_graduating == 2 and plan.ready
    assert any("休学" in note for note in plan.notes)

    rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)

    on_leave.refresh_from_db()
    assert on_leave.status == StudentStatus.ON_LEAVE and on_leave.school_class.graduated_in == 2025


def test_a_school_with_a_class_above_its_top_grade_is_held_back_and_the_others_roll_over(world, stages):
    primary = stages[SchoolStage.PRIMARY]
    SchoolClass.objects.create(school=primary, grade=7, number=1)  # a slip the stage check would refuse today
    preview = rollover_preview(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)
    plan = _plan(preview, primary)
    assert not plan.ready and len(plan.problems) == 1 and "7年级1班" in plan.problems[0]

    result = rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)

    assert primary.pk not in set(result.run.schools.values_list("school", flat=True))
    assert primary._classes[6].students.filter(status=StudentStatus.ACTIVE).count() == 2
    world.class_a1_3.refresh_from_db()
    assert world.class_a1_3.grade == 8


def test_archived_classes_stay_out_of_the_class_list_and_the_access_slips(world, stages, client):
    junior = stages[SchoolStage.JUNIOR]
    rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR)
    archived = SchoolClass.objects.archived().get(school=junior)
    from roster import services
    from roster.roles import Role

    admin = world.school_admin_a2
    services.role_grant(actor=None, user=admin, role=Role.SCHOOL_ADMIN, node=junior)
    client.force_login(admin)
    listed = client.get(f"/admin/roster/schoolclass/?school__id__exact={junior.pk}")
    assert listed.status_code == 200 and archived.pk not in [c.pk for c in listed.context["cl"].result_list]
    assert archived.pk in [
        c.pk for c in client.get("/admin/roster/schoolclass/?archived=graduated").context["cl"].result_list
    ]
    assert client.get(f"/admin-tools/access-slips/?classes={archived.pk}").status_code == 404


def test_the_page_previews_runs_and_undoes_in_chinese(world, stages, client):
    client.force_login(world.admin_district_a)
    page = client.get(f"/school-year/?place=district:{world.district_a.pk}&year={YEAR}")
    text = page.content.decode()
    assert page.status_code == 200 and "学年升级" in text and "2026–2027" in text and "将升级" in text
    assert "school-year-link" in text

    response = client.post("/school-year/run/", {"place": f"district:{world.district_a.pk}", "year": YEAR})
    run = Rollover.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/school-year/{run.pk}/"
    detail = client.get(response["Location"]).content.decode()
    assert "撤销本次升级" in detail and "已执行" in detail

    response = client.post(f"/school-year/{run.pk}/undo/")
    run.refresh_from_db()
    assert response.status_code == 302 and run.status == RolloverStatus.UNDONE
    client.cookies["django_language"] = "en"
    english = client.get(f"/school-year/{run.pk}/")
    assert english.status_code == 200 and "School-year rollover" in english.content.decode()


def test_the_command_previews_runs_and_undoes(world, stages):
    out = io.StringIO()
    code = world.district_a.division_code
    call_command("rollover", district=code, year=YEAR, preview=True, stdout=out)
    assert "ready: 8 schools" in out.getvalue() and not Rollover.objects.exists()
    call_command("rollover", district=code, year=YEAR, stdout=out)
    assert Rollover.objects.get().status == RolloverStatus.APPLIED
    call_command("rollover", district=code, year=YEAR, undo=True, stdout=out)
    assert Rollover.objects.get().status == RolloverStatus.UNDONE
    with pytest.raises(CommandError):
        call_command("rollover", district=code, year=YEAR, user="admin_district_b", stdout=out)


def test_the_school_year_starts_in_september():
    import datetime

    assert current_school_year(datetime.date(2026, 8, 31)) == 2025
    assert current_school_year(datetime.date(2026, 9, 1)) == 2026


def test_the_page_runs_the_same_queries_whatever_the_number_of_runs(world, stages, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(world.admin_district_a)
    url = f"/school-year/?place=district:{world.district_a.pk}&year={YEAR}"

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=YEAR - 1)
    one = queries()
    for year in (YEAR, YEAR + 1):
        rollover_run(actor=world.admin_district_a, scope=world.district_a, school_year=year)
    assert Rollover.objects.count() == 3 and queries() == one
