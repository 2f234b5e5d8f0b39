"""One archive per student (一生一档, issue 19 item 6): a flag next year for a student whose case closed at another
school opens a new case linked to it by `follows`, at the student's school now; the individual report and the case
page tell the whole story across schools and years (screenings with where and when they were taken, cases, moves),
each part as today's rules let the reader see it; the query count does not grow with the story.

王小明 (student_a1_3) was screened yellow at 东湖第一中学 (district A) in 2025-2026; his case there was closed; he moved
to 西山中学 (district B) and was screened orange there in 2026-2027."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases import services as case_services
from cases.archive import school_year_of
from cases.models import Case, CaseStatus, CaseTransfer
from roster.models import MoveBasis, SchoolMove, Student, StudentStatus
from roster.moves import move_confirm
from roster.roles import Role
from screening.services import result_record
from tests.factories.cases import case_url, page
from tests.factories.roster import staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory
from workflows import services

A_SCHOOL, B_SCHOOL = "东湖第一中学", "西山中学"


@pytest.fixture
def story(world):
    """The two schools' story; returns the earlier case, the new one and their processes."""
    past = timezone.now() - datetime.timedelta(days=400)
    student = world.student_a1_3
    year1 = CampaignFactory(name="2025秋季测评", school_year="2025-2026", schools=[world.school_a1],
                            opens_at=past - datetime.timedelta(days=1),
                            closes_at=past + datetime.timedelta(days=6))  # fmt: skip
    first = result_record(campaign=year1, student=student, answers=ANSWERS["yellow"], source="import",
                          submitted_at=past).result  # fmt: skip
    earlier = case_services.case_open_for_flag(first, now=past).case
    earlier_process = services.case_process_start(earlier)
    case_services.team_set(world.counselor_a1, earlier, case_services.team_proposal(earlier))
    closure = case_services.closure_propose(world.counselor_a1, earlier, "A校随访稳定，结案理由保密")
    case_services.closure_decide(world.principal_a1, closure, approve=True)
    # Dated last school year (a browser test's worker opens the case at commit, at today's date).
    Case.objects.filter(pk=earlier.pk).update(opened_at=past, closed_at=past + datetime.timedelta(days=60))
    earlier.refresh_from_db()
    assert earlier.status == CaseStatus.CLOSED

    move = SchoolMove.objects.create(
        student=student, from_school=world.school_a1, from_class=world.class_a1_3, from_student_no=student.student_no,
        from_status=StudentStatus.ACTIVE, to_school=world.school_b1, to_class=world.class_b1, to_student_no="B-0099",
        row={"status": "active"}, basis=MoveBasis.NATIONAL_ID,
    )  # fmt: skip
    move_confirm(world.school_admin_b1, move)
    student = Student.objects.select_related("school").get(pk=student.pk)

    year2 = CampaignFactory(name="2026秋季测评", school_year="2026-2027", schools=[world.school_b1])
    second = result_record(campaign=year2, student=student, answers=ANSWERS["orange"], source="import").result
    opening = case_services.case_open_for_flag(second)
    process = services.case_process_start(opening.case)
    world.counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1")
    world.centre_district_b = staff_with_role(Role.DISTRICT_CENTRE, world.district_b, username="centre_district_b")
    return {"earlier": earlier, "earlier_process": earlier_process, "opening": opening, "case": opening.case,
            "process": process, "student": student}  # fmt: skip


def test_a_flag_next_year_at_another_school_opens_a_new_case_following_the_closed_one(world, story):
    earlier, case = story["earlier"], story["case"]
    assert story["opening"].outcome == "opened" and case.pk != earlier.pk
    assert case.follows_id == earlier.pk and case.school_id == world.school_b1.pk  # at the student's school now
    earlier.refresh_from_db()
    assert earlier.status == CaseStatus.CLOSED and earlier.school_id == world.school_a1.pk  # stays as it ended
    assert case.status == CaseStatus.OPEN and case.tier == "orange"
    assert Case.objects.filter(student=story["student"]).count() == 2


def test_a_staff_referral_after_a_closed_case_opens_a_linked_case_too(world):
    from tests.factories.roster import StudentFactory

    student = StudentFactory(school_class=world.class_a1_3)
    first = case_services.case_refer(world.counselor_a1, student, "情绪低落", "yellow").case
    case_services.team_set(world.counselor_a1, first, case_services.team_proposal(first))
    case_services.closure_decide(world.principal_a1, case_services.closure_propose(world.counselor_a1, first, "好转"),
                                 approve=True)  # fmt: skip
    again = case_services.case_refer(world.homeroom_a1_3, world.student_a1_3, "x", "yellow")  # another student
    second = case_services.case_refer(world.counselor_a1, student, "再次情绪低落", "yellow")
    assert second.outcome == "opened" and second.case.follows_id == first.pk and again.case.follows_id is None
    first.refresh_from_db()
    assert first.status == CaseStatus.CLOSED  # reopening stays a person's explicit action


def report(client, user, student):
    client.force_login(user)
    response = client.get(reverse("reports:student_report", args=[student.pk]))
    assert response.status_code == 200
    return response


def test_the_receiving_schools_psychology_teacher_reads_both_schools_screenings_and_only_a_line_of_the_old_case(
    client, world, story
):
    response = report(client, world.counselor_b1, story["student"])
    archive = response.context["report"].archive
    assert [(s.campaign, s.school, s.school_year) for s in archive.screenings] == [
        ("2026秋季测评", B_SCHOOL, "2026-2027"), ("2025秋季测评", A_SCHOOL, "2025-2026"),
    ]  # fmt: skip
    new, old = archive.cases
    assert (new.case_id, new.readable, new.school, new.tier, new.follows_id) == (
        story["case"].pk, True, B_SCHOOL, "orange", story["earlier"].pk,
    )  # fmt: skip
    assert (old.case_id, old.readable, old.school, old.tier, old.status) == (
        story["earlier"].pk,
        False,
        A_SCHOOL,
        "",
        CaseStatus.CLOSED,
    )  # fmt: skip  (it exists; nothing of it)
    assert old.school_year == school_year_of(story["earlier"].opened_at) and not old.url
    assert [(m.kind, m.from_school, m.to_school) for m in archive.moves] == [("move", A_SCHOOL, B_SCHOOL)]
    (summary,) = response.context["report"].cases  # only the readable case is summarised
    assert summary.case == story["case"] and summary.follows == old
    text = page(response)
    assert f"{A_SCHOOL}的个案，2025-2026学年，{old.status_label}（内容不在您的查看范围内）" in text
    assert old.status_label == "已结束"
    assert case_url(story["earlier_process"]) not in text and "结案理由保密" not in text
    assert case_url(story["process"]) in text  # the readable case is linked


def test_the_city_centre_reads_both_cases_in_full(client, world, story):
    archive = report(client, world.city_centre, story["student"]).context["report"].archive
    assert [(c.case_id, c.readable, c.tier) for c in archive.cases] == [
        (story["case"].pk, True, "orange"), (story["earlier"].pk, True, "yellow"),
    ]  # fmt: skip
    assert archive.cases[1].url == case_url(story["earlier_process"])


def test_the_earlier_school_reads_its_own_case_page_without_the_students_new_school(client, world, story):
    client.force_login(world.counselor_a1)
    response = client.get(case_url(story["earlier_process"]))
    assert response.status_code == 200
    sections = response.context["page"]
    assert [c.case_id for c in sections.archive.cases] == [story["earlier"].pk]  # B's case: not even a line
    assert sections.archive.screenings == [] and sections.archive.moves == []  # the student is B's now
    assert sections.followed_by == []
    archive_html = page(response).split('id="case-archive"')[1].split("</section>")[0]
    assert B_SCHOOL not in archive_html
    assert client.get(reverse("reports:student_report", args=[story["student"].pk])).status_code == 404


def test_the_new_case_page_links_back_to_the_case_it_follows_as_the_reader_may_see_it(client, world, story):
    client.force_login(world.counselor_b1)
    response = client.get(case_url(story["process"]))
    sections = response.context["page"]
    assert sections.follows.case_id == story["earlier"].pk and not sections.follows.readable
    text = page(response)
    assert "接续东湖第一中学的个案" in text and case_url(story["earlier_process"]) not in text
    client.force_login(world.city_centre)  # reads both: a link each way
    text = page(client.get(case_url(story["process"])))
    assert case_url(story["earlier_process"]) in text and f"接续个案 #{story['earlier'].pk}" in text
    text = page(client.get(case_url(story["earlier_process"])))
    assert f"后续个案 #{story['case'].pk}" in text and case_url(story["process"]) in text


def test_a_homeroom_teacher_on_the_team_sees_no_archive(client, world, story):
    from tests.factories.cases import take
    from workflows.flows import CaseFlow

    homeroom_b1 = staff_with_role(Role.HOMEROOM_TEACHER, world.class_b1, username="homeroom_b1")
    staff_with_role(Role.PRINCIPAL, world.school_b1, username="principal_b1")  # 三包一's school leader
    process = story["process"]
    services.triage_done(world.counselor_b1, take(world.counselor_b1, process, CaseFlow.triage), tier="orange",
                         reason="确认")  # fmt: skip
    case_services.team_set(world.counselor_b1, story["case"], case_services.team_proposal(story["case"]))
    client.force_login(homeroom_b1)
    response = client.get(case_url(process))
    assert response.status_code == 200 and response.context["page"].archive is None
    assert 'id="case-archive"' not in page(response) and "2025秋季测评" not in page(response)


def test_the_archive_costs_the_same_queries_however_long_the_story(client, world, story):
    student = story["student"]

    def queries(url) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    client.force_login(world.city_centre)
    report_url = reverse("reports:student_report", args=[student.pk])
    before = (queries(report_url), queries(case_url(story["process"])))
    # More of the story: another screening, a transfer of the earlier case, a second move.
    year3 = CampaignFactory(name="2027春季测评", school_year="2026-2027", schools=[world.school_b1])
    result_record(campaign=year3, student=student, answers=ANSWERS["green"], source="import")
    now = timezone.now()
    CaseTransfer.objects.create(case=story["earlier"], from_school=world.school_a1, to_school=world.school_b1,
                                tier="yellow", status="cancelled", requested_at=now, due_at=now)  # fmt: skip
    SchoolMove.objects.create(
        student=student, from_school=world.school_a2, from_class=world.class_a2, from_student_no="x",
        from_status=StudentStatus.ACTIVE, to_school=world.school_b1, to_class=world.class_b1, to_student_no="y",
        basis=MoveBasis.PROBABLE, status="confirmed", decided_at=now,
    )  # fmt: skip
    after = (queries(report_url), queries(case_url(story["process"])))
    archive = client.get(report_url).context["report"].archive
    assert len(archive.screenings) == 3 and len(archive.moves) == 3
    assert after == before
