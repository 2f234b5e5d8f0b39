"""The access matrix of a child's records: persona × object (in their own school, a sibling school of the district,
another district) × what they do (list, open, change, export), on both databases.

Read each row as: who may reach which object through which page. Out of reach is indistinguishable from missing: the
same 404 a made-up id gets (the admin answers non-admin roles one 403 for every address, existing or not). And every
request writes exactly one access-log entry, with the outcome the page had: a list names the ids it showed; a refusal
is "denied".
"""

import pytest
from django.urls import reverse
from viewflow.workflow.status import STATUS

from cases import services as case_services
from roster.mentoring import mentor_assign
from roster.models import AccessLogEntry
from roster.roles import Role
from roster.services import role_grant
from screening.models import ScreeningResult
from screening.services import result_record
from tests.factories.cases import active, staffed_yellow
from tests.factories.roster import staff_with_role
from tests.factories.screening import ANSWERS, CampaignFactory
from workflows import services
from workflows.flows import CaseFlow

PLACES = ("own", "sibling", "other_district")  # schools a1, a2 (same district), b1 (district b)
STUDENT = {"own": "student_a1_3", "sibling": "student_a2", "other_district": "student_b1"}

# persona → the places whose records they reach, per kind of record. A homeroom teacher reaches only the case whose
# team they sit on (the own-school case is staffed with them) and never a screening result; admin roles never read
# cases or results, only the roster; auditors read everything in their district and change nothing.
A1, A = {"own"}, {"own", "sibling"}
ALL = set(PLACES)
READS = {
    "counselor_a1": {"case": A1, "result": set(), "student": set()},
    "principal_a1": {"case": A1, "result": set(), "student": set()},
    "homeroom_a1_3": {"case": A1, "result": set(), "student": set()},
    "school_admin_a1": {"case": set(), "result": set(), "student": A1},
    "centre_district_a": {"case": A, "result": A, "student": A},
    "auditor_district_a": {"case": A, "result": A, "student": A},
    "city_centre": {"case": ALL, "result": ALL, "student": ALL},
    # The narrowest roles (issue 20): a mentor of a1 (mentoring the own-school student) and a subject teacher of its
    # class read no case, no result and no roster record anywhere; their own pages are under /care/ (below).
    "mentor_a1": {"case": set(), "result": set(), "student": set()},
    "subject_a1_3": {"case": set(), "result": set(), "student": set()},
}
# Readers of flagged results in the screening pages (not the admin): the school's psychology teachers and principal
# too. The admin is for admin roles and the centres: a teacher gets the admin's one 403 for every address.
FLAGGED_READS = {**{p: r["result"] for p, r in READS.items()}, "counselor_a1": A1, "principal_a1": A1}
ADMIN_SITE = {"school_admin_a1", "centre_district_a", "auditor_district_a", "city_centre"}
PERSONAS = list(READS)
# People holding two roles at two places (issue 17, finding 1): each role reaches its own place only. The auditor of
# district A who is the principal of b1 reads A's cases and b1's, reviews A's alone and changes nothing of A's; the
# psychology teacher of a1 who is a homeroom teacher at b1 reads no b1 case (not on its team).
TWO_ROLES = {
    "auditor_a_principal_b1": ((Role.DISTRICT_AUDITOR, "district_a"), (Role.PRINCIPAL, "school_b1")),
    "counselor_a1_homeroom_b1": ((Role.PSYCHOLOGY_TEACHER, "school_a1"), (Role.HOMEROOM_TEACHER, "class_b1")),
}
CASE_READS = {
    **{p: r["case"] for p, r in READS.items()},
    "auditor_a_principal_b1": ALL,
    "counselor_a1_homeroom_b1": A1,
}
REVIEWS = {"auditor_district_a": A, "auditor_a_principal_b1": A}


@pytest.fixture
def records(world):
    """One flagged student with an open case in each place; the own-school case staffed (homeroom on the team)."""
    world.counselor_b1 = staff_with_role(Role.PSYCHOLOGY_TEACHER, world.school_b1, username="counselor_b1")
    campaign = CampaignFactory(schools=[world.school_a1, world.school_a2, world.school_b1])
    out = {}
    for place, student in STUDENT.items():
        result = result_record(campaign=campaign, student=getattr(world, student), answers=ANSWERS["yellow"],
                               source="import").result  # fmt: skip
        case = case_services.case_open_for_flag(result).case
        out[place] = {"result": result, "case": case, "process": services.case_process_start(case)}
    staffed_yellow(world, out["own"]["process"])
    out["campaign"] = campaign
    world.mentor_a1 = staff_with_role(Role.MENTOR, world.school_a1, username="mentor_a1")
    mentor_assign(actor=None, student=world.student_a1_3, mentor=world.mentor_a1)
    world.subject_a1_3 = staff_with_role(Role.SUBJECT_TEACHER, world.class_a1_3, username="subject_a1_3")
    for username, roles in TWO_ROLES.items():
        (first_role, first_node), (second_role, second_node) = roles
        person = staff_with_role(first_role, getattr(world, first_node), username=username)
        role_grant(actor=None, user=person, role=second_role, node=getattr(world, second_node))
        setattr(world, username, person)
    return out


def _one_entry(before: int) -> AccessLogEntry:
    entries = list(AccessLogEntry.objects.filter(pk__gt=before).order_by("pk"))
    assert len(entries) == 1, [(e.action, e.object_type, e.outcome) for e in entries]
    return entries[0]


def _last_id() -> int:
    return AccessLogEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _open_task(process):
    """The case's first human step still waiting: the interview (staffed case) or the triage (in the queue)."""
    for node in (CaseFlow.interview, CaseFlow.triage):
        waiting = process.task_set.filter(flow_task=node, status__in=[STATUS.NEW, STATUS.ASSIGNED])
        if waiting.exists():
            return active(process, node)
    raise AssertionError("no open step")


def _url(task, name):
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (the site names the flow's URLs when the URLconf loads)
    return task.flow_task.reverse(name, args=[task.process_id, task.pk])


# --- Cases: the task frontend ----------------------------------------------------------------------------------------


def test_roles_that_never_read_cases_meet_the_case_sites_door_everywhere(client, world, records):
    """A school admin reads no case anywhere: one 403 for every address of the case site, existing or not."""
    client.force_login(world.school_admin_a1)
    process = records["own"]["process"]
    task = _open_task(process)
    for method, url in (
        ("get", CaseFlow.instance.reverse("process_detail", args=[process.pk])),
        ("get", CaseFlow.instance.reverse("process_detail", args=[process.pk + 10_000])),
        ("get", "/work/case/flows/"),
        ("post", _url(task, "execute")),
        ("get", CaseFlow.instance.reverse("case_review", args=[process.pk]) + "?format=xlsx"),
    ):
        before = _last_id()
        assert getattr(client, method)(url).status_code == 403
        assert _one_entry(before).outcome == "denied"


@pytest.mark.parametrize("persona", [p for p in CASE_READS if CASE_READS[p]])
@pytest.mark.parametrize("place", PLACES)
def test_case_pages(client, world, records, persona, place):
    client.force_login(getattr(world, persona))
    reach = place in CASE_READS[persona]
    process, case = records[place]["process"], records[place]["case"]
    page = CaseFlow.instance.reverse("process_detail", args=[process.pk])
    missing = CaseFlow.instance.reverse("process_detail", args=[process.pk + 10_000])

    # Open: the case page, or the very answer a case that does not exist gets.
    before = _last_id()
    response = client.get(page)
    entry = _one_entry(before)
    if reach:
        assert response.status_code == 200
        assert (entry.action, entry.outcome, entry.object_ids) == ("view", "ok", str(case.pk))
    else:
        assert response.status_code == 404
        assert (entry.action, entry.outcome) == ("view", "denied")
        gone = client.get(missing)
        assert (gone.status_code, gone.content) == (404, response.content)

    # List: the case list shows it or not; one entry naming exactly the ids shown.
    before = _last_id()
    response = client.get("/work/case/flows/")
    entry = _one_entry(before)
    assert response.status_code == 200 and (entry.action, entry.outcome) == ("list", "ok")
    assert (str(case.pk) in entry.object_ids.split(",")) == reach
    assert (page in response.content.decode()) == reach

    # Change: a POST to the case's open step (an empty form: a refusal or a form error, never a change).
    task = _open_task(process)
    status_before = (task.status, task.owner_id)
    before = _last_id()
    response = client.post(_url(task, "execute"), {})
    entry = _one_entry(before)
    task.refresh_from_db()
    assert (task.status, task.owner_id) == status_before
    if reach and persona != "auditor_district_a":
        # Nothing changed, and the log says so: the refusal (a task not theirs to do yet), or the reading of the case
        # the form error re-showed. Never "change ok" (issue 17, finding 7).
        assert response.status_code in (200, 302)
        assert (entry.action, entry.outcome) in (("change", "denied"), ("view", "ok"))
    else:  # out of reach, or an auditor (who changes nothing anywhere)
        assert response.status_code == 404 and (entry.action, entry.outcome) == ("change", "denied")

    # Export: the audit review as XLSX, the district auditor's alone.
    before = _last_id()
    response = client.get(CaseFlow.instance.reverse("case_review", args=[process.pk]), {"format": "xlsx"})
    entry = _one_entry(before)
    if place in REVIEWS.get(persona, ()):
        assert response.status_code == 200 and (entry.action, entry.outcome) == ("export", "ok")
        assert entry.object_ids == str(case.pk)
    else:
        assert response.status_code == 404 and (entry.action, entry.outcome) == ("export", "denied")


# --- Screening results: the flagged list and the admin ---------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("place", PLACES)
def test_screening_result_pages(client, world, records, persona, place):
    client.force_login(getattr(world, persona))
    result = records[place]["result"]
    reads_flagged = bool(FLAGGED_READS[persona])

    # List: the flagged students of the campaign.
    before = _last_id()
    response = client.get(reverse("screening:flagged", args=[records["campaign"].pk]))
    entry = _one_entry(before)
    assert entry.action == "list"
    if reads_flagged:
        assert response.status_code == 200 and entry.outcome == "ok"
        listed = place in FLAGGED_READS[persona]
        assert (str(result.pk) in entry.object_ids.split(",")) == listed
        assert (result.student.student_no in response.content.decode()) == listed
    else:
        assert response.status_code == 404 and entry.outcome == "denied"

    # Open and change: the result's admin page (read-only for everyone).
    page = reverse("admin:screening_screeningresult_change", args=[result.pk])
    reach = place in READS[persona]["result"]
    for method, action in (("get", "view"), ("post", "change")):
        before = _last_id()
        response = getattr(client, method)(page, {"tier": "green"} if method == "post" else None)
        entry = _one_entry(before)
        assert entry.action == action
        if persona not in ADMIN_SITE:
            assert response.status_code == 403 and entry.outcome == "denied"  # the admin's one answer to teachers
        elif not reach:
            assert response.status_code == 404 and entry.outcome == "denied"
        elif method == "get":
            assert response.status_code == 200 and entry.outcome == "ok" and entry.object_ids == str(result.pk)
        else:
            assert response.status_code == 403 and entry.outcome == "denied"  # results are never edited
    result.refresh_from_db()
    assert result.tier == "yellow"
    assert ScreeningResult.objects.count() == 3


# --- Students: the roster admin --------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("place", PLACES)
def test_student_pages(client, world, records, persona, place):
    client.force_login(getattr(world, persona))
    student = getattr(world, STUDENT[place])
    reach = place in READS[persona]["student"]
    admin = persona in ADMIN_SITE

    before = _last_id()
    response = client.get(reverse("admin:roster_student_changelist"))
    entry = _one_entry(before)
    if admin:
        assert response.status_code == 200 and (entry.action, entry.outcome) == ("list", "ok")
        assert (str(student.pk) in entry.object_ids.split(",")) == reach
    else:
        assert response.status_code == 403 and entry.outcome == "denied"

    page = reverse("admin:roster_student_change", args=[student.pk])
    for method, action in (("get", "view"), ("post", "change")):
        before = _last_id()
        response = getattr(client, method)(page, {"name": "改名"} if method == "post" else None)
        entry = _one_entry(before)
        assert entry.action == action
        if not admin:
            assert response.status_code == 403 and entry.outcome == "denied"
        elif not reach:
            assert response.status_code == 404 and entry.outcome == "denied"
            assert client.get(reverse("admin:roster_student_change", args=[10**6])).status_code == 404
        elif method == "get":
            assert response.status_code == 200 and entry.outcome == "ok"
        else:  # a forged, incomplete form: re-shown with errors (an editor) or refused (a reader); never saved
            assert response.status_code in (200, 403)
    student.refresh_from_db()
    assert student.name != "改名"

    # Export: the scoped changelist as a spreadsheet (admin roles only).
    export_url = reverse("admin:roster_student_export")
    if not admin:
        before = _last_id()
        assert client.get(export_url).status_code == 403
        assert _one_entry(before).outcome == "denied"
        return
    form = client.get(export_url).context["form"]
    data = {name: "on" for name, field in form.fields.items() if field.widget.input_type == "checkbox"}
    data.update({"format": "0", "resource": "0"})
    before = _last_id()
    response = client.post(export_url, data)
    entry = _one_entry(before)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert (entry.action, entry.outcome) == ("export", "ok")
    assert (str(student.pk) in entry.object_ids.split(",")) == reach


# --- The narrowest roles: mentors and subject teachers (issue 20) ---------------------------------------------------

NARROW = ("mentor_a1", "subject_a1_3")


def _visible_pks(user, model) -> set[int]:
    from roster import scoping

    return set(scoping.visible(user, model).values_list("pk", flat=True))


def test_a_mentor_reads_their_current_mentees_and_no_one_once_the_mentorship_ends(client, world, records):
    from roster.models import Student

    mentor = world.mentor_a1
    assert _visible_pks(mentor, Student) == {world.student_a1_3.pk}  # not the school's other student (a1_5)
    client.force_login(mentor)
    assert client.get(reverse("care:student", args=[world.student_a1_3.pk])).status_code == 200
    assert client.get(reverse("care:student", args=[world.student_a1_5.pk])).status_code == 404

    mentor_assign(actor=None, student=world.student_a1_3, mentor=world.counselor_a1)  # another mentor now
    assert _visible_pks(mentor, Student) == set()
    for name in ("care:student", "care:talk_new", "care:visit_new"):
        assert client.get(reverse(name, args=[world.student_a1_3.pk])).status_code == 404
    assert world.student_a1_3.name not in client.get(reverse("care:my_students")).content.decode()


def test_a_subject_teacher_reads_the_students_of_the_class_they_teach_and_no_other(world, records):
    from roster.models import Student
    from tests.factories.roster import StudentFactory

    classmate = StudentFactory(school_class=world.class_a1_3)
    assert _visible_pks(world.subject_a1_3, Student) == {world.student_a1_3.pk, classmate.pk}


@pytest.mark.parametrize("persona", NARROW)
def test_the_narrowest_roles_read_no_result_case_code_absence_leave_or_anyone_elses_record(world, records, persona):
    """Every row of the own-school student that is not theirs stays out of reach: the screening result, the case and
    its records, access codes, absences, leave, the mentorship list, others' signals, talks and visits."""
    import datetime

    from cases import care_records
    from cases import models as case_models
    from cases.signal_queue import signal_raise
    from roster.models import Absence, AccessCode, Leave, Mentorship
    from screening.definitions import RiskTier

    user, student = getattr(world, persona), world.student_a1_3
    AccessCode.objects.create(student=student, code="NARROW01", created_by=world.counselor_a1)
    Absence.objects.create(student=student, school=world.school_a1, date=datetime.date(2026, 11, 2), kind="truancy")
    Leave.objects.create(student=student, school=world.school_a1, kind="medical",
                         starts_on=datetime.date(2026, 11, 3), recorded_by=world.counselor_a1)  # fmt: skip
    others, _ = signal_raise(student, source=case_models.SignalSource.CONCERN, tier=RiskTier.YELLOW, reason="r",
                             reporter=case_models.Reporter.STAFF, raised_by=world.homeroom_a1_3)  # fmt: skip
    mine, _ = signal_raise(student, source=case_models.SignalSource.CONCERN, tier=RiskTier.YELLOW, reason="r",
                           reporter=case_models.Reporter.STAFF, raised_by=user)  # fmt: skip
    visit = care_records.home_visit_record(actor=world.homeroom_a1_3, student=student,
                                           visited_on=datetime.date(2026, 11, 2), met="母亲")  # fmt: skip
    talk = care_records.talk_record(actor=world.mentor_a1, student=student, held_on=datetime.date(2026, 11, 2),
                                    topic="t")  # fmt: skip

    for model in (ScreeningResult, case_models.Case, case_models.CaseTeamMember, case_models.InterviewNote,
                  case_models.InterventionPlan, case_models.FollowUp, case_models.Referral, case_models.CrisisAlert,
                  case_models.ParentContact, case_models.HelpRecord, AccessCode, Absence, Leave):  # fmt: skip
        assert _visible_pks(user, model) == set(), model.__name__
    assert _visible_pks(user, case_models.Signal) == {mine.pk} and others.pk not in _visible_pks(
        user, case_models.Signal
    )
    assert _visible_pks(user, case_models.HomeVisit) == set() and visit.pk
    assert _visible_pks(user, case_models.MentorTalk) == ({talk.pk} if persona == "mentor_a1" else set())
    assert _visible_pks(user, Mentorship) == (
        set(Mentorship.objects.filter(user=user).values_list("pk", flat=True)) if persona == "mentor_a1" else set()
    )


@pytest.mark.parametrize("persona", NARROW)
def test_the_narrowest_roles_find_every_other_door_shut(client, world, records, persona):
    """The admin, the task frontend, every report and ledger, the individual report, the screening pages and the
    coverage answer 403 (the admin's and the case site's one answer) or 404, never a page; refusals logged."""
    client.force_login(getattr(world, persona))
    own, campaign = records["own"], records["campaign"]
    student = world.student_a1_3.pk
    task = _open_task(own["process"])
    urls = [
        reverse("admin:index"), reverse("admin:roster_student_changelist"),
        reverse("admin:roster_mentorship_changelist"), reverse("admin:roster_accesscode_changelist"),
        "/work/case/flows/", CaseFlow.instance.reverse("inbox"), CaseFlow.instance.reverse("queue"),
        CaseFlow.instance.reverse("process_detail", args=[own["process"].pk]), _url(task, "execute"),
        reverse("reports:dashboard"), reverse("reports:dashboard_overdue"), reverse("reports:ledger_key_help"),
        reverse("reports:ledger_referrals"), reverse("reports:ledger_closed"),
        reverse("reports:student_report", args=[student]),
        reverse("screening:campaigns"), reverse("screening:flagged", args=[campaign.pk]),
        reverse("screening:report", args=[campaign.pk]), reverse("screening:report_xlsx", args=[campaign.pk]),
        reverse("screening:proctor_classes", args=[campaign.pk]),
        reverse("screening:proctor", args=[campaign.pk, world.class_a1_3.pk]),
        reverse("care:coverage"),
    ]  # fmt: skip
    for url in urls:
        before = _last_id()
        response = client.get(url)
        assert response.status_code in (403, 404), (url, response.status_code)
        if not url.startswith("/screening/campaigns/"):  # (a campaign's pages answer 404 unlogged, as for anyone)
            assert AccessLogEntry.objects.filter(pk__gt=before, outcome="denied").exists(), url
    assert "/screening/" not in client.get(reverse("care:my_students")).content.decode()  # no menu link there
