"""The task frontend as people use it: the inbox and queue pages, claiming, a step's form, the case page and its
timeline; scoped everywhere (another school's task or case is a 404), refusals as clear messages that change nothing."""

import datetime

import pytest
from django.db import connection
from viewflow.workflow.status import STATUS

from cases.models import InterviewNote
from roster.roles import Role
from tests.factories.cases import active, case_url, many_flagged_cases, page, staffed_yellow, take, to_follow_up
from tests.factories.cases import task_url as url
from tests.factories.roster import StudentFactory, staff_with_role
from workflows import services
from workflows.flows import CaseFlow

INBOX = "/work/case/inbox/"
QUEUE = "/work/case/queue/"


def test_a_psychology_teacher_claims_triage_from_the_queue_and_completes_it(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    client.force_login(world.counselor_a1)
    queue = client.get(QUEUE)
    assert queue.status_code == 200
    triage = active(process, CaseFlow.triage)
    assert url(triage) in page(queue)
    assert world.student_a1_3.name not in page(queue)  # masked in lists
    assert client.get(url(triage)).url == url(triage, "assign")
    assert client.get(url(triage, "assign")).status_code == 200
    response = client.post(url(triage, "assign"))
    assert response.url == url(triage, "execute")
    form = client.get(url(triage, "execute"))
    assert form.status_code == 200 and 'name="tier"' in page(form)
    done = client.post(url(triage, "execute"), {"tier": "yellow", "reason": "面谈确认"})
    assert done.status_code == 302, page(done)
    triage.refresh_from_db()
    assert triage.status == STATUS.DONE
    case.refresh_from_db()
    assert case.triaged


def test_the_interview_form_records_the_note_and_the_case_timeline_shows_it(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    interview = active(process, CaseFlow.interview)
    assert interview.owner == world.counselor_a1  # the psychology teacher's seat
    client.force_login(world.counselor_a1)
    inbox = page(client.get(INBOX))
    assert url(interview) in inbox and "case-tier" in inbox
    response = client.post(url(interview, "execute"), {"note": "学生近期睡眠差，同意每周面谈。"})
    assert response.status_code == 302 and response.url == INBOX
    assert InterviewNote.objects.get(case=case).note == "学生近期睡眠差，同意每周面谈。"
    case_page = page(client.get(case_url(process)))
    assert "interview note" in case_page.lower() or "访谈记录" in case_page
    assert world.student_a1_3.name in case_page  # the team sees the name on the case page
    assert f"{world.counselor_a1.name}</div>" in case_page  # the note's author by name, not by username
    # The homeroom teacher on the team sees the case, but not the interview note's entry.
    client.force_login(world.homeroom_a1_3)
    homeroom_page = client.get(case_url(process))
    assert homeroom_page.status_code == 200
    assert "访谈记录" not in page(homeroom_page)


def test_an_empty_or_refused_step_changes_nothing_and_says_why(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    interview = active(process, CaseFlow.interview)
    client.force_login(world.counselor_a1)
    response = client.post(url(interview, "execute"), {"note": ""})
    assert response.status_code == 200 and "errorlist" in page(response) or "vf-field" in page(response)
    interview.refresh_from_db()
    assert interview.status == STATUS.ASSIGNED and not InterviewNote.objects.exists()
    # A plan whose measure names someone off the team is refused by the service: a form error, nothing written.
    services.interview_done(world.counselor_a1, interview, note="面谈")
    plan = active(process, CaseFlow.plan)
    response = client.post(url(plan, "execute"), {
        "goals": "稳定情绪", "review_on": (datetime.date.today() + datetime.timedelta(days=30)).isoformat(),
        "measure_1": "每周谈话", "responsible_1": world.principal_a1.pk,
    })  # fmt: skip
    assert response.status_code == 200
    plan.refresh_from_db()
    assert plan.status == STATUS.ASSIGNED and not case.plans.exists()


def test_a_task_taken_or_done_by_someone_else_answers_with_a_message(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    other = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor2_a1")
    triage = active(process, CaseFlow.triage)
    client.force_login(other)
    assert client.get(url(triage, "assign")).status_code == 200  # both look at the claim page
    services.task_claim(world.counselor_a1, triage)  # the colleague is quicker
    response = client.post(url(triage, "assign"), follow=True)
    assert "该任务已由他人完成或领取，未做任何更改。" in page(response)
    triage.refresh_from_db()
    assert triage.owner == world.counselor_a1
    # Completing it is refused too; the colleague's form then finds it done.
    assert client.post(url(triage, "execute"), {"tier": "red", "reason": "x"}).status_code == 302
    triage.refresh_from_db()
    assert triage.status == STATUS.ASSIGNED and case.tier == "yellow"
    services.triage_done(world.counselor_a1, triage, tier="yellow", reason="确认")
    client.force_login(world.counselor_a1)
    response = client.get(url(triage, "execute"), follow=True)
    assert response.redirect_chain[-1][0] == case_url(process)


@pytest.mark.parametrize("suffix", ["", "assign/", "execute/", "detail/"])
def test_another_schools_task_is_missing_not_forbidden(client, world, open_case, suffix):
    case, process = open_case(world.student_a1_3, "yellow")
    triage = active(process, CaseFlow.triage)
    counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1")
    client.force_login(counselor_b1)
    assert client.get(url(triage) + suffix).status_code == 404
    assert client.post(url(triage) + suffix).status_code == 404
    assert client.get(case_url(process)).status_code == 404
    assert client.get(CaseFlow.instance.reverse("process_chart", args=[process.pk])).status_code == 404
    for listing in (INBOX, QUEUE, "/work/case/flows/", "/work/case/tasks/", "/work/case/archive/"):
        response = client.get(listing)
        assert response.status_code == 200 and url(triage) not in page(response) and case_url(process) not in page(
            response
        )  # fmt: skip
    triage.refresh_from_db()
    assert triage.status == STATUS.NEW and triage.owner is None


def test_a_homeroom_teacher_sees_only_the_cases_of_their_team(client, world, open_case):
    mine, my_process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, my_process)
    # A case in the same class whose team the homeroom teacher is not on (not staffed yet).
    classmate = StudentFactory(school_class=world.class_a1_3)
    other, other_process = open_case(classmate, "yellow")
    client.force_login(world.homeroom_a1_3)
    cases = page(client.get("/work/case/flows/"))
    assert case_url(my_process) in cases
    assert case_url(other_process) not in cases
    assert client.get(case_url(other_process)).status_code == 404
    assert client.get(url(active(other_process, CaseFlow.triage))).status_code == 404


def test_people_without_a_case_role_are_kept_out(client, world):
    client.force_login(world.school_admin_a1)
    assert client.get(INBOX).status_code == 403
    client.logout()
    response = client.get(INBOX)
    assert response.status_code in (302, 403)


def _queries(client, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured)


def test_the_task_pages_cost_the_same_queries_at_10_and_1000_tasks(client, world):
    from viewflow.workflow.models import Task

    pages = (QUEUE, INBOX, "/work/case/flows/", "/work/case/tasks/")
    client.force_login(world.counselor_a1)

    def assign_half():
        open_tasks = Task.objects.filter(flow_task=CaseFlow.triage, status=STATUS.NEW)
        half = list(open_tasks.values_list("pk", flat=True)[: open_tasks.count() // 2])
        Task.objects.filter(pk__in=half).update(owner=world.counselor_a1, status=STATUS.ASSIGNED)

    many_flagged_cases(world, 10)
    assign_half()
    client.get(INBOX)  # the session and the user's scope are read once per request either way
    small = {path: _queries(client, path) for path in pages}
    many_flagged_cases(world, 990, start=10)
    assign_half()
    large = {path: _queries(client, path) for path in pages}
    assert large == small
    # Of them 4 write the access-log entry of the rows shown (PostgreSQL: one more, the chain's advisory lock); the
    # case list reads its school filter's choices.
    assert max(large.values()) <= 16 + (connection.vendor == "postgresql"), large


def test_a_homeroom_teacher_raises_a_concern_from_the_inbox_and_it_waits_in_the_signal_queue(client, world):
    """The old "refer a student" is now 上报关注 (issue 20): a signal the psychology teachers triage, not a case."""
    from cases.models import Case, Signal

    client.force_login(world.homeroom_a1_3)
    inbox = page(client.get(INBOX))
    assert "/care/concern/new/" in inbox and "上报关注" in inbox  # the page action
    assert client.get("/work/case/refer/")["Location"] == "/care/concern/new/"  # the old address leads there
    assert client.get("/care/concern/new/", {"student": world.student_b1.pk}).status_code == 404  # another school
    response = client.post(f"/care/concern/new/?student={world.student_a1_3.pk}", {
        "seen": ["mood"], "urgency": "soon", "reporter": "staff", "detail": "同学反映其近期情绪低落，多次提到不想上学",
    })  # fmt: skip
    assert response.status_code == 302
    signal = Signal.objects.get(student=world.student_a1_3)
    assert (signal.source, signal.tier, signal.raised_by, signal.status) == ("concern", "orange",
                                                                             world.homeroom_a1_3, "open")  # fmt: skip
    assert not Case.objects.exists()  # the psychology teachers triage it from the signal queue


def test_a_closed_case_is_reopened_by_hand_from_its_page(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    services.triage_done(world.counselor_a1, take(world.counselor_a1, process, CaseFlow.triage), tier="green",
                         reason="误报")  # fmt: skip
    services.closure_decided(world.principal_a1, take(world.principal_a1, process, CaseFlow.approve_false_positive),
                             approve=True)  # fmt: skip
    case.refresh_from_db()
    assert case.status == "closed"
    client.force_login(world.homeroom_a1_3)  # not allowed to reopen: no button, and the service refuses
    client.force_login(world.counselor_a1)
    reopen = CaseFlow.instance.reverse("case_reopen", args=[process.pk])
    assert reopen in page(client.get(case_url(process)))
    response = client.post(reopen, {"reason": "家长来电反映情况反复"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "open" and case.processes.count() == 2
    assert "reopened: 家长来电反映情况反复" in [h.history_change_reason for h in case.history.all()]


def test_a_principal_hands_a_leavers_cases_to_a_successor(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    successor = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_a1, username="counselor2_a1")
    client.force_login(world.counselor_a1)
    assert client.get("/work/case/hand-over/").status_code == 404  # principals only
    client.force_login(world.principal_a1)
    response = client.post("/work/case/hand-over/", {"leaver": world.counselor_a1.pk, "successor": successor.pk})
    assert response.status_code == 302, page(response)
    assert case.team.get(seat="psychology_teacher", left_at__isnull=True).user == successor
    assert active(process, CaseFlow.interview).owner == successor


def test_an_orange_case_worked_through_every_step_page(client, world, open_case):
    """Each step's form, as its person fills it in, through to the district centre's closure decision."""
    from cases.models import Referral

    vice = staff_with_role(Role.PRINCIPAL, world.school_a1, username="vice_principal_a1")
    case, process = open_case(world.student_a1_3, "orange")
    soon = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()

    def do(user, node, data, claim=False):
        task = active(process, node)
        client.force_login(user)
        if claim:
            assert client.post(url(task, "assign")).status_code == 302
        response = client.post(url(task, "execute"), data)
        assert response.status_code == 302, page(response)
        task.refresh_from_db()
        assert task.status == STATUS.DONE, node

    do(world.counselor_a1, CaseFlow.triage, {"tier": "orange", "reason": "面谈确认"}, claim=True)
    team = {"psychology_teacher": world.counselor_a1.pk, "homeroom_teacher": world.homeroom_a1_3.pk,
            "school_leader": world.principal_a1.pk}  # fmt: skip
    do(world.counselor_a1, CaseFlow.staffing, team, claim=True)
    do(world.homeroom_a1_3, CaseFlow.parent_contact, {"guardian": "母亲", "channel": "phone",
                                                      "outcome": "家长同意配合", "consent": "given"})  # fmt: skip
    do(world.counselor_a1, CaseFlow.interview, {"note": "有自伤想法，无具体计划", "restricted": "on"})
    plan = {
        "goals": "确保安全",
        "review_on": soon,
        "needs_referral": "on",
        "measure_1": "每周面谈",
        "responsible_1": world.counselor_a1.pk,
        "measure_2": "家校沟通",
        "responsible_2": world.homeroom_a1_3.pk,
    }
    do(world.counselor_a1, CaseFlow.plan, plan)
    do(world.counselor_a1, CaseFlow.request_referral, {"institution": "市精神卫生中心", "reason": "需要专业评估",
                                                       "parental_consent": "given"})  # fmt: skip
    do(vice, CaseFlow.approve_referral, {"approve": "yes", "note": "同意"}, claim=True)
    do(world.counselor_a1, CaseFlow.make_referral, {"referred_on": datetime.date.today().isoformat(),
                                                    "outcome": "已预约门诊"})  # fmt: skip
    referral = Referral.objects.get(case=case)
    feedback = CaseFlow.instance.reverse("referral_feedback", args=[process.pk, referral.pk])
    assert feedback in page(client.get(case_url(process)))
    assert client.post(feedback, {"feedback_received_on": datetime.date.today().isoformat(),
                                  "feedback": "诊断为中度抑郁，建议药物治疗并复诊"}).status_code == 302  # fmt: skip
    referral.refresh_from_db()
    assert referral.feedback == "诊断为中度抑郁，建议药物治疗并复诊"
    to_follow_up(process)
    do(world.counselor_a1, CaseFlow.follow_up, {"note": "情况稳定", "outcome": "propose_closure",
                                                "reason": "连续两次随访稳定"})  # fmt: skip
    do(world.centre_district_a, CaseFlow.approve_closure, {"approve": "yes", "evaluation": "达到结案标准"},
       claim=True)  # fmt: skip
    case.refresh_from_db()
    assert case.status == "closed"
    assert case.interviews.get().restricted
    assert [m.responsible for m in case.plans.get().measures.order_by("pk")] == [world.counselor_a1,
                                                                                  world.homeroom_a1_3]  # fmt: skip


def test_stock_pages_that_bypass_the_services_are_not_mounted(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    client.force_login(world.counselor_a1)
    for path in ("/work/case/queue/assign/", "/work/case/inbox/unassign/", f"/work/case/{process.pk}/cancel/"):
        assert client.post(path).status_code == 404
    assert client.get("/work/case/").url == INBOX  # the kanban dashboard gives way to the inbox
    # The other steps' pages (start, timers, joins) check the case's scope too.
    start = process.task_set.get(flow_task=CaseFlow.start)
    counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1")
    client.force_login(counselor_b1)
    assert client.get(url(start, "detail")).status_code in (403, 404)


def test_a_yellow_cases_optional_parent_contact_is_recorded_from_the_case_page(client, world, open_case):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    assert not process.task_set.filter(flow_task=CaseFlow.parent_contact).exists()  # optional for yellow
    client.force_login(world.homeroom_a1_3)
    new = CaseFlow.instance.reverse("parent_contact_extra", args=[process.pk])
    assert new in page(client.get(case_url(process)))
    response = client.post(new, {"guardian": "父亲", "channel": "in_person", "outcome": "家长表示会多陪伴",
                                 "consent": "given"})  # fmt: skip
    assert response.status_code == 302
    assert case.parent_contacts.get().contacted_by == world.homeroom_a1_3


def test_the_district_auditor_reviews_a_case_reads_who_viewed_it_and_exports_it(client, world, open_case):
    import io

    import openpyxl

    from roster.models import AccessLogEntry

    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    client.force_login(world.counselor_a1)
    client.get(case_url(process))  # the psychology teacher reads the case
    client.force_login(world.auditor_district_a)
    review = CaseFlow.instance.reverse("case_review", args=[process.pk])
    assert review in page(client.get(case_url(process)))  # the auditor's own visit, logged too
    response = client.get(review)
    assert response.status_code == 200
    rows = response.context["entries"]
    readers = {e.who for e in rows if e.kind == "access"}
    assert {world.counselor_a1.name, world.auditor_district_a.name} <= readers  # by name (issue 18)
    changed = [e for e in rows if e.kind == "change" and "→" in e.detail]
    assert any("黄色" in e.detail or "分诊：黄色" in e.reason for e in changed + rows)  # in the reader's language
    only_counselor = client.get(review, {"person": "counselor_a1"}).context["entries"]
    assert only_counselor and {e.who for e in only_counselor} == {world.counselor_a1.name}
    export = client.get(review, {"format": "xlsx"})
    assert export["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(export.content)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert len(cells[0]) == 6 and cells[0][1] == "办理人"  # When, Who, Kind, What, Detail, Reason
    assert [world.counselor_a1.name, "访问"] in [row[1:3] for row in cells[1:]]  # the kind in words, not a code
    assert any("心理教师" in (row[4] or "") for row in cells[1:] if row[1] == world.counselor_a1.name)  # their role
    assert AccessLogEntry.objects.filter(actor="auditor_district_a", action="export", object_ids=str(case.pk)).exists()
    # Read-only: any POST is refused and logged; nothing changes.
    refused = client.post("/work/case/refer/", {"student_no": world.student_a1_5.student_no, "tier": "red",
                                                "reason": "x"})  # fmt: skip
    assert refused.status_code == 404
    assert AccessLogEntry.objects.filter(actor="auditor_district_a", action="change", outcome="denied").exists()
    from cases.models import Case

    assert not Case.objects.filter(student=world.student_a1_5).exists()
    # Another district's auditor finds nothing; a psychology teacher has no review page.
    client.force_login(world.counselor_a1)
    assert client.get(review).status_code == 404


def test_the_case_list_finds_a_student_by_number(client, world, open_case):
    mine, my_process = open_case(world.student_a1_3, "yellow")
    other, other_process = open_case(world.student_a1_5, "orange")
    client.force_login(world.counselor_a1)
    found = page(client.post("/work/case/flows/", {"_search": world.student_a1_3.student_no}, follow=True))
    assert case_url(my_process) in found and case_url(other_process) not in found


def test_the_case_list_names_the_school_and_filters_by_the_schools_in_scope(
    client,
    world,
    campaign,
    open_case,
):
    campaign.schools.add(world.school_a2)
    _, a1_process = open_case(world.student_a1_3, "yellow")
    _, a2_process = open_case(world.student_a2, "orange")
    _, b1_process = open_case(world.student_b1, "red")
    client.force_login(world.auditor_district_a)
    assert 'class="case-list-link" href="/work/case/flows/"' in page(client.get("/"))  # found from any page
    response = client.get("/work/case/flows/")
    shown = page(response)
    assert world.school_a1.name in shown and world.school_a2.name in shown  # a column: whose case it is
    assert "/care/concern/new/" not in shown  # an auditor only reads
    assert case_url(b1_process) not in shown
    offered = list(response.context["view"].filterset.form["school"].field.queryset)
    assert offered == [world.school_a1, world.school_a2]  # never another district's school
    only_a2 = page(client.get("/work/case/flows/", {"school": world.school_a2.pk}))
    assert case_url(a2_process) in only_a2 and case_url(a1_process) not in only_a2
    by_tier = page(client.get("/work/case/flows/", {"tier": "yellow"}))
    assert case_url(a1_process) in by_tier and case_url(a2_process) not in by_tier
    # Naming another district's school filters nothing in: the choice is refused, the scope still holds.
    forged = page(client.get("/work/case/flows/", {"school": world.school_b1.pk}))
    assert case_url(b1_process) not in forged and case_url(a1_process) not in forged  # nor more than asked for
    for malformed in ({"school": "x"}, {"tier": "purple"}, {"psychologist": "999999"}, {"opened_in": "2026-13"}):
        assert case_url(a1_process) not in page(client.get("/work/case/flows/", malformed)), malformed
    # A psychology teacher sees one school: no school column.
    client.force_login(world.counselor_a1)
    shown = page(client.get("/work/case/flows/"))
    assert world.school_a1.name not in shown and "/care/concern/new/" in shown
    client.force_login(world.school_admin_a1)  # rosters, not cases: no link to a door that refuses them
    assert "case-list-link" not in page(client.get("/"))


def test_a_restricted_interview_note_is_read_only_by_the_schools_psychology_teachers_and_principal(
    client,
    world,
    open_case,
):
    case, process = open_case(world.student_a1_3, "yellow")
    staffed_yellow(world, process)
    services.interview_done(world.counselor_a1, active(process, CaseFlow.interview), note="家庭冲突，提及自伤念头",
                            restricted=True)  # fmt: skip
    note = InterviewNote.objects.get(case=case)
    from cases import services as case_services

    case_services.interview_record(world.counselor_a1, case, "复谈：情绪平稳")  # an ordinary note beside it
    for reader in (world.counselor_a1, world.principal_a1):
        client.force_login(reader)
        shown = page(client.get(case_url(process)))
        assert "家庭冲突，提及自伤念头" in shown and "复谈：情绪平稳" in shown
    # The district centre and auditor may read the case's ordinary notes, and learn that a restricted note exists and
    # when, but never its words: not on the case page, the timeline, the audit review or its export.
    for reader in (world.centre_district_a, world.auditor_district_a):
        client.force_login(reader)
        shown = page(client.get(case_url(process)))
        assert "复谈：情绪平稳" in shown and "家庭冲突" not in shown
        assert 'class="note-withheld"' in shown
    review = CaseFlow.instance.reverse("case_review", args=[process.pk])
    entries = client.get(review).context["entries"]
    assert [e for e in entries if e.kind == "change" and "interview" in e.what.lower() or "访谈" in e.what]
    assert not any("家庭冲突" in f"{e.detail}{e.reason}" for e in entries)
    # Editing the restricted note's text leaves no trace of either version for them.
    note.note = "家庭冲突加剧"
    note._change_reason = "补充"
    note.save()
    entries = client.get(review).context["entries"]
    assert not any("家庭冲突" in f"{e.detail}{e.reason}" for e in entries)
    export = client.get(review, {"format": "xlsx"})
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(export.content)) as xlsx:
        assert not any("家庭冲突" in xlsx.read(name).decode("utf-8", "replace") for name in xlsx.namelist())
    # A homeroom teacher on the team sees no interview note at all.
    client.force_login(world.homeroom_a1_3)
    assert "interview-notes" not in page(client.get(case_url(process)))
